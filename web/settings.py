"""All configuration in one place: environment variables with the SERVICEPOINT_ prefix.

Secrets are read from files under the data directory (created with mode 0600 on first
start) or from the environment; they are never logged and never stored in the database.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from outlet.files import FileStore, open_store

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
PREFIX = "SERVICEPOINT_"


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(PREFIX + name, default)


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _idle_minutes(raw: str) -> int:
    """SERVICEPOINT_SESSION_IDLE_MINUTES: whole minutes, at least 1 (the write interval of
    ``last_seen`` follows it, :func:`partners.logins.touch_every`). Raises ValueError with the
    variable's name, so the server refuses to start rather than end every session."""
    try:
        minutes = int(raw)
    except ValueError:
        minutes = 0
    if minutes < 1:
        raise ValueError(f"{PREFIX}SESSION_IDLE_MINUTES={raw!r}: the idle timeout must be a whole number of "
                         "minutes, at least 1")
    return minutes


def secret_file(path: Path, nbytes: int = 32) -> bytes:
    """Read a random secret from ``path``, creating it (0600) on first use."""
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_bytes(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value.hex())
    return value


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    deployment_name: str = "servicepoint.local"
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    live_recheck_seconds: float = 30.0  # how often an open WebSocket re-checks its login
    max_upload_bytes: int = 10 * 1024 * 1024
    checkpoint_interval: float = 10.0
    event_keep_seconds: float = 3600.0
    threads: int = 12  # worker threads for blocking work (SERVICEPOINT_THREADS)
    audit_origin: str = ""
    audit_key_file: Path = field(default=Path())
    audit_witnesses: str = ""
    turn_urls: tuple[str, ...] = ()
    stun_urls: tuple[str, ...] = ()
    turn_secret: str = ""
    turn_ttl_seconds: int = 600
    https: bool = False
    trusted_proxies: str = ""  # addresses/CIDRs whose X-Forwarded-For is believed
    public_url: str = "http://127.0.0.1:8000"  # base of every printed link and QR code
    # the kiosk's local ID-card reader bridge (ws://127.0.0.1:PORT/PATH); "" = keypad only
    idcard_bridge: str = ""
    # remote help (remote_assist.config.AssistConfig reads these)
    assist_escalate_seconds: float = 120.0
    assist_expire_seconds: float = 3600.0
    assist_abandon_seconds: float = 90.0
    assist_tick_seconds: float = 5.0
    assist_ice_relay_only: bool = False
    assist_rtc_hosts: tuple[str, ...] = ()
    # who runs the recording peers: "in-process" (each app process, the default) or
    # "external" (only `servicepoint recorder` processes; needs PostgreSQL)
    assist_recorders: str = "in-process"
    assist_recorder_capacity: int = 8  # sessions one recorder process takes at most
    secret_key_override: str | None = field(default=None, repr=False)
    files_root: Path | None = None  # SERVICEPOINT_FILES_DIR; default <data_dir>/files
    files_shared: bool = False  # SERVICEPOINT_FILES_SHARED: several hosts mount files_root

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        data_dir = Path(str(overrides.pop("data_dir", None) or _env("DATA", "var"))).absolute()
        db_url = str(
            overrides.pop("database_url", None)
            or _env("DATABASE_URL")
            or f"sqlite:///{data_dir / 'servicepoint.db'}"
        )
        name = str(overrides.pop("deployment_name", None) or _env("DEPLOYMENT_NAME", "servicepoint.local"))

        def split(v: str | None) -> tuple[str, ...]:
            return tuple(x.strip() for x in (v or "").split(",") if x.strip())

        values: dict[str, object] = dict(
            data_dir=data_dir,
            database_url=db_url,
            deployment_name=name,
            session_idle_minutes=_idle_minutes(_env("SESSION_IDLE_MINUTES", "30") or "30"),
            live_recheck_seconds=float(_env("LIVE_RECHECK_SECONDS", "30") or 30),
            max_upload_bytes=int(_env("MAX_UPLOAD_MB", "10") or 10) * 1024 * 1024,
            checkpoint_interval=float(_env("CHECKPOINT_INTERVAL", "10") or 10),
            event_keep_seconds=float(_env("EVENT_KEEP_SECONDS", "3600") or 3600),
            threads=max(1, int(_env("THREADS", "12") or 12)),
            audit_origin=_env("AUDIT_ORIGIN") or f"{name}/audit",
            audit_key_file=Path(_env("AUDIT_KEY_FILE") or data_dir / "keys" / "audit.key"),
            audit_witnesses=_env("AUDIT_WITNESSES", "") or "",
            turn_urls=split(_env("TURN_URLS")),
            stun_urls=split(_env("STUN_URLS")),
            turn_secret=_env("TURN_SECRET", "") or "",
            turn_ttl_seconds=int(_env("TURN_TTL", "600") or 600),
            https=_flag(_env("HTTPS")),
            trusted_proxies=_env("TRUSTED_PROXIES", "") or "",
            public_url=(_env("PUBLIC_URL", "") or "http://127.0.0.1:8000").rstrip("/"),
            idcard_bridge=_env("IDCARD_BRIDGE", "") or "",
            assist_escalate_seconds=float(_env("ASSIST_ESCALATE_SECONDS", "120") or 120),
            assist_expire_seconds=float(_env("ASSIST_EXPIRE_SECONDS", "3600") or 3600),
            assist_abandon_seconds=float(_env("ASSIST_ABANDON_SECONDS", "90") or 90),
            assist_tick_seconds=float(_env("ASSIST_TICK_SECONDS", "5") or 5),
            assist_ice_relay_only=_flag(_env("ASSIST_ICE_RELAY_ONLY")),
            assist_rtc_hosts=split(_env("ASSIST_RTC_HOSTS")),
            assist_recorders=(_env("ASSIST_RECORDERS", "in-process") or "in-process").strip().lower(),
            assist_recorder_capacity=max(1, int(_env("ASSIST_RECORDER_CAPACITY", "8") or 8)),
            secret_key_override=_env("SECRET_KEY"),
            files_root=Path(v).absolute() if (v := _env("FILES_DIR")) else None,
            files_shared=_flag(_env("FILES_SHARED")),
        )
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    @property
    def files_dir(self) -> Path:
        """Root of the file store: ``SERVICEPOINT_FILES_DIR``, else ``<data_dir>/files``."""
        return self.files_root or self.data_dir / "files"

    def file_store(self) -> FileStore:
        """The one file store (scans, photos, snapshots, recordings): the shared backend with
        ``SERVICEPOINT_FILES_SHARED=1``, else the local directory. Raises
        ``outlet.files.StoreUnavailable`` when the shared directory is missing."""
        return open_store(self.files_dir, shared=self.files_shared)

    @property
    def trusted_proxy_networks(self) -> tuple[IPNetwork, ...]:
        """Parsed ``trusted_proxies`` (empty: the peer address is the client)."""
        return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in self.trusted_proxies.split(",") if v.strip())

    def public_link(self, path: str) -> str:
        """An absolute link for print and QR codes: ``SERVICEPOINT_PUBLIC_URL`` + ``path``,
        never the request's Host header (a forged Host would otherwise be printed)."""
        return self.public_url + path

    @property
    def idcard_bridge_origin(self) -> str:
        """The origin (``ws://127.0.0.1:18889``) the kiosk pages may connect to for the
        ID-card reader, or "". Only a loopback ``ws://`` / ``wss://`` address is accepted:
        the bridge runs on the kiosk itself (``SERVICEPOINT_IDCARD_BRIDGE``)."""
        from urllib.parse import urlsplit

        url = urlsplit(self.idcard_bridge.strip())
        loopback = url.hostname in ("127.0.0.1", "localhost", "::1")
        return f"{url.scheme}://{url.netloc}" if url.scheme in ("ws", "wss") and loopback else ""

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def recorders_problem(self) -> str | None:
        """Why ``SERVICEPOINT_ASSIST_RECORDERS`` cannot work here (a message for the
        operator), or None. ``external`` recorders talk to the app through PostgreSQL."""
        if self.assist_recorders not in ("in-process", "external"):
            return (f"SERVICEPOINT_ASSIST_RECORDERS={self.assist_recorders!r} 无效：可选 in-process（默认）"
                    "或 external。")
        if self.assist_recorders == "external" and self.is_sqlite:
            return ("SERVICEPOINT_ASSIST_RECORDERS=external 需要 PostgreSQL：独立的录像进程经数据库与应用通信。"
                    "请设置 SERVICEPOINT_DATABASE_URL=postgresql+psycopg://… 或去掉该设置。")
        return None

    def secret_key(self) -> bytes:
        """Key for session signatures and CSRF tokens."""
        if self.secret_key_override:
            return self.secret_key_override.encode()
        return secret_file(self.data_dir / "keys" / "session.key")

    @property
    def pii_key_file(self) -> Path:
        return self.data_dir / "keys" / "pii.key"

    def pii_key(self) -> bytes:
        """Key sealing personal data shown again on pages (outlet/pii.py); separate from the
        pseudonym key, so neither opens what the other protects. Never created here: a lost
        key must not be silently replaced (``web.app.check_pii_key`` creates it on a first
        start). Raises :class:`outlet.pii.KeyMissing` when the file is not there."""
        from outlet.pii import KeyMissing

        if not self.pii_key_file.exists():
            raise KeyMissing(str(self.pii_key_file))
        return bytes.fromhex(self.pii_key_file.read_text().strip())

    def pseudonym_key(self) -> bytes:
        """Key for applicant pseudonyms in audit leaves (erasable without breaking proofs)."""
        return secret_file(self.data_dir / "keys" / "pseudonym.key")
