"""Alert latency: from a metric breach written to the store to the request received by a stand-in
DingTalk robot, against the same rule run by a real Prometheus + Alertmanager, in one run.

    python bench/alert_latency.py [--alerts 20] [--spacing 3.5] [--for 5]

Ours: the real AlertingService (rules over the embedded store, evaluated every second as the
service does, P1 route with group_wait 0 s) sending through the real DingTalk channel (加签
signature) to the DingTalk stand-in, which checks the signature. Each alert is its own rule on its
own series, breached at a recorded instant; latency = stand-in receipt − breach − `for`.

Prometheus + Alertmanager (Debian packages): Prometheus scrapes a tiny exporter every 15 s and
evaluates the same rule every 15 s; Alertmanager (group_wait 30 s, its default) posts its webhook
to a receiver here. Same alerts, same `for`. Prints p50/p95/p99/max for both and the ratio.
A noise check follows: a metric flapping every 20 s for an (simulated) hour gives at most one
notification per group per repeat interval.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from waimai.core.benchenv import environment, header  # noqa: E402
from waimai.core.database import Database  # noqa: E402
from waimai.core.migrate import upgrade  # noqa: E402
from waimai.firewall.alerting.channels.standins import create_dingtalk_standin  # noqa: E402
from waimai.firewall.alerting.service import AlertingService  # noqa: E402
from waimai.firewall.monitoring.store import MetricStore  # noqa: E402

console = Console()
TOKEN, SIGN_SECRET = "bench-robot-token", "SECbench0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(app: FastAPI, port: int) -> uvicorn.Server:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))]


def rules_yaml(n: int, for_s: int) -> str:
    rules = [{"alert": f"Breach{i}", "severity": "P1", "for": f"{for_s}s", "labels": {"component": "bench"},
              "expr": {"kind": "threshold", "series": f"bench_{i}", "op": ">", "value": 1, "window": "10m",
                       "agg": "last"}} for i in range(n)]
    return yaml.safe_dump({"groups": [{"name": "bench", "rules": rules}]})


def run_ours(tmp: Path, args: argparse.Namespace) -> list[float]:
    dt_port = free_port()
    standin = create_dingtalk_standin(access_token=TOKEN, secret=SIGN_SECRET, limit=(20, 60.0))
    server = serve(standin, dt_port)
    (tmp / "rules.yml").write_text(rules_yaml(args.alerts, args.for_s))
    (tmp / "alerting.yml").write_text(yaml.safe_dump({
        "route": {"receiver": "ops", "group_by": ["alertname"], "group_wait": "0s", "group_interval": "1m",
                  "repeat_interval": "4h"},
        "receivers": {"ops": [{"kind": "dingtalk", "config": {
            "name": "ops", "base_url": f"http://127.0.0.1:{dt_port}", "access_token": TOKEN,
            "secret": SIGN_SECRET}}]}}))
    store = MetricStore(f"sqlite:///{tmp / 'metrics.db'}")
    database = Database(f"sqlite:///{tmp / 'waimai.db'}")  # alert state lives in the database, as in the service
    upgrade(database.engine)
    svc = AlertingService(source=store, database=database, rules_file=tmp / "rules.yml",
                          config_file=tmp / "alerting.yml", link_secret="bench",  # noqa: S106
                          public_url="http://127.0.0.1")
    stop = threading.Event()

    def loop() -> None:  # the service's alert_evaluation job: every second
        while not stop.is_set():
            svc.evaluate()
            stop.wait(1.0)

    threading.Thread(target=loop, daemon=True).start()
    breach: dict[int, float] = {}
    for i in range(args.alerts):
        store.write(time.time(), {f"bench_{i}": 0.0})
    time.sleep(1.5)
    for i in range(args.alerts):
        breach[i] = time.time()
        store.write(breach[i], {f"bench_{i}": 5.0})
        time.sleep(args.spacing)
    deadline = time.time() + args.for_s + 30
    state = standin.state.standin

    def received() -> dict[int, float]:
        got: dict[int, float] = {}
        for rec in list(state.accepted):
            for m in re.finditer(r"Breach(\d+)\b", str(rec)):
                got.setdefault(int(m.group(1)), rec["at"])
        return got

    while time.time() < deadline and len(received()) < args.alerts:
        time.sleep(0.2)
    stop.set()
    server.should_exit = True
    got = received()
    if state.rejected:
        console.print(f"[red]stand-in rejected {len(state.rejected)} request(s): {state.rejected[:2]}[/red]")
    missing = sorted(set(breach) - set(got))
    if missing:
        console.print(f"[red]not received by the stand-in: {missing}[/red]")
    return [got[i] - breach[i] - args.for_s for i in sorted(got)]


def run_prometheus(tmp: Path, args: argparse.Namespace) -> list[float] | None:
    prom, am = shutil.which("prometheus"), shutil.which("prometheus-alertmanager")
    if not prom or not am:
        console.print("[yellow]prometheus / prometheus-alertmanager not installed: comparison skipped[/yellow]")
        return None
    values = {i: 0.0 for i in range(args.alerts)}
    received: dict[str, float] = {}
    app = FastAPI()

    @app.get("/metrics")
    def metrics() -> PlainTextResponse:
        lines = ["# TYPE bench_value gauge"] + [f'bench_value{{i="{i}"}} {v}' for i, v in values.items()]
        return PlainTextResponse("\n".join(lines) + "\n")

    @app.post("/hook")
    async def hook(request: Request) -> dict[str, str]:
        body = await request.json()
        for a in body.get("alerts", []):
            if a["status"] == "firing":
                received.setdefault(a["labels"]["alertname"], time.time())
        return {"ok": "yes"}

    port, prom_port, am_port = free_port(), free_port(), free_port()
    srv = serve(app, port)
    rules = {"groups": [{"name": "bench", "rules": [
        {"alert": f"Breach{i}", "expr": f'bench_value{{i="{i}"}} > 1', "for": f"{args.for_s}s",
         "labels": {"severity": "critical"}} for i in range(args.alerts)]}]}
    (tmp / "rules.yml").write_text(yaml.safe_dump(rules))
    (tmp / "prom.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "15s", "evaluation_interval": "15s"}, "rule_files": [str(tmp / "rules.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
        "scrape_configs": [{"job_name": "bench", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}]}))
    (tmp / "am.yml").write_text(yaml.safe_dump({
        "route": {"receiver": "hook", "group_by": ["alertname"], "group_wait": "30s", "group_interval": "5m",
                  "repeat_interval": "4h"},
        "receivers": [{"name": "hook", "webhook_configs": [{"url": f"http://127.0.0.1:{port}/hook"}]}]}))
    procs = [subprocess.Popen([am, f"--config.file={tmp / 'am.yml'}", f"--web.listen-address=127.0.0.1:{am_port}",
                               "--cluster.listen-address=", f"--storage.path={tmp / 'am'}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
             subprocess.Popen([prom, f"--config.file={tmp / 'prom.yml'}", f"--storage.tsdb.path={tmp / 'prom'}",
                               f"--web.listen-address=127.0.0.1:{prom_port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        time.sleep(20)  # let Prometheus scrape the normal values first
        breach: dict[int, float] = {}
        for i in range(args.alerts):
            breach[i] = time.time()
            values[i] = 5.0
            time.sleep(args.spacing)
        deadline = time.time() + args.for_s + 100
        while time.time() < deadline and len(received) < args.alerts:
            time.sleep(0.5)
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=20)
        srv.should_exit = True
    return [received[f"Breach{i}"] - breach[i] - args.for_s for i in range(args.alerts) if f"Breach{i}" in received]


def noise_check() -> tuple[int, int]:
    """An hour of a metric flapping every 20 s, on a simulated clock: notifications sent."""
    from waimai.firewall.alerting.pipeline import AlertPipeline, PipelineConfig
    from waimai.firewall.alerting.rules import Evaluator, RuleFile

    with tempfile.TemporaryDirectory() as d:
        store = MetricStore(f"sqlite:///{Path(d) / 'm.db'}")
        rules = RuleFile.parse("""
groups:
  - name: g
    rules:
      - alert: Flappy
        expr: {kind: threshold, series: x, op: ">", value: 1, window: 10s, agg: last}
        for: 10s
        keep_firing_for: 1m
        severity: P3
""").groups[0].rules
        now = [dt.datetime(2026, 11, 25, 4, tzinfo=dt.UTC)]
        sent: list[str] = []

        class Rec:
            name = "rec"

            def send(self, m, recipients=None):  # type: ignore[no-untyped-def]
                sent.append(m.status)
                from waimai.firewall.alerting.channels.base import DeliveryReceipt

                return DeliveryReceipt(channel="rec", ok=True)

            def flush(self):  # type: ignore[no-untyped-def]
                return None

        cfg = PipelineConfig.model_validate({"route": {"receiver": "r", "repeat_interval": "4h"}})
        p = AlertPipeline(cfg, {"r": [Rec()]}, clock=lambda: now[0])  # type: ignore[list-item]
        ev = Evaluator(rules, store)
        for step in range(3600 // 5):
            store.write(now[0], {"x": 5.0 if (step * 5 // 20) % 2 == 0 else 0.0})
            p.ingest(ev.evaluate(now[0]))
            p.tick()
            now[0] += dt.timedelta(seconds=5)
        return sent.count("firing"), len(sent)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alerts", type=int, default=20)
    ap.add_argument("--spacing", type=float, default=3.5, help="seconds between breaches (DingTalk: 20/min)")
    ap.add_argument("--for", dest="for_s", type=int, default=5)
    ap.add_argument("--skip-prometheus", action="store_true")
    ap.add_argument("--smoke", action="store_true",
                    help="seconds-long run that only checks the bench works (3 alerts, no Prometheus)")
    args = ap.parse_args()
    if args.smoke:
        args.alerts, args.spacing, args.for_s, args.skip_prometheus = 3, 1.0, 1, True
    console.print(header(environment(extra={"alerts": args.alerts, "for": f"{args.for_s} s"})))
    with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d2:
        console.print(f"ours: {args.alerts} breaches, rule for={args.for_s}s …")
        ours = run_ours(Path(d1), args)
        theirs = None if args.skip_prometheus else (console.print("Prometheus + Alertmanager …"),
                                                     run_prometheus(Path(d2), args))[1]
    t = Table(title=f"Breach → notification received, beyond the rule's for={args.for_s}s (seconds)")
    for c in ("pipeline", "alerts", "p50", "p95", "p99", "max"):
        t.add_column(c, justify="right")
    for name, xs in (("Waimai → DingTalk stand-in", ours), ("Prometheus + Alertmanager → webhook", theirs)):
        if xs:
            t.add_row(name, str(len(xs)), f"{statistics.median(xs):.2f}", f"{pct(xs, 95):.2f}", f"{pct(xs, 99):.2f}",
                      f"{max(xs):.2f}")
    console.print(t)
    if ours and theirs:
        console.print(f"p99 ratio Waimai / Prometheus+Alertmanager = {pct(ours, 99) / pct(theirs, 99):.3f} "
                      f"(target: Waimai p99 ≤ 2 s)")
    firing, total = noise_check()
    console.print(f"noise: a metric flapping every 20 s for an hour → {firing} firing notification(s), "
                  f"{total} in all (repeat interval 4 h; target ≤ 1 per group per repeat interval)")


if __name__ == "__main__":
    main()
