"""Remote help benchmark: prints numbers, asserts nothing.

    python bench/rtc_bench.py [--calls 20] [--streams 2,4,8,12,16] [--window 10] [--cycles 50]

Everything runs on loopback: the app under uvicorn in a thread of this process (with the
server-side aiortc recorder), in-process aiortc participants for the call set-up, and one
sender subprocess that feeds the recorder with synthetic 640×480@15 fps video plus audio
(VP8/Opus, like a browser), so the recorder's CPU and memory are measured apart from the
senders'. On a 2-core machine the sender competes with the recorder for the cores, so the
measured "sustained streams" is a lower bound; the per-core estimate uses the measured CPU.

1. accept → first remote frame, both sides (median, p90 over ``--calls`` calls);
2. recorder process RSS before and after ``--cycles`` connect/record/close cycles;
3. recorder CPU per stream and frames delivered at 2, 4, 8 … concurrent streams.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil
from sqlmodel import Session, SQLModel, select

FPS = 15


# --- the sender subprocess -----------------------------------------------------------------

async def sender_main(base: str) -> None:
    """Line protocol on stdin: ``feed <sid,sid,…> <seconds>`` → feeds run, then ``done``."""
    from remote_assist.loopback import Participant, RecorderFeed
    from remote_assist.rtc import restrict_host_addresses

    restrict_host_addresses(["127.0.0.1"])  # media stays on loopback
    teller = await Participant(base, "teller2").login()
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() == "quit":
            break
        _cmd, sids, seconds = line.split()
        feeds = [RecorderFeed(teller, int(s)) for s in sids.split(",")]
        results = await asyncio.gather(*(f.start() for f in feeds))
        ok = sum(1 for r in results if r.status_code == 200)
        await asyncio.gather(*(f.wait_connected(20) for f in feeds), return_exceptions=True)
        print(f"started {ok}", flush=True)
        await asyncio.sleep(float(seconds))
        for f in feeds:
            await f.stop()
            f.video.stop()
            f.audio.stop()
        print("done", flush=True)
    await teller.close()


# --- the server ----------------------------------------------------------------------------

class Server:
    def __init__(self, data: Path) -> None:
        import uvicorn

        from partners.demo import seed_demo
        from web.app import create_app
        from web.db import make_engine
        from web.settings import Settings

        self.settings = Settings.from_env(data_dir=data / "var", database_url=f"sqlite:///{data / 'b.db'}",
                                          secret_key_override="bench", assist_rtc_hosts=("127.0.0.1",))
        self.engine = make_engine(self.settings.database_url)
        import web.models  # noqa: F401

        SQLModel.metadata.create_all(self.engine)
        seed_demo(self.engine)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.app = create_app(self.settings)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="error",
                                                    ws="websockets-sansio"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def add_experts(engine: Any, n: int) -> list[str]:
    """Extra experts so that many calls can be open at once (an expert takes one at a time)."""
    from partners.models import Staff

    with Session(engine) as s, s.begin():
        template = s.exec(select(Staff).where(Staff.username == "expert1")).one()
        names = [f"benchexpert{i}" for i in range(n)]
        for name in names:
            s.add(Staff(username=name, display_name=name, password_hash=template.password_hash,
                        roles="expert", domain=template.domain, expert_level="town"))
    return names


async def open_session(srv: Server, teller: Any, expert: Any, *, consent: bool) -> int:
    from remote_assist import sessions
    case = new_food_case(srv.engine, srv.settings)
    r = await teller.post("/assist/requests", data={"kind": "inspection", "case_id": str(case.id)})
    rid = int(r.headers["location"].rsplit("/", 1)[1])
    r = await expert.post(f"/assist/requests/{rid}/accept")
    sid = int(r.headers["location"].rsplit("/", 1)[1])
    if consent:
        from partners.models import Staff

        with Session(srv.engine, expire_on_commit=False) as s:
            who = s.exec(select(Staff).where(Staff.username == "teller2")).one()
        await asyncio.to_thread(sessions.record_consent, srv.engine, who, sid, name="测试", role="申请人",
                                purpose="性能测试", retention_days=1, confirmed=True)
    return sid


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


# --- 1. accept → first frame -----------------------------------------------------------------

async def first_frames(srv: Server, calls: int) -> dict[str, list[float]]:
    from remote_assist.loopback import CallPeer, Participant, first_frame

    teller = await Participant(srv.url, "teller2").login()
    expert = await Participant(srv.url, "expert1").login()
    out: dict[str, list[float]] = {"teller": [], "expert": []}
    for _ in range(calls):
        case = new_food_case(srv.engine, srv.settings)
        r = await teller.post("/assist/requests", data={"kind": "help", "case_id": str(case.id)})
        rid = int(r.headers["location"].rsplit("/", 1)[1])
        t0 = time.perf_counter()
        r = await expert.post(f"/assist/requests/{rid}/accept")
        sid = int(r.headers["location"].rsplit("/", 1)[1])
        tp, ep = CallPeer(teller, sid, "teller"), CallPeer(expert, sid, "expert")
        await asyncio.gather(tp.join(), ep.join())

        async def seen(peer: CallPeer, start: float) -> float:
            await first_frame(await asyncio.wait_for(peer.remote_video, 20), 20)
            return time.perf_counter() - start

        a, b = await asyncio.gather(seen(tp, t0), seen(ep, t0))
        out["teller"].append(a)
        out["expert"].append(b)
        await ep.send({"type": "hangup"})
        await asyncio.sleep(0.2)
        await tp.close()
        await ep.close()
    await teller.close()
    await expert.close()
    return out


# --- 2 and 3. the recorder --------------------------------------------------------------------

class Sender:
    def __init__(self, url: str) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--sender", url], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def command(self, sids: list[int], seconds: float) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"feed {','.join(map(str, sids))} {seconds}\n")
        self.proc.stdin.flush()

    def wait(self, word: str) -> str:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("sender exited")
            if line.startswith(word):
                return line.strip()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        self.proc.wait(30)


async def recorder_load(srv: Server, sender: Sender, counts: list[int], window: float) -> list[dict[str, Any]]:
    from remote_assist.loopback import Participant

    runtime = srv.app.state.assist
    experts = add_experts(srv.engine, max(counts))
    teller = await Participant(srv.url, "teller2").login()
    me = psutil.Process()
    results = []
    for n in counts:
        parts = [await Participant(srv.url, name).login() for name in experts[:n]]
        sids = [await open_session(srv, teller, p, consent=True) for p in parts]
        sender.command(sids, window + 8)
        started = sender.wait("started")
        deadline = time.monotonic() + 20
        while sum(1 for s in sids if runtime.recorders.is_recording(s)) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)  # settle (encoder ramp-up, keyframes)
        held = runtime.recorders.local.manager.live
        live = [held[s] for s in sids if s in held]
        frames0 = [r.writer.stats.video_frames for r in live]
        drops0 = [r.writer.stats.dropped_frames for r in live]
        feeder = psutil.Process(sender.proc.pid)
        cpu0, s0, t0 = sum(me.cpu_times()[:2]), sum(feeder.cpu_times()[:2]), time.monotonic()
        await asyncio.sleep(window)
        cpu1, s1, t1 = sum(me.cpu_times()[:2]), sum(feeder.cpu_times()[:2]), time.monotonic()
        sender_cpu = (s1 - s0) / (t1 - t0)
        fps = [(r.writer.stats.video_frames - f) / (t1 - t0) for r, f in zip(live, frames0, strict=True)]
        drops = sum(r.writer.stats.dropped_frames - d for r, d in zip(live, drops0, strict=True))
        sender.wait("done")
        for p, sid in zip(parts, sids, strict=True):
            await p.post(f"/assist/sessions/{sid}/hangup")
            await p.close()
        cpu = (cpu1 - cpu0) / (t1 - t0)
        results.append({"streams": n, "connected": len(live), "sender": started, "cpu_cores": cpu,
                        "cpu_per_stream": cpu / max(1, len(live)), "fps_min": min(fps or [0]),
                        "fps_mean": statistics.mean(fps or [0]), "dropped": drops,
                        "sustained": len(live) == n and min(fps or [0]) >= 0.93 * FPS and drops == 0})
        print(f"  {n:3d} streams: recorder CPU {cpu * 100:5.1f}% of one core "
              f"({cpu / max(1, len(live)) * 100:4.1f}% per stream), fps min {min(fps or [0]):4.1f} "
              f"mean {statistics.mean(fps or [0]):4.1f}, dropped {drops}, senders {sender_cpu * 100:.0f}% CPU, "
              f"{'sustained' if results[-1]['sustained'] else 'NOT sustained'}", flush=True)
    await teller.close()
    return results


async def memory_cycles(srv: Server, sender: Sender, cycles: int, seconds: float) -> tuple[float, float, list[float]]:
    from remote_assist.loopback import Participant

    teller = await Participant(srv.url, "teller2").login()
    expert = await Participant(srv.url, "expert1").login()
    me = psutil.Process()
    samples: list[float] = []
    before = 0.0
    for i in range(cycles + 3):
        sid = await open_session(srv, teller, expert, consent=True)
        sender.command([sid], seconds)
        sender.wait("done")
        await expert.post(f"/assist/sessions/{sid}/hangup")
        if i == 2:  # after warm-up (codecs, caches, first allocations)
            gc.collect()
            before = me.memory_info().rss / 2**20
        if i >= 3 and (i - 2) % 10 == 0:
            gc.collect()
            samples.append(me.memory_info().rss / 2**20)
    gc.collect()
    after = me.memory_info().rss / 2**20
    await teller.close()
    await expert.close()
    return before, after, samples


def new_food_case(engine: Any, settings: Any) -> Any:
    """A fresh 食品经营许可 case at teller2's outlet (one open request per case)."""
    from outlet.intake import NewCase, create_case
    from partners.models import Matter, MatterVersion, Staff

    with Session(engine, expire_on_commit=False) as s:
        actor = s.exec(select(Staff).where(Staff.username == "teller2")).one()
        matter = s.exec(select(Matter).join(MatterVersion, MatterVersion.matter_id == Matter.id)  # type: ignore[arg-type]
                        .where(MatterVersion.name == "食品经营许可（新办）")).first()
    assert matter is not None
    return create_case(engine, actor, NewCase(matter_id=matter.id, applicant_kind="person", applicant_name="测试",
                                              id_number="11010519491231002X"),
                       pseudonym_key=settings.pseudonym_key())


async def main_async(args: argparse.Namespace, data: Path) -> None:
    from remote_assist.rtc import restrict_host_addresses

    restrict_host_addresses(["127.0.0.1"])
    srv = Server(data)
    print(f"machine: {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
          f"aiortc {__import__('aiortc').__version__}, av {__import__('av').__version__}")
    try:
        print(f"\n1. accept → first remote frame ({args.calls} calls, in-process aiortc peers, loopback)")
        times = await first_frames(srv, args.calls)
        for side in ("teller", "expert"):
            v = times[side]
            print(f"  {side:6s}: median {statistics.median(v) * 1000:6.0f} ms   p90 {pct(v, 0.9) * 1000:6.0f} ms"
                  f"   max {max(v) * 1000:6.0f} ms")
        both = [max(a, b) for a, b in zip(times["teller"], times["expert"], strict=True)]
        print(f"  both  : median {statistics.median(both) * 1000:6.0f} ms   p90 {pct(both, 0.9) * 1000:6.0f} ms")

        sender = Sender(srv.url)
        try:
            print(f"\n2. memory: {args.cycles} connect/record({args.seconds:.1f} s)/close cycles")
            before, after, samples = await memory_cycles(srv, sender, args.cycles, args.seconds)
            print(f"  RSS after warm-up {before:.1f} MiB → after {args.cycles} cycles {after:.1f} MiB "
                  f"(growth {after - before:+.1f} MiB); every 10 cycles: "
                  + ", ".join(f"{x:.0f}" for x in samples))
            print(f"\n3. recorder: 640×480@{FPS} fps VP8+Opus in, H.264+Opus Matroska out "
                  f"({args.window:.0f} s window per step)")
            counts = [int(x) for x in args.streams.split(",")]
            res = await recorder_load(srv, sender, counts, args.window)
            ok = [r for r in res if r["sustained"]] or res
            per = statistics.median(r["cpu_per_stream"] for r in ok)
            print(f"  CPU per recorded stream (median over sustained steps): {per * 100:.1f}% of one core "
                  f"→ about {1 / per:.0f} streams per core by CPU")
            print(f"  most streams sustained here without drops: {max((r['streams'] for r in ok), default=0)} "
                  f"(senders share the same {psutil.cpu_count()} cores)")
        finally:
            sender.close()
    finally:
        srv.stop()
        srv.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--streams", default="2,4,8,12,16")
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=1.5, help="recording length per memory cycle")
    parser.add_argument("--sender", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sender:
        asyncio.run(sender_main(args.sender))
        return
    with tempfile.TemporaryDirectory(prefix="rtc-bench-") as tmp:
        asyncio.run(main_async(args, Path(tmp)))


if __name__ == "__main__":
    main()
