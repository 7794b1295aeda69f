"""The auditor's pages (role ``auditor``, read-only), mounted at ``/audit``: search the
signed log, one entry with its inclusion proof and a server-side verification, the
checkpoint history with witness lag, and exports. ``/audit/keys`` is public: it serves
the log's verifier keys so partners and auditors can pin them."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

import audit
from partners.delegation import delegated_action
from partners.models import Outlet, Staff
from web import errors
from web.auth import current_user, requires_roles
from web.params import MAX_INDEX, int_param
from web.routes import audit_views as views
from web.routes.audit_export import ARCHIVES, ExportJobs
from web.routes.audit_stats import StatsJobs
from web.security import is_write

PAGE_SIZE = 50
CHECKPOINTS_PER_PAGE = 20


# --- shared ----------------------------------------------------------------------------
def audit_log(request: Request) -> audit.Checkpointer:
    return checkpointer(request.app)


def checkpointer(app: Any) -> audit.Checkpointer:
    """The app's log signer, created in the lifespan (``app.state.audit_log``)."""
    return app.state.audit_log  # type: ignore[no-any-return]


def export_jobs(request: Request) -> ExportJobs:
    state = request.app.state
    jobs = getattr(state, "audit_exports", None)
    if jobs is None:
        jobs = state.audit_exports = ExportJobs(Path(state.settings.data_dir) / "exports")
    return jobs  # type: ignore[no-any-return]


def is_htmx(request: Request) -> bool:
    """A partial update (a history restore after a cache miss wants the whole page)."""
    h = request.headers
    return h.get("HX-Request") == "true" and h.get("HX-History-Restore-Request") != "true"


def render(request: Request, name: str, ctx: dict[str, Any], status_code: int = 200) -> Response:
    return request.app.state.templates.TemplateResponse(  # type: ignore[no-any-return]
        request, name, ctx, status_code=status_code, headers={"Vary": "HX-Request"}
    )


def see_other(request: Request, url: str) -> Response:
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def _latest_size(session: Session) -> int:
    latest = audit.list_checkpoints(session, limit=1)
    return latest[0].size if latest else 0


# --- public keys -----------------------------------------------------------------------
async def keys(request: Request) -> Response:
    text = audit.public_keys_text(audit_log(request).public_keys())
    return PlainTextResponse(text, headers={"Cache-Control": "no-cache"})


# --- search ----------------------------------------------------------------------------
@requires_roles("auditor")
async def search(request: Request) -> Response:
    engine = request.app.state.engine

    def load() -> dict[str, Any]:
        with Session(engine) as s:
            q = views.parse_search(request.query_params, s)
            ctx: dict[str, Any] = {"q": q, "rows": [], "next_url": None, "first_url": None}
            if not is_htmx(request):
                ctx.update(views.form_choices(s))
                latest = audit.list_checkpoints(s, limit=1)
                ctx["latest"] = views.checkpoint_row(latest[0], []) if latest else None
            if q.errors:
                return ctx
            page = audit.search_entries(s, **q.kwargs, after_index=q.after, limit=PAGE_SIZE)
            names = views.Names.load(s, [v.entry for v in page.entries])
            size = _latest_size(s)
            ctx["rows"] = [views.entry_row(v, names, size) for v in page.entries]
        if page.next_after is not None:
            ctx["next_url"] = "/audit/?" + urlencode(q.params(after_index=page.next_after))
        if q.after is not None:
            ctx["first_url"] = "/audit/?" + urlencode(q.params())
        return ctx

    ctx = await run_in_threadpool(load)
    ctx["keys"] = audit_log(request).public_keys()
    ctx["labels"] = views.FILTER_LABELS
    status = 422 if ctx["q"].errors else 200
    return render(
        request, "audit/_results.html" if is_htmx(request) else "audit/index.html", ctx, status
    )


# --- one entry -------------------------------------------------------------------------
def _entry_context(request: Request, index: int) -> dict[str, Any]:
    with Session(request.app.state.engine) as s:
        view = audit.get_entry(s, index)
        if view is None:
            return {}
        names = views.Names.load(s, [view.entry])
        size = _latest_size(s)
    return {"row": views.entry_row(view, names, size), "leaf": views.leaf_details(view),
            "tree_size": size, "verify": None}  # fmt: skip


def _entry_exists(request: Request, index: int) -> bool:
    with Session(request.app.state.engine) as s:
        return audit.get_entry(s, index) is not None


async def _entry_or_404(request: Request) -> dict[str, Any] | Response:
    ctx = await run_in_threadpool(_entry_context, request, request.path_params["index"])
    if not ctx:
        return errors.render_error(request, 404, "未找到该审计记录")
    return ctx


@requires_roles("auditor")
async def entry(request: Request) -> Response:
    ctx = await _entry_or_404(request)
    if isinstance(ctx, Response):
        return ctx
    return render(request, "audit/entry.html", ctx)


@requires_roles("auditor")
async def proof(request: Request) -> Response:
    index = request.path_params["index"]
    try:
        data = await run_in_threadpool(audit.prove, request.app.state.engine, index)
    except audit.AuditError:
        if not await run_in_threadpool(_entry_exists, request, index):
            return errors.render_error(request, 404, "未找到该审计记录")
        return errors.render_error(
            request, 409, "该记录尚未被已签名的检查点覆盖，暂不能生成包含证明"
        )
    return Response(data, media_type="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="audit-entry-{index}.tlog-proof"',
        "Cache-Control": "no-store",
    })  # fmt: skip


# The checks of a .tlog-proof file, as numbered in docs/audit.md; ``audit.verify``
# reports one message per group when the group has passed.
PROOF_STEPS = [
    ("1", "加载信任策略（C2SP tlog-policy）：只信任本日志公布的公钥"),
    (
        "2–7",
        "解析证明（C2SP tlog-proof）并打开检查点：签名格式、可信日志签名、检查点正文、见证副署",
    ),
    ("8–9", "附带条目为规范的 v1 记录，包含证明（RFC 9162 §2.1.3.2）与检查点根哈希一致"),
]


def run_verify(engine: Any, log_: audit.Checkpointer, index: int) -> dict[str, Any]:
    """Prove entry ``index`` and verify the proof as an offline auditor would, trusting
    only the log's published keys. Returns each numbered step with its outcome."""
    messages: list[str] = []
    error = None
    try:
        data = audit.prove(engine, index)
    except audit.AuditError:
        return {
            "ok": False,
            "steps": [],
            "error": "该记录尚未被已签名的检查点覆盖，无法生成包含证明",
        }
    try:
        with tempfile.TemporaryDirectory(prefix="sp-verify-") as tmp:
            path = Path(tmp) / f"audit-entry-{index}.tlog-proof"
            path.write_bytes(data)
            audit.verify(path, log_.policy(), on_step=messages.append)
    except audit.AuditError as exc:
        number, label = PROOF_STEPS[min(len(messages), len(PROOF_STEPS) - 1)]
        error = f"第 {number} 步（{label}）未通过，记录或证明不可信。详情：{exc}"
    steps = []
    for i, (number, label) in enumerate(PROOF_STEPS):
        if i < len(messages):
            steps.append({"n": number, "label": label, "ok": True, "detail": messages[i]})
        elif error is not None and i == len(messages):
            steps.append({"n": number, "label": label, "ok": False, "detail": error})
        else:
            steps.append({"n": number, "label": label, "ok": None, "detail": ""})
    return {"ok": error is None, "steps": steps, "error": error}


@requires_roles("auditor")
async def verify(request: Request) -> Response:
    index = request.path_params["index"]
    result = await run_in_threadpool(
        run_verify, request.app.state.engine, audit_log(request), index
    )
    if is_htmx(request):
        return render(request, "audit/_verify.html", {"verify": result, "index": index})
    ctx = await _entry_or_404(request)
    if isinstance(ctx, Response):
        return ctx
    ctx["verify"] = result
    return render(request, "audit/entry.html", ctx)


# --- checkpoints and witnesses ---------------------------------------------------------
@requires_roles("auditor")
async def checkpoints(request: Request) -> Response:
    log_ = audit_log(request)
    raw = request.query_params.get("before", "")
    before = int_param(raw, high=MAX_INDEX)

    def load() -> dict[str, Any]:
        vkeys = log_.vkeys()
        with Session(request.app.state.engine) as s:
            cps = audit.list_checkpoints(s, limit=CHECKPOINTS_PER_PAGE, before_id=before)
            witnesses = audit.witness_status(s, log_.witnesses)
        rows = [views.checkpoint_row(cp, vkeys) for cp in cps]
        more = len(rows) == CHECKPOINTS_PER_PAGE
        return {"rows": rows, "witnesses": [views.witness_row(w) for w in witnesses],
                "next_url": f"/audit/checkpoints?before={rows[-1]['id']}" if more else None,
                "first_url": "/audit/checkpoints" if before is not None else None}  # fmt: skip

    ctx = await run_in_threadpool(load)
    ctx["keys"] = log_.public_keys()
    ctx["origin"] = log_.origin
    ctx["checkpoint_interval"] = request.app.state.settings.checkpoint_interval
    return render(request, "audit/checkpoints.html", ctx)


# --- exports ---------------------------------------------------------------------------
def _export_form(
    session: Session, form: Any
) -> tuple[dict[str, str], dict[str, str], dict[str, Any]]:
    values = {k: str(form.get(k, "") or "").strip()[:64] for k in ("outlet", "from", "to")}
    values["evidence"] = "1" if form.get("evidence") else ""
    errs: dict[str, str] = {}
    parsed: dict[str, Any] = {"outlet": values["outlet"] or None}
    if (
        values["outlet"]
        and session.exec(select(Outlet.id).where(Outlet.code == values["outlet"])).first() is None
    ):
        errs["outlet"] = "未找到该网点"
    for name in ("from", "to"):
        parsed[name] = None
        if values[name]:
            try:
                parsed[name] = date.fromisoformat(values[name])
            except ValueError:
                errs[name] = "日期格式应为 YYYY-MM-DD"
    if parsed.get("from") and parsed.get("to") and parsed["to"] < parsed["from"]:
        errs["to"] = "结束日期不能早于开始日期"
    return values, errs, parsed


def _exports_context(
    request: Request, values: dict[str, str], errs: dict[str, str]
) -> dict[str, Any]:
    with Session(request.app.state.engine) as s:
        choices = views.form_choices(s)
    return {"values": values, "errors": errs, "jobs": export_jobs(request).recent(),
            "outlets": choices["outlets"], "labels": views.FILTER_LABELS}  # fmt: skip


@requires_roles("auditor")
async def exports(request: Request) -> Response:
    if not is_write(request):
        ctx = await run_in_threadpool(_exports_context, request, {"evidence": "1"}, {})
        return render(request, "audit/exports.html", ctx)
    form = await request.form()
    engine = request.app.state.engine
    user = current_user(request)
    assert user is not None and user.id is not None
    user_id = user.id

    def start() -> tuple[dict[str, str], dict[str, str], str | None]:
        with Session(engine) as s:
            values, errs, parsed = _export_form(s, form)
        if errs:
            return values, errs, None
        with delegated_action(engine, user, "audit.export"):
            pass  # the export itself is recorded: who exported, when
        job = export_jobs(request).start(
            engine, audit_log(request), Path(request.app.state.settings.files_dir), user_id,
            outlet=parsed["outlet"], date_from=parsed["from"], date_to=parsed["to"],
            with_evidence=bool(values["evidence"]),
        )  # fmt: skip
        return values, errs, job.id

    values, errs, job_id = await run_in_threadpool(start)
    if job_id is None:
        ctx = await run_in_threadpool(_exports_context, request, values, errs)
        return render(request, "audit/exports.html", ctx, status_code=422)
    return see_other(request, f"/audit/exports/{job_id}")


def _job_context(request: Request) -> dict[str, Any] | None:
    jobs = export_jobs(request)
    job = jobs.get(request.path_params["job"])
    if job is None:
        return None
    with Session(request.app.state.engine) as s:
        actor = s.exec(select(Staff.display_name).where(Staff.id == job.actor_id)).first()
    return {
        "job": job,
        "actor_name": actor or "",
        "written": jobs.progress_bytes(job.id),
        "started": views.beijing(datetime.fromtimestamp(job.started, UTC)),
        "elapsed": views.duration(job.elapsed),
        "formats": list(ARCHIVES),
    }


@requires_roles("auditor")
async def export_page(request: Request) -> Response:
    ctx = await run_in_threadpool(_job_context, request)
    if ctx is None:
        return errors.render_error(request, 404, "未找到该导出任务")
    template = "audit/_export_status.html" if is_htmx(request) else "audit/export.html"
    return render(request, template, ctx)


@requires_roles("auditor")
async def export_status(request: Request) -> Response:
    ctx = await run_in_threadpool(_job_context, request)
    if ctx is None:
        return errors.render_error(request, 404, "未找到该导出任务")
    return render(request, "audit/_export_status.html", ctx)


@requires_roles("auditor")
async def export_download(request: Request) -> Response:
    jobs = export_jobs(request)
    job, fmt = jobs.get(request.path_params["job"]), request.path_params["fmt"]
    if job is None or fmt not in ARCHIVES:
        return errors.render_error(request, 404, "未找到该导出文件")
    if job.phase != "done":
        return errors.render_error(request, 409, "导出尚未完成或已失败，不能下载")
    path = await run_in_threadpool(jobs.archive, job.id, fmt)
    return FileResponse(path, media_type=ARCHIVES[fmt], filename=f"audit-export-{job.id}.{fmt}")


# --- 统计核验 (recompute the figures from an export) ----------------------------------------
def stats_jobs(request: Request) -> StatsJobs:
    state = request.app.state
    jobs = getattr(state, "audit_stats", None)
    if jobs is None:
        jobs = state.audit_stats = StatsJobs(Path(state.settings.data_dir) / "stats")
    return jobs  # type: ignore[no-any-return]


def _stats_context(request: Request, values: dict[str, str], errs: dict[str, str]) -> dict[str, Any]:
    with Session(request.app.state.engine) as s:
        choices = views.form_choices(s)
    done = [j for j in export_jobs(request).recent(50) if j.phase == "done"]
    return {"values": values, "errors": errs, "exports": done, "jobs": stats_jobs(request).recent(),
            "outlets": choices["outlets"], "labels": views.FILTER_LABELS}  # fmt: skip


@requires_roles("auditor")
async def stats_page(request: Request) -> Response:
    if not is_write(request):
        ctx = await run_in_threadpool(_stats_context, request, {"export": request.query_params.get("export", "")}, {})
        return render(request, "audit/stats.html", ctx)
    settings = request.app.state.settings
    form = await request.form(max_files=1)
    upload = form.get("archive")
    has_upload = upload is not None and not isinstance(upload, str) and bool(upload.filename)
    engine = request.app.state.engine
    user = current_user(request)
    assert user is not None and user.id is not None
    user_id = user.id
    policy = audit_log(request).policy()
    exports_ = export_jobs(request)
    tmp_upload: Path | None = None
    if has_upload:  # spool the upload to a file of our own before the thread takes over
        root = stats_jobs(request).root
        await run_in_threadpool(root.mkdir, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=root, suffix=".upload")
        tmp_upload = Path(name)
        with os.fdopen(fd, "wb") as out:
            while chunk := await upload.read(1 << 20):  # type: ignore[union-attr]
                await run_in_threadpool(out.write, chunk)

    def start() -> tuple[dict[str, str], dict[str, str], str | None]:
        with Session(engine) as s:
            values, errs, parsed = _export_form(s, form)
        values["export"] = str(form.get("export", "") or "").strip()[:64]
        export_dir: Path | None = None
        if has_upload:
            name = str(upload.filename)  # type: ignore[union-attr]
            if not name.endswith((".tar.gz", ".tgz")):
                errs["archive"] = "请上传 .tar.gz 格式的审计导出"
            source = f"upload:{name[-120:]}"
        else:
            job = exports_.get(values["export"]) if values["export"] else None
            if job is None or job.phase != "done":
                errs["export"] = "请选择一个已完成的导出，或上传导出的 .tar.gz 文件"
            else:
                export_dir = exports_.dir_of(job.id)
            source = f"export:{values['export']}"
        if errs:
            if tmp_upload is not None:
                tmp_upload.unlink(missing_ok=True)
            return values, errs, None
        job_ = stats_jobs(request).start(
            engine, export_dir, tmp_upload, user_id, source=source, outlet=parsed["outlet"],
            date_from=parsed["from"], date_to=parsed["to"], policy=policy,
            max_bytes=64 * settings.max_upload_bytes)  # fmt: skip
        return values, errs, job_.id

    values, errs, job_id = await run_in_threadpool(start)
    if job_id is None:
        ctx = await run_in_threadpool(_stats_context, request, values, errs)
        return render(request, "audit/stats.html", ctx, status_code=422)
    return see_other(request, f"/audit/stats/{job_id}")


def _stats_job_context(request: Request) -> dict[str, Any] | None:
    job = stats_jobs(request).get(request.path_params["job"])
    if job is None:
        return None
    return {"job": job, "elapsed": views.duration(job.elapsed),
            "started": views.beijing(datetime.fromtimestamp(job.started, UTC))}  # fmt: skip


@requires_roles("auditor")
async def stats_job_page(request: Request) -> Response:
    ctx = await run_in_threadpool(_stats_job_context, request)
    if ctx is None:
        return errors.render_error(request, 404, "未找到该核验任务")
    template = "audit/_stats_status.html" if is_htmx(request) else "audit/stats_job.html"
    return render(request, template, ctx)


@requires_roles("auditor")
async def stats_job_status(request: Request) -> Response:
    ctx = await run_in_threadpool(_stats_job_context, request)
    if ctx is None:
        return errors.render_error(request, 404, "未找到该核验任务")
    return render(request, "audit/_stats_status.html", ctx)


routes: list[BaseRoute] = [
    Route("/", search, name="search"),
    Route("/keys", keys, name="keys"),
    Route("/entries/{index:index}", entry, name="entry"),
    Route("/entries/{index:index}/proof", proof, name="proof"),
    Route("/entries/{index:index}/verify", verify, methods=["POST"], name="verify"),
    Route("/checkpoints", checkpoints, name="checkpoints"),
    Route("/exports", exports, methods=["GET", "POST"], name="exports"),
    Route("/exports/{job}", export_page, name="export"),
    Route("/exports/{job}/status", export_status, name="export_status"),
    Route("/exports/{job}/download/{fmt}", export_download, name="export_download"),
    Route("/stats", stats_page, methods=["GET", "POST"], name="stats"),
    Route("/stats/{job}", stats_job_page, name="stats_job"),
    Route("/stats/{job}/status", stats_job_status, name="stats_job_status"),
]
