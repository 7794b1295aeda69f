"""Login answer time for an existing account vs an unknown one (wrong password both), through
the real app (throttle counters, argon2id, the login session). Prints medians and the ratio;
a ratio near 1.0 means the answer time does not reveal which accounts exist.

    .venv/bin/python bench/login_bench.py [--tries 20]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore", message="Using `httpx`")

from sqlmodel import SQLModel  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

import web.models  # noqa: E402,F401
from partners.demo import seed_demo  # noqa: E402
from web.app import create_app  # noqa: E402
from web.db import make_engine  # noqa: E402
from web.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tries", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        engine = make_engine(url)
        SQLModel.metadata.create_all(engine)
        seed_demo(engine)
        engine.dispose()
        app = create_app(Settings.from_env(data_dir=Path(tmp) / "var", database_url=url,
                                           secret_key_override="bench"))
        times: dict[str, list[float]] = {"teller1": [], "nobody-here": []}
        with TestClient(app, base_url="http://testserver") as first:
            first.get("/healthz")
            for n in range(args.tries):
                for username, samples in times.items():
                    # a new address each time, so the throttle never answers first
                    c = TestClient(app, base_url="http://testserver", client=(f"10.9.{n}.{len(samples)}", 1))
                    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
                    assert token
                    t0 = time.perf_counter()
                    r = c.post("/login", data={"username": username, "password": f"wrong-{n}-password",
                                               "csrf_token": token.group(1)})
                    samples.append(time.perf_counter() - t0)
                    assert r.status_code == 401
        known, unknown = (statistics.median(v) * 1000 for v in times.values())
        print(f"login, wrong password, existing account: {known:7.1f} ms (median of {args.tries})")
        print(f"login, wrong password, unknown account:  {unknown:7.1f} ms")
        print(f"ratio existing/unknown: {known / unknown:.2f}")


if __name__ == "__main__":
    main()
