"""Degradation switches through OpenFeature, module kill switches, read-only mode, and what each switch does."""

from __future__ import annotations

import time
import uuid

import pytest
from openfeature import api as openfeature
from sqlalchemy import select

from tests.conftest import Api
from waimai.core.audit import AuditEntry
from waimai.firewall.switches import flags
from waimai.firewall.switches.catalog import MODULES, is_known, module_of
from waimai.platform.ordering.models import Order


def flip(api: Api, name: str, on: bool = True, reason: str = "") -> None:
    r = api.c.put(f"/api/v1/switches/{name}", json={"enabled": on, "reason": reason}, headers=api.h("ops"))
    assert r.status_code == 200, r.text


# One request per module, answered by that module's code (never a 503 of its own while the module is on).
PROBES = {
    "ordering": ("GET", "/api/v1/orders", "customer", None),
    "payments": ("POST", "/api/v1/payments/callbacks/gateway", None, {}),
    "delivery": ("GET", "/api/v1/riders/me", "rider", None),
    "tracking": ("GET", "/api/v1/orders/999999/events", "customer", None),
    "catalog": ("GET", "/api/v1/merchants", None, None),
    "intake": ("POST", "/api/v1/intake/meituan/orders", None, {}),
    "alert_intake": ("POST", "/api/v1/alerts/ingest/alertmanager", None, {}),
}


def probe(api: Api, module: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    method, path, role, body = PROBES[module]
    r = api.c.request(method, path, headers=api.h(role) if role else {}, json=body)
    return r.status_code, (r.json() if r.headers.get("content-type", "").startswith("application/json") else {})


def test_every_module_has_a_probe() -> None:
    assert set(PROBES) == set(MODULES)
    for module, (_m, path, _r, _b) in PROBES.items():
        assert module_of(path) == module
    for path in ("/api/v1/switches", "/ops", "/livez", "/metrics", "/api/v1/breakers", "/static/app.css"):
        assert module_of(path) is None


@pytest.mark.parametrize("module", MODULES)
def test_module_kill_switch_isolates_that_module_only(api: Api, module: str) -> None:
    before = {m: probe(api, m)[0] for m in MODULES}
    assert 503 not in before.values(), before
    flip(api, f"module.{module}.off", reason="drill")
    status, body = probe(api, module)
    assert status == 503
    assert body["error"]["code"] == "module_off"
    assert f"module.{module}.off" in body["error"]["message"] and "drill" in body["error"]["message"]
    assert body["error"]["details"] == {"module": module, "switch": f"module.{module}.off", "reason": "drill"}
    r = api.c.get(PROBES[module][1]) if PROBES[module][0] == "GET" else api.c.post(PROBES[module][1], json={})
    assert r.headers["retry-after"] == "30"
    for other in MODULES:
        if other != module:
            assert probe(api, other)[0] == before[other], f"{other} changed while {module} was off"
    assert api.c.get("/api/v1/switches", headers=api.h("ops")).status_code == 200  # ops keep steering
    flip(api, f"module.{module}.off", on=False)
    assert probe(api, module)[0] == before[module]


def test_read_only_refuses_writes_but_not_reads_or_ops(api: Api) -> None:
    flip(api, "system.read_only", reason="database failover")
    r = api.place()
    assert r.status_code == 503 and r.headers["retry-after"] == "30"  # type: ignore[attr-defined]
    assert r.json()["error"]["code"] == "read_only" and "system.read_only" in r.json()["error"]["message"]  # type: ignore[attr-defined]
    assert api.c.get("/api/v1/merchants").status_code == 200
    assert api.c.get("/api/v1/orders", headers=api.h("customer")).status_code == 200
    assert api.c.post("/api/v1/auth/login", json={"phone": "13800000001", "password": "x"}).status_code != 503
    flip(api, "system.read_only", on=False)  # the switch endpoint itself is a write, and still works
    assert api.place().status_code == 201  # type: ignore[attr-defined]


def test_unknown_and_mistyped_switches_are_refused(api: Api) -> None:
    for name in ("module.odering.off", "merchant.x.paused", "payment.cash_only", "coupons.gone"):
        r = api.c.put(f"/api/v1/switches/{name}", json={"enabled": True}, headers=api.h("ops"))
        assert r.status_code == 422 and r.json()["error"]["code"] == "switch_unknown", name
    for name in ("payment.cod_only", "ordering.simple_mode", "dispatch.manual", "delivery.pickup_points",
                 "merchant.12.paused", "intake.meituan.paused", "coupons.paused", "system.read_only",
                 "module.alert_intake.off"):
        assert is_known(name), name


def test_flags_go_through_openfeature_with_switch_metadata(api: Api) -> None:
    assert openfeature.get_client(flags.DOMAIN).provider.get_metadata().name == "waimai-switches"
    assert flags.enabled("coupons.paused") is False  # never set: off
    flip(api, "coupons.paused", reason="no coupons yet")
    d = flags.details("coupons.paused")
    assert d.value is True and d.variant == "on"
    assert d.flag_metadata["reason"] == "no coupons yet" and d.flag_metadata["updated_by"].startswith("ops:")


def test_switch_reads_are_cached_briefly_and_see_other_replicas(api: Api) -> None:
    from waimai.firewall.switches.models import Switch

    db = api.c.app.state.db  # type: ignore[attr-defined]
    assert flags.enabled("dispatch.manual") is False
    with db.session() as s:  # another replica flips it: no invalidation here
        s.add(Switch(name="dispatch.manual", enabled=True, updated_by="ops:1"))
        s.commit()
    ttl = api.c.app.state.settings.switch_cache_ttl_s  # type: ignore[attr-defined]
    deadline = time.monotonic() + ttl + 2.0
    while not flags.enabled("dispatch.manual"):
        assert time.monotonic() < deadline, "a switch set elsewhere was not seen within the cache TTL"
        time.sleep(0.05)


def test_cod_only_refuses_online_payment_and_checkout_offers_cash(api: Api) -> None:
    r = api.place(payment_method="gateway")
    assert r.status_code == 201  # type: ignore[attr-defined]
    pending = r.json()["id"]  # type: ignore[attr-defined]
    flip(api, "payment.cod_only", reason="gateway failing")
    r = api.place(payment_method="gateway")
    assert r.status_code == 409  # type: ignore[attr-defined]
    err = r.json()["error"]  # type: ignore[attr-defined]
    assert err["code"] == "payment_cod_only" and "payment.cod_only" in err["message"]
    assert err["details"]["allowed_payment_methods"] == ["cod"]
    assert api.place(payment_method="cod").status_code == 201  # type: ignore[attr-defined]
    r = api.c.post(f"/api/v1/orders/{pending}/pay", headers=api.h("customer"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "payment_cod_only"
    assert api.c.post(f"/api/v1/orders/{pending}/pay?method=cod", headers=api.h("customer")).status_code == 200
    # the checkout page offers cash only, and says why
    api.c.cookies.set("waimai_token", api.token("customer"))
    api.c.post("/cart/add", data={"item_id": 5, "quantity": 1})
    page = api.c.get("/cart?lang=en").text
    assert 'id="cod-only"' in page and 'value="gateway"' not in page and 'value="cod" checked' in page


def test_pickup_points_route_new_orders_to_lockers(api: Api) -> None:
    from waimai.platform.catalog.models import DeliveryPoint

    with api.c.app.state.db.read_session() as s:  # type: ignore[attr-defined]
        locker = s.scalar(select(DeliveryPoint.id).where(DeliveryPoint.kind == "locker"))
        door = s.scalar(select(DeliveryPoint.id).where(DeliveryPoint.kind != "locker"))
    assert api.place(delivery_point_id=door).status_code == 201  # type: ignore[attr-defined]
    flip(api, "delivery.pickup_points", reason="riders short")
    r = api.place(delivery_point_id=door)
    assert r.status_code == 422 and r.json()["error"]["code"] == "delivery_pickup_only"  # type: ignore[attr-defined]
    assert "delivery.pickup_points" in r.json()["error"]["message"]  # type: ignore[attr-defined]
    assert api.place(delivery_point_id=locker).status_code == 201  # type: ignore[attr-defined]
    api.c.cookies.set("waimai_token", api.token("customer"))
    api.c.post("/cart/add", data={"item_id": 5, "quantity": 1})
    page = api.c.get("/cart?lang=en").text
    assert 'id="pickup-only"' in page and f'value="{door}"' not in page and f'value="{locker}"' in page


def test_merchant_switch_pauses_one_merchant(api: Api) -> None:
    flip(api, "merchant.1.paused", reason="kitchen fire drill")
    r = api.place()
    assert r.status_code == 409 and r.json()["error"]["code"] == "merchant_closed"  # type: ignore[attr-defined]
    assert "merchant.1.paused" in r.json()["error"]["message"]  # type: ignore[attr-defined]
    assert api.c.get("/api/v1/merchants/1").status_code == 200  # the menu stays visible


def test_dispatch_manual_skips_automatic_rounds(api: Api) -> None:
    from waimai.platform.delivery.service import dispatch_round

    db = api.c.app.state.db  # type: ignore[attr-defined]
    rider_h = api.h("rider")
    assert api.c.post("/api/v1/riders/me/shift", json={"on_shift": True}, headers=rider_h).status_code == 200
    oid = api.place().json()["id"]  # type: ignore[attr-defined]
    api.c.post(f"/api/v1/orders/{oid}/accept", headers=api.h("merchant"))
    flip(api, "dispatch.manual", reason="dispatcher misbehaving")
    with db.session() as s:
        assert dispatch_round(s) == 0
        s.rollback()
    rider = api.c.get("/api/v1/riders/me", headers=rider_h).json()["id"]
    r = api.c.post(f"/api/v1/orders/{oid}/assign", json={"rider_id": rider}, headers=api.h("ops"))
    assert r.status_code == 200 and r.json()["rider_id"] == rider


def test_every_flip_is_audited_with_its_actor(api: Api) -> None:
    flip(api, "coupons.paused", reason="registered")
    with api.c.app.state.db.read_session() as s:  # type: ignore[attr-defined]
        e = s.scalar(select(AuditEntry).where(AuditEntry.target == "coupons.paused"))
    assert e is not None and e.action == "switch.set" and e.actor_role == "ops" and e.details["to"] is True


def test_automatic_cod_only_follows_the_payment_breaker(sqlite_url: str) -> None:
    from fastapi.testclient import TestClient

    from tests.conftest import make_settings
    from waimai.app import create_app
    from waimai.platform.payments.base import ProbeResult

    settings = make_settings(sqlite_url, breaker_failure_threshold=2, breaker_open_s=0.3, cod_recovery_s=0.3)
    app = create_app(settings, background=False)
    with TestClient(app) as c:
        api = Api(c)
        guard = app.state.payment_guard
        oid = api.place(payment_method="gateway").json()["id"]  # type: ignore[attr-defined]
        for _ in range(2):  # the test gateway URL answers nothing: the payment breaker opens
            assert c.post(f"/api/v1/orders/{oid}/pay", headers=api.h("customer")).status_code == 503
        app.state.resilience.store.flush()
        assert guard.run() == "engaged"
        assert flags.details("payment.cod_only").flag_metadata["updated_by"] == "system:breaker"
        assert api.place(payment_method="gateway").status_code == 409  # type: ignore[attr-defined]
        assert api.place(payment_method="cod").status_code == 201  # type: ignore[attr-defined]
        guard.provider.health = lambda: ProbeResult(ok=True, latency_ms=1.0)  # the gateway is back
        time.sleep(0.35)
        guard.run()  # the trial call closes the breaker
        assert app.state.resilience.store.record("payment_gateway").state == "closed"
        assert flags.enabled("payment.cod_only")  # not yet: healthy for less than cod_recovery_s
        time.sleep(0.35)
        assert guard.run() == "released"
        assert not flags.enabled("payment.cod_only")
        with app.state.db.read_session() as s:
            trail = [(e.actor_role, e.details["to"]) for e in s.scalars(
                select(AuditEntry).where(AuditEntry.target == "payment.cod_only").order_by(AuditEntry.id))]
        assert trail == [("system:breaker", True), ("system:breaker", False)]


def test_cod_only_set_by_ops_is_not_undone_by_the_breaker(sqlite_url: str) -> None:
    from fastapi.testclient import TestClient

    from tests.conftest import make_settings
    from waimai.app import create_app

    app = create_app(make_settings(sqlite_url, cod_recovery_s=0.0), background=False)
    with TestClient(app) as c:
        api = Api(c)
        flip(api, "payment.cod_only", reason="bank maintenance tonight")
        app.state.payment_guard.run()
        assert flags.enabled("payment.cod_only")


def test_simple_mode_engages_on_slow_database_and_serves_from_memory(sqlite_url: str) -> None:
    from fastapi.testclient import TestClient

    from tests.conftest import make_settings
    from waimai.app import create_app

    app = create_app(make_settings(sqlite_url, chaos=True, simple_mode_db_latency_ms=40,
                                   simple_mode_recovery_s=0.0), background=False)
    with TestClient(app) as c:
        api = Api(c)
        assert c.get("/simple").status_code == 200  # warms the menu copy
        assert c.put("/api/v1/chaos/db", json={"delay_ms": 80}, headers=api.h("ops")).status_code == 200
        watch = app.state.db_latency
        for _ in range(3):
            watch.run()
        assert flags.enabled("ordering.simple_mode")
        assert flags.details("ordering.simple_mode").flag_metadata["updated_by"] == "system:db_slow"
        r = c.get("/", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/simple"
        t0 = time.perf_counter()
        page = c.get("/simple?lang=en")
        took = time.perf_counter() - t0
        assert page.status_code == 200 and 'id="simple-note"' in page.text and "qty_5" in page.text
        assert took < 0.08, f"the simple page touched the slow database ({took * 1000:.0f} ms)"
        c.cookies.set("waimai_token", api.token("customer"))
        placed = c.post("/simple/order", data={"merchant_id": 1, "delivery_point_id": 1, "qty_5": 2,
                                               "idem": uuid.uuid4().hex})
        assert placed.status_code == 201 and 'id="placed"' in placed.text
        with app.state.db.read_session() as s:
            assert s.scalar(select(Order.payment_method).order_by(Order.id.desc()).limit(1)) == "cod"
        c.put("/api/v1/chaos/db", json={"delay_ms": 0}, headers=api.h("ops"))
        for _ in range(3):
            watch.run()
        assert not flags.enabled("ordering.simple_mode")


def test_chaos_endpoint_is_absent_without_the_setting(api: Api) -> None:
    r = api.c.put("/api/v1/chaos/db", json={"delay_ms": 100}, headers=api.h("ops"))
    assert r.status_code == 404


def test_breakers_api_lists_and_resets(api: Api) -> None:
    r = api.c.get("/api/v1/breakers", headers=api.h("ops"))
    assert r.status_code == 200 and "payment_gateway" in {b["dependency"] for b in r.json()}
    assert api.c.get("/api/v1/breakers", headers=api.h("customer")).status_code == 403
    r = api.c.put("/api/v1/breakers/payment_gateway", json={"state": "opened", "reason": "drill"},
                  headers=api.h("ops"))
    assert r.status_code == 200 and r.json()["state"] == "opened"
    r = api.c.put("/api/v1/breakers/payment_gateway", json={"state": "closed"}, headers=api.h("ops"))
    assert r.json()["state"] == "closed"


def test_coupons_paused_refuses_redemption_not_orders(api: Api) -> None:
    from waimai.platform.accounts.models import User
    from waimai.platform.coupons import service as coupons

    with api.c.app.state.db.session() as s:  # type: ignore[attr-defined]
        uid = s.scalar(select(User.id).where(User.phone == "13800000001"))
        coupon, _ = coupons.issue(s, user_id=uid, amount_fen=100, source="promo", actor="ops:1")
        s.commit()
        code = coupon.code
    flip(api, "coupons.paused", reason="abuse being looked into")
    r = api.place(coupon_code=code)
    assert r.status_code == 503 and r.json()["error"]["code"] == "coupons_paused"  # type: ignore[attr-defined]
    assert api.place().status_code == 201  # type: ignore[attr-defined]
    flip(api, "coupons.paused", on=False)
    assert api.place(coupon_code=code).status_code == 201  # type: ignore[attr-defined]


def test_switch_catalog_lists_every_switch_and_which_are_on(api: Api) -> None:
    flip(api, "merchant.2.paused")
    flip(api, "module.tracking.off")
    cat = {k["name"]: k for k in api.c.get("/api/v1/switches/catalog", headers=api.h("ops")).json()}
    assert {"payment.cod_only", "ordering.simple_mode", "module.<name>.off", "coupons.paused"} <= set(cat)
    assert cat["merchant.<id>.paused"]["on"] == ["merchant.2.paused"]
    assert cat["module.<name>.off"]["on"] == ["module.tracking.off"]
    assert "system:breaker" in cat["payment.cod_only"]["automatic"]
