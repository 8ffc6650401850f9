"""No request waits on the event loop for a lock: with another writer holding SQLite's write lock for
2 s, an order placed and a runbook run from the console both wait off the loop, and /livez stays fast."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest

from tests.conftest import make_settings
from tests.servers import serve
from waimai.app import create_app
from waimai.core.database import Database
from waimai.seed import DEMO_ACCOUNTS, DEMO_PASSWORD

HOLD_S = 2.0


def _token(c: httpx.Client, role: str) -> str:
    phone = {r.value: p for r, (p, _n) in DEMO_ACCOUNTS.items()}[role]
    r = c.post("/api/v1/auth/login", json={"phone": phone, "password": DEMO_PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


@pytest.mark.slow
def test_livez_stays_fast_while_another_writer_holds_the_sqlite_lock(sqlite_url: str) -> None:
    # No background jobs: the probes measure the loop against the order and the runbook, not the
    # sampler's turns on the GIL (the server and this client share a process).
    app = create_app(make_settings(sqlite_url), background=False)
    # Another replica: a Database of its own has its own process lock and its own flock description,
    # so it contends with the server exactly as a second process would.
    other = Database(sqlite_url)
    with serve(app) as base, httpx.Client(base_url=base, timeout=10) as c:
        customer, ops = _token(c, "customer"), _token(c, "ops")
        for _ in range(20):  # warm up: first requests build caches
            c.get("/livez")
        held, release = threading.Event(), threading.Event()

        def hold() -> None:
            with other.engine.begin() as conn:
                conn.exec_driver_sql("UPDATE merchants SET name = name WHERE id = 1")
                held.set()
                release.wait(HOLD_S)

        holder = threading.Thread(target=hold)
        holder.start()
        assert held.wait(5)
        t_held = time.monotonic()
        answers: dict[str, httpx.Response] = {}

        def place() -> None:
            with httpx.Client(base_url=base, timeout=10) as c2:
                answers["order"] = c2.post(
                    "/api/v1/orders", json={"merchant_id": 1, "delivery_point_id": 1,
                                            "items": [{"item_id": 5, "quantity": 1}], "payment_method": "cod"},
                    headers={"Authorization": f"Bearer {customer}", "Idempotency-Key": uuid.uuid4().hex})

        def runbook() -> None:  # a console action that writes (switch + audit): it too must wait off the loop
            with httpx.Client(base_url=base, timeout=10, cookies={"waimai_token": ops}) as c3:
                answers["runbook"] = c3.post("/ops/runbooks/switch_to_cod",
                                             data={"action": "run", "p_reason": "loop stall test"})

        workers = [threading.Thread(target=place), threading.Thread(target=runbook)]
        for w in workers:
            w.start()
        latencies = []
        while time.monotonic() - t_held < HOLD_S:
            t0 = time.perf_counter()
            r = c.get("/livez")
            latencies.append(time.perf_counter() - t0)
            assert r.status_code == 200
            time.sleep(0.002)
        # Were both requests still waiting for the lock while the probes ran?
        waited = "order" not in answers and "runbook" not in answers
        release.set()
        holder.join()
        for w in workers:
            w.join(10)
    other.dispose()
    assert answers["order"].status_code == 201, answers["order"].text
    assert answers["runbook"].status_code == 303, answers["runbook"].text
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"/livez while another writer held the lock {HOLD_S} s: {len(latencies)} probes, "
          f"p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms")
    assert len(latencies) >= 30  # a loop blocked for the hold answers only a handful
    assert p99 <= 0.100
    assert waited  # the figures were taken while the order and the runbook waited for the lock
