"""Content checks of uploaded scans, before they are stored.

* PDFs with active content — JavaScript (``/JS``, ``/JavaScript``), automatic actions
  (``/OpenAction``, ``/AA``), launches, embedded files, forms that submit or import data,
  rich media — are refused: a scan never needs them and a reviewer's PDF viewer would run
  them. Names are matched after undoing ``#xx`` escapes, in the file's plain text and inside
  every stream after its filter chain (where object streams hide dictionaries), each
  decoding step capped at :data:`MAX_INFLATE` bytes; an object stream that cannot be
  decoded is refused as suspicious (:func:`pdf_has_active_content`).
* Images whose header declares more than :data:`MAX_PIXELS` pixels are refused without
  decoding them (decompression bombs: a 50000×50000 PNG is a few KB on disk and 7.5 GB in
  memory). PNG: the IHDR chunk; JPEG: the first SOF marker.
"""

from __future__ import annotations

import base64
import binascii
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
_FILTER = re.compile(rb"/Filter\s*(\[[^\]]*\]|/[A-Za-z0-9]+|\d+\s+\d+\s+R)")
_NAME = re.compile(rb"/([A-Za-z0-9]+)")
_OBJSTM = re.compile(rb"/Type\s*/ObjStm(?![A-Za-z0-9])")
_PREDICTOR = re.compile(rb"/Predictor\s+([2-9]|\d\d+)")


class Undecodable(ValueError):
    """A stream's filter chain is unknown, broken, or would decode past :data:`MAX_INFLATE`."""


def _unescape(data: bytes) -> bytes:
    return _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), data)


def _flate(data: bytes) -> bytes:
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, MAX_INFLATE)
    except zlib.error as exc:
        raise Undecodable("flate") from exc
    if d.unconsumed_tail:
        raise Undecodable("flate output over the limit")
    return out


def _ascii_hex(data: bytes) -> bytes:
    text = re.sub(rb"\s", b"", data.split(b">", 1)[0])
    try:
        return binascii.unhexlify(text + b"0" * (len(text) % 2))
    except binascii.Error as exc:
        raise Undecodable("asciihex") from exc


def _ascii85(data: bytes) -> bytes:
    text = re.sub(rb"\s", b"", data)
    text = text[2:] if text.startswith(b"<~") else text
    text = text.split(b"~>", 1)[0]
    if text.count(b"z") * 4 > MAX_INFLATE:
        raise Undecodable("ascii85 output over the limit")
    try:
        return base64.a85decode(text)
    except ValueError as exc:
        raise Undecodable("ascii85") from exc


def _run_length(data: bytes) -> bytes:
    out, i = bytearray(), 0
    while i < len(data) and data[i] != 128:
        n = data[i]
        if n < 128:
            out += data[i + 1:i + 2 + n]
            i += 2 + n
        else:
            out += data[i + 1:i + 2] * (257 - n)
            i += 2
        if len(out) > MAX_INFLATE:
            raise Undecodable("runlength output over the limit")
    return bytes(out)


def _lzw(data: bytes) -> bytes:
    """LZWDecode (PDF 32000-1 §7.4.4, EarlyChange 1): 9–12 bit codes, 256 clear, 257 end."""
    out, table = bytearray(), [bytes([i]) for i in range(256)] + [b"", b""]
    bits, nbits, buffer, previous = 0, 9, 0, b""
    for byte in data:
        buffer, bits = (buffer << 8) | byte, bits + 8
        while bits >= nbits:
            bits -= nbits
            code = (buffer >> bits) & ((1 << nbits) - 1)
            if code == 256:
                table, nbits, previous = table[:258], 9, b""
                continue
            if code == 257:
                return bytes(out)
            if code < len(table):
                entry = table[code]
            elif code == len(table) and previous:
                entry = previous + previous[:1]
            else:
                raise Undecodable("lzw")
            out += entry
            if len(out) > MAX_INFLATE:
                raise Undecodable("lzw output over the limit")
            if previous:
                table.append(previous + entry[:1])
            previous = entry
            if len(table) + 1 >= (1 << nbits) and nbits < 12:
                nbits += 1
    return bytes(out)


#: Text filters, decoded in the order the stream's /Filter lists them (abbreviations too).
DECODERS = {"FlateDecode": _flate, "Fl": _flate, "ASCIIHexDecode": _ascii_hex, "AHx": _ascii_hex,
            "ASCII85Decode": _ascii85, "A85": _ascii85, "LZWDecode": _lzw, "LZW": _lzw,
            "RunLengthDecode": _run_length, "RL": _run_length}
#: Image codecs: their data holds pixels, never dictionaries; not decoded.
IMAGE_FILTERS = frozenset({"DCTDecode", "DCT", "JPXDecode", "CCITTFaxDecode", "CCF", "JBIG2Decode"})


def decode_stream(head: bytes, body: bytes) -> bytes | None:
    """The stream's bytes after its filter chain (``head``: its dictionary), or None for
    image data (an image codec in the chain). Raises :class:`Undecodable`."""
    found = _FILTER.search(head)
    if found is None:
        return body
    if found.group(1).endswith(b"R"):
        raise Undecodable("filter given by reference")
    names = [n.decode() for n in _NAME.findall(found.group(1))]
    if _PREDICTOR.search(head):
        raise Undecodable("predictor")
    for name in names:
        if name in IMAGE_FILTERS:
            return None
        if name not in DECODERS:
            raise Undecodable(name)
        body = DECODERS[name](body)
    return body


def pdf_has_active_content(data: bytes) -> bool:
    """True when the PDF names JavaScript, automatic actions or embedded content — in its
    plain text or in any stream after its filter chain (ASCIIHex, ASCII85, Flate, LZW,
    RunLength, in any order; each step capped at :data:`MAX_INFLATE` bytes) — or holds an
    object stream (``/Type /ObjStm``, where dictionaries hide) whose chain cannot be decoded
    within the limits: what cannot be read is treated as suspicious."""
    if _ACTIVE.search(_unescape(_STREAM.sub(b"stream endstream", data))):
        return True
    for match in _STREAM.finditer(data):
        start = match.start()
        head = _unescape(data[max(data.rfind(b"obj", 0, start), start - 4096, 0):start])
        try:
            decoded = decode_stream(head, match.group(1))
        except Undecodable:
            if _OBJSTM.search(head):
                return True
            continue  # a content or image stream we cannot read holds no objects
        if decoded is None and _OBJSTM.search(head):
            return True  # objects behind an image codec: no reader would do that
        if decoded is not None and _ACTIVE.search(_unescape(decoded)):
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
