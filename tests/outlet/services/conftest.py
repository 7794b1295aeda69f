"""The outlet world plus what services need: a grant with 咨询/帮办 at outlet A only, a
second teller and a block agent at A."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from datetime import date

import pytest
from sqlmodel import Session, select

from partners.models import Agreement, Staff
from tests.outlet.conftest import World, _grant, _staff, build_world


@dataclass
class ServiceWorld:
    w: World
    teller_a2: Staff
    agent_a: Staff


def add_consult_grant(w: World) -> None:
    with Session(w.engine, expire_on_commit=False) as s, s.begin():
        ag = s.exec(select(Agreement)).first()
        assert ag is not None
        _grant(s, ag, ["咨询", "帮办"], [w.committed], [w.outlet_a], (date(2020, 1, 1), date(2035, 12, 31)))


@pytest.fixture
def sw(engine) -> ServiceWorld:  # type: ignore[no-untyped-def]
    w = build_world(engine)
    add_consult_grant(w)
    with Session(engine, expire_on_commit=False) as s, s.begin():
        t2 = _staff(s, "teller.a2", "teller", w.outlet_a)
        agent = _staff(s, "agent.a", "block_agent", w.outlet_a)
    return ServiceWorld(w, t2, agent)


def png(width: int = 4, height: int = 2, ink: bool = True) -> bytes:
    """A real RGBA PNG; ``ink`` puts one opaque pixel in, else every pixel is transparent."""
    rows = b""
    for y in range(height):
        px = bytearray(width * 4)
        if ink and y == 1:
            px[4:8] = b"\x00\x00\x00\xff"
        rows += b"\x00" + bytes(px)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")




def photo() -> bytes:
    """A real (decodable) PNG standing for a document photo: the file store reads its size."""
    return png(12, 8)
