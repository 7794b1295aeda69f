"""aiortc plumbing shared by the recorder, the tests and the benchmark."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcconfiguration import RTCIceTransportPolicy

_ORIGINAL_HOST_ADDRESSES = aioice.ice.get_host_addresses


def restrict_host_addresses(addresses: Sequence[str] | None) -> None:
    """Gather host candidates only on ``addresses`` (e.g. ``["127.0.0.1"]``), or restore
    aioice's default (every non-loopback interface) with None.

    Process-wide: it is a deployment choice (which interface the recorder listens on). aioice
    skips loopback by default, which is why tests on loopback need it.
    """
    if addresses:
        fixed = list(addresses)
        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: list(fixed)  # type: ignore[assignment]
    else:
        aioice.ice.get_host_addresses = _ORIGINAL_HOST_ADDRESSES


def rtc_configuration(ice: dict[str, Any] | None) -> RTCConfiguration:
    """aiortc configuration from the browser-shaped ICE config of ``turn.ice_config``."""
    if not ice:
        return RTCConfiguration(iceServers=[])
    servers = []
    for server in ice.get("iceServers", []):
        urls = server["urls"]
        for url in [urls] if isinstance(urls, str) else urls:
            servers.append(RTCIceServer(urls=url, username=server.get("username"),
                                        credential=server.get("credential")))
    policy = (RTCIceTransportPolicy.RELAY if ice.get("iceTransportPolicy") == "relay"
              else RTCIceTransportPolicy.ALL)
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)
