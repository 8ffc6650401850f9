"""Riders on shift, the orders they carry, and the optimising dispatcher run on the live tables."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from waimai.core import audit, flags
from waimai.core.database import utcnow
from waimai.core.deps import Principal
from waimai.core.errors import Conflict, NotFound, Unprocessable
from waimai.core.metrics import DISPATCH_ASSIGN_LATENCY
from waimai.core.outbox import emit
from waimai.platform.catalog.models import Merchant
from waimai.platform.delivery.models import Rider
from waimai.platform.dispatch.engine import RollingHorizonDispatcher
from waimai.platform.dispatch.model import CourierState, OpenOrder, Snapshot, euclid_ceil
from waimai.platform.ordering.models import Order
from waimai.platform.ordering.state import Status

# Orders a rider is carrying or heading to.
CARRYING = (Status.accepted.value, Status.preparing.value, Status.ready.value, Status.picked_up.value)


def rider_for_user(db: Session, user_id: int) -> Rider:
    r = db.scalar(select(Rider).where(Rider.user_id == user_id))
    if r is None:
        raise NotFound("No rider profile for this account.")
    return r


def set_shift(db: Session, rider: Rider, *, on: bool, hours: float = 4.0) -> Rider:
    now = utcnow()
    rider.on_shift = on
    if on:
        rider.shift_started_at = now
        rider.shift_ends_at = now + dt.timedelta(hours=hours)
    else:
        rider.shift_ends_at = now
    emit(db, "rider.shift", key=str(rider.id), rider_id=rider.id, on_shift=on)
    return rider


def tasks(db: Session, rider: Rider) -> list[Order]:
    return list(db.scalars(select(Order).where(Order.rider_id == rider.id, Order.status.in_(CARRYING))
                           .order_by(Order.promised_at)))


def assign(db: Session, order: Order, rider: Rider, *, actor: Principal | None, reason: str = "") -> Order:
    if order.status not in (Status.paid.value, Status.cod_confirmed.value, *CARRYING[:-1]):
        raise Conflict(f"Order {order.number} is {order.status}; it cannot be assigned now.",
                       code="illegal_transition", details={"current": order.status})
    if not rider.on_shift:
        raise Unprocessable(f"Rider {rider.name} is not on shift.", code="rider_off_shift")
    previous = order.rider_id
    order.rider_id = rider.id
    emit(db, "order.assigned", key=str(order.id), order_id=order.id, rider_id=rider.id, previous=previous,
         by=actor.role if actor else "dispatcher", reason=reason)
    return order


def assign_by_hand(db: Session, *, order: Order, rider_id: int, actor: Principal) -> Order:
    """Ops assign (or reassign) an order to a rider by hand: audited, and announced like any assignment.

    The caller loads the order for update and commits."""
    rider = db.get(Rider, rider_id)
    if rider is None:
        raise NotFound(f"Rider {rider_id} does not exist.", code="rider_not_found")
    assign(db, order, rider, actor=actor, reason="manual")
    audit.record(db, actor_id=actor.user_id, actor_role=actor.role, action="order.assign", target=f"order:{order.id}",
                 details={"rider_id": rider.id})
    emit(db, "ops.action", key=str(order.id), action="order.assign")
    return order


def waiting_for_rider(db: Session) -> bool:
    return db.scalar(select(Order.id).where(Order.rider_id.is_(None), Order.status.in_(CARRYING[:-1]))
                     .limit(1)) is not None


# ---------------------------------------------------------------------------------------------------
# The optimising dispatcher, live: the same engine the simulator and the MDRP benchmark run, fed a
# snapshot of the tables. Time is in minutes since the epoch, positions in campus metres.

RIDER_M_PER_MIN = 250.0  # e-bike on campus paths (also the promise estimate in ordering)


def _minutes(t: dt.datetime) -> float:
    return t.timestamp() / 60.0


def build_snapshot(db: Session, *, now: dt.datetime) -> tuple[Snapshot, dict[str, Order], dict[str, Rider]]:
    from waimai.platform.catalog.models import DeliveryPoint

    waiting = list(db.scalars(select(Order).where(Order.rider_id.is_(None), Order.status.in_(CARRYING[:-1]))
                              .order_by(Order.created_at).limit(500)))
    riders = [r for r in db.scalars(select(Rider).where(Rider.on_shift.is_(True)))
              if r.shift_ends_at is None or r.shift_ends_at > now]
    mids = {o.merchant_id for o in waiting}
    merchants = {m.id: m for m in db.scalars(select(Merchant).where(Merchant.id.in_(mids)))} if mids else {}
    pids = {o.delivery_point_id for o in waiting}
    busy = list(db.scalars(select(Order).where(Order.rider_id.is_not(None), Order.status.in_(CARRYING))))
    pids |= {o.delivery_point_id for o in busy}
    points = {p.id: p for p in db.scalars(select(DeliveryPoint).where(DeliveryPoint.id.in_(pids)))} if pids else {}
    t_now = _minutes(now)
    open_orders = []
    for o in waiting:
        m, p = merchants[o.merchant_id], points[o.delivery_point_id]
        ready = _minutes(o.ready_at) if o.ready_at else _minutes(o.created_at) + m.prep_minutes
        open_orders.append(OpenOrder(id=str(o.id), restaurant=str(m.id), x=p.x, y=p.y,
                                     placed=_minutes(o.created_at), ready=max(ready, t_now - 60)))
    load: dict[int, list[Order]] = {}
    for o in busy:
        load.setdefault(o.rider_id or 0, []).append(o)
    couriers = []
    for r in riders:
        tasks = load.get(r.id, [])
        if len(tasks) >= r.capacity:
            continue
        if tasks:  # free after the last promised drop-off, at that delivery point
            last = max(tasks, key=lambda o: o.promised_at or now)
            p = points[last.delivery_point_id]
            free_at, x, y = max(t_now, _minutes(last.promised_at or now)), p.x, p.y
        else:
            free_at, x, y = t_now, (r.x if r.x is not None else 0.0), (r.y if r.y is not None else 0.0)
        end = _minutes(r.shift_ends_at) if r.shift_ends_at else t_now + 240
        couriers.append(CourierState(id=str(r.id), x=x, y=y, free_at=free_at, on_time=t_now - 1, off_time=end,
                                     capacity=r.capacity - len(tasks)))
    snap = Snapshot(now=t_now, orders=open_orders, couriers=couriers,
                    restaurants={str(m.id): (m.x, m.y) for m in merchants.values()},
                    pickup_service=2.0, dropoff_service=2.0)
    return snap, {str(o.id): o for o in waiting}, {str(r.id): r for r in riders}


_ENGINE: RollingHorizonDispatcher | None = None


def dispatch_round(db: Session, *, now: dt.datetime | None = None) -> int:
    """One round of the optimising dispatcher; returns how many orders were assigned.

    The engine holds an order back when a rider who becomes free soon serves it better, and
    bundles orders of one merchant; only assignments that must start now are applied.
    """
    global _ENGINE
    if flags.enabled("dispatch.manual"):  # ops assign by hand (POST /api/v1/orders/{id}/assign)
        return 0
    if _ENGINE is None:
        _ENGINE = RollingHorizonDispatcher(travel_time=euclid_ceil(RIDER_M_PER_MIN))
    now = now or utcnow()
    snap, orders, riders = build_snapshot(db, now=now)
    if not snap.orders or not snap.couriers:
        return 0
    assigned = 0
    for a in _ENGINE.dispatch(snap):
        rider = riders[a.courier]
        for oid in a.orders:
            order = orders[oid]
            assign(db, order, rider, actor=None, reason=f"dispatcher bundle of {len(a.orders)}")
            DISPATCH_ASSIGN_LATENCY.observe(max(0.0, (now - order.created_at).total_seconds()))
            assigned += 1
    return assigned
