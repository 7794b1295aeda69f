"""Refusals of the queue. Each is an :class:`partners.errors.ActionRefused`, so the
audited-action helpers record it as a refusal; each carries a Chinese message and a status."""

from __future__ import annotations

from partners.errors import ActionRefused


class QueueError(ActionRefused):
    """Base of every queue refusal."""

    code = "queue_refused"
    status_code = 409
    message = "排队叫号操作被拒绝"


class QueueInputError(QueueError):
    """A form value is missing or malformed (checked before any change)."""

    code = "invalid_input"
    status_code = 422
    message = "填写内容有误"

    def __init__(self, message: str | None = None, *, errors: dict[str, str] | None = None) -> None:
        super().__init__(message or (next(iter(errors.values())) if errors else None))
        self.errors: dict[str, str] = dict(errors or {})  # form field → message


class QueueNotFound(QueueError):
    """No such line, counter or ticket here (also for another outlet's: never leak it)."""

    code = "not_found"
    status_code = 404
    message = "未找到该号票"


class TicketTransitionRefused(QueueError):
    """The step is not allowed in the ticket's current state."""

    code = "illegal_transition"
    message = "当前号票状态下不能执行该操作"


class NotSignedIn(QueueError):
    code = "not_signed_in"
    message = "请先签到窗口"


class CounterBusy(QueueError):
    code = "counter_busy"
    message = "该窗口当前有号票未办结，请先完成当前号"


class NoOneWaiting(QueueError):
    code = "queue_empty"
    message = "当前没有等候的号票"


class IssuingClosed(QueueError):
    """Outside issuing hours, past the daily cap, or the line is stopped."""

    code = "issuing_closed"
    message = "当前不能取号"
