"""``$DATA/keys/pii.key`` (outlet/pii.py): created on a first start, never silently replaced
when sealed phones exist; a lost or wrong key is said in words at startup and on the page
(503, not a 500); phones stored in clear by older versions are sealed at startup."""

from __future__ import annotations

from bs4 import BeautifulSoup
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from starlette.testclient import TestClient

from outlet import pii
from outlet.demo import seed_demo_cases
from outlet.ratings import submit
from outlet.ratings.demo import seed_demo_ratings
from outlet.ratings.models import Rating, RatingWorkOrder
from tests.conftest import login
from web.app import check_pii_key
from web.settings import Settings


def _anonymous_order(engine: Engine, settings: Settings) -> tuple[int, int]:
    """The demo's overdue 差评 whose anonymous rater left a call-back number: (order, rating)."""
    seed_demo_cases(engine, settings.pseudonym_key())
    seed_demo_ratings(engine, pii_key=settings.pii_key())
    with Session(engine) as s:
        rating = s.exec(select(Rating).where(col(Rating.contact_phone).is_not(None))).one()
        order = s.exec(select(RatingWorkOrder).where(RatingWorkOrder.rating_id == rating.id)).one()
        assert rating.id is not None and order.id is not None
        return order.id, rating.id


def _message(response) -> str:  # type: ignore[no-untyped-def]
    return BeautifulSoup(response.text, "html.parser").get_text(" ", strip=True)


def test_a_lost_or_wrong_pii_key_is_a_clear_page_and_a_startup_message(
        client: TestClient, demo: Engine, settings: Settings) -> None:
    assert settings.pii_key_file.exists()  # the first start made it
    order, _ = _anonymous_order(demo, settings)
    login(client, "lead1")
    page = client.get(f"/ratings/orders/{order}")
    assert page.status_code == 200 and "139****5678" in page.text

    good = settings.pii_key_file.read_text()
    settings.pii_key_file.unlink()  # lost: not restored with the backup
    page = client.get(f"/ratings/orders/{order}")
    assert page.status_code == 503
    assert "pii.key 缺失" in _message(page) and "从备份恢复" in _message(page)
    problem = check_pii_key(settings, demo)  # what the next start says …
    assert problem is not None and "pii.key 缺失" in problem and "1 条" in problem
    assert not settings.pii_key_file.exists()  # … and it does not make a new key over the lost one

    settings.pii_key_file.write_text("ab" * 32)  # another server's key
    page = client.get(f"/ratings/orders/{order}")
    assert page.status_code == 503 and "不符" in _message(page)
    problem = check_pii_key(settings, demo)
    assert problem is not None and "不符" in problem

    settings.pii_key_file.write_text(good)  # restored from the backup
    assert check_pii_key(settings, demo) is None
    assert client.get(f"/ratings/orders/{order}").status_code == 200


def test_phones_stored_in_clear_by_an_older_version_are_sealed_at_startup(
        client: TestClient, demo: Engine, settings: Settings) -> None:
    _, rating_id = _anonymous_order(demo, settings)
    with Session(demo) as s, s.begin():  # as an older version stored it
        row = s.get(Rating, rating_id)
        assert row is not None
        row.contact_phone = "13912345678"
        s.add(row)
    assert check_pii_key(settings, demo) is None
    with Session(demo) as s:
        stored = s.get(Rating, rating_id).contact_phone  # type: ignore[union-attr]
    assert stored is not None and pii.is_sealed(stored) and "13912345678" not in stored
    assert pii.unseal(settings.pii_key(), stored, column=submit.PHONE_COLUMN) == "13912345678"
    assert pii.seal_legacy(demo, settings.pii_key()) == 0  # idempotent: nothing left in clear
