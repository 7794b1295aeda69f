"""C2SP signed-note: Go's golang.org/x/mod/sumdb/note test vector, key IDs, cosignatures."""

from __future__ import annotations

import base64

import pytest

from audit.errors import FormatError, KeyFileError
from audit.note import (
    ALG_COSIGNATURE_V1,
    Signer,
    Verifier,
    cosign,
    cosignature_message,
    parse_note,
    sign_note,
    verify_cosignature,
)

# From golang.org/x/mod/sumdb/note (note_test.go / example_test.go).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = ("If you think cryptography is the answer to your problem,\n"
           "then you don't know what your problem is.\n")  # fmt: skip
GO_SIGNED = (GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FF"
             "YC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n").encode()  # fmt: skip


def test_note_sign_matches_go_vector() -> None:
    signer = Signer.from_skey(GO_SKEY)
    assert signer.vkey == GO_VKEY
    assert sign_note(GO_TEXT, [signer]) == GO_SIGNED
    assert signer.skey() == GO_SKEY


def test_note_go_vector_verifies_and_tampered_text_does_not() -> None:
    v = Verifier.from_vkey(GO_VKEY)
    note = parse_note(GO_SIGNED)
    assert note.text == GO_TEXT
    (sig,) = note.signatures
    assert (sig.name, sig.key_id) == ("PeterNeumann", 0xC74F20A3)
    assert v.verify(note.text.encode(), sig.sig)
    assert not v.verify(note.text.replace("answer", "Answer").encode(), sig.sig)


@pytest.mark.parametrize("bad", [
    "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
    "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "PeterNeumann+c74f20a3",
])  # fmt: skip
def test_note_verifier_rejects_bad_vkeys(bad: str) -> None:
    with pytest.raises(KeyFileError):
        Verifier.from_vkey(bad)


@pytest.mark.parametrize("data", [
    "no blank line\n\u2014 PeterNeumann AAAAAAAA\n".encode(),
    GO_SIGNED[:-1],
    GO_SIGNED.replace(b"then", b"th\x01n"),
    GO_SIGNED.replace("\u2014".encode(), b"-"),
    GO_TEXT.encode() + b"\n",
])  # fmt: skip
def test_note_parse_rejects_malformed_notes(data: bytes) -> None:
    with pytest.raises(FormatError):
        parse_note(data)


def test_note_cosignature_format_and_verification() -> None:
    w = Signer("witness.example/w1", b"\x07" * 32, ALG_COSIGNATURE_V1)
    assert w.vkey.split("+")[2].startswith(base64.b64encode(b"\x04").decode()[:1])
    body = "example.com/log\n3\n" + base64.b64encode(b"\x00" * 32).decode() + "\n"
    sig = cosign(w, body, 1679315147)
    assert len(sig.sig) == 8 + 64 and sig.sig[:8] == (1679315147).to_bytes(8, "big")
    assert cosignature_message(body, 1679315147).startswith(b"cosignature/v1\ntime 1679315147\n")
    assert verify_cosignature(w.verifier, body, sig) == 1679315147
    assert verify_cosignature(w.verifier, body.replace("3", "4"), sig) is None


def test_note_signer_repr_hides_the_private_key() -> None:
    s = Signer.from_skey(GO_SKEY)
    assert "AYEKFALV" not in repr(s) and "AYEKFALV" not in str(s)
