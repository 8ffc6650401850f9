"""Compensation after an incident and coupons at checkout — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.conftest import Api, make_settings
from waimai.app import create_app
from waimai.core.inbox import Notice
from waimai.platform.accounts import service as accounts
from waimai.platform.coupons import service as coupons
from waimai.platform.coupons.models import Coupon
from waimai.platform.ordering.models import Order
from waimai.platform.payments.models import Payment


@pytest.fixture
def env(db_url: str) -> Iterator[tuple[TestClient, Api]]:
    app = create_app(make_settings(db_url), background=False)
    with TestClient(app) as c:
        yield c, Api(c)


def login(c: TestClient, phone: str) -> dict[str, str]:
    r = c.post("/api/v1/auth/login", json={"phone": phone, "password": "waimai-demo"})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def place(c: TestClient, h: dict[str, str], **extra: object) -> dict:  # type: ignore[type-arg]
    body = {"merchant_id": 1, "delivery_point_id": 1, "items": [{"item_id": 5, "quantity": 2}], "payment_method": "cod",
            **extra}
    r = c.post("/api/v1/orders", json=body, headers={**h, "Idempotency-Key": uuid.uuid4().hex})
    return {"http": r.status_code, **r.json()}


def test_one_fair_coupon_per_affected_user_within_budget(env: tuple[TestClient, Api]) -> None:
    c, api = env
    db = c.app.state.db  # type: ignore[attr-defined]
    phones = ["13722220001", "13722220002", "13722220003", "13722220004", "13722220005"]
    with db.session() as s:
        for ph in phones:
            accounts.create_user(s, phone=ph, name=ph, role="customer", password="waimai-demo")
        s.commit()
    h = {ph: login(c, ph) for ph in phones}
    # History before the incident: user 4 is a regular (5 orders in the month before).
    old = [place(c, h[phones[3]])["id"] for _ in range(5)]
    onset = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
    with db.session() as s:
        s.execute(update(Order).where(Order.id.in_(old)).values(created_at=onset - dt.timedelta(days=3),
                                                                status="delivered"))
        s.commit()
    # During the incident: a cancelled order (u0), a failed online payment (u1), a late delivery (u2),
    # a regular whose order was rejected (u3), and a late order support already made good (u4).
    o0 = place(c, h[phones[0]])
    assert c.post(f"/api/v1/orders/{o0['id']}/cancel", json={"reason": "waited"}, headers=h[phones[0]]).status_code \
        in (200, 201)
    o1 = place(c, h[phones[1]])
    o2 = place(c, h[phones[2]])
    o3 = place(c, h[phones[3]])
    o4 = place(c, h[phones[4]])
    now = dt.datetime.now(dt.UTC)
    with db.session() as s:
        s.add(Payment(order_id=o1["id"], provider="gateway", amount_fen=o1["total_fen"], status="failed",
                      created_at=now))
        s.execute(update(Order).where(Order.id.in_([o2["id"], o4["id"]])).values(
            status="delivered", promised_at=now - dt.timedelta(minutes=25), delivered_at=now))
        s.execute(update(Order).where(Order.id == o3["id"]).values(status="rejected"))
        u4 = s.scalar(select(Order.customer_id).where(Order.id == o4["id"]))
        coupons.issue(s, user_id=u4, amount_fen=800, source="ticket", actor="support:4", order_id=o4["id"])
        s.commit()
    r = c.post("/api/v1/incidents", headers=api.h("ops"), json={
        "title": "Gateway outage", "severity": "P1", "components": ["payment"], "onset_at": onset.isoformat()})
    iid = r.json()["id"]
    c.post(f"/api/v1/incidents/{iid}/updates", json={"status": "resolved"}, headers=api.h("ops"))

    assert c.get(f"/api/v1/incidents/{iid}/compensation?budget_fen=100000", headers=api.h("customer")
                 ).status_code == 403
    preview = c.get(f"/api/v1/incidents/{iid}/compensation?budget_fen=100000", headers=api.h("ops")).json()
    by_phone = {u["phone"][-4:]: u for u in preview["users"]}
    assert set(by_phone) == {"0001", "0002", "0003", "0004"}  # u4 was made good by support already
    assert preview["skipped_orders"] == 1 and preview["scale"] == 1.0
    u0, u1, u2, u3 = (by_phone[k] for k in ("0001", "0002", "0003", "0004"))
    # base ¥5 (P1) + 20% of the failed order; no minimum spend for a failed order
    assert u0["amount_fen"] == (500 + 0.2 * u0["failed_fen"]) // 50 * 50 and u0["min_spend_fen"] == 0
    assert u1["amount_fen"] == 700 and u1["payment_trouble"]  # base + ¥2 for payment trouble
    assert u2["late_minutes"] == 25 and u2["amount_fen"] == 500 + 750  # + ¥0.30 × 25 min
    assert u3["recent_orders"] == 5 and u3["amount_fen"] == int((500 + 0.2 * u3["failed_fen"]) * 1.15 // 50 * 50)
    assert u0["amount_fen"] < u3["amount_fen"]  # same failure, the regular gets more
    assert not c.get(f"/api/v1/incidents/{iid}/compensation/report", headers=api.h("ops")).json()["coupons"]

    # A tight budget scales everyone down and never exceeds it.
    tight = c.get(f"/api/v1/incidents/{iid}/compensation?budget_fen=2000", headers=api.h("ops")).json()
    assert tight["total_fen"] <= 2000 and tight["scale"] < 1
    r = c.post(f"/api/v1/incidents/{iid}/compensation", json={"budget_fen": 2000, "confirm": False},
               headers=api.h("ops"))
    assert r.status_code == 422
    first = c.post(f"/api/v1/incidents/{iid}/compensation", json={"budget_fen": 2000, "confirm": True},
                   headers=api.h("ops")).json()
    again = c.post(f"/api/v1/incidents/{iid}/compensation", json={"budget_fen": 2000, "confirm": True},
                   headers=api.h("ops")).json()
    assert first["created"] == len(tight["users"]) and again["created"] == 0 and first["cost_fen"] <= 2000
    with db.read_session() as s:
        rows = list(s.scalars(select(Coupon).where(Coupon.incident_id == iid)))
        assert len(rows) == len({r.user_id for r in rows}) == first["created"]
        notices = list(s.scalars(select(Notice).where(Notice.incident_id == iid, Notice.event_id.is_(None))))
        assert {n.user_id for n in notices} == {r.user_id for r in rows} and len(notices) == len(rows)
        assert all(r.code in n.body for r in rows for n in notices if n.user_id == r.user_id)
    timeline = c.get(f"/api/v1/incidents/{iid}", headers=api.h("ops")).json()["timeline"]
    assert [e["kind"] for e in timeline].count("compensation") == 2

    # Redeem at checkout: the discount applies once; the report counts it.
    code = next(r.code for r in rows if r.min_spend_fen == 0)
    owner = next(ph for ph in phones if by_phone.get(ph[-4:], {}).get("user_id") ==
                 next(r.user_id for r in rows if r.code == code))
    before = place(c, h[owner])
    paid = place(c, h[owner], coupon_code=code)
    assert paid["http"] == 201, paid
    amount = next(r.amount_fen for r in rows if r.code == code)
    assert paid["discount_fen"] == amount and paid["total_fen"] == before["total_fen"] - amount
    assert place(c, h[owner], coupon_code=code)["error"]["code"] == "coupon_used"
    rep = c.get(f"/api/v1/incidents/{iid}/compensation/report", headers=api.h("ops")).json()
    assert rep["redeemed"] == 1 and rep["redemption_rate"] == round(1 / len(rows), 3)


def test_coupon_rules_at_checkout(env: tuple[TestClient, Api]) -> None:
    c, api = env
    db = c.app.state.db  # type: ignore[attr-defined]
    me = login(c, "13800000001")
    with db.session() as s:
        from waimai.platform.accounts.models import User

        uid = s.scalar(select(User.id).where(User.phone == "13800000001"))
        other = accounts.create_user(s, phone="13722229999", name="x", role="customer", password="waimai-demo")
        s.flush()
        big, _ = coupons.issue(s, user_id=uid, amount_fen=500, min_spend_fen=99_900, source="promo", actor="ops:1")
        shop2, _ = coupons.issue(s, user_id=uid, amount_fen=500, merchant_id=2, source="promo", actor="ops:1")
        theirs, _ = coupons.issue(s, user_id=other.id, amount_fen=500, source="promo", actor="ops:1")
        gone, _ = coupons.issue(s, user_id=uid, amount_fen=500, source="promo", actor="ops:1", days=1,
                                now=dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
        good, _ = coupons.issue(s, user_id=uid, amount_fen=300, source="promo", actor="ops:1")
        s.commit()
    assert place(c, me, coupon_code=big.code)["error"]["code"] == "coupon_min_spend"
    assert place(c, me, coupon_code=shop2.code)["error"]["code"] == "coupon_wrong_merchant"
    assert place(c, me, coupon_code=theirs.code)["error"]["code"] == "coupon_unknown"
    assert place(c, me, coupon_code=gone.code)["error"]["code"] == "coupon_expired"
    assert place(c, me, coupon_code="bad code!")["http"] == 422
    mine = {x["code"]: x["state"] for x in c.get("/api/v1/coupons", headers=me).json()}
    assert mine[gone.code] == "expired" and mine[good.code] == "active" and theirs.code not in mine
    assert c.put("/api/v1/switches/coupons.paused", json={"enabled": True, "reason": "coupon abuse"},
                 headers=api.h("ops")).status_code == 200
    paused = place(c, me, coupon_code=good.code)
    assert paused["http"] == 503 and paused["error"]["code"] == "coupons_paused" and "abuse" in paused["error"]["message"]
    c.put("/api/v1/switches/coupons.paused", json={"enabled": False}, headers=api.h("ops"))
    o = place(c, me, coupon_code=good.code)
    assert o["http"] == 201 and o["discount_fen"] == 300
    # Nothing was stock-reserved or half-written by the refused attempts; a cancelled order gives the coupon back.
    assert c.post(f"/api/v1/orders/{o['id']}/cancel", json={"reason": "changed my mind"}, headers=me).status_code \
        in (200, 201)
    assert {x["code"]: x["state"] for x in c.get("/api/v1/coupons", headers=me).json()}[good.code] == "active"
    assert c.get("/api/v1/coupons", headers=api.h("ops")).status_code == 200


def test_checkout_page_offers_usable_coupons(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url), background=False)
    with TestClient(app) as c:
        api = Api(c)
        with app.state.db.session() as s:
            from waimai.platform.accounts.models import User

            uid = s.scalar(select(User.id).where(User.phone == "13800000001"))
            ok, _ = coupons.issue(s, user_id=uid, amount_fen=400, source="promo", actor="ops:1")
            elsewhere, _ = coupons.issue(s, user_id=uid, amount_fen=400, merchant_id=3, source="promo", actor="ops:1")
            s.commit()
        c.cookies.set("waimai_token", api.token("customer"))
        c.post("/cart/add", data={"item_id": 5, "quantity": 2})
        page = c.get("/cart").text
        assert ok.code in page and elsewhere.code not in page
        idem = page.split('name="idem" value="')[1].split('"')[0]
        r = c.post("/checkout", data={"delivery_point_id": 1, "payment_method": "cod", "idem": idem,
                                      "coupon_code": ok.code}, follow_redirects=False)
        assert r.status_code == 303 and "/orders/" in r.headers["location"], r.headers["location"]
        with app.state.db.read_session() as s:
            order = s.scalar(select(Order).order_by(Order.id.desc()).limit(1))
            assert order is not None and order.discount_fen == 400
            assert s.get(Coupon, ok.id).status == "redeemed"  # type: ignore[union-attr]
