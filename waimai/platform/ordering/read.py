"""What the layers above may read about orders: the firewall's gauges, root-cause reports, compensation,
notices, runbooks and the restore's export of later orders.

The firewall reaches orders only through this module (and `service.py`), never through the tables or the
state machine (the `firewall-through-services` contract in pyproject.toml), so the order schema can change
behind these functions. Every function only reads, in the caller's session or on its own connection.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Table, func, or_, select
from sqlalchemy.orm import Session

from waimai.core.database import Database, table_of
from waimai.platform.ordering.models import Order, OrderLine, OrderTransition
from waimai.platform.ordering.state import ACTIVE, KITCHEN
from waimai.platform.payments.models import Payment

# End states that count as a failed order for the incident figures and compensation.
FAILED = ("cancelled", "rejected", "failed", "refunded")
ACTIVE_STATUSES = tuple(sorted(s.value for s in ACTIVE))  # every non-final state


# -- gauges ----------------------------------------------------------------------------------------------
def active_counts(db: Session) -> dict[str, int]:
    """Orders in each non-final state, every such state present (zero when none)."""
    counts = dict(db.execute(select(Order.status, func.count()).where(
        Order.status.in_(ACTIVE_STATUSES)).group_by(Order.status)).tuples().all())
    return {st: int(counts.get(st, 0)) for st in ACTIVE_STATUSES}


def dispatch_backlog(db: Session) -> int:
    """Kitchen and ready orders still waiting for a rider."""
    return int(db.scalar(select(func.count()).select_from(Order).where(
        Order.rider_id.is_(None), Order.status.in_([*[x.value for x in KITCHEN], "ready"]))) or 0)


def placed_since(db: Session, since: dt.datetime) -> bool:
    """Was any order placed at or after `since`?"""
    return bool(db.scalar(select(func.count()).select_from(Order).where(Order.created_at >= since)))


# -- an incident's window ----------------------------------------------------------------------------------
def failed_in(db: Session, start: dt.datetime, end: dt.datetime) -> list[Order]:
    """Orders placed in the window that ended failed (cancelled, rejected, failed, refunded)."""
    return list(db.scalars(select(Order).where(Order.created_at.between(start, end), Order.status.in_(FAILED))))


def with_failed_payment(db: Session, start: dt.datetime, end: dt.datetime) -> list[Order]:
    """Orders with a payment that failed in the window."""
    return list(db.scalars(select(Order).join(Payment, Payment.order_id == Order.id).where(
        Payment.status == "failed", Payment.created_at.between(start, end)).distinct()))


def failed_payment_order_ids(db: Session, start: dt.datetime, end: dt.datetime, *,
                             limit: int | None = None) -> list[int]:
    q = select(Payment.order_id).where(Payment.status == "failed", Payment.created_at.between(start, end))
    return list(db.scalars(q if limit is None else q.limit(limit)))


def late_in(db: Session, start: dt.datetime, end: dt.datetime) -> list[Order]:
    """Orders delivered after their promised time, placed or delivered in the window."""
    return list(db.scalars(select(Order).where(
        Order.delivered_at.is_not(None), Order.promised_at.is_not(None), Order.delivered_at > Order.promised_at,
        or_(Order.created_at.between(start, end), Order.delivered_at.between(start, end)))))


def totals_of(db: Session, customer_id: int, start: dt.datetime, end: dt.datetime) -> list[int]:
    """The totals (fen) of a customer's orders placed in the window (their typical basket)."""
    return list(db.scalars(select(Order.total_fen).where(Order.customer_id == customer_id,
                                                         Order.created_at.between(start, end))))


def impact(db: Session, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Orders placed and failed in the window (count, fen), late deliveries, customers affected and the value
    at risk (failed orders plus orders whose payment failed), for the root-cause report."""
    in_window = Order.created_at.between(start, end)
    placed = db.execute(select(func.count(), func.coalesce(func.sum(Order.total_fen), 0)).where(in_window)).one()
    failed = db.execute(select(func.count(), func.coalesce(func.sum(Order.total_fen), 0))
                        .where(in_window, Order.status.in_(FAILED))).one()
    pay_failed = set(failed_payment_order_ids(db, start, end))
    late = db.scalar(select(func.count()).select_from(Order).where(
        Order.delivered_at.is_not(None), Order.delivered_at > Order.promised_at,
        or_(in_window, Order.delivered_at.between(start, end)))) or 0
    affected_users = set(db.scalars(select(Order.customer_id).where(
        or_(Order.id.in_(pay_failed), (in_window & Order.status.in_(FAILED))))))
    at_risk = int(failed[1]) + int(db.scalar(select(func.coalesce(func.sum(Order.total_fen), 0)).where(
        Order.id.in_(pay_failed), Order.status.not_in(FAILED))) or 0)
    return {"orders_placed": int(placed[0]), "gmv_placed_fen": int(placed[1]), "orders_failed": int(failed[0]),
            "payment_failures": len(pay_failed), "orders_late": int(late), "users_affected": len(affected_users),
            "gmv_at_risk_fen": at_risk}


def customers_active_or_since(db: Session, since: dt.datetime) -> set[int]:
    """Customers with an order in progress now, or placed at or after `since` (those an incident touches)."""
    return set(db.scalars(select(Order.customer_id).where(or_(
        Order.status.in_(ACTIVE_STATUSES), Order.created_at >= since)).distinct()))


# -- the restore's export ------------------------------------------------------------------------------------
def _in_ranges(col: Any, ranges: list[tuple[int, int]]) -> list[Any]:
    return [col.between(a, b) for a, b in ranges]


def orders_after(db: Database, *, max_order_id: int, order_id_gaps: list[tuple[int, int]],
                 max_transition_id: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Orders a backup lacks (ids above its highest, or in the gaps it recorded) with their lines and
    transitions, and orders it has in an earlier state (a transition after its highest) with the transitions
    since: plain rows, for the export a restore writes before rolling back."""
    orders, lines, trans = table_of(Order), table_of(OrderLine), table_of(OrderTransition)
    new: dict[int, dict[str, Any]] = {}
    with db.engine.connect() as c:
        conds = [orders.c.id > max_order_id]
        gaps = list(order_id_gaps)
        for i in range(0, max(len(gaps), 1), 200):
            batch = conds + _in_ranges(orders.c.id, gaps[i:i + 200])
            for r in c.execute(select(orders).where(or_(*batch)).order_by(orders.c.id)).mappings():
                new[r["id"]] = dict(r)
            conds = []
            if not gaps:
                break
        changed_ids = sorted(set(c.execute(select(trans.c.order_id).where(trans.c.id > max_transition_id))
                                 .scalars()) - set(new))
        changed: dict[int, dict[str, Any]] = {}
        for i in range(0, len(changed_ids), 500):
            ids = changed_ids[i:i + 500]
            for r in c.execute(select(orders).where(orders.c.id.in_(ids))).mappings():
                changed[r["id"]] = dict(r)
        _attach(c, lines, "lines", new, None)
        _attach(c, trans, "transitions", new, None)
        _attach(c, trans, "transitions_after_backup", changed, max_transition_id)
    return list(new.values()), [changed[i] for i in sorted(changed)]


def _attach(c: Any, table: Table, key: str, rows: dict[int, dict[str, Any]], after_id: int | None) -> None:
    for r in rows.values():
        r[key] = []
    ids = sorted(rows)
    for i in range(0, len(ids), 500):
        q = select(table).where(table.c.order_id.in_(ids[i:i + 500]))
        if after_id is not None:
            q = q.where(table.c.id > after_id)
        for x in c.execute(q.order_by(table.c.id)).mappings():
            rows[x["order_id"]][key].append(dict(x))
