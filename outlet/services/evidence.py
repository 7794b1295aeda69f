"""Checks on what a phone sends from a home visit: positions, phone clocks, document
photos and the handwritten signature (a PNG drawn on a canvas)."""

from __future__ import annotations

import re
import struct
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

from outlet.errors import InvalidInput, UploadRejected
from outlet.files import sniff
from partners.numbers import ascii_decimal

# Mainland China, Hong Kong, Macao and Taiwan fit in this box (WGS-84 degrees), with a margin:
# 3.8–53.6 °N, 73.5–135.1 °E (GB/T 2260 extremes: Zengmu Ansha, Mohe, Pamir, Heixiazi Island).
CHINA_BOUNDS = (3.8, 53.6, 73.5, 135.1)
MAX_ACCURACY_M = 2000.0  # a phone fix worse than 2 km cannot place a home visit
NO_GPS_REASONS = ("未授权定位", "室内无信号", "设备无定位", "其他")
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_CLOCK_AHEAD = timedelta(minutes=10)  # phone clock may run a little ahead of the server
MAX_OFFLINE = timedelta(days=7)  # an outbox older than a week is not a visit we accept
MAX_VISIT_LENGTH = timedelta(hours=12)  # arrive → leave of one home visit, by the phone's clock


def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, field=field, errors={field: message})


def position(fields: dict[str, str], prefix: str) -> dict[str, Any]:
    """``{lat, lon, accuracy}`` (degrees, metres) from ``<prefix>_lat`` … or, without a fix,
    ``{"none": reason}`` — a reason is required (the visit stays possible without GPS)."""
    lat, lon, acc = (fields.get(f"{prefix}_{k}", "").strip() for k in ("lat", "lon", "accuracy"))
    if not (lat or lon):
        reason = fields.get(f"{prefix}_no_gps", "").strip()
        if not reason:
            raise _bad(f"{prefix}_no_gps", "没有定位时请选择原因")
        if reason not in NO_GPS_REASONS:
            raise _bad(f"{prefix}_no_gps", "无定位原因无效，请从列表中选择（" + "、".join(NO_GPS_REASONS) + "）")
        return {"none": reason}
    la, lo, ac = ascii_decimal(lat), ascii_decimal(lon), ascii_decimal(acc)
    if la is None or lo is None or ac is None:  # ASCII digits only, as phone_time and ids
        raise _bad(f"{prefix}_lat", "定位数据格式有误")
    south, north, west, east = CHINA_BOUNDS
    if not (south <= la <= north and west <= lo <= east):
        raise _bad(f"{prefix}_lat", f"定位（{la:.4f}, {lo:.4f}）不在中国境内，请重新定位或选择无定位原因")
    if not (0 < ac <= MAX_ACCURACY_M):
        raise _bad(f"{prefix}_accuracy", f"定位精度（{ac:g} 米）异常，应在 0–{MAX_ACCURACY_M:g} 米之间")
    return {"lat": round(la, 6), "lon": round(lo, 6), "accuracy": round(ac, 1)}


def phone_time(raw: str, server_now: datetime, field: str) -> datetime:
    """The phone's clock (ISO 8601 with offset or Z) as naive UTC; not far in the future and
    not older than a week (the outbox keeps submissions for offline work)."""
    raw = (raw or "").strip()
    try:
        if not raw.isascii():  # ASCII digits only (partners/numbers.py), whatever Python takes
            raise ValueError(raw)
        t = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise _bad(field, "手机时间格式有误") from None
    if t.tzinfo is None:
        raise _bad(field, "手机时间缺少时区")
    t = t.astimezone(UTC).replace(tzinfo=None)
    if t > server_now + MAX_CLOCK_AHEAD or t < server_now - MAX_OFFLINE:
        raise _bad(field, "手机时间与服务器时间相差过大，请校准手机时间")
    return t


def check_visit_times(requested_at: datetime, arrived: datetime, left: datetime | None = None,
                      *, field: str = "phone_time") -> None:
    """The phone's times of one visit (naive UTC) must fit the visit's window: arrival not
    before the request was made (less the clock skew ``MAX_CLOCK_AHEAD``), departure not
    before arrival and at most ``MAX_VISIT_LENGTH`` after it. Raises InvalidInput (422)."""
    if arrived < requested_at - MAX_CLOCK_AHEAD:
        raise _bad(field, "到达时间早于上门需求登记时间，请校准手机时间")
    if left is not None and left < arrived:
        raise _bad(field, "离开时间早于到达时间，请校准手机时间")
    if left is not None and left - arrived > MAX_VISIT_LENGTH:
        hours = MAX_VISIT_LENGTH.total_seconds() / 3600
        raise _bad(field, f"离开时间距到达超过 {hours:g} 小时，不是同一次上门，请核对手机时间")


def check_photo(data: bytes, max_bytes: int) -> str:
    """Content type of a document photo (JPEG or PNG by content), else UploadRejected."""
    if not data:
        raise UploadRejected("照片是空的", status_code=422, field="photos")
    if len(data) > max_bytes:
        raise UploadRejected(f"照片超过大小上限（{max_bytes // (1024 * 1024)} MB）", status_code=413,
                             field="photos")
    ctype = sniff(data[:16])
    if ctype not in ("image/jpeg", "image/png"):
        raise UploadRejected("上传的照片不是图片（仅支持 JPEG、PNG）", status_code=415, field="photos")
    return ctype


def check_signature(data: bytes) -> None:
    """The signature must be a PNG with at least one drawn (non-transparent) pixel."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise UploadRejected("签名数据无效，请重新签名", status_code=422, field="signature")
    if not _png_has_ink(data):
        raise UploadRejected("签名为空，请申请人在屏幕上签名", status_code=422, field="signature")


def _png_has_ink(data: bytes) -> bool:
    """True when some pixel is not fully transparent (RGBA 8-bit, as canvas.toBlob makes);
    other PNG layouts count as inked when any sample byte is non-zero."""
    pos, width, color, depth, idat = 8, 0, 0, 0, b""
    try:
        while pos < len(data):
            length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
            body = data[pos + 8:pos + 8 + length]
            if ctype == b"IHDR":
                width, _h, depth, color = struct.unpack(">IIBB", body[:10])
            elif ctype == b"IDAT":
                idat += body
            pos += 12 + length
        raw = zlib.decompress(idat)
    except (struct.error, zlib.error):
        raise UploadRejected("签名图片已损坏，请重新签名", status_code=422, field="signature") from None
    if color == 6 and depth == 8 and width:
        stride = width * 4 + 1
        # Filters work on bytes; an alpha of 0 everywhere stays 0 under filters only if the
        # whole image is zero, so unfilter the alpha channel row by row (Sub/Up/Avg/Paeth).
        prev = bytearray(stride - 1)
        for r in range(0, len(raw), stride):
            row = bytearray(raw[r + 1:r + stride])
            _unfilter(raw[r], row, prev)
            if any(row[3::4]):
                return True
            prev = row
        return False
    return any(raw)


def _unfilter(ftype: int, row: bytearray, prev: bytearray, bpp: int = 4) -> None:
    for i in range(len(row)):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if ftype == 1:
            row[i] = (row[i] + a) & 0xFF
        elif ftype == 2:
            row[i] = (row[i] + b) & 0xFF
        elif ftype == 3:
            row[i] = (row[i] + (a + b) // 2) & 0xFF
        elif ftype == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
