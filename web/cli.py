"""The one command line: ``servicepoint [serve|demo|create-user|migrate|audit …|witness]``."""

from __future__ import annotations

import getpass
import logging
import sys

import click

from audit import cli as audit_cli
from web.settings import Settings


@click.group(invoke_without_command=True)
@click.pass_context
def main(ctx: click.Context) -> None:
    """政银+ 便民服务点 — serve the web app (default) or run an administrative task."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per plugin otherwise
    try:
        settings = Settings.from_env()
    except ValueError as err:  # a bad SERVICEPOINT_* setting: refuse to start, say which
        raise click.ClickException(str(err)) from err
    ctx.default_map = _audit_defaults(settings)
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve)


def prepare() -> Settings:
    """First-start work shared by serve, migrate and demo: data dir, schema, keys. Runs once,
    before any worker starts, so several workers never race to create them."""
    from outlet.files import StoreUnavailable
    from web.app import check_pii_key, ensure_audit_key, private_data_dir
    from web.db import make_engine
    from web.migrate import upgrade

    settings = Settings.from_env()
    try:
        private_data_dir(settings)  # before the database file exists: created 0600
    except StoreUnavailable as exc:  # SERVICEPOINT_FILES_SHARED=1 but the directory is not there
        raise click.ClickException(str(exc)) from exc
    upgrade(settings.database_url)
    ensure_audit_key(settings)
    settings.secret_key()  # session.key and pseudonym.key are created here, not by a worker
    settings.pseudonym_key()
    engine = make_engine(settings.database_url)
    try:  # pii.key: created on a first start, checked after; clear phones of older versions sealed
        problem = check_pii_key(settings, engine)
    finally:
        engine.dispose()
    if problem:
        click.echo(f"servicepoint: {problem}", err=True)
    return settings


def _audit_defaults(settings: Settings) -> dict[str, object]:
    """Point ``servicepoint audit …`` at this deployment's database and key by default."""
    db = {"db_url": settings.database_url}
    keyed = {**db, "key_files": (str(settings.audit_key_file),)}
    return {
        "audit": {
            "sign": {**keyed, "origin": settings.audit_origin},
            "export": keyed,
            "prove": db,
        }
    }


main.add_command(audit_cli.audit)
main.add_command(audit_cli.witness)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="App processes (uvicorn workers); more than 1 needs PostgreSQL.")
@click.option("--ssl-keyfile", type=click.Path(exists=True, dir_okay=False), default=None,
              help="TLS private key (PEM): serve HTTPS, which phones need for camera and GPS.")
@click.option("--ssl-certfile", type=click.Path(exists=True, dir_okay=False), default=None,
              help="TLS certificate chain (PEM), with --ssl-keyfile.")
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="Log every request (costs throughput; the audit log records every action).")
def serve(host: str, port: int, workers: int, ssl_keyfile: str | None, ssl_certfile: str | None,
          access_log: bool) -> None:
    """Migrate the database, create missing keys, then serve the web app (HTTPS with
    --ssl-keyfile/--ssl-certfile)."""
    import uvicorn

    from web.app import create_app

    if bool(ssl_keyfile) != bool(ssl_certfile):
        raise click.UsageError("--ssl-keyfile 和 --ssl-certfile 须同时提供")
    if workers > 1 and Settings.from_env().is_sqlite:
        raise click.UsageError(
            "--workers > 1 需要 PostgreSQL：SQLite 只支持一个应用进程。请设置 "
            "SERVICEPOINT_DATABASE_URL=postgresql+psycopg://… 或去掉 --workers。"
            " (SQLite serves one app process; set a PostgreSQL SERVICEPOINT_DATABASE_URL.)")
    if (problem := Settings.from_env().recorders_problem()) is not None:
        raise click.UsageError(problem)
    settings = prepare()
    scheme = "https" if ssl_certfile else "http"
    click.echo(f"servicepoint: serving on {scheme}://{host}:{port} with {workers} worker(s) "
               f"(data: {settings.data_dir})")
    options = {"host": host, "port": port, "log_level": "info", "proxy_headers": False,
               "ssl_keyfile": ssl_keyfile, "ssl_certfile": ssl_certfile, "access_log": access_log}
    if workers == 1:
        uvicorn.run(create_app(settings, serving=True), **options)  # type: ignore[arg-type]
    else:  # each worker builds its app from the same environment
        uvicorn.run("web.app:serving_app", factory=True, workers=workers, **options)  # type: ignore[arg-type]


@main.command()
@click.option("--capacity", default=None, type=click.IntRange(min=1),
              help="Sessions this recorder takes at most (default SERVICEPOINT_ASSIST_RECORDER_CAPACITY, 8; "
                   "about 13 streams of 640×480@15 fps fit one core).")
def recorder(capacity: int | None) -> None:
    """Run the recording peers of remote inspections in this process (PostgreSQL only).
    Start one or more, on any host that shares the database and the file store; set
    SERVICEPOINT_ASSIST_RECORDERS=external on the app processes so only these record."""
    import asyncio
    import signal

    from remote_assist.config import AssistConfig
    from remote_assist.recorders import run_recorder
    from remote_assist.rtc import restrict_host_addresses
    from remote_assist.turn import ice_config
    from web.db import make_engine, make_reader

    if Settings.from_env().is_sqlite:
        raise click.UsageError(
            "servicepoint recorder 需要 PostgreSQL：SQLite 只支持一个进程，录像在应用进程内进行，无需另行启动。"
            " (Set a PostgreSQL SERVICEPOINT_DATABASE_URL.)")
    settings = prepare()
    cfg = AssistConfig.from_settings(settings)
    if cfg.rtc_host_addresses:
        restrict_host_addresses(cfg.rtc_host_addresses)
    places = capacity or settings.assist_recorder_capacity

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        engine = make_engine(settings.database_url)
        try:
            await run_recorder(engine, settings.file_store(), capacity=places, stop=stop,
                               reader=make_reader(settings.database_url, engine),
                               server_ice=lambda: ice_config(settings, "recorder", relay_only=cfg.ice_relay_only))
        finally:
            engine.dispose()

    click.echo(f"servicepoint: recorder with {places} place(s) (data: {settings.data_dir})")
    asyncio.run(run())


@main.command()
def migrate() -> None:
    """Create or upgrade the database schema (Alembic) and create missing keys."""
    prepare()
    click.echo("数据库结构已是最新。")


@main.command()
def demo() -> None:
    """Seed demo data on first start (does nothing when staff exist) and print the logins."""
    from outlet.demo import seed_demo_cases
    from outlet.queue.demo import seed_demo_queue
    from outlet.ratings.demo import seed_demo_ratings
    from partners.demo import logins_still_demo, seed_demo
    from web.db import make_engine

    settings = prepare()
    engine = make_engine(settings.database_url)
    logins = seed_demo(engine)
    devices_file = settings.data_dir / "demo-devices.txt"
    pad_token = None
    if logins:
        seed_demo_cases(engine, settings.pseudonym_key())
        pad_token = seed_demo_ratings(engine, pii_key=settings.pii_key())
        from outlet.services.demo import seed_demo_services

        seed_demo_services(engine, settings.pseudonym_key(), settings.files_dir,
                           pii_key=settings.pii_key())
        links = seed_demo_queue(engine, settings.pseudonym_key())
        devices_file.touch(mode=0o600)
        devices_file.write_text("".join(f"{label}\t{path}\n" for label, path in links), encoding="utf-8")
    still_demo = logins_still_demo(engine)
    engine.dispose()
    if logins:
        click.echo("已写入演示数据。")
    if pad_token:  # shown once: the server keeps only its hash
        click.echo("teller1 窗口的评价器配对链接（仅显示一次，在评价器浏览器中打开）："
                   f"{settings.public_link(f'/devices/activate/{pad_token}')}")
    click.echo(demo_logins_text(still_demo))
    if devices_file.exists():  # paired demo devices: open a link on the kiosk / display
        click.echo("演示终端配对链接（在取号机/叫号屏浏览器中打开一次）：")
        for row in devices_file.read_text(encoding="utf-8").splitlines():
            label, _tab, path = row.partition("\t")
            click.echo(f"  {label}: {settings.public_link(path)}")


def demo_logins_text(rows: list[tuple[str, str, str]] | None = None) -> str:
    """The demo logins to print: ``rows`` (default all of ``DEMO_LOGINS``); only accounts
    whose password is still the demo password should be passed (``logins_still_demo``)."""
    from partners.demo import DEMO_LOGINS, DEMO_PASSWORD

    rows = DEMO_LOGINS if rows is None else rows
    if not rows:
        return "演示账号的密码均已修改，不再显示演示登录。"
    lines = ["演示账号（密码均为 %s）：" % DEMO_PASSWORD]
    for username, role_label, where in rows:
        lines.append(f"  {username:<10} {role_label}  {where}")
    if len(rows) < len(DEMO_LOGINS):
        lines.append(f"  （另有 {len(DEMO_LOGINS) - len(rows)} 个演示账号的密码已修改，不再显示）")
    return "\n".join(lines)


@main.command("create-user")
@click.option("--username", required=True)
@click.option("--name", "display_name", required=True, help="显示名称")
@click.option("--role", "roles", multiple=True, required=True,
              type=click.Choice(["teller", "block_agent", "outlet_lead", "expert", "reviewer", "admin",
                                    "security_admin", "auditor", "partner_manager"]))
@click.option("--outlet", "outlet_code", default=None, help="Outlet code (outlet staff only).")
@click.option("--partner", "partner_code", default=None, help="Partner code (partner_manager only).")
@click.option("--domain", default=None, help="Domain for experts and reviewers, e.g. 社保.")
@click.option("--level", default=None, type=click.Choice(["city", "district", "town"]))
def create_user(username: str, display_name: str, roles: tuple[str, ...], outlet_code: str | None,
                partner_code: str | None, domain: str | None, level: str | None) -> None:
    """Create a staff account (audited as actor ``server_cli``; a duty account needs no second
    person here: access to the server is the second factor). The password is read from the
    terminal (or stdin)."""
    from partners.accounts import create_staff
    from partners.errors import ActionRefused, PartnersError
    from web.db import make_engine, transaction

    password = getpass.getpass("密码: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    import audit
    from partners.models import utcnow

    try:
        with transaction(engine) as session:
            staff = create_staff(session, username=username, display_name=display_name, password=password,
                                 roles=list(roles), outlet_code=outlet_code, partner_code=partner_code,
                                 domain=domain, expert_level=level)
            audit.record(session, {  # audited like the web's account creation; actor 0 = the server's CLI
                "time": utcnow().isoformat(timespec="microseconds") + "Z", "actor": {"id": 0, "role": "server_cli"},
                "action": "security.staff.edit", "outcome": {"result": "done"},
                "state": {"from": None, "to": f"staff:{staff.id}"},
            })
    except (PartnersError, ActionRefused) as err:  # a 三员分立 refusal is told, not a traceback
        raise click.ClickException(err.message) from err
    finally:
        engine.dispose()
    click.echo(f"已创建账号 {staff.username}")


@main.command("reset-password")
@click.argument("username")
def reset_password_cmd(username: str) -> None:
    """Reset USERNAME's password on the server (no second person needed: access to the server
    is the second factor); the new password is read from the terminal (or stdin), the user
    must change it at next login, and all their sessions end."""
    from sqlmodel import select

    import audit
    from partners.accounts import reset_password
    from partners.errors import ActionRefused, PartnersError
    from partners.models import Staff, utcnow
    from web.db import make_engine, transaction

    password = getpass.getpass("新密码: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    from outlet.events import Hub
    from web import live

    uninstall = live.install(Hub(engine))  # the running app closes the user's sockets too
    try:
        with transaction(engine) as session:
            staff = session.exec(select(Staff).where(Staff.username == username)).first()
            if staff is None:
                raise click.ClickException(f"账号 {username} 不存在")
            reset_password(session, staff, password, actor=None)
            audit.record(session, {  # audited like the web reset; actor 0 = the server's CLI
                "time": utcnow().isoformat(timespec="microseconds") + "Z", "actor": {"id": 0, "role": "server_cli"},
                "action": "security.password.reset", "outcome": {"result": "done"},
                "state": {"from": f"staff:{staff.id}", "to": "password_reset"},
            })
    except (PartnersError, ActionRefused) as err:  # a 三员分立 refusal is told, not a traceback
        raise click.ClickException(err.message) from err
    finally:
        uninstall()
        engine.dispose()
    click.echo(f"已重置 {username} 的密码；本人下次登录须修改密码，原有登录已全部结束")
