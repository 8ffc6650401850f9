"""Order placement, idempotency, the state machine and ownership — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import func, select

from tests.conftest import Api
from waimai.core.database import Database
from waimai.core.outbox import OutboxEvent
from waimai.platform.catalog.models import MenuItem
from waimai.platform.ordering import idempotency
from waimai.platform.ordering.models import Order, OrderLine, OrderTransition


def _db(api: Api) -> Database:
    return api.c.app.state.db  # type: ignore[attr-defined,no-any-return]


def _count(api: Api, model: type) -> int:
    with _db(api).read_session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_place_cod_order_writes_order_transitions_and_outbox_together(api: Api) -> None:
    r = api.place()
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "cod_confirmed"
    assert body["subtotal_fen"] == 600 and isinstance(body["total_fen"], int)
    assert body["total_fen"] == body["subtotal_fen"] + body["delivery_fee_fen"]
    assert body["proof_code"] and len(body["proof_code"]) == 4
    assert body["contact_phone"] == "138****0001"
    with _db(api).read_session() as s:
        trans = [t.to_status for t in s.scalars(select(OrderTransition).where(
            OrderTransition.order_id == body["id"]).order_by(OrderTransition.id))]
        topics = [e.topic for e in s.scalars(select(OutboxEvent))]
    assert trans == ["created", "cod_confirmed"]
    assert "order.placed" in topics


def test_same_key_same_body_replays_first_response(api: Api) -> None:
    key = uuid.uuid4().hex
    first = api.place(key=key)
    again = api.place(key=key)
    assert first.status_code == 201
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    assert _count(api, Order) == 1


def test_same_key_different_body_is_422(api: Api) -> None:
    key = uuid.uuid4().hex
    assert api.place(key=key).status_code == 201
    r = api.place(key=key, items=[{"item_id": 5, "quantity": 3}])
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "idempotency_key_reused"
    assert _count(api, Order) == 1


def test_retry_while_first_is_running_is_409(api: Api) -> None:
    key = uuid.uuid4().hex
    body = {"merchant_id": 1, "delivery_point_id": 1, "items": [{"item_id": 5, "quantity": 2, "options": []}],
            "payment_method": "cod", "note": "", "contact_phone": None, "coupon_code": None}
    # Claim the key as an in-flight request would, then retry over HTTP.
    from tests.conftest import DEMO_ACCOUNTS
    from waimai.platform.accounts.models import Role, User

    with _db(api).read_session() as s:
        uid = s.scalar(select(User.id).where(User.phone == DEMO_ACCOUNTS[Role.customer][0]))
    claim = idempotency.claim(_db(api), user_id=uid, key=key,
                              fingerprint=idempotency.request_fingerprint(body), ttl=dt.timedelta(hours=24))
    assert claim is None
    r = api.place(key=key)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "idempotency_in_progress"
    assert _count(api, Order) == 0


def test_concurrent_retry_on_postgresql_is_409_at_once(api: Api) -> None:
    """While the first request's transaction holds the key, a retry is told 409 without waiting."""
    db = _db(api)
    if db.dialect != "postgresql":
        return  # SQLite serialises writers: the retry runs after the first and is replayed instead
    import hashlib

    from sqlalchemy import text

    from tests.conftest import DEMO_ACCOUNTS
    from waimai.platform.accounts.models import Role, User

    with db.read_session() as s:
        uid = s.scalar(select(User.id).where(User.phone == DEMO_ACCOUNTS[Role.customer][0]))
    key = uuid.uuid4().hex
    lock_id = int.from_bytes(hashlib.sha256(f"{uid}:{key}".encode()).digest()[:8], "big", signed=True)
    with db.engine.connect() as holder:
        holder.execute(text("select pg_advisory_xact_lock(:i)"), {"i": lock_id})  # "the first request"
        r = api.place(key=key)
        assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_in_progress"
        holder.rollback()
    assert api.place(key=key).status_code == 201


def test_missing_idempotency_key_is_400(api: Api) -> None:
    r = api.c.post("/api/v1/orders", json={"merchant_id": 1, "delivery_point_id": 1,
                                           "items": [{"item_id": 5, "quantity": 1}]}, headers=api.h("customer"))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "idempotency_key_missing"


def test_keys_are_scoped_per_user(api: Api) -> None:
    key = uuid.uuid4().hex
    assert api.place(key=key).status_code == 201
    r = api.c.post("/api/v1/users", json={"phone": "13700000066", "name": "B", "role": "customer",
                                          "password": "another-password"}, headers=api.h("ops"))
    assert r.status_code == 201
    tok = api.c.post("/api/v1/auth/login", json={"phone": "13700000066", "password": "another-password"}).json()
    body = {"merchant_id": 1, "delivery_point_id": 2, "items": [{"item_id": 6, "quantity": 1}],
            "payment_method": "cod"}
    r = api.c.post("/api/v1/orders", json=body, headers={"Authorization": f"Bearer {tok['access_token']}",
                                                         "Idempotency-Key": key})
    assert r.status_code == 201, r.text  # another user's identical key is a different key
    assert _count(api, Order) == 2


def test_stock_is_reserved_and_out_of_stock_writes_nothing(api: Api) -> None:
    with _db(api).session() as s:
        item = s.get(MenuItem, 5)
        assert item is not None
        item.stock = 3
        s.commit()
    assert api.place(items=[{"item_id": 5, "quantity": 2}]).status_code == 201
    orders_before, lines_before = _count(api, Order), _count(api, OrderLine)
    r = api.place(items=[{"item_id": 6, "quantity": 1}, {"item_id": 5, "quantity": 2}])
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "out_of_stock"
    assert (_count(api, Order), _count(api, OrderLine)) == (orders_before, lines_before)
    with _db(api).read_session() as s:
        assert s.get(MenuItem, 5).stock == 1  # type: ignore[union-attr]


def test_cancel_returns_reserved_stock(api: Api) -> None:
    with _db(api).session() as s:
        s.get(MenuItem, 5).stock = 5  # type: ignore[union-attr]
        s.commit()
    oid = api.place(items=[{"item_id": 5, "quantity": 4}]).json()["id"]
    r = api.c.post(f"/api/v1/orders/{oid}/cancel", json={"reason": "changed my mind"}, headers=api.h("customer"))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    with _db(api).read_session() as s:
        assert s.get(MenuItem, 5).stock == 5  # type: ignore[union-attr]


def test_full_lifecycle_with_proof_code(api: Api) -> None:
    o = api.place().json()
    oid = o["id"]
    for action in ("accept", "preparing", "ready"):
        r = api.c.post(f"/api/v1/orders/{oid}/{action}", headers=api.h("merchant"))
        assert r.status_code == 200, r.text
    # Ops assigns the demo rider (id 1); the rider sees the customer's full phone number.
    r = api.c.post(f"/api/v1/orders/{oid}/assign", json={"rider_id": 1}, headers=api.h("ops"))
    assert r.status_code == 200, r.text
    tasks = api.c.get("/api/v1/riders/me/tasks", headers=api.h("rider")).json()
    assert [t["id"] for t in tasks] == [oid]
    assert tasks[0]["contact_phone"] == "13800000001"
    assert tasks[0]["proof_code"] is None
    assert api.c.post(f"/api/v1/orders/{oid}/pickup", headers=api.h("rider")).status_code == 200
    bad = api.c.post(f"/api/v1/orders/{oid}/deliver", json={"proof_code": "0000" if o["proof_code"] != "0000"
                                                                else "1111"}, headers=api.h("rider"))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "proof_code_mismatch"
    r = api.c.post(f"/api/v1/orders/{oid}/deliver", json={"proof_code": o["proof_code"]}, headers=api.h("rider"))
    assert r.status_code == 200 and r.json()["status"] == "delivered"
    hist = api.c.get(f"/api/v1/orders/{oid}/transitions", headers=api.h("customer")).json()
    assert [h["to_status"] for h in hist] == ["created", "cod_confirmed", "accepted", "preparing", "ready",
                                              "picked_up", "delivered"]
    assert [h["actor_role"] for h in hist][2:] == ["merchant", "merchant", "merchant", "rider", "rider"]
    audit = api.c.get("/api/v1/ops/audit", headers=api.h("ops")).json()
    assert any(a["action"] == "order.assign" and a["target"] == f"order:{oid}" for a in audit)


def test_illegal_transition_is_409_naming_current_state(api: Api) -> None:
    oid = api.place().json()["id"]
    r = api.c.post(f"/api/v1/orders/{oid}/ready", headers=api.h("merchant"))
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "illegal_transition"
    assert "cod_confirmed" in err["message"] and err["details"]["current"] == "cod_confirmed"


def test_customer_cannot_cancel_after_accept(api: Api) -> None:
    oid = api.place().json()["id"]
    api.c.post(f"/api/v1/orders/{oid}/accept", headers=api.h("merchant"))
    r = api.c.post(f"/api/v1/orders/{oid}/cancel", json={}, headers=api.h("customer"))
    assert r.status_code == 409


def test_ownership_customers_merchants_riders(api: Api) -> None:
    oid = api.place().json()["id"]
    # A second customer cannot see or cancel it.
    r = api.c.post("/api/v1/users", json={"phone": "13700000077", "name": "Other", "role": "customer",
                                          "password": "another-password"}, headers=api.h("ops"))
    assert r.status_code == 201
    tok = api.c.post("/api/v1/auth/login", json={"phone": "13700000077", "password": "another-password"}).json()
    other = {"Authorization": f"Bearer {tok['access_token']}"}
    assert api.c.get(f"/api/v1/orders/{oid}", headers=other).status_code == 404
    assert api.c.post(f"/api/v1/orders/{oid}/cancel", json={}, headers=other).status_code == 404
    assert api.c.get("/api/v1/orders", headers=other).json() == []
    # Staff of another shop cannot accept it.
    r = api.c.post("/api/v1/users", json={"phone": "13700000078", "name": "Shop 2", "role": "merchant",
                                          "password": "another-password", "merchant_id": 2}, headers=api.h("ops"))
    assert r.status_code == 201
    tok = api.c.post("/api/v1/auth/login", json={"phone": "13700000078", "password": "another-password"}).json()
    assert api.c.post(f"/api/v1/orders/{oid}/accept",
                      headers={"Authorization": f"Bearer {tok['access_token']}"}).status_code == 404
    # The merchant of the shop sees the phone masked and no proof code.
    mine = api.c.get(f"/api/v1/orders/{oid}", headers=api.h("merchant")).json()
    assert mine["contact_phone"] == "138****0001" and mine["proof_code"] is None
    # A rider not carrying it cannot see it; a customer cannot act as merchant.
    assert api.c.get(f"/api/v1/orders/{oid}", headers=api.h("rider")).status_code == 404
    assert api.c.post(f"/api/v1/orders/{oid}/accept", headers=api.h("customer")).status_code == 403
    assert api.c.get(f"/api/v1/orders/{oid}").status_code == 401


def test_quote_matches_placement(api: Api) -> None:
    body = {"merchant_id": 2, "delivery_point_id": 10, "items": [{"item_id": 9, "quantity": 2}],
            "payment_method": "cod"}
    q = api.c.post("/api/v1/orders/quote", json=body, headers=api.h("customer"))
    assert q.status_code == 200, q.text
    o = api.place(**body).json()
    assert q.json()["total_fen"] == o["total_fen"]
    assert q.json()["subtotal_fen"] == 2 * 1800


def test_a_failed_write_request_does_not_leave_the_database_locked(api: Api) -> None:
    """A write route that fails after starting its transaction is cleaned up by FastAPI, possibly on
    another worker thread: the next writers must still get through (this once hung on SQLite)."""
    for _ in range(20):
        r = api.c.post("/api/v1/orders/1/assign", json={"rider_id": 999}, headers=api.h("ops"))
        assert r.status_code in (404, 409)
    assert api.place().status_code == 201
