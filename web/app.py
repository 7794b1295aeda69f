"""The Starlette application factory. All state lives on ``app.state``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio.to_thread
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Mount, Route

import audit
from outlet import pii
from outlet.events import Hub, singleton
from outlet.queue import bookings
from partners import refdata
from remote_assist.runtime import lifespan_hooks as assist_lifespan
from web import auth, errors, live, refusals
from web.db import make_engine, make_reader
from web.inputs import InputGuardMiddleware
from web.routes import (
    admin,
    assist,
    audit_ui,
    cases,
    devices,
    figures,
    figures_files,
    figures_rows,
    public,
    queue,
    ratings,
    ratings_public,
    review,
    services,
    services_figures,
    services_promise,
    services_visits,
)
from web.security import CSRFMiddleware, SecurityHeadersMiddleware
from web.settings import Settings, secret_file
from web.static_assets import VersionedStatic
from web.templating import make_templates

log = logging.getLogger("servicepoint")
STATIC_DIR = Path(__file__).parent / "static"


def create_app(settings: Settings | None = None, *, serving: bool = False) -> Starlette:
    """The app. ``serving``: this process only serves it (``servicepoint serve``), so the heap
    left by start-up is frozen out of the garbage collector (:func:`settle_heap`)."""
    settings = settings or Settings.from_env()
    private_data_dir(settings)  # before any key, database or upload is written

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Blocking work (database, templates of endpoints) runs on at most settings.threads
        # threads: on 2 cores under one GIL more only contend, and each kept thread holds its
        # own SQLite connections and malloc arena (RSS grew ~40 MiB under load with 40).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        engine = make_engine(settings.database_url)
        app.state.engine = engine  # every write (and a read that decides a write)
        app.state.reader = reader = make_reader(settings.database_url, engine)  # pure reads
        app.state.audit_log = audit_log = open_audit_log(settings)
        check_pii_key(settings, engine)  # says what is wrong; the pages then say it too
        app.state.hub = hub = Hub(engine, reader=reader)  # live events, in-process or across processes
        await hub.start()
        uninstall = live.install(hub)  # ended logins close their sockets in every process
        jobs = periodic_jobs(hub, audit_log, settings)
        try:
            async with assist_lifespan(app):  # remote help: recorders, signaling, sweeps
                if serving:
                    settle_heap()
                yield
        finally:
            for job in jobs:
                job.cancel()
            for job in jobs:
                with contextlib.suppress(asyncio.CancelledError):
                    await job
            uninstall()
            await hub.close()
            if reader.pool is not engine.pool:
                reader.dispose()
            engine.dispose()

    async def csrf_rejected(request):  # type: ignore[no-untyped-def]
        return errors.render_error(request, 403, "页面已过期或请求来源无效，请刷新页面后重试。")

    async def input_refused(request, status, message):  # type: ignore[no-untyped-def]
        return errors.render_error(request, status, message)

    max_body = settings.max_upload_bytes + 1024 * 1024  # an upload plus its form fields
    middleware = [
        Middleware(SecurityHeadersMiddleware, https=settings.https),
        Middleware(GZipMiddleware, minimum_size=1024),
        Middleware(
            SessionMiddleware,
            secret_key=settings.secret_key().hex(),
            session_cookie="sp_session",
            max_age=settings.session_max_hours * 3600,  # the server ends sessions earlier
            same_site="strict",
            https_only=settings.https,
        ),
        Middleware(InputGuardMiddleware, max_body=max_body, on_refuse=input_refused),
        Middleware(
            CSRFMiddleware,
            max_body=max_body,
            on_reject=csrf_rejected,
        ),
    ]
    static = VersionedStatic(STATIC_DIR)
    routes = [
        *auth.routes,
        Route("/healthz", _healthz, name="healthz"),
        Route("/favicon.ico", _favicon, name="favicon"),
        Mount("/static", static, name="static"),
        Mount("/cases", routes=cases.routes, name="cases"),
        Mount("/review", routes=review.routes, name="review"),
        Mount("/status", routes=public.routes, name="status"),
        Mount("/admin", routes=admin.routes, name="admin"),
        Mount("/assist", routes=assist.routes, name="assist"),
        Mount("/audit", routes=audit_ui.routes, name="audit"),
        Mount("/services", routes=services.routes_with(
            services_visits.routes + services_promise.routes + services_figures.routes), name="services"),
        Mount("/devices", routes=devices.routes, name="devices"),
        Mount("/ratings", routes=ratings.routes, name="ratings"),
        Mount("/rate", routes=ratings_public.routes, name="rate"),
        Mount("/queue", routes=queue.routes, name="queue"),
        Mount("/figures", routes=figures.routes + figures_files.routes + figures_rows.routes,
              name="figures"),
        Mount("/reports", routes=figures_files.report_routes, name="reports"),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=errors.exception_handlers(),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.pseudonym_key = settings.pseudonym_key()  # read once, not per request
    app.state.refdata = refdata.RefCache()  # calendar, outlets, AB角 cover (partners/refdata.py)
    app.state.templates = make_templates(static.url)
    return app


def serving_app() -> Starlette:
    """The app as ``servicepoint serve`` runs it (also uvicorn's factory with --workers)."""
    return create_app(serving=True)


def settle_heap() -> None:
    """Collect once, then move every object start-up left (modules, mappers, compiled
    templates and statements: ~170,000) out of the collector's reach (``gc.freeze``). A full
    collection then scans only what requests created: it took ~0.5 s with them, a pause
    every request waiting at that moment paid, and ~40 ms without. Not for test processes,
    which build many apps: garbage of one would be frozen for the rest of the run."""
    gc.collect()
    gc.freeze()


async def _healthz(request):  # type: ignore[no-untyped-def]
    from starlette.responses import PlainTextResponse

    return PlainTextResponse("ok")


def periodic_jobs(hub: Hub, audit_log: audit.Checkpointer, settings: Settings) -> list[asyncio.Task[None]]:
    """Jobs that run in exactly one process of the deployment at a time (lease per job)."""
    engine, me = hub.engine, hub.process_id

    async def checkpoint() -> None:  # sign when there are new entries; retry witnesses
        await asyncio.to_thread(audit_log.tick, engine)

    async def housekeeping() -> None:  # old events, rows of processes that died
        await asyncio.to_thread(hub.prune, settings.event_keep_seconds)
        await asyncio.to_thread(hub.presence.forget_dead)

    key = settings.pseudonym_key()

    async def no_shows() -> None:  # bookings not checked in by 15 min after the slot start
        await asyncio.to_thread(bookings.sweep_no_shows, engine, pseudonym_key=key)

    async def refusal_totals() -> None:  # the total of each finished minute of refused requests
        await asyncio.to_thread(refusals.flush, engine)

    return [
        asyncio.create_task(singleton(engine, me, "audit.checkpoint", settings.checkpoint_interval, checkpoint)),
        asyncio.create_task(singleton(engine, me, "access.refusal_totals", 60.0, refusal_totals)),
        asyncio.create_task(singleton(engine, me, "events.housekeeping", 60.0, housekeeping)),
        asyncio.create_task(singleton(engine, me, "queue.no_shows", bookings.SWEEP_SECONDS, no_shows)),
    ]


async def _favicon(request):  # type: ignore[no-untyped-def]
    """Browsers ask for /favicon.ico on every site; it is a static file (web/static)."""
    from starlette.responses import FileResponse

    return FileResponse(STATIC_DIR / "favicon.ico", media_type="image/x-icon",
                        headers={"Cache-Control": "public, max-age=86400"})


def private_data_dir(settings: Settings) -> None:
    """Everything this process creates is private to its user (0600 files, 0700 dirs):
    the database, keys, scans, recordings, exports (GB/T 22239-2019 8.1.4.8 个人信息保护).
    The umask covers files made later by SQLite, the file store and the exporters; the
    chmod fixes a data directory made by an older version."""
    os.umask(0o077)
    own = [settings.data_dir, settings.data_dir / "keys"]
    if not settings.files_shared:  # a shared store is mounted and owned by the operator
        own.insert(1, settings.files_dir)
    for path in own:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o700)
    settings.file_store()  # a shared store that is not mounted stops the start here


def open_audit_log(settings: Settings) -> audit.Checkpointer:
    """The checkpoint signer: key from the key file (created on first start), never the DB."""
    ensure_audit_key(settings)
    signer = audit.load_signer(settings.audit_key_file)
    return audit.Checkpointer(settings.audit_origin, [signer], witness_configs(settings.audit_witnesses))


def check_pii_key(settings: Settings, engine: Engine) -> str | None:
    """Startup check of ``$DATA/keys/pii.key`` (outlet/pii.py): created on a first start (no
    sealed value in the database yet); never replaced when sealed values exist — then the
    problem is logged and returned (pages show :data:`outlet.pii.KEY_MISSING`). A key that
    does not open the sealed values is reported the same way. With a good key, phones stored
    in clear by older versions are sealed (idempotent; ``servicepoint serve/migrate`` does it
    once before any worker starts, so workers find nothing left)."""
    path = settings.pii_key_file
    key = bytes.fromhex(path.read_text().strip()) if path.exists() else None
    problem = pii.key_problem(engine, key)
    if key is None and problem is None:
        key = secret_file(path)
        log.info("created PII key %s — keep it in the backup with audit.key", path)
    if problem is not None:
        log.error("PII key %s: %s", path, problem)
        return problem
    if key is not None and (n := pii.seal_legacy(engine, key)):
        log.info("sealed %d phone number(s) stored in clear by an older version", n)
    return None


def ensure_audit_key(settings: Settings) -> None:
    """Create the log's Ed25519 signing key (mode 0600) on first start."""
    if not settings.audit_key_file.exists():
        vkey = audit.keygen(settings.audit_key_file, settings.audit_origin)
        log.info("created audit signing key %s (public key %s)", settings.audit_key_file, vkey)


def witness_configs(value: str) -> list[audit.WitnessConfig]:
    """``SERVICEPOINT_AUDIT_WITNESSES``: ``<url> <vkey>`` pairs separated by ``;``."""
    configs = []
    for item in value.split(";"):
        if item.strip():
            url, vkey = item.split()
            configs.append(audit.WitnessConfig(url=url, vkey=vkey))
    return configs
