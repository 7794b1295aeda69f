"""Command line: ``audit keygen|sign|export|prove|verify`` and ``witness [keygen]``.

The project CLI mounts both groups (``servicepoint audit …``, ``servicepoint witness``);
``python -m audit …`` runs the same commands with only this package installed."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click
import sqlalchemy.exc

from .errors import AuditError

DB = click.option("--db", "db_url", envvar="SERVICEPOINT_DATABASE_URL", required=True,
                  help="Database URL (env SERVICEPOINT_DATABASE_URL).")  # fmt: skip
KEY = click.option("--key", "key_files", envvar="SERVICEPOINT_AUDIT_KEY_FILE", multiple=True,
                   type=click.Path(dir_okay=False),
                   help="Log signer key file; repeat during key rotation "
                        "(env SERVICEPOINT_AUDIT_KEY_FILE).")  # fmt: skip
ORIGIN = click.option("--origin", envvar="SERVICEPOINT_AUDIT_ORIGIN",
                      help="Log origin, e.g. audit.example.gov.cn/zhengyin.")  # fmt: skip


def _fail(exc: AuditError) -> None:
    # Messages may quote opaque bytes of a policy file (surrogate escapes): never let the
    # terminal's encoding turn a precise message into a traceback.
    text = str(exc).encode("utf-8", "backslashreplace").decode("utf-8")
    click.secho(f"FAILED: {text}", fg="red", err=True)
    sys.exit(1)


def _crash(exc: Exception) -> None:
    """Last resort: a bug, not bad input. Still a message and an exit code, no traceback."""
    text = str(exc).encode("utf-8", "backslashreplace").decode("utf-8")
    click.secho(f"FAILED: internal error ({type(exc).__name__}): {text}", fg="red", err=True)
    sys.exit(2)


class _Commands(click.Group):
    """A command group whose file errors (a missing output folder, a file it may not read or
    write) end in a precise message and exit 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except OSError as exc:
            what = exc.filename or ""
            _fail(AuditError(f"cannot access {what}: {exc.strerror or exc}"))
            return None
        except sqlalchemy.exc.DBAPIError as exc:  # no database file, server down, no tables
            reason = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
            _fail(AuditError(f"cannot use the log database ({reason}); run it where the "
                             "server's data directory is, or give --db (SERVICEPOINT_DATABASE_URL)"))
            return None


@click.group(name="audit", cls=_Commands)
def audit() -> None:
    """Transparency log: keys, checkpoints, export, proofs and offline verification."""


@audit.command()
@click.option("--name", "--origin", "name", required=True,
              help="Key name: the log origin (or the witness name with --witness).")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False),
              help="Private key file to create (mode 0600, never overwritten).")
@click.option("--witness", is_flag=True, help="A cosigner (tlog-cosignature/v1) key.")
def keygen(name: str, out: str, witness: bool) -> None:  # fmt: skip
    """Create a signer key file and print its public vkey."""
    from .keys import keygen as _keygen

    try:
        click.echo(_keygen(out, name, witness=witness))
    except AuditError as exc:
        _fail(exc)


def _checkpointer(key_files: tuple[str, ...], origin: str | None, witnesses: tuple[str, ...]):  # type: ignore[no-untyped-def]
    from .keys import load_signer
    from .log import Checkpointer
    from .push import WitnessConfig

    signers = [load_signer(k) for k in key_files] if key_files else [load_signer()]
    ws = []
    for w in witnesses:
        url, _, vkey = w.partition("=")
        ws.append(WitnessConfig(url=url, vkey=vkey))
    return Checkpointer(origin or signers[0].name, signers, ws)


@audit.command()
@DB
@KEY
@ORIGIN
@click.option("--witness", "witnesses", multiple=True, metavar="URL=VKEY",
              help="Push the checkpoint to this witness.")
def sign(db_url: str, key_files: tuple[str, ...], origin: str | None,
         witnesses: tuple[str, ...]) -> None:  # fmt: skip
    """Integrate new entries and sign a checkpoint now (and push it to witnesses)."""
    from .db import open_engine

    try:
        engine = open_engine(db_url)
        cp = _checkpointer(key_files, origin, witnesses)
        got = cp.sign_checkpoint(engine)
        if cp.witnesses:
            cp.push(engine)
        click.echo(f"checkpoint {got.id}: size {got.size}")
    except AuditError as exc:
        _fail(exc)


@audit.command(name="export")
@click.argument("directory", type=click.Path(file_okay=False))
@DB
@KEY
@click.option("--vkey", "vkeys", multiple=True, envvar="SERVICEPOINT_AUDIT_VKEYS",
              help="Log verifier key(s) to publish, instead of reading --key.")
@click.option("--witness-vkey", "witness_vkeys", multiple=True,
              help="Witness cosigner vkey to list in the export's policy.")
@click.option("--quorum", default="none", show_default=True,
              help="Quorum for the export's policy: none, any, all or a number.")
@click.option("--outlet", help="Only entries of this outlet (with inclusion proofs).")
@click.option("--from", "from_", type=click.DateTime(["%Y-%m-%d"]), help="First day (UTC).")
@click.option("--to", "to", type=click.DateTime(["%Y-%m-%d"]), help="Last day (UTC), inclusive.")
def export_cmd(directory: str, db_url: str, key_files: tuple[str, ...], vkeys: tuple[str, ...],
               witness_vkeys: tuple[str, ...], quorum: str, outlet: str | None,
               from_: object, to: object) -> None:  # fmt: skip
    """Export the latest checkpoint, entries, keys, policy and proofs to DIRECTORY."""
    from .db import open_engine
    from .export import export
    from .keys import load_signer
    from .note import Verifier
    from .policy import Policy

    start, end = _day(from_), _day(to)  # a usage error (exit 2) before anything is read
    try:
        if not vkeys:
            vkeys = tuple(load_signer(k).vkey for k in key_files) if key_files else ()
        if not vkeys:
            raise AuditError("give --vkey or --key so the export carries the log's public key")
        wit = {Verifier.from_vkey(v).name: v for v in witness_vkeys}
        q: str | int = int(quorum) if quorum.isascii() and quorum.isdigit() and len(quorum) < 7 else quorum
        policy = Policy.build(vkeys, wit, q)
        res = export(open_engine(db_url), directory, policy, outlet=outlet,
                     from_=start, to=end)  # fmt: skip
        kind = "filtered, with inclusion proofs" if res.filtered else "full log"
        click.echo(f"exported {res.entries} entries ({kind}) of tree size {res.tree_size} "
                   f"to {res.path}")  # fmt: skip
    except AuditError as exc:
        _fail(exc)


def _day(value: object) -> date | None:
    """A --from/--to day; days before 2000-01-01 (no log entry predates them, and the
    UTC conversion of year 1 overflows) end with a message."""
    day = value.date() if value is not None else None  # type: ignore[attr-defined]
    if day is not None and day < date(2000, 1, 1):
        raise click.BadParameter(f"{day.isoformat()} is before 2000-01-01")
    return day


@audit.command()
@click.argument("index", type=click.IntRange(0, 2**63 - 2))
@DB
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE.")
def prove(index: int, db_url: str, output: str | None) -> None:
    """Write a C2SP .tlog-proof of entry INDEX against the latest checkpoint."""
    from .db import open_engine
    from .proof import prove as _prove

    try:
        data = _prove(open_engine(db_url), index)
    except AuditError as exc:
        _fail(exc)
        return
    if output:
        Path(output).write_bytes(data)
        click.echo(f"wrote {output}")
    else:
        click.echo(data.decode(), nl=False)


@audit.command(name="verify")
@click.argument("path", type=click.Path(exists=True))
@click.option("--policy", type=click.Path(exists=True, dir_okay=False),
              envvar="SERVICEPOINT_AUDIT_POLICY",
              help="Your C2SP tlog-policy (or a log.vkey file). Default: the export's own.")
@click.option("--previous", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="An earlier signed checkpoint you kept; must be consistent (no fork).")
@click.option("--strict", is_flag=True, help="Re-encode every entry to check canonical JSON.")
def verify_cmd(path: str, policy: str | None, previous: tuple[str, ...], strict: bool) -> None:  # fmt: skip
    """Verify an export DIRECTORY or a FILE.tlog-proof offline."""
    from .verify import verify

    n = 0

    def step(msg: str) -> None:
        nonlocal n
        n += 1
        click.echo(f"{n}. ok  {msg}")

    try:
        verify(path, policy, previous=previous, on_step=step, strict=strict)
    except AuditError as exc:
        _fail(exc)
    except OSError as exc:
        _fail(AuditError(f"cannot read {exc.filename or path}: {exc.strerror or exc}"))
    except Exception as exc:  # noqa: BLE001  (the verifier never ends in a traceback)
        _crash(exc)
    click.secho("verified", fg="green")


@audit.command(name="stats")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--policy", type=click.Path(exists=True, dir_okay=False),
              envvar="SERVICEPOINT_AUDIT_POLICY",
              help="Your C2SP tlog-policy (or a log.vkey file). Default: the export's own.")
@click.option("--from", "from_", type=click.DateTime(["%Y-%m-%d"]),
              help="First day (Beijing date). Default: the day of the first entry.")
@click.option("--to", "to", type=click.DateTime(["%Y-%m-%d"]),
              help="Last day (Beijing date), inclusive. Default: the day of the last entry.")
@click.option("--outlet", help="Only this outlet's figures (its code).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def stats_cmd(directory: str, policy: str | None, from_: object, to: object, outlet: str | None,
              as_json: bool) -> None:  # fmt: skip
    """Verify the export DIRECTORY, then recompute the headline figures from its entries."""
    import json as _json

    from .stats import LABELS, stats

    steps: list[str] = []
    start, end = _day(from_), _day(to)  # a usage error (exit 2) before anything is read
    try:
        res = stats(directory, policy, start=start, end=end, outlet=outlet,
                    on_step=steps.append)  # fmt: skip
    except AuditError as exc:
        _fail(exc)
        return
    except Exception as exc:  # noqa: BLE001  (never a traceback)
        _crash(exc)
        return
    if outlet is not None and outlet not in res.outlets:
        # every figure would be 0 or "—": say so instead of printing a quiet outlet
        _fail(AuditError(f"no outlet {outlet!r} in the export: no case, rating, video or "
                         f"queue entry names it (outlets seen: {', '.join(sorted(res.outlets)) or 'none'})"))
        return
    if as_json:
        click.echo(_json.dumps({"from": res.start.isoformat(), "to": res.end.isoformat(),
                                "outlet": res.outlet, "entries": res.entries,
                                "as_of": res.today.isoformat() if res.today else None,
                                "figures": res.figures}, ensure_ascii=False, indent=1))  # fmt: skip
        return
    for i, msg in enumerate(steps, 1):
        click.echo(f"{i}. ok  {msg}")
    click.secho("verified", fg="green")
    click.echo(f"figures {res.start} … {res.end}, outlet {res.outlet or 'all'}, "
               f"{res.entries} entries read, as of {res.today or '—'} "
               "(the export's newest entry)")  # fmt: skip
    for key, value in res.figures.items():
        click.echo(f"{LABELS.get(key, key)}\t{key}\t{format_value(key, value)}")


def format_value(key: str, value: object) -> str:
    """A figure as the dashboards show it: ratios in %, "—" for no denominator."""
    from .stats import RATIOS

    if value is None:
        return "—"
    if key in RATIOS:
        return f"{float(value) * 100:.1f}%"  # type: ignore[arg-type]
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


@click.group(name="witness", cls=_Commands, invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8470, show_default=True, type=int)
@click.option("--key", "key_file", envvar="SERVICEPOINT_WITNESS_KEY_FILE",
              type=click.Path(dir_okay=False), help="Witness cosigner key file.")
@click.option("--state", envvar="SERVICEPOINT_WITNESS_STATE", type=click.Path(dir_okay=False),
              help="SQLite file holding the last cosigned size per log.")
@click.option("--trust", multiple=True, type=(str, str), metavar="ORIGIN VKEY",
              help="A log to witness (repeatable).")
@click.pass_context
def witness(ctx: click.Context, host: str, port: int, key_file: str | None, state: str | None,
            trust: tuple[tuple[str, str], ...]) -> None:  # fmt: skip
    """Serve a C2SP tlog-witness (POST /add-checkpoint)."""
    if ctx.invoked_subcommand is not None:
        return
    if not key_file or not state or not trust:
        raise click.UsageError("serving needs --key, --state and at least one --trust")
    import uvicorn

    from .witness import create_witness_app

    try:
        app = create_witness_app(key_file, state, list(trust))
    except AuditError as exc:
        _fail(exc)
        return
    uvicorn.run(app, host=host, port=port)


@witness.command(name="keygen")
@click.option("--name", required=True, help="Witness name, e.g. witness.bank.example/w1.")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False))
def witness_keygen(name: str, out: str) -> None:
    """Create a witness cosigner key file and print its vkey."""
    from .keys import keygen as _keygen

    try:
        click.echo(_keygen(out, name, witness=True))
    except AuditError as exc:
        _fail(exc)


def main() -> None:
    """``python -m audit``: the audit group, plus ``witness`` as a subcommand."""
    audit.add_command(witness)
    audit()
