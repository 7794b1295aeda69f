"""Sessions, CSRF and security headers.

* Sessions: Starlette's signed cookie (itsdangerous). The cookie is re-signed on every
  response, so its ``max_age`` is an *idle* timeout; ``login_at`` in the session enforces an
  absolute lifetime on top.
* CSRF: a random per-session token. Every unsafe request must echo it in the
  ``X-CSRF-Token`` header (htmx sends it from ``hx-headers`` on <body>) or in a
  ``csrf_token`` form field (plain forms without JavaScript). Checked in one middleware, so
  no endpoint can forget it.
* Headers: strict CSP without inline scripts or styles, no framing, no sniffing, HSTS
  when ``SERVICEPOINT_HTTPS=1``, ``no-store`` unless an endpoint sets its own policy.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_write(request: Request) -> bool:
    """True for a method that may change something (POST…); GET, HEAD and OPTIONS are safe
    (RFC 9110 §9.2.1) — the CSRF check lets them through, so a handler with a form branches on
    this, never on ``method == "GET"`` (a HEAD would run the form's side effects)."""
    return request.method not in SAFE_METHODS
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)



def csp_with_connect(*origins: str) -> str:
    """The app's CSP with ``connect-src`` widened by exactly ``origins`` (e.g. a kiosk's
    local ID-card reader bridge, ``ws://127.0.0.1:18889``); nothing else changes."""
    extra = " ".join(o for o in origins if o)
    return CSP.replace("connect-src 'self'", f"connect-src 'self' {extra}".rstrip())


SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(self), microphone=(self), display-capture=(self), geolocation=()",
}


INLINE_UPLOADS = frozenset({"image/jpeg", "image/png"})


def upload_headers(content_type: str, fallback: str, original: str = "", *, download: bool = False) -> dict[str, str]:
    """Headers for an uploaded file or evidence image: never cached, served as an attachment
    unless it is an image (content-sniffed JPEG/PNG, rendered by the browser as a picture and
    in the app's own ``<img>``); PDFs and anything else always download."""
    disposition = "inline" if content_type in INLINE_UPLOADS and not download else "attachment"
    name = f'filename="{fallback}"' + (f"; filename*=UTF-8''{quote(original)}" if original else "")
    return {
        "Content-Disposition": f"{disposition}; {name}",
        "Cache-Control": "private, no-store",
        "Content-Security-Policy": "default-src 'none'; img-src 'self'; sandbox",
    }


def csrf_token(session: MutableMapping[str, Any]) -> str:
    """The session's CSRF token, created on first use."""
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return str(token)


HSTS = "max-age=31536000; includeSubDomains"


def add_security_headers(headers: MutableHeaders, *, https: bool) -> None:
    """The headers every response carries (also 500s, which Starlette sends outside the
    middleware stack): CSP and friends, HSTS behind TLS, and ``no-store`` unless the
    endpoint chose a cache policy itself (pages and files with personal data must never
    be kept by a shared counter PC's browser)."""
    for name, value in SECURITY_HEADERS.items():
        if name not in headers:
            headers[name] = value
    if https and "strict-transport-security" not in headers:
        headers["strict-transport-security"] = HSTS
    if "cache-control" not in headers:
        headers["cache-control"] = "no-store"


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, https: bool = False) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_security_headers(MutableHeaders(scope=message), https=self.https)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class CSRFMiddleware:
    """Refuse unsafe requests that do not carry the session's CSRF token.

    Runs inside the session middleware. Form bodies are buffered (bounded by
    ``max_body``), checked, and replayed to the endpoint unchanged.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body: int,
        on_reject: Callable[[Request], Awaitable[Response]] | None = None,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        session = scope.get("session") or {}
        expected = session.get("csrf")
        headers = Headers(scope=scope)
        supplied = headers.get(CSRF_HEADER)
        body_messages: list[Message] = []
        if not supplied:
            body, too_large = await _read_body(receive, self.max_body)
            if too_large:
                await self._reject(scope, send, 413, "上传内容过大")
                return
            body_messages = [{"type": "http.request", "body": body, "more_body": False}]
            supplied = _token_from_body(headers.get("content-type", ""), body)
        if not expected or not supplied or not hmac.compare_digest(str(expected).encode(), supplied.encode()):
            await self._reject(scope, send, 403, "页面已过期或请求来源无效，请刷新页面后重试。")
            return
        if body_messages:
            replay = iter(body_messages)

            async def replay_receive() -> Message:
                try:
                    return next(replay)
                except StopIteration:
                    return await receive()

            await self.app(scope, replay_receive, send)
        else:
            await self.app(scope, receive, send)

    async def _reject(self, scope: Scope, send: Send, status: int, message: str) -> None:
        request = Request(scope)
        if self.on_reject is not None:
            response = await self.on_reject(request)
            response.status_code = status
        else:
            response = HTMLResponse(message, status_code=status)
        await response(scope, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.disconnect"}


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), False


def _token_from_body(content_type: str, body: bytes) -> str | None:
    if content_type.startswith("application/x-www-form-urlencoded"):
        values = parse_qs(body.decode("latin-1"), keep_blank_values=True).get(CSRF_FIELD)
        return values[0] if values else None
    if content_type.startswith("multipart/form-data"):
        return _token_from_multipart(content_type, body)
    return None


def _token_from_multipart(content_type: str, body: bytes) -> str | None:
    """Find the csrf_token part without materialising uploaded files."""
    from python_multipart.multipart import parse_options_header

    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        return None
    marker = b'name="' + CSRF_FIELD.encode() + b'"'
    for part in body.split(b"--" + boundary):
        head, sep, value = part.partition(b"\r\n\r\n")
        if sep and marker in head and b"filename=" not in head:
            return value.rstrip(b"\r\n").decode("ascii", "replace")
    return None
