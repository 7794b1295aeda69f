"""One guard for every request's input, before any handler sees it.

* Body size, counted **while** the body is read: an announced ``Content-Length`` over the
  limit is refused before reading; a chunked body without one is cut at the limit. Either
  way the answer is 413 and nothing past the limit is read, spooled or parsed. Multipart
  bodies (uploads) may be ``max_body`` bytes; every other body (forms, JSON) ``max_form``.
* Text the database cannot store — NUL (PostgreSQL ``text`` refuses it), lone surrogates
  and bytes that are not UTF-8 (neither driver can encode them) — in the path, the query
  string, an url-encoded form, a JSON body or a text field, file name or header of a
  multipart body: 400 with a clear message instead of a driver error and a 500.

A NUL in a **value of an url-encoded form** is the one exception: a person typed or pasted
it, so the answer is 422 :data:`CONTROL_TEXT` ("输入中含有不可见的控制字符"), never accepted.
Where the route's handler is marked :func:`keeps_form` (it re-renders its page on a refusal
raised while resolving the actor), the guard removes the NUL from the body the app sees
and names the fields on the request; the shared ``actor_of`` (web/routes/case_views.py)
then raises :class:`InvalidInput` once, so the page comes back with the message and the
form kept (the invisible character removed) and nothing is changed. Any other route — an
unmarked handler, no route at all — gets the 422 page at once: default deny.

Refusals are :class:`InputRefused` (an ``HTTPException``), so one raised while a handler
reads the body is rendered by the app's HTTP error handler; one raised before (or while the
CSRF middleware buffers a form) is rendered here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote_plus, unquote_to_bytes

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from outlet.errors import InvalidInput

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
MAX_FORM = 1024 * 1024  # bytes of a non-multipart body (a form, a JSON document)
CONTROL_TEXT = "输入中含有不可见的控制字符（已删除），请核对后重新提交"
CONTROL_KEY = "control_fields"  # on the request's state: the form fields that carried a NUL
BAD_TEXT = "提交的内容含有无法保存的字符（如空字符 NUL 或无效编码），请删除后重试。"
TOO_LARGE = "提交的内容过大"


class InputRefused(HTTPException):
    """400 for unstorable text, 413 for a body over the limit."""


def storable(text: str) -> bool:
    """True when ``text`` has no NUL and no lone surrogate (so it encodes to UTF-8 and
    PostgreSQL and SQLite both store it)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable_bytes(raw: bytes) -> bool:
    """True when ``raw`` is UTF-8 without NUL."""
    try:
        return storable(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return False


def check_urlencoded(raw: bytes) -> None:
    """Every name and value of ``a=b&c=d`` (percent-decoded) must be storable."""
    for pair in raw.split(b"&"):
        for part in pair.split(b"=", 1):
            if not storable_bytes(unquote_to_bytes(part.replace(b"+", b" "))):
                raise InputRefused(400, BAD_TEXT)


# Other invisible C0 controls (BEL, backspace, vertical tab, ESC …) and DEL, pasted from other
# programs: dropped from form values without a word (nobody means them; the text is what they see).
# Tab, line feed and carriage return stay: textareas hold them.
SILENT_CONTROLS = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_form_controls(raw: bytes) -> tuple[bytes, list[str]]:
    """An url-encoded form body with every NUL removed from its values, and the names of the
    fields that had one; other C0 controls and DEL (:data:`SILENT_CONTROLS`) are removed from
    values too, without naming the field (``raw`` unchanged when there is none). Unstorable
    names, invalid UTF-8 or a lone surrogate anywhere: :class:`InputRefused` (400), as
    :func:`check_urlencoded`."""
    check_urlencoded(raw.replace(b"%00", b""))  # everything but the NULs must be storable
    pairs, fields, changed = [], [], False
    for pair in raw.split(b"&"):
        name, sep, value = pair.partition(b"=")
        try:
            text = unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")
            key = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:  # bytes around a NUL that are no UTF-8 on their own
            raise InputRefused(400, BAD_TEXT) from None
        if "\x00" in key:  # a name is no one's input: refused as before
            raise InputRefused(400, BAD_TEXT)
        if "\x00" in text:
            fields.append(key)
        clean = SILENT_CONTROLS.sub("", text.replace("\x00", ""))
        if clean != text:
            changed = True
            pair = name + sep + quote_plus(clean).encode("ascii")
        pairs.append(pair)
    return (b"&".join(pairs) if changed else raw), fields


KEEPS_FORM = "keeps_form"


def keeps_form(endpoint: Endpoint) -> Endpoint:
    """Mark a form handler that resolves ``actor_of`` inside its refusal handling and
    re-renders its page with the form kept: a NUL in its form becomes that page's 422."""
    setattr(endpoint, KEEPS_FORM, True)
    return endpoint


def endpoint_of(scope: Scope) -> Any:
    """The endpoint the app's router will call for ``scope`` (Mounts followed), or None."""
    routes = list(getattr(getattr(scope.get("app"), "router", None), "routes", []))
    sub: dict[str, Any] = dict(scope)
    while routes:
        for route in routes:
            match, child = route.matches(sub)
            if match is Match.FULL:
                sub.update(child)
                if isinstance(route, Mount):
                    routes = list(route.routes)
                    break
                return child.get("endpoint")
        else:
            return None
    return None


def control_fields(request: Request) -> list[str]:
    """The form fields from which the guard removed a NUL, once: a second call answers ``[]``
    (so the page re-rendered after the refusal is not refused again)."""
    state = request.scope.get("state") or {}
    return list(state.pop(CONTROL_KEY, None) or [])


def refuse_control_chars(request: Request) -> None:
    """InvalidInput (422, :data:`CONTROL_TEXT` beside each field) when the guard removed a NUL
    from this request's form; see the module docstring."""
    fields = control_fields(request)
    if fields:
        raise InvalidInput(CONTROL_TEXT, field=fields[0], errors={f: CONTROL_TEXT for f in fields})


def check_json(raw: bytes) -> None:
    """Every string (keys too) of a JSON document must be storable. Malformed JSON is left
    to the handler, which answers it in its own words."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputRefused(400, BAD_TEXT) from None
    except ValueError:
        return
    stack: list[Any] = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and not storable(item):
            raise InputRefused(400, BAD_TEXT)
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


class MultipartTextScanner:
    """Feed a multipart body chunk by chunk; refuses a header or a non-file part that is not
    storable text. File contents are not looked at (upload checks belong to the handler)."""

    def __init__(self, content_type: str, limit: int) -> None:
        _, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        self.limit = limit
        self.bad = False
        self._header = b""
        self._headers: list[bytes] = []
        self._data = bytearray()
        self._is_file = False
        self.parser: MultipartParser | None = None
        if boundary:
            self.parser = MultipartParser(boundary, callbacks={
                "on_part_begin": self._begin,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_done,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
            })

    def feed(self, chunk: bytes) -> None:
        if self.parser is None or not chunk:
            return
        try:
            self.parser.write(chunk)
        except Exception:  # malformed multipart: Starlette's parser answers it with a 400
            self.parser = None
        if self.bad:
            raise InputRefused(400, BAD_TEXT)

    def _begin(self) -> None:
        self._headers, self._data, self._is_file = [], bytearray(), False

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _header_end(self) -> None:
        self._headers.append(self._header)
        self._header = b""

    def _headers_done(self) -> None:
        # A file name may be stored (as the file's display name): it must be text too.
        self.bad |= not all(storable_bytes(h) for h in self._headers)
        self._is_file = any(b"filename" in h for h in self._headers)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._is_file and len(self._data) <= self.limit:
            self._data += data[start:end]

    def _part_end(self) -> None:
        if not self._is_file:
            self.bad |= not storable_bytes(bytes(self._data))


class InputGuardMiddleware:
    """See the module docstring. ``on_refuse(request, status, message)`` renders the page."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int,
        on_refuse: Callable[[Request, int, str], Awaitable[Response]],
        max_form: int = MAX_FORM,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.max_form = max_form
        self.on_refuse = on_refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            raw_path = scope.get("raw_path")  # servers decode bad UTF-8 to U+FFFD in "path"
            if not storable(scope["path"]) or (raw_path and not storable_bytes(unquote_to_bytes(raw_path))):
                raise InputRefused(400, BAD_TEXT)
            check_urlencoded(scope.get("query_string", b""))
            if scope["type"] == "http":
                receive = await self._guarded_receive(scope, receive)
            await self.app(scope, receive, send_tracking)
        except InputRefused as exc:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})  # policy violation
                return
            if started:
                raise
            response = await self.on_refuse(Request(scope), exc.status_code, str(exc.detail))
            await response(scope, _disconnected, send)

    async def _guarded_receive(self, scope: Scope, receive: Receive) -> Receive:
        headers = Headers(scope=scope)
        content_type = headers.get("content-type", "")
        multipart = content_type.startswith("multipart/form-data")
        limit = self.max_body if multipart else self.max_form
        length = headers.get("content-length", "")
        if length.isascii() and length.isdigit() and int(length) > limit:
            raise InputRefused(413, TOO_LARGE)
        if multipart:
            scanner = MultipartTextScanner(content_type, self.max_form)
            seen = 0

            async def streaming() -> Message:
                nonlocal seen
                message = await receive()
                if message["type"] == "http.request":
                    chunk = message.get("body", b"")
                    seen += len(chunk)
                    if seen > limit:
                        raise InputRefused(413, TOO_LARGE)
                    scanner.feed(chunk)
                return message

            return streaming
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return receive
        # Small bodies: read (bounded) and check now, then replay them to the app.
        body = await _read_bounded(receive, limit)
        if content_type.startswith("application/x-www-form-urlencoded"):
            body, fields = strip_form_controls(body)
            if fields and not getattr(endpoint_of(scope), KEEPS_FORM, False):
                raise InputRefused(422, CONTROL_TEXT)
            if fields:
                scope.setdefault("state", {})[CONTROL_KEY] = fields
        elif content_type.startswith("application/json"):
            check_json(body)
        replay: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

        async def replaying() -> Message:
            return replay.pop() if replay else await receive()

        return replaying


async def _read_bounded(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise InputRefused(413, TOO_LARGE)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _disconnected() -> Message:
    return {"type": "http.disconnect"}
