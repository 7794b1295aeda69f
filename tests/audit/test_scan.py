"""The streaming verifier (audit/scan.py) computes exactly RFC 6962's tree hashes,
whatever the block size, the number of processes and the tree size."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from audit import merkle, scan
from audit.errors import FormatError


def _line(i: int, digest: str | None = None) -> bytes:
    d = f'[{{"kind":"material","sha256":"{digest}"}}]' if digest else "[]"
    return f'{{"action":"case.intake","digests":{d},"grant":{i},"v":1}}'.encode()


def _write(path: Path, n: int) -> list[bytes]:
    lines = [_line(i, hashlib.sha256(b"%d" % i).hexdigest() if i % 5 == 0 else None)
             for i in range(n)]  # fmt: skip
    path.write_bytes(b"".join(x + b"\n" for x in lines))
    return lines


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("block", [64, 1000, 1 << 20])
def test_scan_root_and_prefix_roots_match_rfc6962(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int, block: int
) -> None:
    monkeypatch.setattr(scan, "BLOCK", block)
    for n in (1, 2, 3, 7, 8, 9, 33, 70):
        path = tmp_path / f"e{n}.jsonl"
        lines = _write(path, n)
        hashes = [merkle.leaf_hash(x) for x in lines]
        want = {m for m in range(1, n + 1)}
        d5 = hashlib.sha256(b"5").hexdigest()
        res = scan.scan(path, want_roots=want, want_digests={d5}, workers=workers)
        assert res.count == n
        assert res.root == merkle.root_from_leaf_hashes(hashes)
        for m in want:
            assert res.roots[m] == merkle.root_from_leaf_hashes(hashes[:m]), (n, m)
        assert res.bad is None
        assert res.digests == ({d5: (6, 5)} if n > 5 else {})


@pytest.mark.parametrize("workers", [0, 2])
def test_scan_names_the_first_non_canonical_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setattr(scan, "BLOCK", 100)
    path = tmp_path / "e.jsonl"
    lines = _write(path, 20)
    lines[12] = lines[12].replace(b'"v":1}', b'"v":1 }')
    lines[15] = b"{}"
    path.write_bytes(b"".join(x + b"\n" for x in lines))
    res = scan.scan(path, workers=workers)
    assert res.root == merkle.root_from_leaf_hashes([merkle.leaf_hash(x) for x in lines])
    assert res.bad is not None
    assert "line 13 (index 12): not a canonical version 1 audit entry" in str(res.bad)
    strict = scan.scan(_strict_case(tmp_path), strict=scan.strict_check, workers=workers)
    assert "line 2 (index 1): not canonical JSON" in str(strict.bad)


def _strict_case(tmp_path: Path) -> Path:
    path = tmp_path / "s.jsonl"
    lines = _write(path, 3)
    lines[1] = lines[1].replace(b'"grant":1', b'"grant": 1')
    path.write_bytes(b"".join(x + b"\n" for x in lines))
    return path


def test_scan_rejects_a_last_line_without_newline(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    _write(path, 4)
    path.write_bytes(path.read_bytes()[:-1])
    for workers in (0, 2):
        with pytest.raises(FormatError, match="line 4: does not end with a newline"):
            scan.scan(path, workers=workers)
