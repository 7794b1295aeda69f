"""Uploads with active PDF content or absurd image dimensions are refused before storing."""

from __future__ import annotations

import base64
import binascii
import struct
import zlib
from pathlib import Path

import pytest

from outlet.errors import UploadRejected
from outlet.file_checks import MAX_INFLATE, decode_stream, image_size, pdf_has_active_content
from outlet.files import FileStore
from tests.outlet.samples import JPEG, PDF, png_bytes

LIMIT = 1024 * 1024


def with_catalog(extra: bytes) -> bytes:
    return PDF.replace(b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Catalog /Pages 2 0 R " + extra + b" >>")


def compressed_object_stream(body: bytes) -> bytes:
    data = zlib.compress(body)
    obj = b"5 0 obj\n<< /Type /ObjStm /Filter /FlateDecode /Length %d >>\nstream\n" % len(data) + data + b"\nendstream\nendobj\n"
    return PDF.replace(b"xref\n", obj + b"xref\n", 1)


@pytest.mark.parametrize(
    "pdf",
    [
        with_catalog(b"/OpenAction << /S /JavaScript /JS (app.alert(1)) >>"),
        with_catalog(b"/AA << /O 6 0 R >>"),
        with_catalog(b"/Names << /J#61vaScript 7 0 R >>"),  # hex-escaped name
        compressed_object_stream(b"<< /S /JavaScript /JS (this.exportDataObject()) >>"),
        with_catalog(b"/Names << /EmbeddedFiles 8 0 R >>"),
    ],
    ids=["openaction-js", "additional-actions", "escaped-name", "inside-object-stream", "embedded-file"],
)
def test_pdf_with_active_content_is_refused(tmp_path: Path, pdf: bytes) -> None:
    assert pdf_has_active_content(pdf)
    store = FileStore(tmp_path / "files")
    with pytest.raises(UploadRejected, match="脚本"):
        store.save_bytes(pdf, claimed_name="scan.pdf", max_bytes=LIMIT)
    assert not [p for p in store.root.rglob("*") if p.is_file()]  # nothing kept


def test_plain_scan_pdf_is_accepted(tmp_path: Path) -> None:
    assert not pdf_has_active_content(PDF)
    assert not pdf_has_active_content(compressed_object_stream(b"<< /Type /Font /JSX 1 >>"))
    FileStore(tmp_path / "files").save_bytes(PDF, claimed_name="scan.pdf", max_bytes=LIMIT)


def test_image_dimensions_are_read_from_the_header() -> None:
    assert image_size(png_bytes(4, 3), "image/png") == (4, 3)
    assert image_size(JPEG, "image/jpeg") == (16, 16)


def test_png_bomb_is_refused_without_decoding(tmp_path: Path) -> None:
    bomb = bytearray(png_bytes(4, 4))
    ihdr = struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0)
    bomb[16:29] = ihdr
    bomb[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    with pytest.raises(UploadRejected, match="50000×50000"):
        FileStore(tmp_path / "files").save_bytes(bytes(bomb), claimed_name="bomb.png", max_bytes=LIMIT)


def test_jpeg_bomb_is_refused(tmp_path: Path) -> None:
    sof = JPEG.index(b"\xff\xc0")
    bomb = JPEG[: sof + 5] + struct.pack(">HH", 60000, 60000) + JPEG[sof + 9 :]
    with pytest.raises(UploadRejected, match="60000×60000"):
        FileStore(tmp_path / "files").save_bytes(bomb, claimed_name="bomb.jpg", max_bytes=LIMIT)


def object_stream(body: bytes, filters: bytes) -> bytes:
    obj = (b"5 0 obj\n<< /Type /ObjStm /Filter %s /Length %d >>\nstream\n" % (filters, len(body))
           + body + b"\nendstream\nendobj\n")
    return PDF.replace(b"xref\n", obj + b"xref\n", 1)


JS = b"<< /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >>"


@pytest.mark.parametrize(
    ("body", "filters"),
    [
        (base64.a85encode(zlib.compress(JS), adobe=True), b"[/ASCII85Decode /FlateDecode]"),
        (binascii.hexlify(zlib.compress(JS)) + b">", b"[/AHx /Fl]"),
        (bytes([len(JS) - 1]) + JS + b"\x80", b"/RunLengthDecode"),
        (zlib.compress(base64.a85encode(JS, adobe=True)), b"[/FlateDecode /A85]"),
        (b"\x00" * 40, b"[/Crypt]"),  # an unknown chain: cannot be read
        (b"\x00" * 40, b"/JBIG2Decode"),  # objects behind an image codec
        (b"garbage that is no flate data", b"/FlateDecode"),  # a broken chain
        (zlib.compress(b" " * (MAX_INFLATE + 1)), b"/FlateDecode"),  # a decompression bomb
    ],
    ids=["a85-flate", "hex-flate", "runlength", "flate-a85", "unknown-filter", "image-codec", "broken", "bomb"],
)
def test_object_streams_are_read_through_filter_chains_or_refused(tmp_path: Path, body: bytes,
                                                                   filters: bytes) -> None:
    pdf = object_stream(body, filters)
    assert pdf_has_active_content(pdf)
    with pytest.raises(UploadRejected):
        FileStore(tmp_path / "files").save_bytes(pdf, claimed_name="scan.pdf", max_bytes=64 * LIMIT)


def test_filter_chains_decode_to_the_plain_bytes() -> None:
    assert decode_stream(b"/Filter /LZWDecode", bytes.fromhex("800B6050220C0C8501")) == b"-----A---B"  # ISO 32000-1 7.4.4.2
    assert decode_stream(b"/Filter [/A85 /RL]", base64.a85encode(b"\x02abc\xfez\x80", adobe=True)) == b"abczzz"
    assert decode_stream(b"/Filter /DCTDecode", b"\xff\xd8") is None  # image data: not decoded
    clean = object_stream(base64.a85encode(zlib.compress(b"<< /Type /Font /JSX 1 >>"), adobe=True),
                          b"[/ASCII85Decode /FlateDecode]")
    assert not pdf_has_active_content(clean)
