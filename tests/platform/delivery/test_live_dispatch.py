"""The optimising dispatcher on the live tables: snapshot, postponement, bundling, capacity."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from tests.conftest import Api
from waimai.platform.delivery.models import Rider
from waimai.platform.delivery.service import build_snapshot, dispatch_round
from waimai.platform.ordering.models import Order


def _accepted_orders(api: Api, n: int, merchant: int = 1, item: int = 5) -> list[int]:
    ids = []
    for k in range(n):
        oid = api.place(merchant_id=merchant, delivery_point_id=1 + k, items=[{"item_id": item, "quantity": 1}]).json()["id"]
        assert api.c.post(f"/api/v1/orders/{oid}/accept", headers=api.h("merchant" if merchant == 1 else "ops")
                          ).status_code == 200
        ids.append(oid)
    return ids


def test_dispatcher_waits_for_the_food_then_bundles_one_merchant(api: Api) -> None:
    ids = _accepted_orders(api, 2)
    db = api.c.app.state.db  # type: ignore[attr-defined]
    with db.session() as s:
        created = s.get(Order, ids[0]).created_at  # type: ignore[union-attr]
        snap, _, _ = build_snapshot(s, now=created)
        assert {o.id for o in snap.orders} == {str(i) for i in ids}
        assert [c.id for c in snap.couriers] == ["1"]  # only the demo rider is on shift
        # Right after acceptance the food is ~10 minutes away and the rider 2 minutes: hold.
        assert dispatch_round(s, now=created + dt.timedelta(minutes=1)) == 0
        # When the rider must leave to be there as the food is ready, both orders go as one trip.
        assert dispatch_round(s, now=created + dt.timedelta(minutes=9)) == 2
        s.commit()
        riders = {o.rider_id for o in s.scalars(select(Order).where(Order.id.in_(ids)))}
    assert riders == {1}
    tasks = api.c.get("/api/v1/riders/me/tasks", headers=api.h("rider")).json()
    assert sorted(t["id"] for t in tasks) == sorted(ids)


def test_dispatcher_respects_capacity_and_shift(api: Api) -> None:
    db = api.c.app.state.db  # type: ignore[attr-defined]
    ids = _accepted_orders(api, 3)
    with db.session() as s:
        r = s.get(Rider, 1)
        r.capacity = 2  # type: ignore[union-attr]
        s.commit()
        later = s.get(Order, ids[0]).created_at + dt.timedelta(minutes=30)  # type: ignore[union-attr]
        assert dispatch_round(s, now=later) == 2
        s.commit()
        # Full rider: the third order waits for someone free.
        assert dispatch_round(s, now=later) == 0
        r = s.get(Rider, 1)
        r.on_shift = False  # type: ignore[union-attr]
        s.commit()
        snap, _, _ = build_snapshot(s, now=later)
        assert snap.couriers == []
