"""ICE configuration with short-lived TURN credentials (coturn's REST shared-secret scheme).

coturn (``--use-auth-secret --static-auth-secret=S``) accepts any username of the form
``<expiry unix time>:<user>`` whose password is base64(HMAC-SHA1(S, username)) until the
expiry passes, so the server never has to tell coturn about users.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any


def turn_credentials(secret: str, user: str | int, ttl_seconds: int, now: float | None = None) -> tuple[str, str]:
    """(username, password) valid for ``ttl_seconds`` from ``now`` (unix seconds)."""
    expiry = int(now if now is not None else time.time()) + int(ttl_seconds)
    username = f"{expiry}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def ice_servers(settings: Any, user: str | int, now: float | None = None) -> list[dict[str, Any]]:
    """The ``iceServers`` list for RTCPeerConnection (browser JSON shape)."""
    servers: list[dict[str, Any]] = []
    if settings.stun_urls:
        servers.append({"urls": list(settings.stun_urls)})
    if settings.turn_urls and settings.turn_secret:
        username, credential = turn_credentials(settings.turn_secret, user, settings.turn_ttl_seconds, now)
        servers.append({"urls": list(settings.turn_urls), "username": username, "credential": credential})
    return servers


def ice_config(settings: Any, user: str | int, *, relay_only: bool = False, now: float | None = None) -> dict[str, Any]:
    """The whole RTCConfiguration the call page fetches (``iceTransportPolicy`` included)."""
    return {
        "iceServers": ice_servers(settings, user, now),
        "iceTransportPolicy": "relay" if relay_only else "all",
        "ttl": int(settings.turn_ttl_seconds),
    }
