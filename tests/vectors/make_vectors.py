"""Generate the committed audit test vectors (reproducible: fixed keys, times, clocks).

    python tests/vectors/make_vectors.py [OUTDIR]     (default: tests/vectors)

Each scenario directory is an export (or a .tlog-proof with its policy); expected.json
says which error ``audit.verify`` must raise and a fragment of its message."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy.orm import Session  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from audit.checkpoint import Checkpoint  # noqa: E402
from audit.db import open_engine  # noqa: E402
from audit.export import export  # noqa: E402
from audit.log import Checkpointer  # noqa: E402
from audit.merkle import MemoryTree  # noqa: E402
from audit.models import create_tables  # noqa: E402
from audit.note import ALG_COSIGNATURE_V1, Signer  # noqa: E402
from audit.proof import prove  # noqa: E402
from audit.push import WitnessConfig  # noqa: E402
from audit.store import record  # noqa: E402
from audit.witness import Witness, create_app  # noqa: E402

ORIGIN = "audit.example.gov.cn/zhengyin"
T0 = 1_795_000_000  # fixed clock for checkpoints and cosignatures


def seed(label: str) -> bytes:
    return hashlib.sha256(b"servicepoint test vector key: " + label.encode()).digest()


LOG_KEY = Signer(ORIGIN, seed("log"))
ATTACKER_KEY = Signer(ORIGIN, seed("attacker"))
W1 = Signer("witness.bank-a.example/w1", seed("w1"), ALG_COSIGNATURE_V1)
W2 = Signer("witness.post.example/w2", seed("w2"), ALG_COSIGNATURE_V1)
EVIDENCE = {
    "scan-0001.pdf": b"%PDF-1.4 scanned business licence (test vector)\n",
    "snapshot-0002.jpg": b"\xff\xd8\xff\xe0 snapshot taken during remote inspection\n",
}


def entry(i: int) -> dict[str, Any]:
    digests = []
    if i == 4:
        digests = [{"kind": "material", "sha256": hashlib.sha256(EVIDENCE["scan-0001.pdf"]).hexdigest()}]
    if i == 9:
        digests = [{"kind": "snapshot",
                    "sha256": hashlib.sha256(EVIDENCE["snapshot-0002.jpg"]).hexdigest()}]
    return {
        "time": f"2026-11-21T08:{30 + i:02d}:00.{i * 1111:06d}Z",
        "actor": {"id": 1000 + i % 3, "role": ["teller", "expert", "reviewer"][i % 3]},
        "outlet": "QD-BANK-017" if i % 2 == 0 else "QD-POST-003",
        "partner": "BANK-A" if i % 2 == 0 else "POST",
        "action": ["case.intake", "case.accept", "assist.snapshot", "case.complete"][i % 4],
        "case": f"37021100000000000000000000000012026112{i:04d}",
        "matter": {"code": "370211000000", "version": 2},
        "grant": 40 + i % 2,
        "outcome": {"result": "done"} if i != 6 else {"result": "refused", "reason": "no_grant"},
        "digests": digests,
        "state": {"from": "received", "to": "accepted"},
        "subject": "hmac-sha256:" + base64.urlsafe_b64encode(seed(f"applicant {i}")).rstrip(b"=").decode(),
    }  # fmt: skip


def build_good(out: Path, work: Path) -> None:
    engine = open_engine(f"sqlite:///{work / 'log.db'}")
    create_tables(engine)
    witnesses = []
    for w in (W1, W2):
        wit = Witness(w, [(ORIGIN, LOG_KEY.vkey)], work / f"{w.name.split('/')[0]}.db", lambda: T0 + 60)
        witnesses.append((w, TestClient(create_app(wit), base_url=f"http://{w.name.split('/')[0]}")))

    class Router:  # one httpx-like client that routes by host to in-process witnesses
        def post(self, url: str, content: bytes) -> Any:
            for _w, client in witnesses:
                if url.startswith(str(client.base_url)):
                    return client.post(url, content=content)
            raise AssertionError(url)

    cfg = [WitnessConfig(url=str(c.base_url), vkey=w.vkey, name=w.name.split("/")[0].split(".")[1])
           for w, c in witnesses]  # fmt: skip
    cp = Checkpointer(ORIGIN, [LOG_KEY], cfg, http_client=Router(), clock=lambda: T0)  # type: ignore[arg-type]
    for i in range(12):
        with Session(engine) as s, s.begin():
            record(s, entry(i))
        if i == 4:
            cp.tick(engine)  # an earlier checkpoint at size 5, cosigned
    cp.tick(engine)
    evid = work / "evidence"
    evid.mkdir()
    for name, data in EVIDENCE.items():
        (evid / name).write_bytes(data)
    export(engine, out, cp.policy("all"), evidence=[(n, evid / n) for n in EVIDENCE])
    proof_dir = out.parent / "proof_good"
    proof_dir.mkdir()
    (proof_dir / "entry-4.tlog-proof").write_bytes(prove(engine, 4))
    shutil.copy(out / "policy", proof_dir / "policy")
    engine.dispose()


def lines_of(d: Path) -> list[bytes]:
    return (d / "entries.jsonl").read_bytes().splitlines(keepends=True)


def mutate(good: Path, root: Path) -> dict[str, dict[str, str | None]]:
    expected: dict[str, dict[str, str | None]] = {
        "good": {"error": None, "message": None},
        "proof_good/entry-4.tlog-proof": {"error": None, "message": None},
    }

    def scenario(name: str, error: str, message: str) -> Path:
        d = root / name
        shutil.copytree(good, d)
        expected[name] = {"error": error, "message": message}
        return d

    d = scenario("modified_entry", "EntryModifiedError", "entries.jsonl line 4 (index 3)")
    ls = lines_of(d)
    ls[3] = ls[3].replace(b'"grant":41', b'"grant":42', 1)  # one byte
    (d / "entries.jsonl").write_bytes(b"".join(ls))

    d = scenario("deleted_entry", "EntryDeletedError", "entry 5 is missing")
    ls = lines_of(d)
    del ls[5]
    (d / "entries.jsonl").write_bytes(b"".join(ls))

    d = scenario("inserted_entry", "EntryInsertedError", "entries.jsonl line 7: not in the log")
    ls = lines_of(d)
    ls.insert(6, ls[6].replace(b'"case.intake"', b'"case.accept"').replace(b"08:36", b"08:35"))
    (d / "entries.jsonl").write_bytes(b"".join(ls))

    d = scenario("swapped_entries", "EntriesReorderedError", "lines 3 and 4 (indexes 2 and 3)")
    ls = lines_of(d)
    ls[2], ls[3] = ls[3], ls[2]
    (d / "entries.jsonl").write_bytes(b"".join(ls))

    d = scenario("truncated_log", "TruncatedLogError", "ends after line 9")
    (d / "entries.jsonl").write_bytes(b"".join(lines_of(d)[:9]))

    d = scenario("unknown_key", "UnknownKeyError", "no signature from a trusted log key")
    cp = (d / "checkpoint").read_bytes().decode()
    body, sigs = cp.split("\n\n", 1)
    forged = Checkpoint.parse_body(body + "\n").sign([ATTACKER_KEY]).decode().split("\n\n", 1)[1]
    rest = "".join(s + "\n" for s in sigs.splitlines()[1:])
    (d / "checkpoint").write_text(body + "\n\n" + forged + rest)

    d = scenario("bad_signature", "BadSignatureError", "does not verify (forged or damaged)")
    (d / "checkpoint").write_bytes(_damage_line(d / "checkpoint", ORIGIN))

    d = scenario("missing_cosignature", "QuorumError", "witness quorum not met")
    kept = [ln for ln in (d / "checkpoint").read_text().splitlines(keepends=True)
            if not ln.startswith("\u2014 " + W2.name + " ")]  # fmt: skip
    (d / "checkpoint").write_text("".join(kept))

    d = scenario("bad_cosignature", "BadCosignatureError", "cosignature by witness post")
    (d / "checkpoint").write_bytes(_damage_line(d / "checkpoint", W2.name))

    d = scenario("forked_checkpoints", "ConsistencyError", "fork")
    other = MemoryTree.from_leaves(ln.rstrip(b"\n") for ln in lines_of(d)[:5])
    other.leaves[2] = hashlib.sha256(b"\x00another entry 2").digest()
    (d / "checkpoints" / "5").write_bytes(Checkpoint(ORIGIN, 5, other.root()).sign([LOG_KEY]))

    d = scenario("evidence_altered", "EvidenceError", "the file was altered")
    f = d / "evidence" / "scan-0001.pdf"
    f.write_bytes(f.read_bytes().replace(b"licence", b"licenze"))

    d = scenario("evidence_missing", "EvidenceError", "is missing from the export")
    (d / "evidence" / "snapshot-0002.jpg").unlink()

    pd = root / "proof_tampered"
    shutil.copytree(root / "proof_good", pd)
    p = (pd / "entry-4.tlog-proof").read_text().splitlines(keepends=True)
    extra = base64.b64decode(p[1][6:])
    p[1] = "extra " + base64.b64encode(extra.replace(b'"grant":40', b'"grant":41')).decode() + "\n"
    (pd / "entry-4.tlog-proof").write_text("".join(p))
    expected["proof_tampered/entry-4.tlog-proof"] = {
        "error": "InclusionError", "message": "entry 4: leaf at index 4 is not in the tree"}
    return expected


def _damage_line(path: Path, name: str) -> bytes:
    out = []
    for ln in path.read_text().splitlines(keepends=True):
        if ln.startswith("\u2014 " + name + " "):
            head, b64 = ln.rstrip("\n").rsplit(" ", 1)
            raw = bytearray(base64.b64decode(b64))
            raw[-1] ^= 0x01  # flip one bit of the signature
            ln = f"{head} {base64.b64encode(bytes(raw)).decode()}\n"
        out.append(ln)
    return "".join(out).encode()


def main(root: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for sub in list(root.iterdir()) if root.exists() else []:
            if sub.is_dir() and sub.name != "__pycache__":
                shutil.rmtree(sub)
        root.mkdir(parents=True, exist_ok=True)
        build_good(root / "good", Path(tmp))
        expected = mutate(root / "good", root)
        (root / "auditor.policy").write_text((root / "good" / "policy").read_text())
        (root / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
