"""Issue 11 acceptance, per platform, through the running service: a signed push becomes one order,
a forged one is refused, a redelivery is deduplicated, and status callbacks reach the platform in
order even when it was down for a while."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import DEMO_ACCOUNTS, DEMO_PASSWORD, make_settings
from tests.platform.integrations.conftest import (
    EL_APP_ID,
    EL_KEY,
    EL_SECRET,
    EL_TOKEN,
    JD_KEY,
    JD_SECRET,
    JD_TOKEN,
    MT_APP_ID,
    MT_SECRET,
    serve_standins,
)
from tests.servers import free_port, serve
from waimai.app import create_app
from waimai.platform.accounts.models import Role
from waimai.platform.integrations.models import ExternalOrderLink, PlatformShop
from waimai.platform.ordering.models import Order

ACTIONS = {"meituan": ["confirm", "delivering", "arrived"],
           "eleme": ["eleme.order.confirmOrderLite", "eleme.order.startDeliveryBySelf",
                     "eleme.order.completeDeliveryBySelf"],
           "jd": ["ocs/orderAcceptOperate", "bm/open/api/order/OrderSerllerDelivery", "ocs/deliveryEndOrder"]}


@dataclass
class Env:
    app: object
    base: str
    standin: dict[str, str]
    http: httpx.Client
    ops: dict[str, str]


@pytest.fixture
def env(sqlite_url: str) -> Iterator[Env]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with ExitStack() as es:
        standin = serve_standins(es)
        platforms = {
            "meituan": {"app_id": MT_APP_ID, "secret": MT_SECRET, "api_base": f"{standin['meituan']}/api/v1"},
            "eleme": {"app_key": EL_KEY, "secret": EL_SECRET, "app_id": EL_APP_ID, "access_token": EL_TOKEN,
                      "api_url": f"{standin['eleme']}/api/v1/", "dispatch_phone": "13800000003"},
            "jd": {"app_key": JD_KEY, "secret": JD_SECRET, "token": JD_TOKEN, "api_base": f"{standin['jd']}/djapi"},
        }
        app = create_app(make_settings(sqlite_url, public_url=base, platforms=platforms), background=False)
        with app.state.db.session() as s:
            for p in platforms:
                s.add(PlatformShop(platform=p, external_shop_id="1001", merchant_id=1))
            s.commit()
        es.enter_context(serve(app, port))
        http = es.enter_context(httpx.Client(timeout=10))
        tok = http.post(f"{base}/api/v1/auth/login", json={"phone": DEMO_ACCOUNTS[Role.ops][0],
                                                           "password": DEMO_PASSWORD}).json()["access_token"]
        yield Env(app, base, standin, http, {"Authorization": f"Bearer {tok}"})


def _push(env: Env, platform: str, **spec: object) -> dict:  # type: ignore[type-arg]
    spec.setdefault("webhook_url", f"{env.base}/api/v1/intake/{platform}/orders")
    spec.setdefault("items", [{"name": "卤蛋", "sku": "EGG", "quantity": 2, "price": "3"},
                              {"name": "冰红茶", "sku": "TEA", "quantity": 1, "price": "3"}])
    spec.setdefault("address", "北2栋 302室")
    r = env.http.post(f"{env.standin[platform]}/admin/push_order", json=spec)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _orders(env: Env) -> list[Order]:
    with env.app.state.db.read_session() as s:  # type: ignore[attr-defined]
        return list(s.scalars(select(Order).where(Order.source != "app")))


@pytest.mark.parametrize("platform", ["meituan", "eleme", "jd"])
def test_push_forgery_redelivery_and_callbacks_in_order(env: Env, platform: str) -> None:
    pushed = _push(env, platform)
    assert pushed["accepted"] is True, {k: pushed[k] for k in ("status_code", "body")}
    [order] = _orders(env)
    assert order.source == platform and order.status == "paid" and order.delivery_point_id == 2
    assert [(ln.name, ln.quantity) for ln in order.lines] == [("卤蛋", 2), ("冰红茶", 1)]
    # Forged: signed with a wrong secret -> refused in the platform's own ack shape, no order.
    forged = _push(env, platform, secret_override="not-the-secret")
    assert forged["accepted"] is False
    # Redelivered: the same platform order id again -> acknowledged, still one order.
    again = _push(env, platform, order_id=pushed["order_id"])
    assert again["accepted"] is True
    assert len(_orders(env)) == 1
    with env.app.state.db.read_session() as s:  # type: ignore[attr-defined]
        assert s.scalar(select(func.count()).select_from(ExternalOrderLink)) == 1

    # The platform's API is down for a while; our status changes keep happening.
    env.http.put(f"{env.standin[platform]}/admin/config", json={"fail_status": 503, "for_calls": 3})
    oid = order.id
    for action in ("accept", "preparing", "ready"):
        assert env.http.post(f"{env.base}/api/v1/orders/{oid}/{action}", headers=env.ops).status_code == 200
    assert env.http.post(f"{env.base}/api/v1/orders/{oid}/assign", json={"rider_id": 1},
                         headers=env.ops).status_code == 200
    assert env.http.post(f"{env.base}/api/v1/orders/{oid}/pickup", headers=env.ops).status_code == 200
    with env.app.state.db.read_session() as s:  # type: ignore[attr-defined]
        code = s.get(Order, oid).proof_code  # type: ignore[union-attr]
    assert env.http.post(f"{env.base}/api/v1/orders/{oid}/deliver", json={"proof_code": code},
                         headers=env.ops).status_code == 200
    env.app.state.events.run_once()  # type: ignore[attr-defined]  # the worker leader: callbacks owed, in order
    sender = env.app.state.callback_sender  # type: ignore[attr-defined]
    now = dt.datetime.now(dt.UTC)
    for _ in range(12):  # the retry job's rounds, the clock moving past each backoff
        sender.run_once(now)
        now += dt.timedelta(seconds=40)
    calls = [c for c in env.http.get(f"{env.standin[platform]}/admin/state").json()["callbacks"]
             if c["order_id"] == pushed["order_id"] and c["ok"]]
    assert [c["action"] for c in calls] == ACTIONS[platform], calls
    assert env.http.get(f"{env.base}/api/v1/intake/dead-letters", headers=env.ops).json() == []


def test_unknown_shop_is_refused_and_counted(env: Env) -> None:
    r = _push(env, "meituan", shop_id="9999")
    assert r["accepted"] is False
    assert _orders(env) == []
    assert 'waimai_intake_pushes_total{outcome="unmapped_unknown_merchant",platform="meituan"}' in \
        env.http.get(f"{env.base}/metrics").text


def test_pause_switch_reconciliation_and_orders_by_source(env: Env) -> None:
    r = env.http.put(f"{env.base}/api/v1/switches/intake.jd.paused", json={"enabled": True, "reason": "no riders"},
                     headers=env.ops)
    assert r.status_code == 200 and r.json()["enabled"] is True
    assert _push(env, "jd")["accepted"] is False
    assert _orders(env) == []
    env.http.put(f"{env.base}/api/v1/switches/intake.jd.paused", json={"enabled": False}, headers=env.ops)
    assert _push(env, "jd")["accepted"] is True
    assert env.http.put(f"{env.base}/api/v1/switches/nonsense", json={"enabled": True},
                        headers=env.ops).status_code == 422
    [order] = _orders(env)
    # Delivered on our side while the platform is down for good: the report flags it.
    env.http.put(f"{env.standin['jd']}/admin/config", json={"fail_status": 503})
    for action in ("accept", "preparing", "ready"):
        env.http.post(f"{env.base}/api/v1/orders/{order.id}/{action}", headers=env.ops)
    env.http.post(f"{env.base}/api/v1/orders/{order.id}/assign", json={"rider_id": 1}, headers=env.ops)
    env.http.post(f"{env.base}/api/v1/orders/{order.id}/pickup", headers=env.ops)
    env.http.post(f"{env.base}/api/v1/orders/{order.id}/deliver", json={"proof_code": order.proof_code},
                  headers=env.ops)
    env.app.state.events.run_once()  # type: ignore[attr-defined]
    env.app.state.callback_sender.run_once()  # type: ignore[attr-defined]
    rep = env.http.get(f"{env.base}/api/v1/intake/reconciliation", headers=env.ops).json()["jd"]
    assert rep["received"] == 1 and rep["delivered"] == 1 and rep["callbacks_acknowledged"] == 0
    assert rep["mismatches"] == [f"order {order.id} delivered, platform not told"]
    by_source = env.http.get(f"{env.base}/api/v1/orders", params={"source": "jd"}, headers=env.ops).json()
    assert [o["id"] for o in by_source] == [order.id]
    audit = env.http.get(f"{env.base}/api/v1/ops/audit", headers=env.ops).json()
    assert any(a["action"] == "switch.set" and a["target"] == "intake.jd.paused" for a in audit)


def test_intake_page_pause_toggle(env: Env) -> None:
    with httpx.Client(base_url=env.base, follow_redirects=True) as c:
        c.post("/login", data={"phone": DEMO_ACCOUNTS[Role.ops][0], "password": DEMO_PASSWORD})
        page = c.get("/ops/intake")
        assert page.status_code == 200 and 'data-platform="meituan"' in page.text
        assert _push(env, "meituan")["accepted"] is True
        listed = c.get("/ops/intake", params={"source": "meituan"}).text
        assert 'data-order="' in listed and "meituan" in listed
        r = c.post("/ops/intake/meituan/pause", data={"paused": "1"})
        assert r.status_code == 200 and "flash ok" in r.text
    assert _push(env, "meituan")["accepted"] is False


def test_jd_bill_id_only_push_is_fetched_then_placed(env: Env) -> None:
    r = _push(env, "jd", inline_detail=False)
    assert r["accepted"] is True, r
    [order] = _orders(env)
    assert order.source == "jd" and [ln.name for ln in order.lines] == ["卤蛋", "冰红茶"]
