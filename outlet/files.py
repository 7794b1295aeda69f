"""The one file store: scans, visit photos, snapshots and recordings, content-addressed as
``<root>/ab/cdef…`` named by SHA-256. Two backends behind one interface (:class:`FileStore`):

- :class:`FileStore` itself, a local directory (``$SERVICEPOINT_DATA/files``, created on
  first use) — one host;
- :class:`SharedFileStore`, a directory several hosts mount (``SERVICEPOINT_FILES_DIR`` with
  ``SERVICEPOINT_FILES_SHARED=1``; see docs/scale-out.md, "Files"). It is never created by the
  app — a missing mount must not turn into an empty local folder that only one host sees —
  and its temporary names carry the host name.

Every file is written under a temporary name inside the store (same file system), fsynced,
then renamed into place and the directory fsynced, so no reader on any host sees a partial
file. Uploads are streamed (stopping as soon as the size limit is passed), typed by their
first bytes — never by the file name or the client's content-type — and checked
(:mod:`outlet.file_checks`: no active PDF content, no image bombs) before the rename.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
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
class Stored:
    sha256: str
    size: int  # bytes


@dataclass(frozen=True)
class StoredFile(Stored):
    content_type: str


class StoreUnavailable(RuntimeError):
    """The shared file directory is not there (not mounted?): the app must not start."""


class FileStore:
    """The file store interface, local backend: ``root`` is created when first needed."""

    shared = False

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str) -> Path:
        """Where the file of ``sha256`` lives; raises :class:`FileNotFound` for a string that
        is no lowercase SHA-256 hex digest."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise FileNotFound()
        return self.root / sha256[:2] / sha256[2:]

    def open(self, sha256: str) -> Path:
        """The path of a stored file; raises :class:`FileNotFound` if it is not stored."""
        path = self.path_for(sha256)
        if not path.is_file():
            raise FileNotFound()
        return path

    @property
    def work_dir(self) -> Path:
        """Where open recordings are written before they are hashed and moved into place
        (inside the store, so a recording of a dead process can be salvaged from any host)."""
        path = self.root / "assist-work"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _prefix(self, prefix: str) -> str:
        return prefix

    def temp_file(self, prefix: str = "up-", directory: Path | None = None) -> tuple[BinaryIO, Path]:
        """A new temporary file inside the store (``tmp/`` unless ``directory``), open for writing."""
        tmp_dir = directory or self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix=self._prefix(prefix))
        return os.fdopen(fd, "wb"), Path(name)

    def put_bytes(self, data: bytes) -> Stored:
        """Store ``data`` as it is (no type checks: evidence the app made itself)."""
        fh, tmp = self.temp_file("snap-", self.work_dir)
        with fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return self.put_file(tmp)

    def put_file(self, path: Path) -> Stored:
        """Hash ``path`` and move it into the store (the source is consumed)."""
        digest, size = hashlib.sha256(), 0
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
        sha = digest.hexdigest()
        self._place(path, sha)
        return Stored(sha, size)

    def _place(self, tmp: Path, sha256: str) -> None:
        """Rename a complete, fsynced file into place (or drop it: same content stored)."""
        final = self.path_for(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            tmp.unlink(missing_ok=True)
            return
        shutil.move(str(tmp), final)  # a rename: the temporary file is inside the store
        dir_fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def sha256_of(self, sha256: str) -> str:
        """Re-hash a stored file (verification)."""
        digest = hashlib.sha256()
        with open(self.path_for(sha256), "rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def _check_name(self, claimed_name: str) -> None:
        ext = extension_of(claimed_name)
        if ext and ext not in EXTENSION_TYPES:
            raise UploadRejected(f"不支持「{ext}」类型的文件；{ALLOWED_NOTE}", status_code=415)

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
        self._place(tmp, sha)
        return StoredFile(sha, size, ctype)

    def save(self, chunks: Iterable[bytes], *, claimed_name: str, max_bytes: int) -> StoredFile:
        """Store an upload (a stream of byte chunks) after its checks; raises
        :class:`UploadRejected` with the Chinese reason and HTTP status."""
        self._check_name(claimed_name)
        fh, tmp = self.temp_file()
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
        """:meth:`save` for an upload held in memory."""
        return self.save(
            (data[i : i + CHUNK] for i in range(0, len(data), CHUNK)),
            claimed_name=claimed_name, max_bytes=max_bytes,
        )


class SharedFileStore(FileStore):
    """The shared backend: a directory that every app host mounts at its own path.
    Raises :class:`StoreUnavailable` if ``root`` is not an existing directory."""

    shared = True

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        if not self.root.is_dir():
            raise StoreUnavailable(
                f"共享文件目录 {self.root} 不存在（未挂载？）：请先挂载共享目录再启动 "
                f"(SERVICEPOINT_FILES_DIR={self.root}, SERVICEPOINT_FILES_SHARED=1)")
        self._host = socket.gethostname()[:40].replace("/", "_")

    def _prefix(self, prefix: str) -> str:
        return f"{prefix}{self._host}-"


def open_store(root: Path, *, shared: bool = False) -> FileStore:
    """The store at ``root``: the shared backend when ``shared`` (several hosts), else local."""
    return SharedFileStore(root) if shared else FileStore(root)


def read_chunks(fh: BinaryIO, size: int = CHUNK) -> Iterable[bytes]:
    """Chunks of a file-like object (e.g. Starlette's ``UploadFile.file``)."""
    while True:
        chunk = fh.read(size)
        if not chunk:
            return
        yield chunk
