"""Background exports for the auditor UI: ``audit.export`` in a worker thread into
``<data_dir>/exports/<id>/``, then ``audit.verify`` on the result with the log's own keys.

Each job keeps its state in ``<id>.json`` next to its directory (written atomically), so
the status fragment can be polled and finished exports survive a restart. Archives
(``<id>.tar.gz`` / ``<id>.zip``) are built on first download and kept.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import tarfile
import threading
import time
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

import audit
from outlet.files import FileStore
from web.templating import LOCAL_TZ

log = logging.getLogger("servicepoint")

JOB_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")
ARCHIVES = {"tar.gz": "application/gzip", "zip": "application/zip"}
PHASES = {
    "queued": "排队中",
    "evidence": "正在收集证据文件",
    "exporting": "正在导出日志",
    "verifying": "正在离线校验导出结果",
    "done": "已完成",
    "failed": "失败",
}


@dataclass
class ExportJob:
    id: str
    actor_id: int
    outlet: str | None
    date_from: str | None  # Beijing calendar dates, ISO
    date_to: str | None
    with_evidence: bool
    phase: str = "queued"
    started: float = field(default_factory=time.time)
    finished: float | None = None
    tree_size: int | None = None
    entries: int | None = None
    evidence: int | None = None
    evidence_missing: int = 0
    steps: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.phase not in ("done", "failed")

    @property
    def phase_label(self) -> str:
        return PHASES.get(self.phase, self.phase)

    @property
    def filtered(self) -> bool:
        return bool(self.outlet or self.date_from or self.date_to)

    @property
    def elapsed(self) -> float:
        return (self.finished or time.time()) - self.started


def local_day_start_utc(d: date) -> datetime:
    """00:00 Beijing time of ``d`` as a naive UTC datetime (what the log's columns hold)."""
    return datetime(d.year, d.month, d.day, tzinfo=LOCAL_TZ).astimezone(UTC).replace(tzinfo=None)


def utc_range(
    date_from: date | None, date_to: date | None
) -> tuple[datetime | None, datetime | None]:
    """Beijing calendar days (``date_to`` inclusive) as a half-open naive-UTC range."""
    start = local_day_start_utc(date_from) if date_from else None
    end = local_day_start_utc(date_to + timedelta(days=1)) if date_to else None
    return start, end


class ExportJobs:
    """The export jobs of one app: files under ``root``, threads tracked in memory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    # -- state files -------------------------------------------------------------------
    def dir_of(self, job_id: str) -> Path:
        return self.root / job_id

    def _state_file(self, job_id: str) -> Path:
        return self.root / f"{job_id}.json"

    def save(self, job: ExportJob) -> None:
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = self.root / f".{job.id}.json.tmp"
            tmp.write_text(json.dumps(asdict(job), ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, self._state_file(job.id))

    def get(self, job_id: str) -> ExportJob | None:
        if not JOB_ID.match(job_id):
            return None
        try:
            data = json.loads(self._state_file(job_id).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        job = ExportJob(**data)
        if job.running and job_id not in self.threads:  # the process stopped mid-export
            job.phase, job.error = "failed", "导出过程中服务已重启，请重新导出"
        return job

    def recent(self, limit: int = 20) -> list[ExportJob]:
        if not self.root.is_dir():
            return []
        names = sorted((p.name[:-5] for p in self.root.glob("*.json")), reverse=True)
        jobs = [self.get(n) for n in names[:limit]]
        return [j for j in jobs if j is not None]

    # -- running -----------------------------------------------------------------------
    def start(
        self, engine: Engine, log_: audit.Checkpointer, files_dir: Path, actor_id: int, *,
        outlet: str | None, date_from: date | None, date_to: date | None, with_evidence: bool,
    ) -> ExportJob:  # fmt: skip
        stamp = datetime.now(LOCAL_TZ).strftime("%Y%m%d-%H%M%S")
        job = ExportJob(
            id=f"{stamp}-{secrets.token_hex(3)}", actor_id=actor_id, outlet=outlet,
            date_from=date_from.isoformat() if date_from else None,
            date_to=date_to.isoformat() if date_to else None, with_evidence=with_evidence,
        )  # fmt: skip
        self.save(job)
        thread = threading.Thread(
            target=self._run, args=(job, engine, log_, files_dir), name=f"audit-export-{job.id}",
            daemon=True,
        )  # fmt: skip
        self.threads[job.id] = thread
        thread.start()
        return job

    def _run(
        self, job: ExportJob, engine: Engine, log_: audit.Checkpointer, files_dir: Path
    ) -> None:
        def phase(name: str) -> None:
            job.phase = name
            self.save(job)

        try:
            d_from = date.fromisoformat(job.date_from) if job.date_from else None
            d_to = date.fromisoformat(job.date_to) if job.date_to else None
            start, end = utc_range(d_from, d_to)
            log_.sign_checkpoint(engine)  # cover everything logged up to now
            evidence: list[tuple[str, Path]] = []
            if job.with_evidence:
                phase("evidence")
                evidence, job.evidence_missing = collect_evidence(
                    engine, files_dir, job.outlet, start, end
                )
            phase("exporting")
            policy = log_.policy()
            result = audit.export(
                engine, self.dir_of(job.id), policy, outlet=job.outlet, from_=start, to=end,
                evidence=evidence,
            )  # fmt: skip
            job.tree_size, job.entries, job.evidence = (
                result.tree_size,
                result.entries,
                result.evidence,
            )
            phase("verifying")
            audit.verify(self.dir_of(job.id), policy, on_step=job.steps.append)
            job.finished = time.time()
            phase("done")
        except audit.AuditError as exc:
            job.error = f"{exc.__class__.__name__}: {exc}"
            job.finished = time.time()
            phase("failed")
        except Exception as exc:  # never leave a job "running" forever
            log.exception("audit export %s failed", job.id)
            job.error = f"内部错误：{exc.__class__.__name__}"
            job.finished = time.time()
            phase("failed")

    def progress_bytes(self, job_id: str) -> int:
        try:
            return (self.dir_of(job_id) / "entries.jsonl").stat().st_size
        except OSError:
            return 0

    # -- archives ----------------------------------------------------------------------
    def archive(self, job_id: str, fmt: str) -> Path:
        """``<id>.tar.gz`` or ``<id>.zip`` of a finished export (built once, atomically)."""
        target = self.root / f"{job_id}.{fmt}"
        if target.exists():
            return target
        src = self.dir_of(job_id)
        top = f"audit-export-{job_id}"
        tmp = self.root / f".{job_id}.{fmt}.{secrets.token_hex(4)}.tmp"
        try:
            if fmt == "tar.gz":
                with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
                    tar.add(src, arcname=top)
            else:
                with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
                    for path in sorted(src.rglob("*")):
                        if path.is_file():
                            zf.write(path, f"{top}/{path.relative_to(src).as_posix()}")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return target


def collect_evidence(
    engine: Engine,
    files_dir: Path,
    outlet: str | None,
    start: datetime | None,
    end: datetime | None,
) -> tuple[list[tuple[str, Path]], int]:
    """Files (scans, snapshots, recordings) whose SHA-256 a selected entry records and
    that are in the content-addressed store ``<files_dir>/ab/cdef…``. Only entries under
    the latest checkpoint are read, so every digest is in the export (which covers at
    least that checkpoint). Returns ((relative path, file) pairs, count of missing files)."""
    with Session(engine) as s:
        latest = audit.list_checkpoints(s, limit=1)
        size = latest[0].size if latest else 0
    seen: dict[str, str] = {}
    after: int | None = None
    while size:
        with Session(engine) as s:
            got = audit.search_entries(
                s, outlet=outlet, date_from=start, date_to=end, after_index=after, limit=500,
                newest_first=False,
            )  # fmt: skip
        covered = [v for v in got.entries if v.index < size]
        for view in covered:
            for d in view.entry.get("digests") or []:
                seen.setdefault(str(d.get("sha256", "")), str(d.get("kind", "file")))
        if got.next_after is None or len(covered) < len(got.entries):
            break
        after = got.next_after
    found, missing = [], 0
    for sha, kind in sorted(seen.items()):
        if not re.fullmatch(r"[0-9a-f]{64}", sha):
            continue
        path = FileStore(files_dir).path_for(sha)  # the store's layout, local or shared
        if path.is_file():
            found.append((f"{re.sub(r'[^a-z]', '', kind) or 'file'}/{sha}", path))
        else:
            missing += 1
    return found, missing
