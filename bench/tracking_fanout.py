"""Live-tracking fan-out: thousands of SSE subscribers on one server process.

    python bench/tracking_fanout.py [--subscribers 5000] [--orders 500] [--seconds 20] [--rate 1.0]

Starts the real server (one uvicorn process, SQLite), gives 16 riders 30-odd orders each, opens
`--subscribers` Server-Sent-Events connections spread over the orders, then has every rider post
its position `--rate` times a second: each post fans out to every subscriber of each of the
rider's orders. Latency = time the event reached the client − the time the server stamped in it
(same machine clock). Prints delivered events/s, p50/p95/p99 latency, missed events, and the
server's resident memory per subscriber.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from sqlalchemy import insert, select, update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.order_throughput import SECRET, free_port, wait_http  # noqa: E402
from waimai.core.benchenv import environment, header  # noqa: E402
from waimai.core.database import Database, utcnow  # noqa: E402
from waimai.core.migrate import upgrade  # noqa: E402
from waimai.core.security import issue_token  # noqa: E402
from waimai.platform.accounts.models import User  # noqa: E402
from waimai.platform.delivery.models import Rider  # noqa: E402
from waimai.platform.ordering.models import Order  # noqa: E402
from waimai.seed import seed_demo  # noqa: E402

console = Console()


STREAMS_PER_WATCHER = 4  # the server's default cap on live streams per user (WAIMAI_SSE_STREAMS_PER_USER)


def prepare(url: str, n_orders: int, n_subscribers: int) -> tuple[list[int], list[tuple[int, str]], list[str]]:
    from waimai.core.deps import Principal
    from waimai.platform.ordering.schemas import LineIn, PlaceOrderIn
    from waimai.platform.ordering.service import place_order

    db = Database(url)
    upgrade(db.engine)
    with db.session() as s:
        seed_demo(s)
        s.commit()
    with db.session() as s:
        s.execute(update(Rider).values(on_shift=True, capacity=1000, x=500.0, y=500.0,
                                       shift_ends_at=utcnow().replace(year=2100)))
        riders = list(s.scalars(select(Rider).order_by(Rider.id)))
        ids = []
        for k in range(n_orders):
            out = place_order(s, customer=Principal(user_id=1, role="customer"),
                              body=PlaceOrderIn(merchant_id=1, delivery_point_id=1 + k % 21,
                                                items=[LineIn(item_id=5, quantity=1)], payment_method="cod"))
            ids.append(out.id)
        s.flush()
        for k, oid in enumerate(ids):
            s.execute(update(Order).where(Order.id == oid).values(status="picked_up",
                                                                  rider_id=riders[k % len(riders)].id))
        s.commit()
        rider_tokens = [(r.id, issue_token(secret=SECRET, user_id=r.user_id, role="rider", ttl_minutes=120))
                        for r in riders]
        # Watchers: ops accounts, each holding at most the per-user stream cap (a real crowd is many people).
        n_watchers = -(-n_subscribers // STREAMS_PER_WATCHER)
        s.execute(insert(User), [{"phone": f"1660{k:07d}", "name": f"watcher{k}", "role": "ops",
                                  "password_hash": "!"} for k in range(n_watchers)])
        watcher_ids = list(s.scalars(select(User.id).where(User.phone.like("1660%")).order_by(User.id)))
        s.commit()
        watchers = [issue_token(secret=SECRET, user_id=uid, role="ops", ttl_minutes=120) for uid in watcher_ids]
    db.dispose()
    return ids, rider_tokens, watchers


async def subscriber(port: int, order_id: int, token: str, lat: list[float], ready: asyncio.Event,
                     counter: list[int], stop: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    writer.write(f"GET /api/v1/orders/{order_id}/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                 f"Accept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    counter[0] += 1
    if counter[0] >= counter[1]:
        ready.set()
    try:
        while not stop.is_set():
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"data: {") and b'"at"' in line and b'"x"' in line:
                now = time.time()
                data = json.loads(line[6:])
                at = data["at"]
                t = time.mktime(time.strptime(at[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone + float("0" + at[19:26])
                lat.append(now - t)
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{Path(d) / 'track.db'}"
        console.print(header(environment({"sqlite": url}, {"server workers": 1,
                                                            "subscribers": f"{args.subscribers:,}"})))
        console.print(f"preparing {args.orders} orders …")
        ids, riders, watchers = prepare(url, args.orders, args.subscribers)
        port = free_port()
        env = {**os.environ, "WAIMAI_DATABASE_URL": url, "WAIMAI_SECRET_KEY": SECRET, "WAIMAI_ENV": "test",
               "WAIMAI_GATEWAY_SECRET": secrets.token_urlsafe(24),
               "WAIMAI_LOG_LEVEL": "ERROR", "WAIMAI_DRAIN_DELAY_S": "0", "WAIMAI_METRICS_URL": f"sqlite:///{Path(d) / 'm.db'}",
               "WAIMAI_LOG_FILE": str(Path(d) / "l.jsonl"), "PYTHONPATH": str(ROOT)}
        # Started once, before anything is timed.
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn",  # noqa: ASYNC220
                                 "waimai.app:create_app", "--factory", "--port", str(port),
                                 "--log-level", "warning", "--no-access-log", "--loop", "uvloop",
                                 "--backlog", "8192", "--timeout-keep-alive", "600",
                                 "--timeout-graceful-shutdown", "5"], env=env, cwd=ROOT)
        try:
            wait_http(port, proc)
            await asyncio.sleep(1.0)
            base_rss = rss_kb(proc.pid)
            lat: list[float] = []
            ready, stop = asyncio.Event(), asyncio.Event()
            counter = [0, args.subscribers]
            console.print(f"opening {args.subscribers} SSE subscribers …")
            tasks = []
            for k in range(args.subscribers):
                tasks.append(asyncio.create_task(subscriber(port, ids[k % len(ids)], watchers[k // STREAMS_PER_WATCHER], lat, ready,
                                                          counter, stop)))
                if k % 200 == 199:
                    await asyncio.sleep(0.05)
            await asyncio.wait_for(ready.wait(), 120)
            await asyncio.sleep(3.0)
            subs_rss = rss_kb(proc.pid)
            console.print(f"moving {len(riders)} riders {args.rate}×/s for {args.seconds}s …")
            sent = failed = 0
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                t_end = time.time() + args.seconds
                step = 1.0 / args.rate
                while time.time() < t_end:
                    t0 = time.time()
                    answers = await asyncio.gather(
                        *[http.post("/api/v1/riders/me/position", json={"x": 500 + sent % 50, "y": 500.0},
                                    headers={"Authorization": f"Bearer {tok}"}) for _, tok in riders],
                        return_exceptions=True)
                    failed += sum(not isinstance(a, httpx.Response) or a.status_code >= 400 for a in answers)
                    sent += 1
                    await asyncio.sleep(max(0.0, step - (time.time() - t0)))
            await asyncio.sleep(2.0)
            stop.set()
            per_post = args.subscribers  # every subscriber's order belongs to one rider who posts each round
            expected = sent * per_post
            for t in tasks:
                t.cancel()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)  # noqa: ASYNC101
            except subprocess.TimeoutExpired:
                proc.kill()
    if not lat:
        console.print(f"[red]no event reached any of the {args.subscribers} subscribers[/red] "
                      f"({sent} position rounds, {failed} posts failed)")
        sys.exit(1)
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))] if lat else float("nan")  # noqa: E731
    console.print(f"subscribers: {args.subscribers} on one process; position rounds: {sent} "
                  f"({len(riders)} riders each); events expected {expected:,}, received {len(lat):,} "
                  f"({len(lat) / max(1, expected) * 100:.1f}%)")
    console.print(f"delivery latency: p50 {statistics.median(lat) * 1000:.0f} ms, p95 {q(95) * 1000:.0f} ms, "
                  f"p99 {q(99) * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms (target p99 ≤ 1000 ms)")
    console.print(f"events delivered per second: {len(lat) / args.seconds:,.0f}; position posts that failed "
                  f"or timed out (30 s): {failed} of {sent * len(riders)}")
    console.print(f"server memory: {base_rss / 1024:.0f} MB idle → {subs_rss / 1024:.0f} MB with subscribers "
                  f"= {(subs_rss - base_rss) / args.subscribers:.1f} kB per subscriber")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subscribers", type=int, default=5000)
    ap.add_argument("--orders", type=int, default=500)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--rate", type=float, default=1.0, help="position posts per rider per second")
    ap.add_argument("--smoke", action="store_true", help="50 subscribers for 2 s: only checks the bench works")
    args = ap.parse_args()
    if args.smoke:
        args.subscribers, args.orders, args.seconds = 50, 20, 2
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
