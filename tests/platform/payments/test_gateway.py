"""Payments over real HTTP: our GatewayProvider against the stand-in gateway process's protocol."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import DEMO_ACCOUNTS, DEMO_PASSWORD, make_settings
from tests.servers import free_port, serve
from waimai.app import create_app
from waimai.platform.accounts.models import Role
from waimai.platform.payments.fake_gateway import create_gateway_app

SECRET = "test-gateway-secret"


@dataclass
class Stack:
    base: str
    gateway: str
    http: httpx.Client
    token: str

    def h(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}

    def login(self, role: Role) -> str:
        r = self.http.post(f"{self.base}/api/v1/auth/login",
                           json={"phone": DEMO_ACCOUNTS[role][0], "password": DEMO_PASSWORD})
        return str(r.json()["access_token"])

    def place(self, method: str = "gateway") -> dict:  # type: ignore[type-arg]
        r = self.http.post(f"{self.base}/api/v1/orders", headers=self.h(**{"Idempotency-Key": uuid.uuid4().hex}),
                           json={"merchant_id": 1, "delivery_point_id": 1, "payment_method": method,
                                 "items": [{"item_id": 5, "quantity": 2}]})
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def order(self, oid: int) -> dict:  # type: ignore[type-arg]
        return self.http.get(f"{self.base}/api/v1/orders/{oid}", headers=self.h()).json()  # type: ignore[no-any-return]

    def wait_status(self, oid: int, status: str, timeout: float = 10) -> dict:  # type: ignore[type-arg]
        deadline = time.time() + timeout
        while time.time() < deadline:
            o = self.order(oid)
            if o["status"] == status:
                return o
            time.sleep(0.05)
        raise AssertionError(f"order {oid} stayed {o['status']}, wanted {status}")

    def gw_config(self, **cfg: object) -> None:
        r = self.http.put(f"{self.gateway}/admin/config", json=cfg)
        assert r.status_code == 200, r.text


@pytest.fixture
def stack(db_url: str) -> Iterator[Stack]:
    gw_port, app_port = free_port(), free_port()
    settings = make_settings(db_url, gateway_url=f"http://127.0.0.1:{gw_port}", gateway_secret=SECRET,
                             public_url=f"http://127.0.0.1:{app_port}")
    gw = create_gateway_app(app_id=settings.gateway_app_id, secret=SECRET, seed=1)
    with serve(gw, gw_port) as gw_url, serve(create_app(settings, background=False), app_port) as base, \
            httpx.Client(timeout=10) as http:
        s = Stack(base=base, gateway=gw_url, http=http, token="")
        s.token = s.login(Role.customer)
        yield s


def test_pay_through_cashier_and_signed_callback(stack: Stack) -> None:
    o = stack.place()
    assert o["status"] == "created"
    r = stack.http.post(f"{stack.base}/api/v1/orders/{o['id']}/pay", headers=stack.h())
    assert r.status_code == 200, r.text
    pay_url = r.json()["pay_url"]
    assert pay_url.startswith(stack.gateway)
    # Asking again returns the same open payment, not a second one.
    assert stack.http.post(f"{stack.base}/api/v1/orders/{o['id']}/pay", headers=stack.h()).json()["pay_url"] == pay_url
    assert "确认支付" in stack.http.get(pay_url).text
    stack.http.post(pay_url + "/confirm")
    stack.wait_status(o["id"], "paid")


def test_forged_and_stale_callbacks_are_rejected(stack: Stack) -> None:
    o = stack.place()
    stack.http.post(f"{stack.base}/api/v1/orders/{o['id']}/pay", headers=stack.h())
    body = json.dumps({"payment_id": "pay_x", "out_trade_no": o["number"], "status": "succeeded",
                       "amount_fen": o["total_fen"]}).encode()
    ts = str(int(time.time()))
    forged = hmac.new(b"wrong-secret", f"{ts}.evt1.".encode() + body, hashlib.sha256).hexdigest()
    url = f"{stack.base}/api/v1/payments/callbacks/gateway"
    r = stack.http.post(url, content=body, headers={"x-pay-timestamp": ts, "x-pay-event-id": "evt1",
                                                    "x-pay-signature": forged})
    assert r.status_code == 401
    old = str(int(time.time()) - 3600)
    stale = hmac.new(SECRET.encode(), f"{old}.evt2.".encode() + body, hashlib.sha256).hexdigest()
    r = stack.http.post(url, content=body, headers={"x-pay-timestamp": old, "x-pay-event-id": "evt2",
                                                    "x-pay-signature": stale})
    assert r.status_code == 401
    assert r.json()["error"]["message"] == "stale callback"
    assert stack.order(o["id"])["status"] == "created"


def test_redelivered_callback_is_applied_once(stack: Stack) -> None:
    o = stack.place()
    pay = stack.http.post(f"{stack.base}/api/v1/orders/{o['id']}/pay", headers=stack.h()).json()
    payment_id = pay["pay_url"].rsplit("/", 1)[-1]
    body = json.dumps({"payment_id": payment_id, "out_trade_no": o["number"], "status": "succeeded",
                       "amount_fen": o["total_fen"]}).encode()
    ts = str(int(time.time()))
    sig = hmac.new(SECRET.encode(), f"{ts}.evt-dup.".encode() + body, hashlib.sha256).hexdigest()
    headers = {"x-pay-timestamp": ts, "x-pay-event-id": "evt-dup", "x-pay-signature": sig}
    url = f"{stack.base}/api/v1/payments/callbacks/gateway"
    assert stack.http.post(url, content=body, headers=headers).json() == {"result": "paid"}
    assert stack.http.post(url, content=body, headers=headers).json() == {"result": "duplicate"}
    hist = stack.http.get(f"{stack.base}/api/v1/orders/{o['id']}/transitions", headers=stack.h()).json()
    assert [h["to_status"] for h in hist].count("paid") == 1


def test_cancelling_a_paid_order_refunds_it(stack: Stack) -> None:
    stack.gw_config(auto_confirm=True)
    o = stack.place()
    stack.http.post(f"{stack.base}/api/v1/orders/{o['id']}/pay", headers=stack.h())
    stack.wait_status(o["id"], "paid")
    r = stack.http.post(f"{stack.base}/api/v1/orders/{o['id']}/cancel", json={"reason": "too slow"},
                        headers=stack.h())
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "refunded"
    assert stack.http.get(f"{stack.gateway}/admin/stats").json()["refunds"] == 1


def test_gateway_down_offers_cash_on_delivery(stack: Stack) -> None:
    stack.gw_config(failure_rate=1.0)
    o = stack.place()
    r = stack.http.post(f"{stack.base}/api/v1/orders/{o['id']}/pay", headers=stack.h())
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "payment_gateway_unavailable"
    assert "cash on delivery" in r.json()["error"]["message"]
    r = stack.http.post(f"{stack.base}/api/v1/orders/{o['id']}/pay?method=cod", headers=stack.h())
    assert r.status_code == 200, r.text
    assert stack.order(o["id"])["status"] == "cod_confirmed"


def test_gateway_rejects_unsigned_requests(stack: Stack) -> None:
    r = stack.http.post(f"{stack.gateway}/v1/payments", json={"out_trade_no": "x", "amount_fen": 1})
    assert r.status_code == 401
