"""Live events across processes: one hub for every feature that updates a browser without a
reload (expert queue, request status, call signaling, recorder control, queue displays).

    hub.publish_in(session, "assist.queue", {"domains": ["社保"]})   # inside the change's transaction
    async for ev in hub.subscribe("assist.call.*", since=last_seq): ...

Domain packages publish through this package (it imports nothing of ``web/``); ``web/``
turns subscriptions into WebSocket pushes. See ``hub`` for ordering and the two backends,
``presence`` for who is connected where, and ``lease`` for once-per-cluster periodic jobs.
"""

from __future__ import annotations

from outlet.events.hub import Event, Hub, HubError, Subscription, SubscriptionLost
from outlet.events.lease import singleton
from outlet.events.presence import Presence

__all__ = ["Event", "Hub", "HubError", "Presence", "Subscription", "SubscriptionLost", "singleton"]
