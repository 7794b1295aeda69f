"""Errors of remote help and inspection. ``AssistError`` is the base; each carries a Chinese
message (shown to the user) and an HTTP-ish ``status_code``. Refusals decided by
``partners.authorize`` stay :class:`partners.errors.ActionRefused` (audited as refusals)."""

from __future__ import annotations

from partners.errors import ActionRefused


class AssistError(Exception):
    """Base of every error raised by ``remote_assist``."""

    status_code = 422
    message = "视频帮办操作失败"

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        self.message = message or type(self).message
        self.field = field
        super().__init__(self.message)


class NotFound(AssistError):
    """No such request, session, snapshot or case for this user (never leak which)."""

    status_code = 404
    message = "未找到该视频帮办记录"


class NotOffered(ActionRefused, AssistError):
    """The request is not (yet) in this expert's queue: another domain, or not escalated to
    their level. Audited as a refusal."""

    code = "not_offered"
    status_code = 403
    message = "该请求尚未转到您的层级或不属于您的业务领域"


class NotParticipant(AssistError):
    """Only the two assigned participants may join a call or act in it."""

    status_code = 403
    message = "您不是本次视频通话的参与人，不能加入"


class ChatTooFast(AssistError):
    status_code = 429
    message = "消息发送过于频繁，请稍后再发"


class SessionClosed(AssistError):
    status_code = 409
    message = "本次视频通话已结束"


class AlreadyTaken(AssistError):
    status_code = 409
    message = "该请求已被其他专家接听或已取消"


class InvalidInput(AssistError):
    message = "填写内容有误"


class ConsentRequired(AssistError):
    """No recording and no inspection without the applicant's recorded consent."""

    status_code = 409
    message = "尚未记录申请人对录音录像的同意，不能录像或开展勘验"


class RecordingUnavailable(AssistError):
    status_code = 409
    message = "录像尚未开始或已经结束"


class InspectionIncomplete(AssistError):
    status_code = 409
    message = "勘验要点尚未全部记录，不能出具结论"
