"""Static files with content-versioned URLs and a long, immutable cache lifetime.

Templates write ``{{ static('css/app.css') }}``, which gives
``/static/css/app.css?v=<first 12 hex of its SHA-256>``. A request whose ``v`` matches
the file's current hash is served with ``Cache-Control: public, max-age=31536000,
immutable`` (RFC 8246): the browser never asks again, and a changed file gets a new URL.
Any other request for a static file (no ``v``, or a stale one) gets ``no-cache`` so it is
revalidated (ETag) and never pinned. Pages keep ``no-store`` (web/security.py): static
files hold no personal data. Hashes are computed once at start (files ship with the code).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from starlette._utils import get_route_path
from starlette.datastructures import MutableHeaders
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def file_versions(directory: Path) -> dict[str, str]:
    """{path relative to ``directory`` (POSIX): first 12 hex digits of its SHA-256}."""
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()[:12]
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


class VersionedStatic:
    """ASGI app serving ``directory`` (Starlette StaticFiles) with the cache policy above,
    and ``url(path)`` for templates. Raises KeyError for a file that does not exist (a
    template typo fails loudly in tests instead of a silent 404 in the browser)."""

    def __init__(self, directory: Path, prefix: str = "/static") -> None:
        self.files = StaticFiles(directory=directory)
        self.versions = file_versions(directory)
        self.prefix = prefix

    def url(self, path: str) -> str:
        return f"{self.prefix}/{path}?v={self.versions[path]}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rel = get_route_path(scope).lstrip("/")
        query = scope.get("query_string", b"").decode("latin-1")
        want = self.versions.get(rel)
        fresh = want is not None and f"v={want}" in query.split("&")
        policy = IMMUTABLE if fresh else REVALIDATE

        async def send_cached(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (200, 304):
                MutableHeaders(scope=message)["cache-control"] = policy
            await send(message)

        await self.files(scope, receive, send_cached)
