"""Evidence files (snapshots, recordings), stamped with time and place before hashing and kept
in the app's one file store (``outlet.files.FileStore``: ``put_bytes``, ``put_file``,
``work_dir`` for open recordings).

Snapshots are JPEG stills encoded with PyAV's MJPEG encoder; the stamp (session, time in
UTC and Beijing time, the outlet's coordinates) goes into a JPEG COM segment, so the hash
covers it. Recordings carry the same stamp in their Matroska tags.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # PyAV is imported where a frame is encoded (see remote_assist.recordings)
    import av

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Stamp:
    """Time and place printed into every evidence file."""

    session_id: int
    at: datetime  # naive UTC
    outlet_code: str
    latitude: float | None
    longitude: float | None

    def text(self) -> str:
        aware = self.at.replace(tzinfo=UTC)
        where = (f"{self.latitude:.6f},{self.longitude:.6f}"
                 if self.latitude is not None and self.longitude is not None else "unknown")
        return (f"servicepoint assist session={self.session_id} outlet={self.outlet_code} "
                f"utc={aware.isoformat(timespec='seconds').replace('+00:00', 'Z')} "
                f"beijing={aware.astimezone(LOCAL_TZ).strftime('%Y-%m-%d %H:%M:%S')} geo={where}")

    def iso6709(self) -> str | None:
        if self.latitude is None or self.longitude is None:
            return None
        return f"{self.latitude:+09.5f}{self.longitude:+010.5f}/"


def encode_jpeg(frame: av.VideoFrame, quality: int = 4) -> bytes:
    """One JPEG from a decoded video frame (MJPEG, full-range YUV 4:2:0)."""
    import av

    ctx = av.CodecContext.create("mjpeg", "w")
    ctx.width, ctx.height = frame.width - frame.width % 2, frame.height - frame.height % 2
    ctx.pix_fmt = "yuvj420p"
    ctx.time_base = Fraction(1, 25)
    ctx.options = {"qmin": str(quality), "qmax": str(quality)}
    image = frame.reformat(width=ctx.width, height=ctx.height, format="yuvj420p")
    image.pts = 0
    data = b"".join(bytes(p) for p in ctx.encode(image))
    data += b"".join(bytes(p) for p in ctx.encode(None))
    return data


def stamp_jpeg(jpeg: bytes, text: str) -> bytes:
    """Insert a COM segment carrying ``text`` right after the SOI marker."""
    if not jpeg.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG")
    payload = text.encode("utf-8")[:65000]
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def jpeg_comment(jpeg: bytes) -> str | None:
    """The first COM segment of a JPEG (for verification and tests)."""
    i = 2
    while i + 4 <= len(jpeg) and jpeg[i] == 0xFF:
        marker, length = jpeg[i + 1], struct.unpack(">H", jpeg[i + 2 : i + 4])[0]
        if marker == 0xFE:
            return jpeg[i + 4 : i + 2 + length].decode("utf-8", "replace")
        if marker == 0xDA:
            return None
        i += 2 + length
    return None
