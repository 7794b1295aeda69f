"""What ``servicepoint demo`` seeds and prints for 好差评: the 评价器 pairing link on the
public address (``SERVICEPOINT_PUBLIC_URL``) and ratings that give the on-site dimensions."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import Session, col, select

from outlet.ratings.models import Rating, RatingWorkOrder
from web.cli import main
from web.db import make_engine


def test_demo_prints_the_pad_link_on_the_public_url_and_rates_every_dimension(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICEPOINT_DATA", str(tmp_path / "var"))
    monkeypatch.setenv("SERVICEPOINT_PUBLIC_URL", "https://hall.example.gov.cn/")
    monkeypatch.delenv("SERVICEPOINT_DATABASE_URL", raising=False)
    r = CliRunner().invoke(main, ["demo"])
    assert r.exit_code == 0, r.output
    pad = next(line for line in r.output.splitlines() if "评价器配对链接" in line)
    assert "https://hall.example.gov.cn/devices/activate/" in pad  # openable on the tablet as printed
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'servicepoint.db'}")
    with Session(engine) as s:
        ratings = s.exec(select(Rating).where(col(Rating.channel) == "device")).all()
        states = sorted(o.state for o in s.exec(select(RatingWorkOrder)).all())
    engine.dispose()
    for dim in ("efficiency", "competence", "attitude"):
        given = [getattr(x, dim) for x in ratings if getattr(x, dim) is not None]
        assert len(given) > len(ratings) // 2, dim  # most raters give 服务效率, 服务水平, 服务态度
        assert set(given) <= {1, 2, 3, 4, 5}
    assert states == ["closed", "open", "void"]  # closed with 满意, overdue, upheld appeal
