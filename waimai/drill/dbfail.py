"""The database dies under order load: a real Waimai process, a real database, a ledger of every order.

`run` builds the database — a pg_auto_failover formation (`standby=True`: kill -9 the primary node, the
standby is promoted) or one plain cluster (`standby=False`: stopped for `outage_s`, or frozen with
SIGSTOP for `hang=True`, then back) — starts `waimai serve` on it, and has `workers` customers order
cash on delivery the whole time. Each order carries its Idempotency-Key in its note; a customer retries
with the same key until the order is acknowledged (201, or 202 when spooled). At the end every
acknowledged key is looked up in the database: `lost` are acknowledged orders that are not there
(refused spooled orders are counted apart: they were answered with an apology, not lost), `duplicated`
are keys found more than once. Used by `bench/db_failover.py`, the reliability tests and the drills.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from waimai.core import uow
from waimai.drill.pgcluster import AutoFailover, PgCluster, free_port

CUSTOMER = "13800000001"
PASSWORD = "waimai-demo"  # noqa: S105 - the demo campus's printed password
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Ledger:
    acked: dict[str, tuple[int, float, float]] = field(default_factory=dict)  # key → (status, sent, acked)
    refs: dict[str, str] = field(default_factory=dict)  # key → spool reference
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def seed(url: str) -> None:
    """Migrate and seed the demo campus into a fresh database."""
    from waimai.core.database import Database
    from waimai.core.migrate import upgrade
    from waimai.seed import seed_demo

    db = Database(url)
    upgrade(db.engine)
    with uow.unit_of_work(db) as s:
        seed_demo(s)
    db.dispose()


def _serve(url: str, scratch: Path, port: int, extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAIMAI_")}
    env.update({"WAIMAI_DATABASE_URL": url, "WAIMAI_ENV": "development", "WAIMAI_LOG_LEVEL": "WARNING",
                "WAIMAI_METRICS_URL": f"sqlite:///{scratch / 'metrics.db'}", "WAIMAI_LOG_FILE": str(scratch / "w.jsonl"),
                "WAIMAI_SPOOL_PATH": str(scratch / "spool.db"), "WAIMAI_GATEWAY_URL": "http://127.0.0.1:9",
                "WAIMAI_DB_OUTAGE_AFTER_S": "2", "WAIMAI_PUBLIC_URL": f"http://127.0.0.1:{port}",
                "PYTHONPATH": str(ROOT), **(extra or {})})
    out = (scratch / "waimai.out").open("ab")
    return subprocess.Popen([sys.executable, "-m", "waimai.cli", "serve", "--port", str(port)],  # noqa: S603
                            env=env, cwd=scratch, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"waimai exited ({proc.returncode})")
        with suppress(httpx.HTTPError):
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError("waimai did not become ready")


def _customer(base: str, ledger: Ledger, headers: dict[str, str], item: int, stop: threading.Event,
              pace_s: float) -> None:
    with httpx.Client(base_url=base, timeout=10) as c:
        while not stop.is_set():
            key = uuid.uuid4().hex
            sent = time.time()
            first_try = True
            while first_try or not stop.is_set():  # retry the same key until it is acknowledged
                first_try = False
                try:
                    r = c.post("/api/v1/orders", headers={**headers, "Idempotency-Key": key},
                               json={"merchant_id": 1, "delivery_point_id": 1, "payment_method": "cod",
                                     "note": key, "items": [{"item_id": item, "quantity": 1}]})
                except httpx.HTTPError:
                    r = None
                if r is not None and r.status_code in (200, 201, 202):
                    with ledger.lock:
                        ledger.acked[key] = (r.status_code, sent, time.time())
                        if r.status_code == 202:
                            ledger.refs[key] = r.json()["reference"]
                    break
                with ledger.lock:
                    ledger.errors += 1
                time.sleep(0.2)
            stop.wait(pace_s)


class Probe(threading.Thread):
    """What a person and a balancer see, every second from the fault on: /readyz (the outage detected:
    "degraded") and /api/v1/status (answered? does it tell users, from the last-known copy?)."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.stop = threading.Event()
        self.fault_at: float | None = None
        self.detected_at: float | None = None
        self.told_at: float | None = None
        self.total = self.answered = 0

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=3) as c:
            while not self.stop.wait(1.0):
                if self.fault_at is None:
                    continue
                self.total += 1
                with suppress(httpx.HTTPError, ValueError):
                    st = c.get("/api/v1/status?lang=zh_CN")
                    if st.status_code == 200:
                        self.answered += 1
                        if self.told_at is None and st.json().get("stale"):
                            self.told_at = time.time()
                with suppress(httpx.HTTPError, ValueError):
                    if self.detected_at is None and c.get("/readyz").json().get("status") == "degraded":
                        self.detected_at = time.time()


def _incident(url: str) -> bool:
    from sqlalchemy import create_engine, text

    eng = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with eng.connect() as c:
            return bool(c.execute(text("SELECT COUNT(*) FROM incidents WHERE fault_key = 'database-unreachable'"))
                        .scalar())
    finally:
        eng.dispose()


def _count(url: str, keys: list[str]) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    eng = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with eng.connect() as c:
            rows = c.execute(text("SELECT note, COUNT(*) FROM orders GROUP BY note")).fetchall()
    finally:
        eng.dispose()
    found = {str(n): int(k) for n, k in rows}
    return {k: found.get(k, 0) for k in keys}


def run(*, standby: bool, before_s: float = 10.0, after_s: float = 30.0, outage_s: float = 60.0, hang: bool = False,
        workers: int = 4, pace_s: float = 0.2, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Order load, the database fault, the ledger; returns the figures."""
    db: Any = AutoFailover() if standby else PgCluster().init()
    scratch = Path(db.base if standby else db.root.parent) / "waimai"
    scratch.mkdir(parents=True, exist_ok=True)
    proc: subprocess.Popen[bytes] | None = None
    try:
        t = time.monotonic()
        db.start()
        url = db.create_database("waimai")
        progress(f"database ready in {time.monotonic() - t:.1f} s ({'pg_auto_failover' if standby else 'one server'})")
        seed(url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = _serve(url, scratch, port)
        _wait_ready(base, proc, 120)
        tok = httpx.post(base + "/api/v1/auth/login", json={"phone": CUSTOMER, "password": PASSWORD}, timeout=10)
        tok.raise_for_status()
        headers = {"Authorization": f"Bearer {tok.json()['access_token']}"}
        items = httpx.get(base + "/api/v1/merchants/1", timeout=10).json()
        item = next(i["id"] for cat in items["categories"] for i in cat["items"]
                    if not i.get("options") and i.get("stock") is None and i.get("available", True))
        ledger, stop = Ledger(), threading.Event()
        threads = [threading.Thread(target=_customer, args=(base, ledger, headers, item, stop, pace_s), daemon=True)
                   for _ in range(workers)]
        for th in threads:
            th.start()
        probe = Probe(base)
        probe.start()
        time.sleep(before_s)
        t_fault = time.time()
        if standby:
            node = db.kill_primary()
            t_fault = time.time()  # the kill is done: an order sent from now on cannot reach the old primary
            progress(f"kill -9 the primary node ({node})")
        elif hang:
            db.freeze()
            progress("database frozen (SIGSTOP)")
        else:
            db.stop("immediate")
            progress("database stopped")
        probe.fault_at = t_fault
        t_back: float | None = None
        if not standby:
            time.sleep(outage_s)
            if hang:
                db.thaw()
            else:
                db.start()
            t_back = time.time()
            progress(f"database back after {t_back - t_fault:.0f} s")
        time.sleep(after_s)
        probe.stop.set()
        stop.set()
        for th in threads:
            th.join(timeout=30)
        # every spooled order confirmed or refused
        spooled = dict(ledger.refs)
        settle_deadline = time.time() + 90
        final: dict[str, dict[str, Any]] = {}
        with httpx.Client(base_url=base, timeout=10) as c:
            while time.time() < settle_deadline:
                final = {k: c.get(f"/api/v1/orders/pending/{ref}", headers=headers).json() for k, ref in spooled.items()}
                if all(v.get("status") in ("confirmed", "refused") for v in final.values()):
                    break
                time.sleep(0.5)
        settled_at = max((dt.datetime.fromisoformat(v["settled_at"]).timestamp() for v in final.values()
                          if v.get("settled_at")), default=None)
        refused = {k for k, v in final.items() if v.get("status") == "refused"}
        pending = {k for k, v in final.items() if v.get("status") not in ("confirmed", "refused")}
        counts = _count(url, list(ledger.acked))
        lost = [k for k, n in counts.items() if n == 0 and k not in refused]
        dup = sum(n - 1 for n in counts.values() if n > 1)
        first_ok = min((a for st, sent, a in ledger.acked.values() if sent >= t_fault and st in (200, 201)),
                       default=None)
        first_ack = min((a for _st, sent, a in ledger.acked.values() if sent >= t_fault), default=None)
        back = t_back or first_ok  # the database accepted writes again (restart, or the standby promoted)
        figures = {
            "fault": "primary killed (standby promoted)" if standby else ("database frozen" if hang else
                                                                         "database stopped"),
            "orders_acknowledged": len(ledger.acked), "spooled_202": len(spooled),
            "spooled_confirmed": sum(v.get("status") == "confirmed" for v in final.values()),
            "spooled_refused": len(refused), "spooled_still_pending": len(pending),
            "lost": len(lost), "duplicated": dup, "retries": ledger.errors,
            "s_kill_to_first_order_placed": round(first_ok - t_fault, 1) if first_ok else None,
            "s_kill_to_first_order_acknowledged": round(first_ack - t_fault, 1) if first_ack else None,
            "s_return_to_spool_settled": round(settled_at - back, 1) if settled_at and back else
            (0.0 if not spooled else None),
            "s_fault_to_detected": round(probe.detected_at - t_fault, 1) if probe.detected_at else None,
            "s_fault_to_users_told": round(probe.told_at - t_fault, 1) if probe.told_at else None,
            "status_probes": probe.total, "status_probes_answered": probe.answered,
            "incident_recorded": _incident(url),
        }
        return figures
    finally:
        if proc is not None and proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        db.destroy()
