"""A fake ID-card reader bridge, for tests and the demo (no reader hardware needed).

Real readers (居民身份证阅读器) come with a vendor service on the kiosk or counter PC that
exposes the reader on a localhost WebSocket; ``web/static/js/idcard-reader.js`` speaks the
small protocol below, and a site adapts its vendor service to it (or runs a shim). This
module serves that protocol on 127.0.0.1 only::

    python -m web.idcard_bridge --port 18889 --id 11010519491231002X
    SERVICEPOINT_IDCARD_BRIDGE=ws://127.0.0.1:18889/idcard make run

* ``ws://127.0.0.1:PORT/idcard`` — on connect ``{"type": "status", "reader": "ready"}``;
  ``{"type": "read"}`` answers ``{"type": "card", "id_number": …, "name": …}`` when a card
  lies on the reader, else ``{"type": "status", "reader": "ready"}``.
* ``POST /place?id=…&name=…`` (tests, from the same machine) — a card is placed: every
  connected page gets the ``card`` message at once; ``POST /remove`` takes it away.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


def make_app(id_number: str = "", name: str = "") -> Starlette:
    """The fake bridge; ``id_number`` (optional) is a card already on the reader."""
    state: dict[str, Any] = {"card": {"id_number": id_number, "name": name} if id_number else None,
                             "sockets": set()}

    def card_message() -> dict[str, Any]:
        return {"type": "card", **state["card"]}

    async def socket(ws: WebSocket) -> None:
        await ws.accept()
        state["sockets"].add(ws)
        try:
            await ws.send_json({"type": "status", "reader": "ready"})
            while True:
                msg = await ws.receive_json()
                if isinstance(msg, dict) and msg.get("type") == "read":
                    await ws.send_json(card_message() if state["card"] else {"type": "status", "reader": "ready"})
        except (WebSocketDisconnect, ValueError):
            pass
        finally:
            state["sockets"].discard(ws)

    async def place(request: Request) -> PlainTextResponse:
        state["card"] = {"id_number": request.query_params.get("id", ""), "name": request.query_params.get("name", "")}
        for ws in list(state["sockets"]):
            with contextlib.suppress(Exception):
                await ws.send_json(card_message())
        return PlainTextResponse(f"placed for {len(state['sockets'])} page(s)")

    async def remove(request: Request) -> PlainTextResponse:
        state["card"] = None
        return PlainTextResponse("removed")

    return Starlette(routes=[WebSocketRoute("/idcard", socket), Route("/place", place, methods=["POST"]),
                             Route("/remove", remove, methods=["POST"])])


def main() -> None:
    import uvicorn

    p = argparse.ArgumentParser(description="Fake ID-card reader bridge (tests, demo)")
    p.add_argument("--port", type=int, default=18889)
    p.add_argument("--id", default="", help="ID number of a card lying on the reader")
    p.add_argument("--name", default="")
    args = p.parse_args()
    uvicorn.run(make_app(args.id, args.name), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
