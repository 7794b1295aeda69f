"""Scale-out on the real PostgreSQL server: two `servicepoint serve` processes on two ports
share one database. Live events and call signaling cross between them; killing one process
in the middle of a burst loses no acknowledged action and the checkpoint signer moves."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from websockets.asyncio.client import ClientConnection, connect

import audit
from tests.web.test_crash_server import CLI, _free_port, _logged_in, _start
from web.db import make_engine

pytestmark = pytest.mark.postgres
WAIT = 20.0  # seconds: bounded waits for pushes, not speed goals


class Cluster:
    def __init__(self, tmp: Path) -> None:
        from tests.conftest import new_pg_database

        self.tmp = tmp
        self.url = new_pg_database()
        shared = tmp / "mnt-files"  # the files of both processes: the shared-directory backend
        shared.mkdir()
        self.env = {**os.environ, "SERVICEPOINT_DATA": str(tmp / "var"), "SERVICEPOINT_DATABASE_URL": self.url,
                    "SERVICEPOINT_CHECKPOINT_INTERVAL": "0.5", "SERVICEPOINT_FILES_DIR": str(shared),
                    "SERVICEPOINT_FILES_SHARED": "1"}
        subprocess.run([*CLI, "demo"], env=self.env, check=True, capture_output=True, timeout=300)
        self.ports = [_free_port(), _free_port()]
        self.procs = [_start(self.env, port, tmp / f"server-{i}.log") for i, port in enumerate(self.ports)]

    def base(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i]}"

    def query(self, sql: str, **params: Any) -> list[Any]:
        engine = make_engine(self.url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(sql), params).all())
        finally:
            engine.dispose()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(20)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.stop()


async def socket(client: httpx.Client, path: str) -> ClientConnection:
    base = str(client.base_url).rstrip("/")
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    return await connect(base.replace("http", "ws", 1) + path,
                         additional_headers={"Cookie": cookie, "Origin": base})


async def until_message(ws: ClientConnection, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        while True:
            msg = json.loads(await ws.recv())
            if msg.get("type") == kind:
                return dict(msg)


def test_scale_out_request_on_one_process_is_pushed_and_signaled_on_the_other(cluster: Cluster) -> None:
    (matter_id,), = cluster.query(
        "SELECT matter_id FROM matterversion WHERE name = '食品经营许可（新办）' LIMIT 1")
    teller = _logged_in(cluster.base(0), "teller2")  # the outlet's pages come from process A
    expert = _logged_in(cluster.base(1), "expert1")  # the expert's from process B

    async def scenario() -> dict[str, Any]:
        expert_feed = await socket(expert, "/assist/events")
        teller_feed = await socket(teller, "/assist/events")
        await asyncio.sleep(0.5)  # both feeds registered before the request exists
        r = await asyncio.to_thread(teller.post, "/assist/requests", data={
            "kind": "help", "matter_id": str(matter_id), "topic": "经营场所咨询"})
        rid = int(str(r.url).rsplit("/", 1)[1])
        pushed = await until_message(expert_feed, "queue")
        queue_page = await asyncio.to_thread(expert.get, "/assist/", headers={"HX-Request": "true"})
        r = await asyncio.to_thread(expert.post, f"/assist/requests/{rid}/accept")
        sid = int(str(r.url).rsplit("/", 1)[1])
        accepted = await until_message(teller_feed, "accepted")
        t_call = await socket(teller, f"/assist/sessions/{sid}/ws")
        t_welcome = await until_message(t_call, "welcome")
        e_call = await socket(expert, f"/assist/sessions/{sid}/ws")
        e_welcome = await until_message(e_call, "welcome")
        await until_message(t_call, "peer-joined")
        await e_call.send(json.dumps({"type": "offer", "sdp": "v=0 expert"}))
        for n in range(5):
            await e_call.send(json.dumps({"type": "ice", "candidate": {"n": n}}))
        offer = await until_message(t_call, "offer")
        ice = [(await until_message(t_call, "ice"))["candidate"]["n"] for _ in range(5)]
        await t_call.send(json.dumps({"type": "answer", "sdp": "v=0 teller"}))
        answer = await until_message(e_call, "answer")
        await e_call.send(json.dumps({"type": "hangup"}))
        hangup = await until_message(t_call, "hangup")
        for ws in (expert_feed, teller_feed, t_call, e_call):
            await ws.close()
        return {"rid": rid, "sid": sid, "pushed": pushed, "queue": queue_page.text, "accepted": accepted,
                "t_welcome": t_welcome, "e_welcome": e_welcome, "offer": offer, "ice": ice,
                "answer": answer, "hangup": hangup}

    got = asyncio.run(scenario())
    assert f'data-request-id="{got["rid"]}"' in got["queue"]
    assert got["accepted"]["url"] == f"/assist/sessions/{got['sid']}"
    assert (got["t_welcome"]["peer_present"], got["e_welcome"]["peer_present"]) == (False, True)
    assert got["offer"] == {"type": "offer", "sdp": "v=0 expert", "from": "expert"}
    assert got["ice"] == [0, 1, 2, 3, 4]  # in order across processes
    assert got["answer"]["sdp"] == "v=0 teller" and got["hangup"]["reason"] == "hangup"
    [(state,)] = cluster.query("SELECT state FROM assist_session WHERE id = :sid", sid=got["sid"])
    assert state == "ended"


@pytest.mark.timeout(300)
def test_scale_out_process_killed_mid_burst_loses_nothing_and_signer_moves(cluster: Cluster) -> None:
    (matter_id,), = cluster.query(
        "SELECT matter_id FROM matterversion WHERE name = '社会保障卡申领' LIMIT 1")
    entries_before = cluster.query("SELECT count(*) FROM audit_entries")[0][0]
    form = {"matter_id": str(matter_id), "applicant_kind": "person", "applicant_name": "张三",
            "id_number": "11010519491231002X", "phone": "13800138000"}
    acknowledged: list[str] = []
    lock, stop = threading.Lock(), threading.Event()

    def burst(i: int) -> None:
        try:
            client = _logged_in(cluster.base(i % 2), "teller1")
        except httpx.HTTPError:
            return  # a slow login on a loaded machine: the other threads carry the burst
        while not stop.is_set():
            try:
                r = client.post("/cases/new", data=form, headers={"HX-Request": "true"})
            except httpx.HTTPError:
                if i % 2 == 0:
                    return  # process A died under us: this one was never acknowledged
                continue
            location = r.headers.get("HX-Redirect") or r.headers.get("location") or ""
            if location.startswith("/cases/"):
                with lock:
                    acknowledged.append(location.removeprefix("/cases/"))

    signer_before = _lease_holder(cluster)
    workers = [threading.Thread(target=burst, args=(i,)) for i in range(8)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    holder = _lease_holder(cluster)
    victim = 0 if holder and f"-{cluster.procs[0].pid}-" in holder else 1
    cluster.procs[victim].send_signal(signal.SIGKILL)  # the process that signs checkpoints
    cluster.procs[victim].wait(10)
    time.sleep(1.0)  # the survivor keeps acknowledging meanwhile
    stop.set()
    for w in workers:
        w.join(30)
    assert len(acknowledged) >= 40, "the burst did not get going"
    assert signer_before is not None

    survivor = cluster.procs[1 - victim].pid
    deadline = time.monotonic() + 30  # lease ttl (3 × 0.5 s, at least 5 s) plus a round
    while time.monotonic() < deadline and f"-{survivor}-" not in (_lease_holder(cluster) or ""):
        time.sleep(0.2)
    assert f"-{survivor}-" in (_lease_holder(cluster) or ""), "the checkpoint signer did not move"
    total = cluster.query("SELECT count(*) FROM audit_entries")[0][0]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and cluster.query("SELECT max(size) FROM audit_checkpoints")[0][0] < total:
        time.sleep(0.2)
    assert cluster.query("SELECT max(size) FROM audit_checkpoints")[0][0] == total

    cases = {n for (n,) in cluster.query("SELECT number FROM service_case")}
    logged = {n for (n,) in cluster.query("SELECT case_no FROM audit_entries WHERE action = 'case.create'")}
    indexes = [i for (i,) in cluster.query("SELECT idx FROM audit_entries ORDER BY idx")]
    missing = [n for n in acknowledged if n not in cases or n not in logged]
    assert missing == [], f"acknowledged but lost: {missing[:5]}"
    assert logged <= cases, "an audit entry without its action"
    assert indexes == list(range(len(indexes))) and len(indexes) > entries_before
    export_dir = cluster.tmp / "export"
    out = subprocess.run([*CLI, "audit", "export", str(export_dir)], env=cluster.env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    audit.verify(export_dir)


def _lease_holder(cluster: Cluster) -> str | None:
    rows = cluster.query("SELECT holder FROM hub_lease WHERE name = 'audit.checkpoint'")
    return rows[0][0] if rows else None


def test_serve_refuses_several_workers_on_sqlite(tmp_path: Path) -> None:
    env = {**os.environ, "SERVICEPOINT_DATA": str(tmp_path / "var")}
    env.pop("SERVICEPOINT_DATABASE_URL", None)
    out = subprocess.run([*CLI, "serve", "--workers", "2"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "--workers > 1 需要 PostgreSQL" in out.stderr
    assert not (tmp_path / "var" / "servicepoint.db").exists()  # refused before touching anything
    assert re.search(r"SERVICEPOINT_DATABASE_URL", out.stderr)


@pytest.mark.timeout(300)
def test_scale_out_logout_on_one_process_closes_the_socket_on_the_other(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The session.ended event crosses processes (NOTIFY): with the periodic re-check turned
    off, the socket on process B closes only because process A published the logout."""
    from websockets.exceptions import ConnectionClosed

    monkeypatch.setenv("SERVICEPOINT_LIVE_RECHECK_SECONDS", "3600")
    cluster = Cluster(tmp_path)
    try:
        expert = _logged_in(cluster.base(0), "expert1")
        on_b = httpx.Client(base_url=cluster.base(1), cookies=expert.cookies)

        async def scenario() -> int | None:
            feed = await socket(on_b, "/assist/events")
            await feed.send(json.dumps({"type": "ping"}))
            await until_message(feed, "pong")  # registered on B
            await asyncio.to_thread(expert.post, "/logout")  # ended on A
            try:
                async with asyncio.timeout(WAIT):
                    while True:
                        await feed.recv()
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None
            return None

        assert asyncio.run(scenario()) == 4401
    finally:
        cluster.stop()
