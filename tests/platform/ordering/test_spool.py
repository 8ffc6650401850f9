"""The order spool on both databases: 202 while the database is unreachable, replay through placement that is
idempotent by the customer's key and checks stock, a notice for every outcome."""

from __future__ import annotations

import datetime as dt
import time
import uuid

from sqlalchemy import func, select, update

from tests.conftest import Api
from waimai.core.deps import Principal
from waimai.core.inbox import Notice
from waimai.platform.catalog.models import MenuItem
from waimai.platform.ordering import idempotency
from waimai.platform.ordering.models import Order
from waimai.platform.ordering.schemas import PlaceOrderIn
from waimai.platform.ordering.spool import replay

TTL = dt.timedelta(hours=24)


def _orders(db) -> int:  # type: ignore[no-untyped-def]
    with db.read_session() as s:
        return int(s.scalar(select(func.count()).select_from(Order)) or 0)


def test_outage_spools_and_replay_confirms_once_refuses_sold_out(api: Api) -> None:
    app = api.c.app
    db, spool = app.state.db, app.state.order_spool  # type: ignore[attr-defined]
    before = _orders(db)
    db.unreachable_since = time.time()  # what the database watch sets during an outage
    try:
        k_dup, k_ok, k_gone = (uuid.uuid4().hex for _ in range(3))
        r = api.place(key=k_dup)
        assert r.status_code == 202, r.text  # type: ignore[attr-defined]
        body = r.json()  # type: ignore[attr-defined]
        assert body["status"] == "pending_confirmation" and body["reference"].startswith("S-")
        again = api.place(key=k_dup)
        assert again.status_code == 202 and again.json()["reference"] == body["reference"]  # type: ignore[attr-defined]
        assert api.place(key=k_dup, note="other").status_code == 422  # type: ignore[attr-defined]
        assert api.place(payment_method="gateway").status_code == 503  # type: ignore[attr-defined]
        assert api.place(key=k_ok).status_code == 202  # type: ignore[attr-defined]
        gone = api.place(key=k_gone, items=[{"item_id": 6, "quantity": 1}])
        assert gone.status_code == 202  # type: ignore[attr-defined]
        pending = api.c.get(f"/api/v1/orders/pending/{body['reference']}", headers=api.h("customer"))
        assert pending.json()["status"] == "pending_confirmation"
        assert api.c.get(f"/api/v1/orders/pending/{body['reference']}", headers=api.h("merchant")).status_code == 404
        assert _orders(db) == before
    finally:
        db.unreachable_since = None
    # The first request had in fact committed before the outage was noticed: the replay finds it by its key.
    row = spool.get(body["reference"])
    assert row is not None and row.key == k_dup
    placed = idempotency.place_once(db, Principal(user_id=row.user_id, role="customer"),
                                    PlaceOrderIn.model_validate(row.body), k_dup, row.fingerprint, TTL)
    with db.session() as s:
        s.execute(update(MenuItem).where(MenuItem.id == 6).values(stock=0))
        s.commit()
    done = replay(db, spool, ttl=TTL)
    assert done == {"confirmed": 2, "refused": 1, "notified": 3}
    assert _orders(db) == before + 2  # the duplicate key placed once, the sold-out one not at all
    first = api.c.get(f"/api/v1/orders/pending/{body['reference']}", headers=api.h("customer")).json()
    assert first["status"] == "confirmed" and first["order_id"] == placed[1][1]
    refused = spool.by_key(row.user_id, k_gone)
    assert refused is not None and refused.state == "refused" and refused.reason_code == "out_of_stock"
    with db.read_session() as s:
        titles = list(s.scalars(select(Notice.title).where(Notice.user_id == row.user_id)))
    assert len(titles) == 3 and sum("抱歉" in t or "Sorry" in t for t in titles) == 1
    assert replay(db, spool, ttl=TTL) == {"confirmed": 0, "refused": 0, "notified": 0}  # nothing twice


def test_pending_pages_and_ops_card_render(api: Api) -> None:
    from waimai.core.deps import TOKEN_COOKIE

    app = api.c.app
    db = app.state.db  # type: ignore[attr-defined]
    db.unreachable_since = time.time()
    try:
        ref = api.place().json()["reference"]  # type: ignore[attr-defined]
        api.c.cookies.set(TOKEN_COOKIE, api.token("customer"))
        page = api.c.get(f"/orders/pending/{ref}")
        assert page.status_code == 200 and 'data-state="pending_confirmation"' in page.text and ref in page.text
        assert api.c.get("/orders/pending/S-0000000000").status_code == 404
        notices = api.c.get("/notices")
        assert notices.status_code == 200 and 'id="last-known"' in notices.text
        status = api.c.get("/status")
        assert status.status_code == 200 and 'id="last-known"' in status.text
        api.c.cookies.set(TOKEN_COOKIE, api.token("ops"))
        ops = api.c.get("/ops")
        assert ops.status_code == 200 and 'id="db-down"' in ops.text and 'data-spool="pending"' in ops.text
    finally:
        db.unreachable_since = None
        api.c.cookies.clear()


def test_orders_sharing_an_item_replay_in_spool_order() -> None:
    """A scarce item goes to whoever ordered it first: orders sharing an item are one chain, oldest first;
    unrelated orders are separate chains (placed at once)."""
    from waimai.platform.ordering.spool import Spooled, _chains

    def row(n: int, *items: int) -> Spooled:
        return Spooled(ref=f"S-{n}", user_id=1, role="customer", key=str(n), fingerprint="", received_at=float(n),
                       body={"items": [{"item_id": i, "quantity": 1} for i in items]}, state="pending",
                       order_id=None, order_number=None, reason_code=None, reason=None, settled_at=None,
                       notified=False)

    rows = [row(0, 5), row(1, 7), row(2, 9), row(3, 7, 8), row(4, 8), row(5, 9)]
    assert _chains(rows) == [[0], [1, 3, 4], [2, 5]]
