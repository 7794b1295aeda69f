"""coturn REST credentials (``--use-auth-secret``): username ``expiry:user``, password
base64(HMAC-SHA1(secret, username)). The vector was computed independently with
``printf '%s' 1700000600:42 | openssl dgst -sha1 -hmac s3cr3t-turn -binary | base64``."""

from __future__ import annotations

from remote_assist.turn import ice_config, ice_servers, turn_credentials
from web.settings import Settings

VECTOR = ("s3cr3t-turn", 42, 600, 1_700_000_000, "1700000600:42", "2k75bLKBqpITWWNSngJ28rAT0tg=")


def test_turn_credentials_match_openssl_vector() -> None:
    secret, user, ttl, now, username, password = VECTOR
    assert turn_credentials(secret, user, ttl, now=now) == (username, password)


def test_turn_credentials_change_with_secret() -> None:
    secret, user, ttl, now, username, password = VECTOR
    changed = turn_credentials(secret + "x", user, ttl, now=now)
    assert changed[0] == username and changed[1] != password


def test_ice_servers_from_settings(settings: Settings) -> None:
    s = Settings(**{**settings.__dict__, "stun_urls": ("stun:127.0.0.1:3478",),
                    "turn_urls": ("turn:127.0.0.1:3478?transport=udp",), "turn_secret": "s3cr3t-turn",
                    "turn_ttl_seconds": 600})
    servers = ice_servers(s, 42, now=1_700_000_000)
    assert servers[0] == {"urls": ["stun:127.0.0.1:3478"]}
    assert servers[1]["username"] == "1700000600:42"
    assert servers[1]["credential"] == "2k75bLKBqpITWWNSngJ28rAT0tg="
    assert ice_config(s, 42, relay_only=True)["iceTransportPolicy"] == "relay"


def test_ice_servers_without_turn_secret_omit_turn(settings: Settings) -> None:
    s = Settings(**{**settings.__dict__, "turn_urls": ("turn:127.0.0.1:3478",), "turn_secret": ""})
    assert ice_servers(s, 1) == []
