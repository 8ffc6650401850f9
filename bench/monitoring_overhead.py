"""Cost of the firewall's first line: order throughput with monitoring on vs off, same run.

    python bench/monitoring_overhead.py [--duration 15] [--rounds 2] [--backend sqlite]

"On" is the default service: the request middleware (metrics, request id, access log line in
ECS JSON to the log file), database statement timing, per-order counters, and the sampler and
probes every 5 s writing to the embedded store. "Off" is WAIMAI_MONITORING=false. Rounds
alternate off/on to spread machine noise. It also prints the embedded store's footprint after a
month at the default resolution (steady state: 2 days of 5-second samples, 14 days of 1-minute
and 30 days of 15-minute rollups for every key series).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.order_throughput import LUA, backend_url, drop_backend, measure, prepare  # noqa: E402
from waimai.core.benchenv import environment, header  # noqa: E402
from waimai.firewall.monitoring.sampler import SERIES  # noqa: E402
from waimai.firewall.monitoring.store import MINUTE, QUARTER, RAW, MetricStore, samples_t  # noqa: E402

console = Console()


def month_footprint(tmp: Path, interval_s: int = 5, days: float = 30) -> tuple[int, int]:
    st = MetricStore(f"sqlite:///{tmp / 'month.db'}")
    with st.engine.begin() as conn:
        ids = [st._series_id(conn, n) for n in SERIES]  # noqa: SLF001 - bench reaches in on purpose
    end = int(time.time()) // 900 * 900
    k = days / 30  # a smoke run writes a slice of the month
    plan = [(RAW, interval_s, int(2 * 86400 * k)), (MINUTE, 60, int(14 * 86400 * k)),
            (QUARTER, 900, int(30 * 86400 * k))]
    rows = 0
    for res, step, span in plan:
        batch = []
        for t in range(end - span, end, step):
            for sid in ids:
                batch.append({"series_id": sid, "resolution": res, "ts": t, "value": 1.5, "vmin": 1.0,
                              "vmax": 2.0, "n": max(1, step // interval_s)})
            if len(batch) >= 50_000:
                with st.engine.begin() as conn:
                    conn.execute(samples_t.insert(), batch)
                rows += len(batch)
                batch = []
        if batch:
            with st.engine.begin() as conn:
                conn.execute(samples_t.insert(), batch)
            rows += len(batch)
    with st.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    size = st.footprint_bytes() or 0
    st.dispose()
    return rows, size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--backend", default="sqlite")
    ap.add_argument("--smoke", action="store_true", help="seconds-long run that only checks the bench works")
    args = ap.parse_args()
    args.server, args.profile = "uvicorn", None  # what order_throughput.measure reads; closed loop only here
    if args.smoke:
        args.duration, args.rounds, args.connections = 1, 1, 4
    res: dict[str, list[dict]] = {"off": [], "on": []}  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        env_url = backend_url(args.backend, tmp, "env")
        console.print(header(environment({args.backend: env_url}, {"server workers": args.workers,
                                                                    "wrk": f"{args.connections} connections"})))
        drop_backend(env_url)
        for r in range(args.rounds):
            for mode in ("off", "on"):
                url = backend_url(args.backend, tmp, f"mon{r}{mode}")
                tokens, baskets = prepare(url)
                script = tmp / "orders.lua"
                script.write_text(LUA % {"tokens": ",".join(f'"{t}"' for t in tokens),
                                         "baskets": ",".join(json.dumps(b) for b in baskets),
                                         "pacing": "-- PACING --", "run": 0})
                console.print(f"round {r + 1}: monitoring {mode} …")
                res[mode].append(measure(f"monitoring {mode}", "waimai.app:create_app", url, script, args,
                                         {"WAIMAI_MONITORING": "true" if mode == "on" else "false"}))
                drop_backend(url)
        days = 1 if args.smoke else 30
        rows, size = month_footprint(tmp, days=days)
    t = Table(title=f"Order placement with monitoring off vs on ({args.backend}, {args.rounds} rounds of "
                    f"{args.duration}s, {args.connections} connections)")
    for col in ("monitoring", "orders/s (mean)", "p50 ms", "p99 ms"):
        t.add_column(col, justify="right")
    mean = {}
    for mode in ("off", "on"):
        rs = res[mode]
        mean[mode] = sum(x["rps"] for x in rs) / len(rs)
        t.add_row(mode, f"{mean[mode]:.0f}", f"{sum(x['p50_us'] for x in rs) / len(rs) / 1000:.1f}",
                  f"{sum(x['p99_us'] for x in rs) / len(rs) / 1000:.1f}")
    console.print(t)
    overhead = 1 - mean["on"] / mean["off"]
    console.print(f"throughput ratio on/off = {mean['on'] / mean['off']:.3f}  →  overhead {overhead * 100:.1f}% "
                  f"(target ≤ 5%)")
    console.print(f"embedded store after {days} day(s): {rows:,} rows for {len(SERIES)} series, "
                  f"{size / 1e6:.1f} MB on disk")


if __name__ == "__main__":
    main()
