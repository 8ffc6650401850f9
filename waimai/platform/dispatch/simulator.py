"""Discrete-event simulator driving any dispatcher with a simulated clock.

The dispatcher only sees orders already placed and the couriers' committed state; the
simulator executes its assignments following the MDRP rules exactly:

* a courier leaves at ``max(assignment time, end of its previous trip, on_time)``, rides to
  the restaurant, picks up at ``max(latest ready time, arrival + pickup_service / 2)`` and
  leaves at ``pickup + pickup_service / 2``;
* it then drops the orders off in the given order, ``drop-off = arrival +
  dropoff_service / 2`` and leaves ``dropoff_service / 2`` later, and waits where it is;
* it cannot be diverted while travelling, cannot pick up after ``off_time`` and an
  assignment is never made before every order in it was placed.

The same loop simulates a campus day (:func:`campus_day`): order arrivals, prep times
(with noisy ready-time estimates if wanted), rider speeds and shifts are all instance data.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .model import (
    Assignment,
    AssignmentRecord,
    Courier,
    CourierState,
    Instance,
    MoveRecord,
    OpenOrder,
    Order,
    OrderRecord,
    Params,
    Snapshot,
    Solution,
)


class Dispatcher(Protocol):
    def dispatch(self, snapshot: Snapshot) -> list[Assignment]: ...


@dataclass(slots=True)
class _CourierSim:
    c: Courier
    x: float
    y: float
    loc: str  # "0" = on-location, else the last order id
    free_at: float
    orders: int = 0


ReadyEstimate = Callable[[Order, float], float]


def simulate(
    instance: Instance,
    dispatcher: Dispatcher,
    interval: float = 1.0,
    ready_estimate: ReadyEstimate | None = None,
    courier_window: float = 90.0,
) -> Solution:
    """Run ``dispatcher`` over ``instance``; a round every ``interval`` minutes while orders are open.

    ``ready_estimate(order, now)`` gives the ready time the dispatcher sees (default: the
    true one, as in MDRP).  Couriers are shown from ``courier_window`` minutes before their
    shift starts until their shift ends.
    """
    p = instance.params
    tt = instance.travel_time()
    half_p = p.pickup_service / 2.0
    half_d = p.dropoff_service / 2.0
    rests = instance.restaurants
    orders = sorted(instance.orders, key=lambda o: (o.placed, o.id))
    by_id = {o.id: o for o in orders}
    couriers = {c.id: _CourierSim(c=c, x=c.x, y=c.y, loc="0", free_at=c.on_time) for c in instance.couriers}
    by_on = sorted(couriers.values(), key=lambda s: s.c.on_time)
    last_off = max((c.off_time for c in instance.couriers), default=-math.inf)
    sol = Solution()
    open_orders: dict[str, Order] = {}
    nxt = 0
    if not orders:
        return sol
    now = orders[0].placed
    while True:
        while nxt < len(orders) and orders[nxt].placed <= now:
            open_orders[orders[nxt].id] = orders[nxt]
            nxt += 1
        if open_orders and now <= last_off:
            snap_orders = [
                OpenOrder(
                    o.id,
                    o.restaurant,
                    o.x,
                    o.y,
                    o.placed,
                    o.ready if ready_estimate is None else ready_estimate(o, now),
                )
                for o in open_orders.values()
            ]
            snap_couriers = [
                CourierState(s.c.id, s.x, s.y, s.free_at, s.c.on_time, s.c.off_time, s.c.capacity)
                for s in by_on
                if s.c.off_time >= now and s.c.on_time <= now + courier_window
            ]
            snap = Snapshot(now, snap_orders, snap_couriers, rests, p.pickup_service, p.dropoff_service)
            t0 = time.perf_counter()
            result = dispatcher.dispatch(snap)
            sol.decision_seconds.append(time.perf_counter() - t0)
            for a in result:
                if not _apply(a, now, couriers, open_orders, by_id, rests, tt, half_p, half_d, sol):
                    sol.rejected += 1
        if nxt >= len(orders) and (not open_orders or now > last_off):
            break
        now += interval
        if not open_orders and nxt < len(orders) and orders[nxt].placed > now:
            # jump ahead on the round grid to the next placement
            k = math.ceil((orders[nxt].placed - now) / interval)
            now += k * interval
    return sol


def _apply(a, now, couriers, open_orders, by_id, rests, tt, half_p, half_d, sol) -> bool:
    s = couriers.get(a.courier)
    if s is None or not a.orders or len(a.orders) > s.c.capacity:
        return False
    if len(set(a.orders)) != len(a.orders) or any(oid not in open_orders for oid in a.orders):
        return False
    bundle = [by_id[oid] for oid in a.orders]
    if any(o.restaurant != a.restaurant for o in bundle) or a.restaurant not in rests:
        return False
    rx, ry = rests[a.restaurant]
    dep = max(now, s.free_at, s.c.on_time)
    arrive = dep + float(tt(s.x, s.y, rx, ry))
    pickup = max(max(o.ready for o in bundle), arrive + half_p)
    if pickup > s.c.off_time:
        return False
    sol.assignments.append(AssignmentRecord(now, pickup, s.c.id, tuple(a.orders)))
    sol.moves.append(MoveRecord(s.c.id, dep, s.loc, a.restaurant))
    leave = pickup + half_p
    px, py, ploc = rx, ry, a.restaurant
    for o in bundle:
        arrive = leave + float(tt(px, py, o.x, o.y))
        drop = arrive + half_d
        sol.moves.append(MoveRecord(s.c.id, leave, ploc, o.id))
        sol.orders.append(OrderRecord(o.id, o.placed, o.ready, pickup, drop, s.c.id))
        leave = drop + half_d
        px, py, ploc = o.x, o.y, o.id
        del open_orders[o.id]
    s.x, s.y, s.loc, s.free_at = px, py, ploc, leave
    s.orders += len(bundle)
    return True


# --------------------------------------------------------------------------- campus day


def campus_day(
    seed: int = 0,
    orders: int = 1500,
    restaurants: int = 25,
    couriers: int = 80,
    size_m: float = 2500.0,
    bike_m_per_min: float = 250.0,
    mean_prep: float = 12.0,
    capacity: int = 3,
) -> Instance:
    """A synthetic campus day (minute 0 = 07:00, ends 23:00) with lunch and dinner peaks.

    Restaurants cluster around a few canteens/food streets, customers around dormitories
    and teaching buildings; coordinates in metres, riders on bikes.  Shifts: morning
    (07:30–14:00), lunch (10:30–14:30), afternoon (13:30–19:00) and dinner (16:30–22:30).
    """
    rng = np.random.default_rng(seed)
    hubs = rng.uniform(0.15 * size_m, 0.85 * size_m, size=(4, 2))
    dorms = rng.uniform(0.05 * size_m, 0.95 * size_m, size=(8, 2))
    rest_xy = hubs[rng.integers(0, len(hubs), restaurants)] + rng.normal(0, 120, (restaurants, 2))
    rest_xy = np.clip(rest_xy, 0, size_m)
    rest_ids = [f"r{i + 1}" for i in range(restaurants)]
    popularity = rng.dirichlet(np.full(restaurants, 1.5))
    # arrival-time mixture: breakfast, lunch peak, afternoon, dinner peak, late night
    comps = np.array([[60, 25], [300, 40], [450, 60], [660, 45], [840, 40]], dtype=float)
    weights = np.array([0.06, 0.40, 0.08, 0.38, 0.08])
    which = rng.choice(len(comps), size=orders, p=weights)
    placed = np.rint(rng.normal(comps[which, 0], comps[which, 1])).clip(15, 900)
    rest_of = rng.choice(restaurants, size=orders, p=popularity)
    prep = np.rint(rng.gamma(4.0, mean_prep / 4.0, size=orders)).clip(3, 60)
    cust = dorms[rng.integers(0, len(dorms), orders)] + rng.normal(0, 150, (orders, 2))
    cust = np.clip(cust, 0, size_m)
    order_list = [
        Order(
            f"o{i + 1}",
            float(round(cust[i, 0])),
            float(round(cust[i, 1])),
            float(placed[i]),
            rest_ids[rest_of[i]],
            float(placed[i] + prep[i]),
        )
        for i in range(orders)
    ]
    shifts = [(30, 420, 0.15), (210, 450, 0.35), (390, 720, 0.15), (570, 930, 0.35)]
    shift_of = rng.choice(len(shifts), size=couriers, p=[s[2] for s in shifts])
    start = dorms[rng.integers(0, len(dorms), couriers)] + rng.normal(0, 200, (couriers, 2))
    start = np.clip(start, 0, size_m)
    courier_list = [
        Courier(
            f"c{i + 1}",
            float(round(start[i, 0])),
            float(round(start[i, 1])),
            float(shifts[shift_of[i]][0]),
            float(shifts[shift_of[i]][1]),
            capacity,
        )
        for i in range(couriers)
    ]
    restaurants_map = {
        rid: (float(round(rest_xy[i, 0])), float(round(rest_xy[i, 1]))) for i, rid in enumerate(rest_ids)
    }
    params = Params(
        meters_per_minute=bike_m_per_min,
        pickup_service=2.0,
        dropoff_service=2.0,
        target_ctd=40.0,
        max_ctd=90.0,
        pay_per_order=6.0,
        pay_per_hour=20.0,
    )
    return Instance(f"campus-{seed}", order_list, restaurants_map, courier_list, params)


def noisy_ready(seed: int = 0, sd_minutes: float = 3.0) -> ReadyEstimate:
    """Ready-time estimates as a kitchen would give them: true ready time + a fixed per-order error."""
    rng = np.random.default_rng(seed)
    cache: dict[str, float] = {}

    def est(order: Order, now: float) -> float:
        if order.id not in cache:
            cache[order.id] = float(rng.normal(0.0, sd_minutes))
        return max(order.placed, order.ready + cache[order.id])

    return est
