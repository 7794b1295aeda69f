"""Errors of the case lifecycle. ``CaseError`` is the base; each carries a Chinese message
(shown to the user), an HTTP-ish ``status_code`` and optionally the form ``field`` it is about.

State-machine refusals (``IllegalTransition``, ``GuardFailed``) are also
:class:`partners.errors.ActionRefused`, so ``delegated_action`` audits them as refusals.
"""

from __future__ import annotations

from partners.errors import ActionRefused


class CaseError(Exception):
    """Base of every error raised by ``outlet``."""

    status_code = 422
    message = "办件操作失败"

    def __init__(
        self, message: str | None = None, *, field: str | None = None,
        errors: dict[str, str] | None = None,
    ) -> None:
        self.message = message or type(self).message
        self.field = field
        # field name → message, for re-rendering a form with the reason next to each field
        self.errors: dict[str, str] = dict(errors or ({field: self.message} if field else {}))
        super().__init__(self.message)


class CaseNotFound(CaseError):
    """No such case for this user (also raised for another outlet's case: never leak it)."""

    status_code = 404
    message = "未找到该办件"


class FileNotFound(CaseError):
    status_code = 404
    message = "未找到该文件"


class InvalidIdNumber(CaseError):
    """A resident ID or unified social credit code failed format or checksum validation."""

    message = "证件号码无效"


class InvalidInput(CaseError):
    """A form value is missing or malformed (message names the field in Chinese)."""

    message = "填写内容有误"


class UploadRejected(CaseError):
    """An upload was refused: 413 too large, 415 unsupported type, 422 name/content mismatch."""

    message = "上传的文件不符合要求"

    def __init__(self, message: str | None = None, *, status_code: int = 422,
                 field: str | None = "file") -> None:
        super().__init__(message, field=field)
        self.status_code = status_code


class WrongCheckCode(CaseError):
    status_code = 404
    message = "办件编号或查询码不正确"


class IllegalTransition(ActionRefused, CaseError):
    """The action is not allowed in the case's current state (audited as a refusal)."""

    code = "illegal_transition"
    status_code = 409
    message = "当前状态下不能执行该操作"


class GuardFailed(IllegalTransition):
    """The state allows the action but a condition is not met (e.g. materials missing)."""

    code = "guard_failed"


class ServiceNotFound(CaseError):
    """No such service record or home visit for this user (another outlet's: never leaked)."""

    status_code = 404
    message = "未找到该服务记录"


class NotOwner(IllegalTransition):
    """首问负责: only the staff member who owns the enquiry may close or hand it over."""

    code = "not_owner"
    status_code = 403
    message = "该服务由首问责任人负责，您不能办结或转交"


class NotAssigned(IllegalTransition):
    """上门办: only the block agent the visit is assigned to works it (audited refusal)."""

    code = "not_assigned"
    status_code = 403
    message = "该上门服务已指派给其他网格员"
