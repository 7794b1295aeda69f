"""统计核验 for the auditor: recompute the headline figures from an audit export (one of
the finished exports, or an uploaded ``.tar.gz``) with ``audit.stats`` — verification first
— and show them next to the published figures (``outlet.figures.headline``) for the same
period and outlet, differences highlighted.

The work runs in a worker thread (verification and a pass over the entries can take
seconds to minutes); its state lives in ``<data_dir>/stats/<id>.json`` like the export jobs,
so the status fragment can be polled and results survive a restart.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import shutil
import tarfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

import audit
from audit.stats import stats
from outlet.figures import FIGURES, Period, Scope, headline
from outlet.figures import ratings as rating_figures
from partners.models import Outlet
from web.routes.audit_export import JOB_ID
from web.templating import LOCAL_TZ

log = logging.getLogger("servicepoint")

PHASES = {
    "queued": "排队中", "unpacking": "正在解压上传的导出", "verifying": "正在离线校验导出",
    "computing": "正在从日志条目重算指标", "published": "正在计算系统公布的指标",
    "done": "已完成", "failed": "失败",
}  # fmt: skip
TOLERANCE = 1e-9  # float sums in SQL and in Python may differ in the last bits


@dataclass
class StatsJob:
    id: str
    actor_id: int
    source: str  # "export:<job id>" or "upload:<file name>"
    outlet: str | None
    date_from: str | None
    date_to: str | None
    phase: str = "queued"
    started: float = field(default_factory=time.time)
    finished: float | None = None
    entries_read: int = 0
    steps: list[str] = field(default_factory=list)
    period: list[str] = field(default_factory=list)  # [from, to] actually used
    rows: list[dict[str, Any]] = field(default_factory=list)
    differences: int = 0
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.phase not in ("done", "failed")

    @property
    def phase_label(self) -> str:
        return PHASES.get(self.phase, self.phase)

    @property
    def elapsed(self) -> float:
        return (self.finished or time.time()) - self.started


def same(a: Any, b: Any) -> bool:
    """Equal figures: both None, or numbers equal up to float rounding."""
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=TOLERANCE, abs_tol=TOLERANCE)


def comparison(recomputed: dict[str, Any], published: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per figure: label, unit, both values, and whether they differ. Figures the
    log cannot give (``verifiable=False``) have ``recomputed`` None and ``in_log`` False."""
    rows = []
    for d in FIGURES:
        in_log = d.key in recomputed
        r, p = recomputed.get(d.key), published.get(d.key)
        rows.append({"key": d.key, "label": d.label, "unit": d.unit, "in_log": in_log,
                     "recomputed": r, "published": p, "differs": in_log and not same(r, p)})  # fmt: skip
    return rows


def safe_extract(archive: Path, target: Path, max_bytes: int) -> Path:
    """Unpack a ``.tar.gz`` export (regular files and folders only, no links, nothing outside
    ``target``, at most ``max_bytes`` unpacked) and return the folder holding ``checkpoint``.
    Raises :class:`audit.AuditError` with a Chinese message."""
    total = 0
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            for m in members:
                if not (m.isfile() or m.isdir()):
                    raise audit.AuditError(f"压缩包中含有不允许的条目类型：{m.name}")
                total += max(m.size, 0)
                if total > max_bytes:
                    raise audit.AuditError("压缩包解压后过大")
            tar.extractall(target, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise audit.AuditError(f"无法解压上传的文件（应为 .tar.gz 格式的审计导出）：{exc}") from None
    found = sorted(p.parent for p in target.rglob("checkpoint") if p.is_file())
    if not found:
        raise audit.AuditError("压缩包中没有审计导出（未找到 checkpoint 文件）")
    return found[0]


class StatsJobs:
    """The 统计核验 jobs of one app: state files under ``root``, threads in memory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def save(self, job: StatsJob) -> None:
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = self.root / f".{job.id}.json.tmp"
            tmp.write_text(json.dumps(asdict(job), ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, self.root / f"{job.id}.json")

    def get(self, job_id: str) -> StatsJob | None:
        if not JOB_ID.match(job_id):
            return None
        try:
            data = json.loads((self.root / f"{job_id}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        job = StatsJob(**data)
        if job.running and job_id not in self.threads:
            job.phase, job.error = "failed", "核验过程中服务已重启，请重新核验"
        return job

    def recent(self, limit: int = 20) -> list[StatsJob]:
        if not self.root.is_dir():
            return []
        names = sorted((p.name[:-5] for p in self.root.glob("*.json")), reverse=True)
        return [j for j in (self.get(n) for n in names[:limit]) if j is not None]

    def upload_dir(self, job_id: str) -> Path:
        return self.root / f"{job_id}-upload"

    def start(self, engine: Engine, export_dir: Path | None, upload: Path | None, actor_id: int, *,
              source: str, outlet: str | None, date_from: date | None, date_to: date | None,
              policy: Any, max_bytes: int) -> StatsJob:  # fmt: skip
        """Start a job on ``export_dir`` (a finished export) or ``upload`` (a .tar.gz moved
        into the job's own folder)."""
        stamp = datetime.now(LOCAL_TZ).strftime("%Y%m%d-%H%M%S")
        job = StatsJob(id=f"{stamp}-{secrets.token_hex(3)}", actor_id=actor_id, source=source,
                       outlet=outlet, date_from=date_from.isoformat() if date_from else None,
                       date_to=date_to.isoformat() if date_to else None)  # fmt: skip
        if upload is not None:
            self.upload_dir(job.id).mkdir(parents=True)
            shutil.move(upload, self.upload_dir(job.id) / "export.tar.gz")
        self.save(job)
        t = threading.Thread(target=self._run, args=(job, engine, export_dir, policy, max_bytes),
                             name=f"audit-stats-{job.id}", daemon=True)  # fmt: skip
        self.threads[job.id] = t
        t.start()
        return job

    def _run(self, job: StatsJob, engine: Engine, export_dir: Path | None, policy: Any,
             max_bytes: int) -> None:  # fmt: skip
        def phase(name: str) -> None:
            job.phase = name
            self.save(job)

        def progress(n: int) -> None:
            job.entries_read = n
            self.save(job)

        try:
            if export_dir is None:
                phase("unpacking")
                up = self.upload_dir(job.id)
                export_dir = safe_extract(up / "export.tar.gz", up / "x", max_bytes)
            phase("verifying")

            def step(msg: str) -> None:
                job.steps.append(msg)
                if msg.startswith("evidence"):  # the last verification step
                    phase("computing")
                else:
                    self.save(job)

            d_from = date.fromisoformat(job.date_from) if job.date_from else None
            d_to = date.fromisoformat(job.date_to) if job.date_to else None
            res = stats(export_dir, policy, start=d_from, end=d_to, outlet=job.outlet,
                        on_step=step, on_progress=progress)  # fmt: skip
            job.entries_read = res.entries
            job.period = [res.start.isoformat(), res.end.isoformat()]
            phase("published")
            with Session(engine) as s:
                oid = s.exec(select(Outlet.id).where(Outlet.code == job.outlet)).first() if job.outlet else None
                if job.outlet and oid is None:
                    raise audit.AuditError(f"本系统中没有网点 {job.outlet}，无法对照公布的指标")
                scope = Scope(outlet_ids=frozenset({oid})) if oid is not None else Scope()
                period = Period(res.start, res.end)
                published = headline(s, scope, period)
                # 差评整改率 counts the orders due by "today": the export's day, not ours
                # (an export of last week is compared with what was published then)
                published.update(rating_figures.derive(rating_figures.counts(
                    s, scope, period, None, today=res.today).get(None, {})))
            job.rows = comparison(res.figures, published)
            job.differences = sum(1 for r in job.rows if r["differs"])
            job.finished = time.time()
            phase("done")
        except audit.AuditError as exc:
            job.error = f"{exc.__class__.__name__}: {exc}"
            job.finished = time.time()
            phase("failed")
        except Exception as exc:  # never leave a job running forever
            log.exception("audit stats %s failed", job.id)
            job.error = f"内部错误：{exc.__class__.__name__}"
            job.finished = time.time()
            phase("failed")
        finally:
            shutil.rmtree(self.upload_dir(job.id), ignore_errors=True)
