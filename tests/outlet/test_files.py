from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from outlet.errors import FileNotFound, UploadRejected
from outlet.files import FileStore, SharedFileStore, StoreUnavailable, open_store, sniff
from tests.outlet.samples import EXE, JPEG, PDF, PNG

LIMIT = 64 * 1024


@pytest.fixture(params=["local", "shared"])
def store(tmp_path: Path, request: pytest.FixtureRequest) -> FileStore:
    """Both backends of the one store interface pass every test of this module."""
    if request.param == "shared":
        (tmp_path / "files").mkdir()  # mounted by the operator, never created by the app
    return open_store(tmp_path / "files", shared=request.param == "shared")


def test_shared_store_refuses_a_missing_directory_and_never_creates_it(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="共享文件目录"):
        SharedFileStore(tmp_path / "not-mounted")
    assert not (tmp_path / "not-mounted").exists()


def test_two_hosts_on_one_shared_directory_see_each_others_files(tmp_path: Path) -> None:
    root = tmp_path / "mnt"
    root.mkdir()
    host_a, host_b = SharedFileStore(root), SharedFileStore(root)
    scan = host_a.save_bytes(PDF, claimed_name="a.pdf", max_bytes=LIMIT)
    snap = host_b.put_bytes(b"\xff\xd8\xff evidence")  # a snapshot, no upload checks
    assert host_b.open(scan.sha256).read_bytes() == PDF
    assert host_a.open(snap.sha256).read_bytes() == b"\xff\xd8\xff evidence"
    assert host_a.sha256_of(snap.sha256) == snap.sha256 == hashlib.sha256(b"\xff\xd8\xff evidence").hexdigest()
    # an open recording of host A is written inside the store, so host B can salvage it
    fh, work = host_a.temp_file("rec-", host_a.work_dir)
    fh.close()
    assert work.parent == host_b.work_dir and host_a._host in work.name
    blobs = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert blobs == sorted([f"{scan.sha256[:2]}/{scan.sha256[2:]}", f"{snap.sha256[:2]}/{snap.sha256[2:]}",
                            work.relative_to(root).as_posix()])  # no temporary file left


def test_settings_pick_the_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from web.settings import Settings

    monkeypatch.delenv("SERVICEPOINT_FILES_DIR", raising=False)
    monkeypatch.delenv("SERVICEPOINT_FILES_SHARED", raising=False)
    local = Settings.from_env(data_dir=tmp_path / "var")
    assert local.files_dir == tmp_path / "var" / "files" and type(local.file_store()) is FileStore
    monkeypatch.setenv("SERVICEPOINT_FILES_DIR", str(tmp_path / "mnt"))
    monkeypatch.setenv("SERVICEPOINT_FILES_SHARED", "1")
    shared = Settings.from_env(data_dir=tmp_path / "var")
    with pytest.raises(StoreUnavailable):
        shared.file_store()
    (tmp_path / "mnt").mkdir()
    store = shared.file_store()
    assert isinstance(store, SharedFileStore) and store.root == tmp_path / "mnt"


@pytest.mark.parametrize(
    ("data", "name", "ctype"),
    [(PDF, "身份证.pdf", "application/pdf"), (PNG, "scan.PNG", "image/png"),
     (JPEG, "photo.jpeg", "image/jpeg"), (JPEG, "photo.jpg", "image/jpeg"),
     (PNG, "no-extension", "image/png")],
)
def test_store_accepts_real_scans_by_content(store: FileStore, data: bytes, name: str, ctype: str) -> None:
    stored = store.save_bytes(data, claimed_name=name, max_bytes=LIMIT)
    assert stored.content_type == ctype
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    path = store.open(stored.sha256)
    assert path == store.root / stored.sha256[:2] / stored.sha256[2:]
    assert path.read_bytes() == data


def test_store_is_content_addressed_and_deduplicates(store: FileStore) -> None:
    a = store.save_bytes(PDF, claimed_name="a.pdf", max_bytes=LIMIT)
    b = store.save_bytes(PDF, claimed_name="b.pdf", max_bytes=LIMIT)
    assert a.sha256 == b.sha256
    files = [p for p in store.root.rglob("*") if p.is_file()]
    assert len(files) == 1  # one blob, no temp files left


def test_store_refuses_an_exe_renamed_pdf(store: FileStore) -> None:
    with pytest.raises(UploadRejected) as exc:
        store.save_bytes(EXE, claimed_name="申请表.pdf", max_bytes=LIMIT)
    assert exc.value.status_code == 415
    assert "不是 PDF、JPEG 或 PNG" in exc.value.message


def test_store_refuses_a_png_named_pdf(store: FileStore) -> None:
    with pytest.raises(UploadRejected) as exc:
        store.save_bytes(PNG, claimed_name="scan.pdf", max_bytes=LIMIT)
    assert exc.value.status_code == 422
    assert "「.pdf」" in exc.value.message and "PNG 图片" in exc.value.message


def test_store_refuses_an_unsupported_extension_before_reading(store: FileStore) -> None:
    def never() -> object:
        raise AssertionError("read the body of a .exe")
        yield b""

    with pytest.raises(UploadRejected) as exc:
        store.save(never(), claimed_name="setup.exe", max_bytes=LIMIT)  # type: ignore[arg-type]
    assert exc.value.status_code == 415


def test_store_stops_reading_past_the_size_limit(store: FileStore) -> None:
    consumed = []

    def chunks() -> object:
        for i in range(100):
            consumed.append(i)
            yield b"%PDF-" + b"x" * 16 * 1024

    with pytest.raises(UploadRejected) as exc:
        store.save(chunks(), claimed_name="big.pdf", max_bytes=LIMIT)  # type: ignore[arg-type]
    assert exc.value.status_code == 413
    assert len(consumed) < 10  # stopped early, did not drain the stream
    assert not [p for p in store.root.rglob("*") if p.is_file()]


def test_store_refuses_an_empty_file(store: FileStore) -> None:
    with pytest.raises(UploadRejected) as exc:
        store.save_bytes(b"", claimed_name="x.pdf", max_bytes=LIMIT)
    assert exc.value.status_code == 422


def test_store_open_rejects_bad_or_unknown_digests(store: FileStore) -> None:
    with pytest.raises(FileNotFound):
        store.open("../../etc/passwd")
    with pytest.raises(FileNotFound):
        store.open("0" * 64)


def test_sniff_ignores_names_and_knows_three_types() -> None:
    assert sniff(PDF[:16]) == "application/pdf"
    assert sniff(JPEG[:16]) == "image/jpeg"
    assert sniff(PNG[:16]) == "image/png"
    assert sniff(EXE[:16]) is None
    assert sniff(b"GIF89a") is None
