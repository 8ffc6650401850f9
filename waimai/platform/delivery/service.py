"""Riders on shift and the orders they carry; a simple assignment until the dispatcher takes over."""

from __future__ import annotations

import datetime as dt
import math

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from waimai.core.database import utcnow
from waimai.core.deps import Principal
from waimai.core.errors import Conflict, NotFound, Unprocessable
from waimai.core.outbox import emit
from waimai.platform.catalog.models import Merchant
from waimai.platform.delivery.models import Rider
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


def waiting_for_rider(db: Session) -> bool:
    return db.scalar(select(Order.id).where(Order.rider_id.is_(None), Order.status.in_(CARRYING[:-1]))
                     .limit(1)) is not None


def auto_assign(db: Session, *, now: dt.datetime | None = None) -> int:
    """Give each unassigned kitchen order to the nearest on-shift rider with room; returns count.

    Deliberately simple (nearest with spare capacity): the optimising dispatcher replaces it.
    """
    now = now or utcnow()
    waiting = list(db.scalars(select(Order).where(
        Order.rider_id.is_(None), Order.status.in_(CARRYING[:-1])).order_by(Order.created_at).limit(200)))
    if not waiting:
        return 0
    riders = [r for r in db.scalars(select(Rider).where(Rider.on_shift.is_(True)))
              if r.shift_ends_at is None or r.shift_ends_at > now]
    if not riders:
        return 0
    load = dict(db.execute(select(Order.rider_id, func.count()).where(
        Order.rider_id.is_not(None), Order.status.in_(CARRYING)).group_by(Order.rider_id)).all())
    merchants = {m.id: m for m in db.scalars(select(Merchant).where(
        Merchant.id.in_({o.merchant_id for o in waiting})))}
    assigned = 0
    for order in waiting:
        m = merchants[order.merchant_id]
        free = [r for r in riders if load.get(r.id, 0) < r.capacity]
        if not free:
            break
        best = min(free, key=lambda r: math.hypot((r.x or 0) - m.x, (r.y or 0) - m.y) + 300 * load.get(r.id, 0))
        assign(db, order, best, actor=None, reason="nearest free rider")
        load[best.id] = load.get(best.id, 0) + 1
        assigned += 1
    return assigned
