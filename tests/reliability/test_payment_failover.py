"""Reliability: the payment gateway fails every call under steady order load (real processes, real HTTP).

The breaker opens, `payment.cod_only` is on within 10 s, orders keep being placed (cash on delivery);
when the gateway is restored the switch turns itself off. Prints seconds to COD and orders placed/failed.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx
import pytest

from tests.reliability.procs import fake_gateway, login, switch_on, waimai, wait_switch

pytestmark = pytest.mark.xdist_group("reliability")
OPEN_S, RECOVERY_S = 2.0, 3.0


@dataclass
class Ledger:
    paid_online: int = 0
    cod_after_gateway_failed: int = 0
    cod: int = 0
    refused_cod_only: int = 0
    failed: list[str] = field(default_factory=list)
    first_cod_only_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def placed(self) -> int:
        return self.paid_online + self.cod_after_gateway_failed + self.cod


def customer_loop(base: str, headers: dict[str, str], ledger: Ledger, stop: threading.Event) -> None:
    """A customer who prefers paying online and falls back to cash when told to."""
    with httpx.Client(base_url=base, timeout=15) as c:
        while not stop.is_set():
            body = {"merchant_id": 1, "delivery_point_id": 1, "items": [{"item_id": 5, "quantity": 1}],
                    "payment_method": "gateway"}
            try:
                r = c.post("/api/v1/orders", json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
                if r.status_code == 409 and r.json()["error"]["code"] == "payment_cod_only":
                    with ledger.lock:
                        ledger.refused_cod_only += 1
                        ledger.first_cod_only_at = ledger.first_cod_only_at or time.monotonic()
                    r = c.post("/api/v1/orders", json={**body, "payment_method": "cod"},
                               headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
                    if r.status_code == 201:
                        with ledger.lock:
                            ledger.cod += 1
                    else:
                        ledger.failed.append(f"cod {r.status_code}")
                    continue
                if r.status_code != 201:
                    ledger.failed.append(f"place {r.status_code} {r.text[:80]}")
                    continue
                oid = r.json()["id"]
                p = c.post(f"/api/v1/orders/{oid}/pay", headers=headers)
                if p.status_code == 200:
                    with ledger.lock:
                        ledger.paid_online += 1
                    continue
                # the gateway failed (503) or online payment was just switched off (409): pay cash
                p = c.post(f"/api/v1/orders/{oid}/pay?method=cod", headers=headers)
                if p.status_code == 200:
                    with ledger.lock:
                        ledger.cod_after_gateway_failed += 1
                else:
                    ledger.failed.append(f"pay cod {p.status_code} {p.text[:80]}")
            except httpx.HTTPError as exc:
                ledger.failed.append(f"http {exc.__class__.__name__}")
            time.sleep(0.05)


def test_gateway_down_switches_to_cod_and_back(sqlite_url: str) -> None:
    with fake_gateway() as gw, waimai(sqlite_url, gateway_url=gw, breaker_failure_threshold=3,
                                      breaker_open_s=OPEN_S, cod_recovery_s=RECOVERY_S, monitoring=False) as base, \
            httpx.Client(base_url=base, timeout=10) as c:
        ops, cust = login(c, "13800000009"), login(c, "13800000001")
        ledger, stop = Ledger(), threading.Event()
        threads = [threading.Thread(target=customer_loop, args=(base, cust, ledger, stop), daemon=True)
                   for _ in range(2)]
        for t in threads:
            t.start()
        try:
            time.sleep(2.0)  # steady load with a healthy gateway
            assert ledger.paid_online > 0 and not switch_on(c, ops, "payment.cod_only")
            cfg = httpx.get(f"{gw}/admin/config").json()
            httpx.put(f"{gw}/admin/config", json={**cfg, "failure_rate": 1.0}).raise_for_status()
            seconds_to_cod = wait_switch(c, ops, "payment.cod_only", on=True, within_s=10)
            placed_at_cod = ledger.placed
            time.sleep(3.0)  # orders keep coming, in cash
            placed_under_cod = ledger.placed - placed_at_cod
            breakers = {b["dependency"]: b for b in c.get("/api/v1/breakers", headers=ops).json()}
            assert breakers["payment_gateway"]["state"] in ("opened", "half-opened")
            httpx.put(f"{gw}/admin/config", json={**cfg, "failure_rate": 0.0}).raise_for_status()
            seconds_to_release = wait_switch(c, ops, "payment.cod_only", on=False, within_s=OPEN_S + RECOVERY_S + 15)
            paid_before = ledger.paid_online
            time.sleep(1.5)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=20)
        audit = [e for e in c.get("/api/v1/ops/audit", headers=ops).json() if e.get("target") == "payment.cod_only"]
        metrics = c.get("/metrics").text
    print(f"\n[payment failover] seconds to COD: {seconds_to_cod:.2f}; cod_only off {seconds_to_release:.2f} s after "
          f"the gateway was restored (open {OPEN_S:.0f} s + healthy {RECOVERY_S:.0f} s); orders placed: {ledger.placed} "
          f"(paid online {ledger.paid_online}, cash after a failed payment {ledger.cod_after_gateway_failed}, "
          f"cash {ledger.cod}; {placed_under_cod} in the 3 s under COD), failed: {len(ledger.failed)}")
    assert seconds_to_cod <= 10
    assert placed_under_cod > 0, "orders stopped while in COD mode"
    assert ledger.refused_cod_only > 0 and ledger.cod > 0
    assert ledger.failed == [], ledger.failed[:5]
    assert ledger.paid_online > paid_before, "online payment did not come back"
    assert {(e["actor_role"], e["details"]["to"]) for e in audit} >= {("system:breaker", True), ("system:breaker", False)}
    assert 'waimai_circuit_breaker_state{dependency="payment_gateway"}' in metrics
