"""Content-addressed file store for scans: ``<files_dir>/ab/cdef…`` named by SHA-256.

Uploads are streamed to a temporary file in the store (stopping as soon as the size limit
is passed), typed by their first bytes — never by the file name or the client's
content-type — checked (:mod:`outlet.file_checks`: no active PDF content, no image
bombs) and renamed into place atomically after an fsync.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from outlet.errors import FileNotFound, UploadRejected
from outlet.file_checks import check_content

CHUNK = 64 * 1024

# (content type, label, accepted extensions)
KINDS = {
    "application/pdf": ("PDF 文档", (".pdf",)),
    "image/jpeg": ("JPEG 图片", (".jpg", ".jpeg")),
    "image/png": ("PNG 图片", (".png",)),
}
EXTENSION_TYPES = {ext: ctype for ctype, (_, exts) in KINDS.items() for ext in exts}
ALLOWED_NOTE = "仅支持 PDF、JPEG、PNG 格式的扫描件"


def sniff(head: bytes) -> str | None:
    """Content type from the first bytes, or None if it is none of PDF, JPEG, PNG."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return None


def extension_of(name: str) -> str:
    return os.path.splitext(os.path.basename(name or ""))[1].lower()


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int
    content_type: str


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise FileNotFound()
        return self.root / sha256[:2] / sha256[2:]

    def open(self, sha256: str) -> Path:
        path = self.path_for(sha256)
        if not path.is_file():
            raise FileNotFound()
        return path

    def _check_name(self, claimed_name: str) -> None:
        ext = extension_of(claimed_name)
        if ext and ext not in EXTENSION_TYPES:
            raise UploadRejected(f"不支持「{ext}」类型的文件；{ALLOWED_NOTE}", status_code=415)

    def _begin(self) -> tuple[BinaryIO, Path]:
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="up-")
        return os.fdopen(fd, "wb"), Path(name)

    def _finish(
        self, fh: BinaryIO, tmp: Path, digest: hashlib._Hash, size: int, head: bytes,
        claimed_name: str,
    ) -> StoredFile:
        if size == 0:
            raise UploadRejected("上传的文件是空的", status_code=422)
        ctype = sniff(head)
        if ctype is None:
            raise UploadRejected(f"文件内容不是 PDF、JPEG 或 PNG；{ALLOWED_NOTE}", status_code=415)
        ext = extension_of(claimed_name)
        if ext and EXTENSION_TYPES[ext] != ctype:
            raise UploadRejected(
                f"文件名后缀为「{ext}」，但内容实际是{KINDS[ctype][0]}，"
                "请确认文件无误并使用正确的后缀后重新上传",
                status_code=422,
            )
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        check_content(tmp, ctype)  # active PDF content, decompression bombs
        sha = digest.hexdigest()
        final = self.path_for(sha)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # same content already stored
            tmp.unlink(missing_ok=True)
        else:
            os.replace(tmp, final)
            dir_fd = os.open(final.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return StoredFile(sha, size, ctype)

    def save(self, chunks: Iterable[bytes], *, claimed_name: str, max_bytes: int) -> StoredFile:
        """Store a stream of byte chunks; raises :class:`UploadRejected`."""
        self._check_name(claimed_name)
        fh, tmp = self._begin()
        digest, size, head = hashlib.sha256(), 0, b""
        try:
            for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise UploadRejected(
                        f"文件超过大小上限（{max_bytes // (1024 * 1024)} MB）", status_code=413
                    )
                if len(head) < 16:
                    head += chunk[:16]
                digest.update(chunk)
                fh.write(chunk)
            return self._finish(fh, tmp, digest, size, head, claimed_name)
        finally:
            if not fh.closed:
                fh.close()
            tmp.unlink(missing_ok=True)

    def save_bytes(self, data: bytes, *, claimed_name: str, max_bytes: int) -> StoredFile:
        return self.save(
            (data[i : i + CHUNK] for i in range(0, len(data), CHUNK)),
            claimed_name=claimed_name, max_bytes=max_bytes,
        )


def read_chunks(fh: BinaryIO, size: int = CHUNK) -> Iterable[bytes]:
    """Chunks of a file-like object (e.g. Starlette's ``UploadFile.file``)."""
    while True:
        chunk = fh.read(size)
        if not chunk:
            return
        yield chunk
