"""Intake request benchmark: create case + mark materials + accept, through the real app
(sessions, CSRF, authorize, audit append, SQLite WAL), against a plain Starlette endpoint
in the same process and run. Prints both and the ratio.

    .venv/bin/python bench/intake_bench.py [--cases 200]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import warnings  # noqa: E402

from sqlmodel import Session, SQLModel, select  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import HTMLResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

warnings.filterwarnings("ignore", message="Using `httpx`")
from starlette.testclient import TestClient  # noqa: E402

import web.models  # noqa: E402,F401
from partners.demo import seed_demo  # noqa: E402
from partners.models import Matter, MatterVersion  # noqa: E402
from tests.conftest import login  # noqa: E402
from web.app import create_app  # noqa: E402
from web.db import make_engine  # noqa: E402
from web.settings import Settings  # noqa: E402

HX = {"HX-Request": "true"}


def plain_app() -> Starlette:
    async def echo(request: Request) -> HTMLResponse:
        form = await request.form()
        return HTMLResponse(f"<p>{form.get('name', '')}</p>")

    return Starlette(routes=[Route("/echo", echo, methods=["POST"])])


def bench_plain(n: int) -> list[float]:
    times = []
    with TestClient(plain_app()) as client:
        for i in range(n):
            t0 = time.perf_counter()
            r = client.post("/echo", data={"name": f"张三{i}"})
            times.append(time.perf_counter() - t0)
            assert r.status_code == 200
    return times


def bench_intake(n: int, tmp: Path) -> tuple[list[float], int]:
    settings = Settings.from_env(data_dir=tmp / "var", database_url=f"sqlite:///{tmp / 'bench.db'}",
                                 secret_key_override="bench")
    engine = make_engine(settings.database_url)
    SQLModel.metadata.create_all(engine)
    seed_demo(engine)
    with Session(engine) as s:
        matter = s.exec(select(Matter).join(MatterVersion, MatterVersion.matter_id == Matter.id)
                        .where(MatterVersion.name == "社会保障卡申领")).first()
        assert matter is not None
        matter_id = matter.id
    times: list[float] = []
    requests = 0
    with TestClient(create_app(settings)) as client:
        login(client, "teller1")
        for _ in range(n):
            t0 = time.perf_counter()
            r = client.post("/cases/new", data={"matter_id": matter_id, "applicant_kind": "person",
                                                "applicant_name": "张三", "id_number": "11010519491231002X",
                                                "phone": "13800138000"}, follow_redirects=False)
            assert r.status_code == 303, r.text[:300]
            url = r.headers["location"]
            page = client.get(url, headers=HX)
            keys = re.findall(r'id="material-([\w-]+)"', page.text)
            for key in dict.fromkeys(keys):
                r = client.post(f"{url}/materials/{key}", data={"status": "received"}, headers=HX)
                assert r.status_code == 200, r.text[:300]
            r = client.post(f"{url}/actions/accept", headers=HX)
            assert r.status_code == 200 and "已受理" in r.text, r.text[:300]
            requests += 3 + len(set(keys))
            times.append(time.perf_counter() - t0)
    engine.dispose()
    return times, requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        plain = bench_plain(args.cases * 5)
        intake, requests = bench_intake(args.cases, Path(d))
    per_req_plain = statistics.median(plain) * 1000
    per_intake = statistics.median(intake) * 1000
    per_req_intake = sum(intake) / requests * 1000
    print(f"plain Starlette form POST : median {per_req_plain:.2f} ms/request "
          f"({len(plain) / sum(plain):.0f} req/s)")
    print(f"intake (create + {requests // args.cases - 2} materials + accept, {requests // args.cases} requests): "
          f"median {per_intake:.1f} ms/intake, p90 {statistics.quantiles(intake, n=10)[-1] * 1000:.1f} ms, "
          f"{per_req_intake:.2f} ms/request on average")
    print(f"ratio intake request / plain request: {per_req_intake / per_req_plain:.1f}x")


if __name__ == "__main__":
    main()
