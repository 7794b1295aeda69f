"""Refusals. Every refusal carries a stable code (audited) and a Chinese message (shown)."""

from __future__ import annotations


class ActionRefused(Exception):
    """Base of every refusal of a delegated action; audited as outcome "refused"."""

    code = "refused"
    status_code = 409
    message = "操作被拒绝"
    audited = False  # set once its refusal entry is written (one entry per refusal)

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        self.message = message or type(self).message
        if code:
            self.code = code
        super().__init__(self.message)


class DelegationRefused(ActionRefused):
    """``authorize`` said no. Subclasses name the reason."""

    code = "delegation_refused"
    status_code = 403
    message = "该事项未授权本网点办理"


class NotDelegated(DelegationRefused):
    code = "not_delegated"
    message = "该事项未委托本网点办理"


class ScopeNotGranted(DelegationRefused):
    code = "scope_not_granted"
    message = "本网点未获授权以该方式办理此事项"


class GrantExpired(DelegationRefused):
    code = "grant_expired"
    message = "该事项的委托授权已过期"


class GrantRevoked(DelegationRefused):
    code = "grant_revoked"
    message = "该事项的委托授权已被撤销"


class WrongOutlet(DelegationRefused):
    code = "wrong_outlet"
    message = "您无权在该网点办理此业务"


class RoleLacksAction(DelegationRefused):
    code = "role_lacks_action"
    message = "您的岗位无权执行此操作"


class PartnersError(Exception):
    """Base for non-refusal errors in catalog and partner management (validation etc.)."""

    status_code = 422

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.message = message
        self.field = field
        super().__init__(message)


# --- added by the partners engineer (additive) -----------------------------------------
class GrantNotYetValid(NotDelegated):
    """A grant covers the matter and outlet but its period has not started yet."""

    code = "grant_not_yet_valid"
    message = "该事项的委托授权尚未生效"


class WrongDomain(RoleLacksAction):
    """A center reviewer or expert bound to a domain acts on a matter of another domain."""

    code = "wrong_domain"
    message = "该事项不属于您负责的业务领域"


class DutyRuleRefused(ActionRefused):
    """A separation-of-duties rule (三员分立) or the two-person rule said no: two duties on one
    account, a security admin removing their own duty, approving one's own request. Audited
    as a refusal (``delegated_action``) and shown on the form like a field error (422)."""

    code = "duty_separation"
    status_code = 422
    message = "三员分立：该操作不被允许"

    def __init__(self, message: str | None = None, *, field: str = "roles", errors: dict[str, str] | None = None,
                 code: str | None = None) -> None:
        super().__init__(message or (next(iter(errors.values())) if errors else None), code=code)
        self.field = field
        self.errors = dict(errors or {field: self.message})


class RequestPending(ActionRefused):
    """An account already has a pending request (two-person rule): a second one is refused,
    never silently put in its place. Audited as a refusal; 409 with the form kept."""

    code = "request_pending"
    status_code = 409
    message = "该账号已有一项待批准的申请"

    def __init__(self, message: str | None = None, *, field: str = "pending") -> None:
        super().__init__(message)
        self.field = field
        self.errors = {field: self.message}


class InvalidFields(PartnersError):
    """Validation failed on one or more fields; ``errors`` maps field → Chinese message.
    ``message``/``field`` are the first error, so callers that show one message still can."""

    def __init__(self, errors: dict[str, str]) -> None:
        first_field, first_message = next(iter(errors.items()))
        super().__init__(first_message, field=first_field)
        self.errors = dict(errors)


class LoginRefused(PartnersError):
    """Wrong username or password, or an inactive account (one answer for all three).
    ``staff_id`` (None: no such account) and ``reason`` (``bad_credentials`` /
    ``inactive``) are for the audit tally only, never for the answer."""

    status_code = 401

    def __init__(self, message: str, *, staff_id: int | None = None, reason: str = "bad_credentials") -> None:
        super().__init__(message)
        self.staff_id = staff_id
        self.reason = reason


class RecordNotFound(PartnersError):
    """A partner, agreement, outlet, staff, matter or grant id that does not exist."""

    status_code = 404
