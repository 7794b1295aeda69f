"""A relay-only call through a real coturn on loopback, with the credentials the server
hands out (coturn's REST shared-secret scheme); wrong credentials get no relay at all."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiortc import RTCPeerConnection

from remote_assist.loopback import SyntheticVideo, first_frame
from remote_assist.rtc import rtc_configuration
from remote_assist.turn import ice_config
from tests.remote_assist.coturn import Coturn
from web.settings import Settings


def turn_settings(settings: Settings, server: Coturn, secret: str | None = None) -> Settings:
    return Settings(**{**settings.__dict__, "turn_urls": (server.url,),
                       "turn_secret": secret or server.secret, "turn_ttl_seconds": 300})


def candidate_types(sdp: str) -> set[str]:
    return {line.split(" typ ")[1].split()[0] for line in sdp.splitlines() if " typ " in line}


async def relay_call(config_a: dict[str, Any], config_b: dict[str, Any]) -> dict[str, Any]:
    a, b = RTCPeerConnection(rtc_configuration(config_a)), RTCPeerConnection(rtc_configuration(config_b))
    got_video: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    got_text: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    video = SyntheticVideo(320, 240, 15)
    try:
        channel = a.createDataChannel("chat")
        a.addTrack(video)

        @b.on("track")
        def on_track(track: Any) -> None:
            if not got_video.done():
                got_video.set_result(track)

        @b.on("datachannel")
        def on_channel(ch: Any) -> None:
            ch.on("message", lambda m: got_text.done() or got_text.set_result(m))

        channel.on("open", lambda: channel.send("您好"))
        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        frame = await first_frame(await asyncio.wait_for(got_video, 20), 20)
        text = await asyncio.wait_for(got_text, 20)
        return {"offer": a.localDescription.sdp, "answer": b.localDescription.sdp,
                "frame": (frame.width, frame.height), "text": text, "state": (a.connectionState, b.connectionState)}
    finally:
        video.stop()
        await a.close()
        await b.close()


@pytest.mark.timeout(90)
def test_turn_relay_only_call_connects_through_coturn(coturn: Coturn, settings: Settings, rtc_env: None) -> None:
    s = turn_settings(settings, coturn)
    out = asyncio.run(relay_call(ice_config(s, 1, relay_only=True), ice_config(s, 2, relay_only=True)))
    assert candidate_types(out["offer"]) == {"relay"} and candidate_types(out["answer"]) == {"relay"}
    assert out["frame"] == (320, 240)
    assert out["text"] == "您好"
    assert out["state"] == ("connected", "connected")


@pytest.mark.timeout(60)
def test_turn_wrong_secret_gets_no_relay_candidates(coturn: Coturn, settings: Settings, rtc_env: None) -> None:
    bad = ice_config(turn_settings(settings, coturn, secret="not-the-secret"), 1, relay_only=True)

    async def gather() -> str:
        pc = RTCPeerConnection(rtc_configuration(bad))
        try:
            pc.createDataChannel("x")
            await pc.setLocalDescription(await pc.createOffer())
            return pc.localDescription.sdp
        finally:
            await pc.close()

    assert "typ relay" not in asyncio.run(gather())
