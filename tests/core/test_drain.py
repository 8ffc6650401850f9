"""Graceful drain: on SIGTERM readiness fails first, the process keeps answering for the drain delay,
an in-flight request finishes, then the process exits."""

from __future__ import annotations

import shutil
import signal
import threading
import time
import uuid
from pathlib import Path

import httpx

from tests.conftest import DEMO_ACCOUNTS, DEMO_PASSWORD, TEST_GATEWAY_SECRET
from tests.reliability.cluster import Replica, wait_until
from tests.servers import serve
from waimai.platform.accounts.models import Role
from waimai.platform.payments.fake_gateway import GatewayConfig, create_gateway_app

DELAY_S, GATEWAY_MS = 1.5, 3000


def test_sigterm_fails_readiness_first_finishes_in_flight_requests_then_exits(sqlite_template: Path,
                                                                              tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    shutil.copy(sqlite_template, db)
    gw = create_gateway_app(app_id="waimai-demo", secret=TEST_GATEWAY_SECRET)
    gw.state.gw["config"] = GatewayConfig(latency_ms=GATEWAY_MS)  # a payment call takes 3 s
    with serve(gw) as gw_url:
        r = Replica("drain", f"sqlite:///{db}", tmp_path, env={
            "WAIMAI_GATEWAY_URL": gw_url, "WAIMAI_GATEWAY_TIMEOUT_S": "10", "WAIMAI_DRAIN_DELAY_S": str(DELAY_S)})
        r.start()
        try:
            r.wait_ready()
            c = httpx.Client(base_url=r.url, timeout=15)
            tok = c.post("/api/v1/auth/login", json={"phone": DEMO_ACCOUNTS[Role.customer][0],
                                                     "password": DEMO_PASSWORD}).json()["access_token"]
            h = {"Authorization": f"Bearer {tok}"}
            order = c.post("/api/v1/orders", headers={**h, "Idempotency-Key": uuid.uuid4().hex},
                           json={"merchant_id": 1, "delivery_point_id": 1, "items": [{"item_id": 5, "quantity": 1}],
                                 "payment_method": "gateway"}).json()
            paid: dict[str, object] = {}

            def pay() -> None:
                t0 = time.monotonic()
                resp = httpx.post(f"{r.url}/api/v1/orders/{order['id']}/pay", headers=h, timeout=15)
                paid.update(status=resp.status_code, seconds=time.monotonic() - t0)

            payer = threading.Thread(target=pay)
            payer.start()
            time.sleep(0.5)  # the payment is in flight
            assert r.proc is not None
            t_term = time.monotonic()
            r.proc.send_signal(signal.SIGTERM)

            # Readiness fails at once; the process still answers everything else during the delay.
            ready = wait_until(lambda: (h_ := r.health()) is not None and h_["code"] == 503 and h_, 1.0, every=0.05)
            assert ready and ready["status"] == "draining", ready
            assert c.get("/livez").status_code == 200
            assert c.get("/api/v1/merchants").status_code == 200
            assert time.monotonic() - t_term < DELAY_S

            # After the delay the server stops accepting, while the payment is still in flight.
            time.sleep(max(0.0, DELAY_S + 0.4 - (time.monotonic() - t_term)))
            assert payer.is_alive()
            try:
                refused = httpx.get(f"{r.url}/livez", timeout=1).status_code >= 500
            except httpx.HTTPError:
                refused = True
            assert refused

            payer.join(timeout=15)
            assert paid.get("status") == 200, paid  # the request in flight finished
            assert r.proc.wait(timeout=15) is not None
            exited = time.monotonic() - t_term
            # Not before the drain delay and the in-flight call; well within the graceful timeout after it.
            assert exited >= DELAY_S
            assert exited < GATEWAY_MS / 1000 + 8
            print(f"\ndrain: readiness failed at once, the 3 s payment in flight finished ({paid['seconds']:.1f} s), "
                  f"exit {exited:.1f} s after SIGTERM")
        finally:
            r.stop()
