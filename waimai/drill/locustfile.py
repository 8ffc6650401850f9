"""The lunch rush as Locust users: browse → pick dishes → place with an idempotency key → pay online,
or cash on delivery when online payment is refused or fails → follow the order over SSE.

Every attempt is written to a ledger (JSON lines, `DRILL_LEDGER`) with what the client saw, so the drill
can check afterwards that each acknowledged order exists exactly once. A connection error is retried
with the same key, as a real app would; the note carries the attempt id.

Run by `waimai drill`; by hand: `DRILL_LEDGER=ledger.jsonl locust -f waimai/drill/locustfile.py --host URL`.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from typing import Any

from locust import HttpUser, constant_pacing, events, task

LEDGER = os.environ.get("DRILL_LEDGER", "drill-ledger.jsonl")
PHONE = os.environ.get("DRILL_PHONE", "13800000001")
PASSWORD = os.environ.get("DRILL_PASSWORD", "waimai-demo")
PACING_S = float(os.environ.get("DRILL_PACING_S", "3"))
OPEN_CASHIER = os.environ.get("DRILL_OPEN_CASHIER") == "1"  # WeChat Pay / Alipay: open the stand-in's cashier
_lock = threading.Lock()
_menus: dict[int, tuple[list[tuple[int, int]], int]] = {}  # merchant -> ([(item, price)], minimum order)


def _write(entry: dict[str, Any]) -> None:
    line = json.dumps(entry, separators=(",", ":")) + "\n"
    with _lock, open(LEDGER, "a", encoding="utf-8") as f:
        f.write(line)


class Customer(HttpUser):
    wait_time = constant_pacing(PACING_S)

    def on_start(self) -> None:
        r = self.client.post("/api/v1/auth/login", json={"phone": PHONE, "password": PASSWORD}, name="login")
        self.auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        self.points = [p["id"] for p in self.client.get("/api/v1/delivery-points", name="points").json()
                       if p.get("kind") != "locker"] or [1]

    def _menu(self, mid: int) -> tuple[list[tuple[int, int]], int]:
        m = self.client.get(f"/api/v1/merchants/{mid}", name="menu").json()
        if mid not in _menus:
            _menus[mid] = ([(i["id"], i["price_fen"]) for c in m.get("categories", []) for i in c.get("items", [])
                            if i.get("available", True) and not i.get("sold_out") and not i.get("options")],
                           int(m.get("min_order_fen", 0)))
        return _menus[mid]

    def _place(self, attempt: str, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Place; on a connection error retry with the same key (at most 3 times)."""
        for _ in range(3):
            with self.client.post("/api/v1/orders", json=body, headers={**self.auth, "Idempotency-Key": key},
                                  name=f"place ({body['payment_method']})", catch_response=True) as r:
                if r.status_code in (0, 502, 504):  # no answer (a replica died mid-request): the order may or
                    r.failure(f"no answer ({r.status_code})")  # may not exist — the same key again
                    time.sleep(0.2)
                    continue
                data = r.json() if r.content else {}
                if r.status_code in (201, 409, 422, 503):
                    r.success()  # an answer the app knows how to handle
                return r.status_code, data
        return 0, {}

    @task
    def lunch(self) -> None:
        attempt = uuid.uuid4().hex[:16]
        start = time.time()
        shops = self.client.get("/api/v1/merchants", name="shops").json()
        open_ = [m["id"] for m in shops if m.get("open_now", True) and m.get("status", "open") == "open"] or [1]
        mid = random.choice(open_)
        items, minimum = self._menu(mid)
        if not items:
            return
        item, price = random.choice(items)
        qty = max(1, -(-minimum // max(price, 1)))  # enough to reach the shop's minimum order
        body = {"merchant_id": mid, "delivery_point_id": random.choice(self.points),
                "items": [{"item_id": item, "quantity": min(qty, 20)}], "payment_method": "gateway",
                "note": f"drill:{attempt}"}
        entry: dict[str, Any] = {"attempt": attempt, "start": start, "merchant_id": mid}
        code, data = self._place(attempt, attempt, body)
        if code == 409 and data.get("error", {}).get("code") == "payment_cod_only":
            entry["cod_only"] = True
            code, data = self._place(attempt, attempt + "-cod", {**body, "payment_method": "cod"})
        if code != 201:
            entry.update(outcome="refused", status=code, error=data.get("error", {}).get("code"), end=time.time())
            _write(entry)
            return
        order = data
        entry.update(order_id=order["id"], acked=True, method=order["payment_method"])
        if order["payment_method"] == "gateway":
            params = {}
            if OPEN_CASHIER:  # like the checkout: choose among the providers offered right now
                offered = self.client.get("/api/v1/payments/providers", headers=self.auth,
                                          name="providers offered").json().get("offered") or []
                if offered:
                    params["provider"] = random.choice(offered)  # noqa: S311 - load mix, not security
            r = self.client.post(f"/api/v1/orders/{order['id']}/pay", headers=self.auth, name="pay online",
                                 params=params)
            if r.status_code == 200:
                paid = r.json()
                entry["provider"] = paid.get("provider")
                url = paid.get("pay_url") or ""
                if OPEN_CASHIER and url.startswith("http"):  # the customer reaches the cashier (auto-confirmed)
                    self.client.get(url, name=f"cashier {paid.get('provider')}")
            if r.status_code != 200:  # the gateway failed: pay the rider instead
                entry["pay_failed"] = r.status_code
                r = self.client.post(f"/api/v1/orders/{order['id']}/pay?method=cod", headers=self.auth,
                                     name="switch to cash")
                entry["method"] = "cod" if r.status_code == 200 else "unpaid"
        entry.update(outcome="placed" if entry["method"] != "unpaid" else "unpaid", end=time.time())
        _write(entry)
        self._follow(order["id"])

    def _follow(self, order_id: int) -> None:
        """Open the order's live stream and read its first event."""
        t0 = time.time()
        try:
            with self.client.get(f"/api/v1/orders/{order_id}/events", headers=self.auth, stream=True, timeout=3,
                                 name="follow (SSE)", catch_response=True) as r:
                for line in r.iter_lines():
                    if line and line.startswith(b"data:"):
                        r.success()
                        break
                    if time.time() - t0 > 2:
                        r.success()
                        break
        except Exception:  # noqa: BLE001, S110 - a dropped stream is what Last-Event-ID is for; not an order failure
            pass


@events.test_start.add_listener
def _reset(**_kw: Any) -> None:
    _menus.clear()
