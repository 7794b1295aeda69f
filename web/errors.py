"""One place that turns errors into responses: a Chinese message, the right status code,
never a stack trace. htmx requests get a fragment for the page's #flash region."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from outlet.errors import CaseError
from outlet.pii import PiiError
from partners.errors import ActionRefused, PartnersError
from remote_assist.errors import AssistError
from web.refusals import record_refusal
from web.security import add_security_headers
from web.throttle import Throttled

log = logging.getLogger("servicepoint")

HTTP_MESSAGES = {
    400: "请求格式有误",
    403: "您无权执行此操作",
    404: "未找到该页面或记录",
    405: "不支持该请求方式",
    409: "操作与当前状态冲突",
    413: "上传内容过大",
    415: "不支持的文件类型",
    422: "提交的内容有误，请检查后重试",
    429: "操作过于频繁，请稍后再试",
    500: "系统内部错误，请稍后重试或联系管理员",
}


def render_error(request: Request, status: int, message: str, *, audited: bool = False) -> Response:
    """The error page or #flash fragment. Every 403/404 shown to a logged-in user passes
    here and is audited (:mod:`web.refusals`, one entry per actor × route × minute), unless
    ``audited``: a refused delegated action already has its own entry."""
    if not audited:
        record_refusal(request, status)
    templates = request.app.state.templates
    is_htmx = request.headers.get("HX-Request") == "true"
    template = "_error.html" if is_htmx else "error.html"
    headers: dict[str, str] = {"Vary": "HX-Request"}
    if is_htmx:
        # Show refusals in the page's message region whatever the request's target was.
        headers.update({"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"})
    return templates.TemplateResponse(
        request, template, {"status": status, "message": message}, status_code=status, headers=headers
    )


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail and not exc.detail.isascii() else None
    return render_error(request, exc.status_code, detail or HTTP_MESSAGES.get(exc.status_code, "请求失败"))


async def action_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ActionRefused)
    return render_error(request, exc.status_code, exc.message, audited=exc.audited)


async def domain_error(request: Request, exc: Exception) -> Response:
    status = int(getattr(exc, "status_code", 422))
    message = str(getattr(exc, "message", "") or HTTP_MESSAGES.get(status, "请求失败"))
    return render_error(request, status, message)


async def throttled(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Throttled)
    response = render_error(request, 429, exc.message)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def pii_key_error(request: Request, exc: Exception) -> Response:
    """A missing or wrong ``$DATA/keys/pii.key``: a page that says so (503: the service needs
    its key back, nothing the user did), never a 500. The startup check logged it too."""
    assert isinstance(exc, PiiError)
    log.error("PII key problem on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return render_error(request, 503, exc.message)


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    response = render_error(request, 500, HTTP_MESSAGES[500])
    # Starlette sends this from outside the middleware stack: add the headers here.
    add_security_headers(response.headers, https=request.app.state.settings.https)
    return response


def exception_handlers() -> dict[Any, Any]:
    handlers: dict[Any, Any] = {
        HTTPException: http_exception,
        ActionRefused: action_refused,
        PartnersError: domain_error,
        CaseError: domain_error,
        AssistError: domain_error,
        Throttled: throttled,
        PiiError: pii_key_error,
        Exception: server_error,
    }
    return handlers


MISSING_FILE = "该文件在存储中缺失（其 SHA-256 已登记在审计日志中），请联系系统管理员从备份恢复。"


def stored_file(request: Request, path: Path, media_type: str, headers: dict[str, str]) -> Response:
    """Serve a stored upload or evidence file; a file missing from the store (lost disk,
    unrestored backup) is a clear 410 page and a logged error, never a 500."""
    if not path.is_file():
        log.error("stored file missing: %s", path.name)
        return render_error(request, 410, MISSING_FILE)
    return FileResponse(path, media_type=media_type, headers=headers)
