"""Order placement throughput over HTTP, on SQLite and PostgreSQL, against a bare-insert ceiling.

    python bench/order_throughput.py [--duration 15] [--connections 32] [--backends sqlite,postgresql]
                                     [--workers 1] [--server uvicorn|granian] [--open-loop 0.5,0.8]

Starts the real server (uvicorn, one process by default; `--workers N` runs N processes on one port)
on a fresh migrated + seeded database,
then drives POST /api/v1/orders with wrk (C, Lua-scripted: every request has its own
Idempotency-Key and one of 64 customers' tokens, picks varied baskets from the demo menus with
stock reservation). In the same run the same wrk script hits a bare FastAPI endpoint that only
inserts one row: the ceiling for this machine. Afterwards it checks that the database holds
exactly one order per 201 response. Prints orders/s, p50/p95/p99 and the ratio to the ceiling.

Open loop (`--open-loop 0.5,0.8`, the default): after the saturation run, the same server is driven at a
constant rate of those fractions of the orders/s just measured (wrk's `delay()` hook paces every send
to an absolute schedule, 64 connections so a free one is always there). A send that finds its slot
already past (every connection busy: the server fell behind) is counted as late; with no late sends the
latencies are those of an open-loop client, free of coordinated omission.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, func, select, text, update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from waimai.core.benchenv import environment, header  # noqa: E402
from waimai.core.database import Database  # noqa: E402
from waimai.core.migrate import upgrade  # noqa: E402
from waimai.core.security import issue_token  # noqa: E402
from waimai.platform.accounts.models import User  # noqa: E402
from waimai.platform.catalog.models import MenuItem, Merchant  # noqa: E402
from waimai.platform.ordering.models import IdempotencyRecord, Order  # noqa: E402
from waimai.seed import seed_demo  # noqa: E402

console = Console(width=150)
SECRET = "bench-secret-key-0123456789abcdef0123456789"  # noqa: S105 - a throwaway bench key
PG_ADMIN = os.environ.get("WAIMAI_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
CUSTOMERS = 64
IDLE_S = 3.0

LUA = r"""
local tokens = {%(tokens)s}
local baskets = {%(baskets)s}
local counter = 0
local tid = 0
statuses = {}
local threads = {}

function setup(thread)
  tid = tid + 1
  thread:set("tid", tid)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  math.randomseed(os.time() + tid * 1000003 + math.floor(os.clock() * 1000000))
  run = tostring(math.random(1, 2000000000)) .. "-" .. tostring(math.random(1, 2000000000))
end

function request()
  counter = counter + 1
  local tok = tokens[((tid * 7919 + counter) %% #tokens) + 1]
  local body = baskets[(counter %% #baskets) + 1]
  return wrk.format("POST", "/api/v1/orders", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. tok,
    ["Idempotency-Key"] = "bench-" .. run .. "-" .. counter
  }, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

%(pacing)s

function done(summary, latency, requests)
  local codes = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do codes[tostring(k)] = (codes[tostring(k)] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(codes) do table.insert(parts, string.format('"%%s": %%d', k, v)) end
  local late = 0
  for _, t in ipairs(threads) do late = late + (t:get("late") or 0) end
  io.write(string.format('WRKJSON {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p95_us": %%d, ' ..
    '"p99_us": %%d, "max_us": %%d, "late": %%d, "errors": %%d, "codes": {%%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, late,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    table.concat(parts, ", ")))
end
"""

# A constant arrival rate: each send waits for its slot on an absolute schedule (per wrk thread).
PACING = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } waimai_timespec;
int clock_gettime(int clk_id, waimai_timespec *tp);
]]
local ts = ffi.new("waimai_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local interval_ms = %(interval_ms)f
local next_slot = nil
late = 0

function delay()
  local t = now_ms()
  if next_slot == nil then next_slot = t end
  local wait = next_slot - t
  next_slot = next_slot + interval_ms
  if wait < -2 then late = late + 1 end  -- the slot had passed: every connection was busy
  if wait < 0 then return 0 end
  return math.floor(wait + 0.5)
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(port: int, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited during start-up")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("server did not start")


def prepare(url: str) -> tuple[list[str], list[str]]:
    """Migrate, seed, add bench customers; return their tokens and a set of valid baskets."""
    from waimai.core.security import hash_password

    db = Database(url)
    upgrade(db.engine)
    pw = hash_password("bench-password")
    with db.session() as s:
        seed_demo(s)
        s.execute(update(MenuItem).values(stock=None))  # stock reservation is measured in the tests
        s.execute(update(MenuItem).where(MenuItem.id % 3 == 0).values(stock=10_000_000))
        s.execute(update(Merchant).values(capacity=10_000_000, opens_at="00:00", closes_at="24:00"))
        users = [User(phone=f"1770000{i:04d}", name=f"bench{i}", role="customer", password_hash=pw)
                 for i in range(CUSTOMERS)]
        s.add_all(users)
        s.flush()
        tokens = [issue_token(secret=SECRET, user_id=u.id, role="customer", ttl_minutes=600) for u in users]
        items = list(s.execute(select(MenuItem.id, MenuItem.merchant_id, MenuItem.options)))
        s.commit()
    db.dispose()
    by_merchant: dict[int, list[int]] = {}
    for iid, mid, opts in items:
        if not any(g.get("required") for g in opts or []):
            by_merchant.setdefault(mid, []).append(iid)
    baskets = []
    for mid, ids in sorted(by_merchant.items()):
        for k in range(len(ids)):
            lines = [{"item_id": ids[k], "quantity": 1 + k % 3}]
            if len(ids) > 1:
                lines.append({"item_id": ids[(k + 1) % len(ids)], "quantity": 1})
            baskets.append(json.dumps({"merchant_id": mid, "delivery_point_id": 1 + (k * 5 + mid) % 21,
                                       "items": lines, "payment_method": "cod"}, separators=(",", ":")))
    return tokens, baskets


def run_wrk(port: int, script: Path, duration: int, connections: int, threads: int) -> dict:  # type: ignore[type-arg]
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--timeout", "5s",
                          "-s", str(script), f"http://127.0.0.1:{port}"], capture_output=True, text=True,
                         timeout=duration + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stdout[-500:]} {out.stderr[-1500:]}")
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON "))
    return json.loads(line[8:])  # type: ignore[no-any-return]


def serve(app: str, url: str, port: int, workers: int, extra_env: dict[str, str] | None = None,
          server: str = "uvicorn") -> subprocess.Popen[bytes]:
    scratch = Path(tempfile.mkdtemp(prefix="waimai-bench-"))
    env = {**os.environ, "WAIMAI_DATABASE_URL": url, "WAIMAI_SECRET_KEY": SECRET, "WAIMAI_ENV": "test",
           "WAIMAI_GATEWAY_SECRET": secrets.token_urlsafe(24),
           "WAIMAI_LOG_LEVEL": "ERROR", "WAIMAI_DRAIN_DELAY_S": "0", "PYTHONPATH": str(ROOT),
           "WAIMAI_METRICS_URL": f"sqlite:///{scratch / 'metrics.db'}", "WAIMAI_LOG_FILE": str(scratch / "l.jsonl"),
           **(extra_env or {})}
    if server == "granian":
        cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers), "--loop", "uvloop", "--log-level", "warning",
               "--no-access-log", app]
    else:
        cmd = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--log-level", "warning", "--no-access-log", "--loop", "uvloop",
               "--http", "httptools"]
    return subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server and its workers (its own process group), however far its start-up got."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def server_cpu_s(proc: subprocess.Popen[bytes]) -> float:
    """CPU seconds used so far by the server and its worker processes (user + system).

    On a machine shared with other jobs, requests/s moves with everybody else's load; CPU time per
    request hardly does, so the bench reports both."""
    total = 0.0
    root = psutil.Process(proc.pid)
    for p in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def paced_script(script: Path, rate: float, threads: int) -> Path:
    """The same wrk script with a constant arrival rate of `rate` requests/s (shared by the threads)."""
    out = script.with_name(f"{script.stem}-{rate:.0f}.lua")
    out.write_text(script.read_text().replace("-- PACING --", PACING % {"interval_ms": 1000.0 * threads / rate}))
    return out


def measure(name: str, app: str, url: str, script: Path, args: argparse.Namespace,
            extra_env: dict[str, str] | None = None, open_loop: tuple[float, ...] = (),
            rates: tuple[float, ...] = ()) -> dict:  # type: ignore[type-arg]
    """Saturation (closed loop, `--connections`), then constant rates at `open_loop` fractions of it."""
    port = free_port()
    proc = serve(app, url, port, args.workers, extra_env, args.server)
    try:
        wait_http(port, proc)
        warm = run_wrk(port, script, 1 if args.smoke else 2, args.connections, args.threads)  # warm-up
        # What the server burns with no traffic (background jobs: sampling, alert rules, leader
        # election), to be taken out of CPU per request: otherwise a slow moment on a shared machine
        # spreads it over fewer requests.
        idle0 = server_cpu_s(proc)
        idle_s = 1.0 if args.smoke else IDLE_S
        time.sleep(idle_s)
        res_idle = (server_cpu_s(proc) - idle0) / idle_s
        spy = None
        if args.profile and name.startswith("orders/"):  # py-spy samples the server (all threads) meanwhile
            out = Path(args.profile) / f"{name.replace('/', '-')}.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
            spy_bin = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
            spy = subprocess.Popen([spy_bin, "record", "-p", str(proc.pid), "-d", str(args.duration), "-r", "200",
                                    "--threads", "--gil", "-f", "raw", "-o", str(out)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        cpu0 = server_cpu_s(proc)
        res = run_wrk(port, script, args.duration, args.connections, args.threads)
        res["cpu_s"] = server_cpu_s(proc) - cpu0
        res["idle_cpu_per_s"] = res_idle
        res["cpu_s_net"] = max(0.0, res["cpu_s"] - res_idle * res["duration_us"] / 1e6)
        if spy is not None:
            spy.wait(timeout=60)
        res["warmup"] = warm["codes"].get("201", 0)
        res["rps"] = res["codes"].get("201", 0) / (res["duration_us"] / 1e6)
        res["paced"] = []
        # Fractions of this server's own saturation, or given rates (the ceiling at the orders' rates:
        # the latency floor of this machine at that moment).
        for frac, rate in [(f, f * res["rps"]) for f in open_loop] + [(0.0, r) for r in rates]:
            r = run_wrk(port, paced_script(script, rate, args.threads), args.duration, 64, args.threads)
            r.update(fraction=frac, target_rate=rate, rps=r["codes"].get("201", 0) / (r["duration_us"] / 1e6))
            res["paced"].append(r)
            res["warmup"] += r["codes"].get("201", 0)  # orders the consistency check must find
    finally:
        stop(proc)
    res["name"] = name
    return res


def backend_url(backend: str, tmp: Path, tag: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp / f'{tag}.db'}"
    name = f"waimai_bench_{tag}_{os.getpid()}"  # concurrent runs (a smoke test beside a full run) never share
    eng = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def drop_backend(url: str) -> None:
    """Drop a PostgreSQL database made by backend_url (SQLite files go with their temp directory)."""
    if url.startswith("postgresql"):
        eng = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
        eng.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="wrk threads")
    ap.add_argument("--workers", type=int, default=1, help="server processes")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    ap.add_argument("--profile", metavar="DIR", help="write py-spy's collapsed stacks of the saturated server here")
    ap.add_argument("--open-loop", default="0.5,0.8",
                    help="constant-rate runs at these fractions of the saturation rate ('' for none)")
    ap.add_argument("--smoke", action="store_true", help="seconds-long run that only checks the bench works")
    args = ap.parse_args()
    if args.smoke:
        args.duration, args.connections, args.threads, args.open_loop = 1, 4, 1, "0.5"
    fractions = tuple(float(f) for f in args.open_loop.split(",") if f.strip())
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    results = []
    inconsistent = False
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        urls = {b: backend_url(b, tmp, "orders") for b in args.backends.split(",")}
        env = environment(urls, {"server": f"{args.workers} {args.server} process(es)",
                                 "wrk": f"{args.connections} connections"})
        console.print(header(env))
        for backend, url in urls.items():
            tokens, baskets = prepare(url)
            script = tmp / "orders.lua"
            script.write_text(LUA % {"tokens": ",".join(f'"{t}"' for t in tokens),
                                     "baskets": ",".join(json.dumps(b) for b in baskets),
                                     "pacing": "-- PACING --", "run": int(time.time())})
            console.print(f"[bold]{backend}[/bold]: placing orders for {args.duration}s with "
                          f"{args.connections} connections …")
            r = measure(f"orders/{backend}", "waimai.app:create_app", url, script, args, open_loop=fractions)
            db = Database(url)
            with db.read_session() as s:
                r["orders_in_db"] = s.scalar(select(func.count()).select_from(Order))
                r["orders_with_key"] = s.scalar(select(func.count(func.distinct(IdempotencyRecord.order_id))))
            db.dispose()
            bare_url = backend_url(backend, tmp, "bare")
            console.print(f"[bold]{backend}[/bold]: bare one-row insert ceiling …")
            b = measure(f"bare-insert/{backend}", "bench.bare_app:create_app", bare_url, script, args,
                        rates=tuple(p["target_rate"] for p in r["paced"]))
            r["ratio"] = r["rps"] / b["rps"] if b["rps"] else 0.0
            for x in (r, b):
                x["cpu_ms"] = 1000 * x["cpu_s_net"] / max(1, x["codes"].get("201", 0))
            r["cpu_ratio"] = b["cpu_ms"] / r["cpu_ms"] if r["cpu_ms"] else 0.0
            results += [r, b]
            drop_backend(url)
            drop_backend(bare_url)
    t = Table(title=f"POST /api/v1/orders, {args.connections} connections, {args.workers} {args.server} "
                    f"process(es), {os.cpu_count()} cores")
    for col in ("run", "ok/s", "p50 ms", "p95 ms", "p99 ms", "non-201", "socket errors", "orders in DB",
                "vs ceiling", "server CPU ms/req (net of idle)", "vs ceiling, CPU"):
        t.add_column(col, justify="right" if col != "run" else "left")
    for r in results:
        non201 = sum(v for k, v in r["codes"].items() if k != "201")
        t.add_row(r["name"], f"{r['rps']:.0f}", f"{r['p50_us'] / 1000:.1f}", f"{r['p95_us'] / 1000:.1f}",
                  f"{r['p99_us'] / 1000:.1f}", str(non201), str(r["errors"]), str(r.get("orders_in_db", "")),
                  f"{r['ratio']:.2f}" if "ratio" in r else "", f"{r['cpu_ms']:.2f}",
                  f"{r['cpu_ratio']:.2f}" if "cpu_ratio" in r else "")
    console.print(t)
    paced = [(r["name"], p) for r in results for p in r.get("paced", [])]
    if paced:
        t2 = Table(title="open loop: constant arrival rate, 64 connections")
        for col in ("run", "share of saturation", "target/s", "ok/s", "p50 ms", "p99 ms", "max ms", "late sends",
                    "non-201"):
            t2.add_column(col, justify="right" if col != "run" else "left")
        for name, p in paced:
            non201 = sum(v for k, v in p["codes"].items() if k != "201")
            t2.add_row(name, f"{p['fraction']:.0%}" if p["fraction"] else "same rate as orders", f"{p['target_rate']:.0f}", f"{p['rps']:.0f}",
                       f"{p['p50_us'] / 1000:.1f}", f"{p['p99_us'] / 1000:.1f}", f"{p['max_us'] / 1000:.1f}",
                       str(p["late"]), str(non201))
        console.print(t2)
    for r in results:
        if "orders_in_db" in r:
            acked = r["codes"].get("201", 0) + r.get("warmup", 0)
            extra = r["orders_in_db"] - acked
            dups = r["orders_in_db"] - r["orders_with_key"]
            # wrk stops with up to `connections` requests in flight (twice: warm-up and run); those
            # orders exist although wrk never read their 201 (a retry with the key would replay it).
            runs = 2 + len(r.get("paced", []))
            ok = dups == 0 and 0 <= extra <= runs * max(args.connections, 64)
            inconsistent |= not ok
            console.print(f"{r['name']}: {r['orders_in_db']} orders in the database, {acked} answers 201 read, "
                          f"{extra} in flight when wrk stopped, {dups} duplicates: "
                          + ("consistent" if ok else "[red]INCONSISTENT[/red]"))
    print(json.dumps({"environment": env, "results": results}))
    if inconsistent:
        sys.exit(1)


if __name__ == "__main__":
    main()
