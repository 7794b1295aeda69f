"""Content checks of uploaded scans, before they are stored.

* PDFs with active content — JavaScript (``/JS``, ``/JavaScript``), automatic actions
  (``/OpenAction``, ``/AA``), launches, embedded files, forms that submit or import data,
  rich media — are refused: a scan never needs them and a reviewer's PDF viewer would run
  them. Names are matched after undoing ``#xx`` escapes, in the file's plain text and inside
  Flate-compressed streams (where object streams hide dictionaries), each stream inflated to
  at most :data:`MAX_INFLATE` bytes.
* Images whose header declares more than :data:`MAX_PIXELS` pixels are refused without
  decoding them (decompression bombs: a 50000×50000 PNG is a few KB on disk and 7.5 GB in
  memory). PNG: the IHDR chunk; JPEG: the first SOF marker.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

from outlet.errors import UploadRejected

MAX_PIXELS = 40_000_000  # 40 megapixels: an A4 page at 600 dpi is 35 MP (4961×7016)
MAX_INFLATE = 32 * 1024 * 1024

_ACTIVE = re.compile(
    rb"/(JavaScript|JS|OpenAction|AA|Launch|EmbeddedFile|EmbeddedFiles|RichMedia|XFA|SubmitForm|ImportData)"
    rb"(?=[\s/<>\[\]()%{}]|$)"
)
_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_STREAM = re.compile(rb"stream\r?\n(.*?)endstream", re.S)


def _unescape(data: bytes) -> bytes:
    return _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), data)


def pdf_has_active_content(data: bytes) -> bool:
    """True when the PDF names JavaScript, automatic actions or embedded content."""
    if _ACTIVE.search(_unescape(_STREAM.sub(b"stream endstream", data))):
        return True
    for body in _STREAM.findall(data):
        try:
            inflated = zlib.decompressobj().decompress(body, MAX_INFLATE)
        except zlib.error:
            continue  # not Flate (images, fonts …): no dictionaries inside
        if _ACTIVE.search(_unescape(inflated)):
            return True
    return False


def image_size(data: bytes, content_type: str) -> tuple[int, int] | None:
    """(width, height) from the header of a PNG or JPEG, or None if not found."""
    if content_type == "image/png" and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if content_type == "image/jpeg":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                i += 1 if marker == 0xFF else 2
                continue
            length = struct.unpack(">H", data[i + 2 : i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return width, height
            i += 2 + length
    return None


def check_content(path: Path, content_type: str) -> None:
    """Raise :class:`UploadRejected` for active PDF content or oversized images."""
    data = path.read_bytes()
    if content_type == "application/pdf" and pdf_has_active_content(data):
        raise UploadRejected("该 PDF 含有脚本、自动动作或嵌入文件，不能作为扫描件上传；"
                             "请重新扫描或“打印为 PDF”后再上传", status_code=422)
    if content_type.startswith("image/"):
        size = image_size(data[: 256 * 1024], content_type)
        if size is None:
            raise UploadRejected("无法读取图片尺寸，文件可能已损坏", status_code=422)
        width, height = size
        if width * height > MAX_PIXELS:
            raise UploadRejected(f"图片尺寸过大（{width}×{height} 像素），请缩小到 4000 万像素以内后上传",
                                 status_code=422)
