"""Tunables of remote help, taken from the app's ``Settings`` (``SERVICEPOINT_ASSIST_*``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from web.settings import Settings


@dataclass(frozen=True)
class AssistConfig:
    escalate_after_seconds: float = 120.0  # town → district → city when nobody answers
    expire_after_seconds: float = 3600.0  # a waiting request nobody took is expired
    abandon_after_seconds: float = 90.0  # an active call with nobody connected times out
    tick_seconds: float = 5.0  # escalation / time-out sweep
    default_handle_seconds: float = 600.0  # estimated wait before any history exists
    callback_slot_minutes: int = 30
    consent_retention_days: int = 1095  # recordings kept 3 years unless the matter says more
    ice_relay_only: bool = False  # force iceTransportPolicy "relay" in the browsers
    # host addresses the recorder's aiortc peer gathers candidates on (empty: all interfaces)
    rtc_host_addresses: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> AssistConfig:
        return cls(
            escalate_after_seconds=settings.assist_escalate_seconds,
            expire_after_seconds=settings.assist_expire_seconds,
            abandon_after_seconds=settings.assist_abandon_seconds,
            tick_seconds=settings.assist_tick_seconds,
            ice_relay_only=settings.assist_ice_relay_only,
            rtc_host_addresses=settings.assist_rtc_hosts,
        )
