"""The PostgreSQL side of the hub: one dedicated autocommit connection per process that
LISTENs on the hub's channel and wakes the dispatcher on every notification.

When that connection breaks (server restart, ``pg_terminate_backend``, network) it is
reopened with exponential backoff (0.1 s doubling to 5 s); after each (re)connect the
dispatcher is woken once, so events committed while nobody listened are read from the
events table by sequence — nothing is missed, only delayed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import URL

log = logging.getLogger("servicepoint.events")

BACKOFF_FIRST = 0.1  # seconds
BACKOFF_MAX = 5.0


def conninfo(url: URL) -> str:
    """A psycopg conninfo string from the app's SQLAlchemy URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    def __init__(self, url: URL, channel: str, on_notify: Callable[[], None]) -> None:
        self.conninfo = conninfo(url)
        self.channel = channel
        self.on_notify = on_notify
        self.backend_pid: int | None = None  # the listening connection's server process
        self.connects = 0  # how many times it (re)connected; tests and logs read it
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Listen until cancelled, reconnecting with backoff."""
        backoff = BACKOFF_FIRST
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
            except psycopg.Error as exc:
                log.warning("event listener cannot connect (%s); retrying in %.1f s",
                            exc.__class__.__name__, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            try:
                await conn.execute(f"LISTEN {self.channel}")
                self.backend_pid = conn.info.backend_pid
                self.connects += 1
                self.connected.set()
                backoff = BACKOFF_FIRST
                self.on_notify()  # catch up on whatever was committed while not listening
                async for _note in conn.notifies():
                    self.on_notify()
            except psycopg.Error as exc:
                log.warning("event listener connection lost (%s); reconnecting", exc.__class__.__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
            finally:
                self.connected.clear()
                self.backend_pid = None
                try:
                    await conn.close()
                except Exception:  # noqa: BLE001 - already broken
                    pass
