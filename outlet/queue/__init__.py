"""The queue (排队叫号 / 预约办 / 自助办): service lines and counters (``counters``), tickets and
their steps (``tickets``), starting service on a case (``casework``), read-only views for
panels, hall displays and the public position page (``board``), opening hours (``hours``).

Kiosks and hall displays are paired devices (``outlet.devices``); every live update goes
through the event hub (``outlet.events``) on topic ``queue.outlet.<outlet id>``.
"""
