"""A simulated campus day written into the database, so pay can be computed and reconciled on it.

The demo campus's merchants, delivery points and riders become a dispatch instance (orders arriving with
breakfast, lunch, dinner and late-night peaks; each merchant's prep time; riders on morning, lunch, afternoon
and dinner shifts); the one dispatcher (`RollingHorizonDispatcher`) runs on it in the discrete-event simulator
with the simulator's clock; the outcome is written as orders (`source = "sim"`: delivered ones with their
rider and pickup/drop-off times, the rest cancelled) and as the riders' shifts, on a campus local date.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from waimai.core.errors import Conflict, NotFound, Unprocessable
from waimai.platform.accounts.models import Role, User
from waimai.platform.catalog.models import DeliveryPoint, MenuItem, Merchant
from waimai.platform.delivery.models import Rider
from waimai.platform.dispatch.engine import RollingHorizonDispatcher
from waimai.platform.dispatch.model import Courier, Instance, Params
from waimai.platform.dispatch.model import Order as SimOrder
from waimai.platform.dispatch.simulator import simulate
from waimai.platform.ordering.models import Order, OrderLine, OrderTransition
from waimai.platform.ordering.service import PROMISE_BUFFER_MIN, RIDER_SPEED_M_PER_MIN, delivery_fee
from waimai.platform.ordering.state import Status
from waimai.platform.payroll.models import RiderShift
from waimai.platform.payroll.service import local_midnight

DAY_START_H = 7  # simulator minute 0 = 07:00 campus time
# (start, end) in minutes after 07:00 and the share of riders on each: morning, lunch, afternoon, dinner.
SHIFTS = ((30, 420, 0.2), (210, 450, 0.3), (390, 720, 0.15), (570, 930, 0.35))
# Arrival mixture (mean minute, sd, weight): breakfast, lunch peak, afternoon, dinner peak, late night.
ARRIVALS = ((60, 25, 0.06), (300, 40, 0.40), (450, 60, 0.08), (660, 45, 0.38), (840, 40, 0.08))


@dataclass
class SimDay:
    day: dt.date
    orders: int = 0
    delivered: int = 0
    cancelled: int = 0
    riders: int = 0
    ctd_mean_min: float = 0.0
    ctd_p90_min: float = 0.0
    late: int = 0
    order_ids: list[int] = field(default_factory=list)


def simulate_day(db: Session, *, campus_id: int, day: dt.date, orders: int = 300, seed: int = 0,
                 riders: int | None = None) -> SimDay:
    """Simulate `orders` orders on `day` (a campus local date that is over) and write them; the caller
    commits. A day that already has simulated orders is refused (a second run would double them)."""
    if not 1 <= orders <= 20_000:
        raise Unprocessable("Simulate between 1 and 20000 orders.", code="bad_orders")
    t0, t1 = local_midnight(day), local_midnight(day + dt.timedelta(days=1))
    if t1 > dt.datetime.now(dt.UTC):
        raise Unprocessable("Simulate a day that is over (today's orders are still coming in).", code="day_not_over")
    merchants = list(db.scalars(select(Merchant).where(Merchant.campus_id == campus_id).order_by(Merchant.id)))
    points = list(db.scalars(select(DeliveryPoint).where(DeliveryPoint.campus_id == campus_id,
                                                         DeliveryPoint.active.is_(True)).order_by(DeliveryPoint.id)))
    crew = list(db.scalars(select(Rider).where(Rider.campus_id == campus_id).order_by(Rider.id)))[:riders]
    if not merchants or not points or not crew:
        raise NotFound("The campus needs merchants, delivery points and riders (run `waimai seed`).")
    if db.scalar(select(func.count()).select_from(Order).where(
            Order.source == "sim", Order.merchant_id.in_([m.id for m in merchants]),
            Order.created_at >= t0, Order.created_at < t1)):
        raise Conflict(f"{day} already has simulated orders on this campus.", code="already_simulated")
    items = {}
    for m in merchants:
        item = db.scalar(select(MenuItem).where(MenuItem.merchant_id == m.id).order_by(MenuItem.id).limit(1))
        if item is not None:
            items[m.id] = item
    merchants = [m for m in merchants if m.id in items]
    customer = db.scalar(select(User).where(User.role == Role.customer.value).order_by(User.id).limit(1))
    if customer is None:
        raise NotFound("No customer account to order with.")

    rng = np.random.default_rng(seed)
    comps = np.array([(a, b) for a, b, _ in ARRIVALS], dtype=float)
    which = rng.choice(len(ARRIVALS), size=orders, p=[w for *_, w in ARRIVALS])
    placed = np.rint(rng.normal(comps[which, 0], comps[which, 1])).clip(5, 960)
    popularity = rng.dirichlet(np.full(len(merchants), 2.0))
    m_of = rng.choice(len(merchants), size=orders, p=popularity)
    p_of = rng.integers(0, len(points), size=orders)
    prep = [max(3.0, float(rng.gamma(4.0, merchants[m_of[i]].prep_minutes / 4.0))) for i in range(orders)]
    sim_orders = [SimOrder(f"o{i}", points[p_of[i]].x, points[p_of[i]].y, float(placed[i]),
                           str(merchants[m_of[i]].id), float(placed[i]) + round(prep[i]))
                  for i in range(orders)]
    shift_of = rng.choice(len(SHIFTS), size=len(crew), p=[s[2] for s in SHIFTS])
    couriers = [Courier(str(r.id), r.x if r.x is not None else 1000.0, r.y if r.y is not None else 800.0,
                        float(SHIFTS[shift_of[k]][0]), float(SHIFTS[shift_of[k]][1]), r.capacity)
                for k, r in enumerate(crew)]
    inst = Instance(f"{day}-sim", sim_orders, {str(m.id): (m.x, m.y) for m in merchants}, couriers,
                    Params(meters_per_minute=float(RIDER_SPEED_M_PER_MIN), pickup_service=2.0, dropoff_service=2.0))
    sol = simulate(inst, RollingHorizonDispatcher(inst.travel_time()))
    done = {r.order: r for r in sol.orders}

    base = t0 + dt.timedelta(hours=DAY_START_H)

    def at(minute: float) -> dt.datetime:
        return base + dt.timedelta(minutes=float(minute))

    out = SimDay(day=day, orders=orders, riders=len(crew))
    ctd = []
    by_id = {str(m.id): m for m in merchants}
    for i, so in enumerate(sim_orders):
        m, p, item = by_id[so.restaurant], points[p_of[i]], items[int(so.restaurant)]
        dist = math.hypot(p.x - m.x, p.y - m.y)
        fee = delivery_fee(dist)
        created = at(so.placed)
        promised = created + dt.timedelta(minutes=m.prep_minutes + math.ceil(dist / RIDER_SPEED_M_PER_MIN)
                                          + PROMISE_BUFFER_MIN)
        rec = done.get(so.id)
        o = Order(number=f"S{day:%y%m%d}{campus_id % 100:02d}{i:06d}", customer_id=customer.id, merchant_id=m.id,
                  delivery_point_id=p.id, status=Status.delivered.value if rec else Status.cancelled.value,
                  payment_method="cod", source="sim", subtotal_fen=item.price_fen, delivery_fee_fen=fee,
                  total_fen=item.price_fen + fee, proof_code="0000", contact_phone=customer.phone,
                  promised_at=promised, ready_at=at(so.ready), created_at=created, updated_at=created,
                  reason=None if rec else "simulation: no rider in time")
        if rec:
            o.rider_id = int(rec.courier)
            o.picked_up_at, o.delivered_at = at(rec.pickup_time), at(rec.dropoff_time)
            o.updated_at = o.delivered_at
            ctd.append(rec.dropoff_time - so.placed)
            out.late += o.delivered_at > promised
        db.add(o)
        db.flush()
        db.add(OrderLine(order_id=o.id, item_id=item.id, name=item.name, unit_price_fen=item.price_fen, quantity=1,
                         options=[], line_total_fen=item.price_fen))
        db.add(OrderTransition(order_id=o.id, from_status=None, to_status=o.status, actor_id=None, actor_role="system",
                               reason="simulated day", at=o.updated_at))
        out.order_ids.append(o.id)
    for c in couriers:
        db.add(RiderShift(rider_id=int(c.id), started_at=at(c.on_time), ends_at=at(c.off_time)))
    db.flush()
    out.delivered, out.cancelled = len(done), orders - len(done)
    if ctd:
        out.ctd_mean_min, out.ctd_p90_min = float(np.mean(ctd)), float(np.percentile(ctd, 90))
    return out
