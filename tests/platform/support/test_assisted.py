"""Assisted ordering (issue 12, acceptance 1): during a payment outage a support user places an order for a
customer with cash on delivery, and it is dispatched and delivered like any other — on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from tests.conftest import Api
from waimai.core.audit import AuditEntry
from waimai.platform.delivery.service import dispatch_round
from waimai.platform.ordering.models import OrderTransition

BASKET = {"merchant_id": 1, "delivery_point_id": 1, "items": [{"item_id": 5, "quantity": 2}]}


def flip(api: Api, name: str, on: bool = True) -> None:
    r = api.c.put(f"/api/v1/switches/{name}", json={"enabled": on, "reason": "test"}, headers=api.h("ops"))
    assert r.status_code == 200, r.text


def assisted(api: Api, customer_id: int, key: str | None = None, role: str = "support", **body: object):  # type: ignore[no-untyped-def]
    return api.c.post("/api/v1/support/orders", json={**BASKET, "customer_id": customer_id, "payment_method": "cod",
                                                      **body},
                      headers=api.h(role, **{"Idempotency-Key": key or uuid.uuid4().hex}))


def test_support_orders_cod_in_a_payment_outage_and_it_is_delivered(api: Api) -> None:
    sup = api.h("support")
    # The payment gateway is down (the test settings point it at a closed port) and the commander has
    # switched to cash only; ordering.simple_mode is on as well.
    flip(api, "payment.cod_only")
    flip(api, "ordering.simple_mode")
    r = api.c.get("/api/v1/support/customers", params={"phone": "138 0000 0001"}, headers=sup)
    assert r.status_code == 200, r.text
    customer = r.json()
    assert customer["phone_masked"] == "138****0001" and customer["created"] is False

    r = assisted(api, customer["id"], payment_method="gateway")
    assert r.status_code == 409 and r.json()["error"]["code"] == "payment_cod_only"
    key = uuid.uuid4().hex
    r = assisted(api, customer["id"], key=key, note="by phone")
    assert r.status_code == 201, r.text
    order = r.json()["order"]
    assert order["source"] == "assisted" and order["status"] == "cod_confirmed" and order["payment_method"] == "cod"
    assert order["proof_code"] and len(order["proof_code"]) == 4  # read out to the customer on the phone
    again = assisted(api, customer["id"], key=key, note="by phone")  # the console retried: same order
    assert again.status_code == 200 and again.json()["order"]["id"] == order["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    oid = order["id"]

    # The customer sees it among their orders; the staff member is on the audit trail.
    mine = api.c.get("/api/v1/orders", headers=api.h("customer")).json()
    assert oid in [o["id"] for o in mine]
    db = api.c.app.state.db  # type: ignore[attr-defined]
    with db.read_session() as s:
        first = s.scalars(select(OrderTransition).where(OrderTransition.order_id == oid)
                          .order_by(OrderTransition.id)).first()
        assert first is not None and first.actor_role == "support"
        entry = s.scalar(select(AuditEntry).where(AuditEntry.target == f"order:{oid}"))
        assert entry is not None and entry.action == "order.assisted" and entry.actor_role == "support"

    # Dispatched and delivered like any other order.
    m, rider = api.h("merchant"), api.h("rider")
    for step in ("accept", "preparing", "ready"):
        assert api.c.post(f"/api/v1/orders/{oid}/{step}", headers=m).status_code == 200
    assert api.c.post("/api/v1/riders/me/shift", json={"on_shift": True}, headers=rider).status_code == 200
    with db.session() as s:
        assert dispatch_round(s) == 1
        s.commit()
    assert api.c.post(f"/api/v1/orders/{oid}/pickup", headers=rider).status_code == 200
    r = api.c.post(f"/api/v1/orders/{oid}/deliver", json={"proof_code": order["proof_code"]}, headers=rider)
    assert r.status_code == 200 and r.json()["status"] == "delivered", r.text


def test_new_customer_by_phone_and_a_payment_link_that_fails(api: Api) -> None:
    sup = api.h("support")
    assert api.c.get("/api/v1/support/customers", params={"phone": "13912345678"}, headers=sup).status_code == 404
    r = api.c.post("/api/v1/support/customers", json={"phone": "139-1234-5678", "name": "王同学"}, headers=sup)
    assert r.status_code == 201 and r.json()["created"] is True, r.text
    cid = r.json()["id"]
    r = api.c.post("/api/v1/support/customers", json={"phone": "13912345678"}, headers=sup)
    assert r.status_code == 200 and r.json()["id"] == cid  # found, not created twice
    # A staff number is not a customer.
    r = api.c.post("/api/v1/support/customers", json={"phone": "13800000002", "name": "x"}, headers=sup)
    assert r.status_code == 409 and r.json()["error"]["code"] == "phone_not_customer"
    # Online payment without the switch: the order is placed, the link fails (the gateway is down),
    # the console says so and switches the order to cash.
    r = assisted(api, cid, payment_method="gateway")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["order"]["status"] == "created" and body["pay_url"] is None and body["pay_error"]
    r = api.c.post(f"/api/v1/support/orders/{body['order']['id']}/cod", headers=sup)
    assert r.status_code == 200 and r.json()["status"] == "cod_confirmed"
    with api.c.app.state.db.read_session() as s:  # type: ignore[attr-defined]
        actions = set(s.scalars(select(AuditEntry.action).where(AuditEntry.actor_role == "support")))
    assert {"support.customer_lookup", "support.customer_create", "order.assisted", "order.switch_to_cod"} <= actions


def test_only_support_and_ops_order_for_others(api: Api) -> None:
    for role in ("customer", "merchant", "rider"):
        assert assisted(api, 1, role=role).status_code == 403
        assert api.c.get("/api/v1/support/customers", params={"phone": "13800000001"},
                         headers=api.h(role)).status_code == 403
    assert api.c.post("/api/v1/support/orders", json={**BASKET, "customer_id": 1, "payment_method": "cod"}).status_code == 401
    # Bad input: no key, an unknown customer, the platform payment method, absurd quantities.
    r = api.c.post("/api/v1/support/orders", json={**BASKET, "customer_id": 1, "payment_method": "cod"},
                   headers=api.h("support"))
    assert r.status_code == 400 and r.json()["error"]["code"] == "idempotency_key_missing"
    assert assisted(api, 999999).status_code == 404
    merchant_user = 2  # the demo merchant's account is not a customer
    assert assisted(api, merchant_user).status_code == 404
    assert assisted(api, 1, payment_method="platform").status_code == 422
    assert assisted(api, 1, items=[{"item_id": 5, "quantity": 1000}]).status_code == 422
    assert api.c.get("/api/v1/support/customers", params={"phone": "abc123"},
                     headers=api.h("support")).status_code == 422


def test_a_coupon_read_out_on_the_phone_is_redeemed(api: Api) -> None:
    from waimai.platform.coupons import service as coupons

    with api.c.app.state.db.session() as s:  # type: ignore[attr-defined]
        c, _ = coupons.issue(s, user_id=1, amount_fen=200, source="promo", actor="ops:5")
        code = c.code
        s.commit()
    r = assisted(api, 1, coupon_code=code)
    assert r.status_code == 201, r.text
    assert r.json()["order"]["discount_fen"] == 200
    assert assisted(api, 1, coupon_code=code).json()["error"]["code"] == "coupon_used"
