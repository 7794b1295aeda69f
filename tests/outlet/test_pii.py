"""Sealed personal data (outlet/pii.py): round trip, bound to its column and key, a
tampered value refused, legacy clear values read as they are."""

from __future__ import annotations

import pytest

from outlet import pii

KEY = b"k" * 32


def test_pii_seal_round_trip_and_nothing_in_clear() -> None:
    sealed = pii.seal(KEY, "13912345678", column="home_visit.contact_phone")
    assert sealed.startswith(pii.PREFIX) and "12345678" not in sealed
    assert len(sealed) <= pii.SEALED_MAX
    assert pii.seal(KEY, "13912345678", column="home_visit.contact_phone") != sealed  # fresh nonce
    assert pii.unseal(KEY, sealed, column="home_visit.contact_phone") == "13912345678"
    assert pii.seal(KEY, "", column="x") == "" and pii.unseal(KEY, "", column="x") == ""


def test_pii_sealed_value_opens_only_with_its_key_and_column() -> None:
    sealed = pii.seal(KEY, "0532-8619 0007", column="home_visit.contact_phone")
    with pytest.raises(pii.PiiError):
        pii.unseal(KEY, sealed, column="rating.contact_phone")
    with pytest.raises(pii.PiiError):
        pii.unseal(b"o" * 32, sealed, column="home_visit.contact_phone")
    tampered = sealed[:-3] + ("A" if sealed[-3] != "A" else "B") + sealed[-2:]
    with pytest.raises(pii.PiiError):
        pii.unseal(KEY, tampered, column="home_visit.contact_phone")


def test_pii_legacy_clear_value_is_read_as_is_and_masked() -> None:
    assert pii.unseal(KEY, "13912345678", column="rating.contact_phone") == "13912345678"
    assert pii.mask_phone("13912345678") == "139****5678"
