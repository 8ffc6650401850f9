"""One-tap ratings and the satisfaction figures ops read: ratings and complaint rates per merchant, rider
and day, and how they moved around each incident."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from waimai.core.database import utcnow
from waimai.core.deps import Principal
from waimai.core.errors import Conflict, Forbidden, Unprocessable
from waimai.core.timeutil import LOCAL
from waimai.platform.catalog.models import Merchant
from waimai.platform.delivery.models import Rider
from waimai.platform.ordering import service as ordering
from waimai.platform.ordering.models import Order
from waimai.platform.support import service as tickets
from waimai.platform.support.incidents import IncidentRef, incidents
from waimai.platform.support.models import Rating, Ticket

AROUND = dt.timedelta(hours=2)  # the window before and after an incident its trend is compared with


def rate(db: Session, p: Principal, *, order_id: int, stars: int, ticket_id: int | None = None,
         comment: str = "") -> Rating:
    """The customer rates their delivered order, or how their ticket was resolved; tapping again changes it."""
    if p.role != "customer":
        raise Forbidden("Only the customer rates an order.")
    if not 1 <= stars <= 5:
        raise Unprocessable("Rate with 1 to 5 stars.", code="rating_invalid")
    order = ordering.load_order(db, order_id)
    ordering.check_can_view(db, p, order)
    if ticket_id is not None:
        t = tickets.get_visible(db, p, ticket_id)
        if t.order_id != order.id or t.status != "resolved":
            raise Conflict("Rate a ticket once it is resolved.", code="rating_too_early")
        subject = f"ticket:{t.id}"
    else:
        if order.status != "delivered":
            raise Conflict("Rate the order once it is delivered.", code="rating_too_early")
        subject = f"order:{order.id}"
    now = utcnow()
    r = db.scalar(select(Rating).where(Rating.user_id == p.user_id, Rating.subject == subject))
    if r is None:
        r = Rating(user_id=p.user_id, subject=subject, order_id=order.id, ticket_id=ticket_id,
                   merchant_id=order.merchant_id, rider_id=order.rider_id, created_at=now)
        db.add(r)
    r.stars, r.comment, r.updated_at = stars, comment.strip()[:300], now
    return r


def mine(db: Session, user_id: int, subjects: list[str]) -> dict[str, int]:
    """The stars this user gave, by subject (to show the chosen star on a page)."""
    if not subjects:
        return {}
    return dict(db.execute(select(Rating.subject, Rating.stars).where(Rating.user_id == user_id,
                                                                     Rating.subject.in_(subjects))).all())


def _bucket() -> dict[str, Any]:
    return {"orders": 0, "delivered": 0, "tickets": 0, "stars": 0, "ratings": 0}


def _finish(b: dict[str, Any]) -> dict[str, Any]:
    b["complaint_rate"] = round(b["tickets"] / b["orders"], 4) if b["orders"] else None
    b["avg_stars"] = round(b["stars"] / b["ratings"], 2) if b["ratings"] else None
    del b["stars"]
    return b


def satisfaction(db: Session, *, days: int = 14, now: dt.datetime | None = None) -> dict[str, Any]:
    """Per local day, merchant and rider: orders, complaints (tickets on those orders), complaint rate and
    average stars; the incidents in the range, with complaints per hour before, during and after each."""
    now = now or utcnow()
    today = now.astimezone(LOCAL).date()
    first = today - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first, dt.time(), LOCAL).astimezone(dt.UTC)
    orders = db.execute(select(Order.id, Order.created_at, Order.merchant_id, Order.rider_id, Order.status)
                        .where(Order.created_at >= start)).all()
    order_of = {o.id: o for o in orders}
    tks = db.execute(select(Ticket.id, Ticket.order_id, Ticket.created_at, Ticket.category, Ticket.incident_id)
                     .where(Ticket.created_at >= start)).all()
    rts = db.execute(select(Rating.stars, Rating.created_at, Rating.merchant_id, Rating.rider_id)
                     .where(Rating.created_at >= start)).all()
    incs = incidents().overlapping(db, since=start, until=now)

    def day(t: dt.datetime) -> str:
        return t.astimezone(LOCAL).date().isoformat()

    per_day = {(first + dt.timedelta(days=i)).isoformat(): _bucket() for i in range(days)}
    per_merchant: dict[int, dict[str, Any]] = defaultdict(_bucket)
    per_rider: dict[int, dict[str, Any]] = defaultdict(_bucket)
    for o in orders:
        for b in (per_day.get(day(o.created_at)), per_merchant[o.merchant_id],
                  per_rider[o.rider_id] if o.rider_id else None):
            if b is not None:
                b["orders"] += 1
                b["delivered"] += o.status == "delivered"
    for t in tks:
        targets = [per_day.get(day(t.created_at))]
        if (of := order_of.get(t.order_id)) is not None:  # orders placed in the range: merchant's and rider's
            targets += [per_merchant[of.merchant_id], per_rider[of.rider_id] if of.rider_id else None]
        for b in targets:
            if b is not None:
                b["tickets"] += 1
    for r in rts:
        for b in (per_day.get(day(r.created_at)), per_merchant[r.merchant_id],
                  per_rider[r.rider_id] if r.rider_id else None):
            if b is not None:
                b["stars"] += r.stars
                b["ratings"] += 1
    names = {m.id: m.name for m in db.scalars(select(Merchant))}
    riders = {r.id: r.name for r in db.scalars(select(Rider))}
    for inc in incs:
        on, off = inc.onset_at, inc.resolved_at or now
        for d, bucket in per_day.items():
            lo = dt.datetime.combine(dt.date.fromisoformat(d), dt.time(), LOCAL)
            if on < lo + dt.timedelta(days=1) and off >= lo:
                bucket.setdefault("incidents", []).append(inc.id)

    def per_hour(lo: dt.datetime, hi: dt.datetime) -> float:
        hours = max((hi - lo).total_seconds() / 3600, 1 / 60)
        return round(sum(1 for t in tks if lo <= t.created_at < hi) / hours, 2)

    around = []
    for inc in incs:
        on, off = inc.onset_at, inc.resolved_at or now
        around.append({"id": inc.id, "title": inc.title, "severity": inc.severity, "components": list(inc.components),
                       "onset_at": on.isoformat(), "resolved_at": inc.resolved_at.isoformat() if inc.resolved_at else None,
                       "linked_tickets": sum(1 for t in tks if t.incident_id == inc.id),
                       "complaints_per_hour": {"before": per_hour(on - AROUND, on), "during": per_hour(on, off),
                                               "after": per_hour(off, min(off + AROUND, now)) if off < now else None}})
    return {
        "from": start.isoformat(), "to": now.isoformat(),
        "days": [{"day": d, "incidents": v.pop("incidents", []), **_finish(v)} for d, v in per_day.items()],
        "merchants": sorted(({"merchant_id": k, "name": names.get(k, str(k)), **_finish(v)}
                             for k, v in per_merchant.items()), key=lambda x: -(x["complaint_rate"] or 0)),
        "riders": sorted(({"rider_id": k, "name": riders.get(k, str(k)), **_finish(v)}
                          for k, v in per_rider.items()), key=lambda x: -(x["complaint_rate"] or 0)),
        "incidents": around,
        "hourly": hourly(tks, incs, now=now),
    }


def hourly(tks: Any, incs: list[IncidentRef], *, now: dt.datetime, hours: int = 48) -> dict[str, Any]:
    """Complaints per hour over the last `hours`, with the incident windows in the same hour units (the chart)."""
    end = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    start = end - dt.timedelta(hours=hours)
    counts = [0] * hours
    for t in tks:
        if start <= t.created_at < end:
            counts[int((t.created_at - start).total_seconds() // 3600)] += 1
    bands = []
    for inc in incs:
        a, b = max(inc.onset_at, start), min(inc.resolved_at or now, end)
        if a < b:
            bands.append({"id": inc.id, "severity": inc.severity, "from": (a - start).total_seconds() / 3600,
                          "to": (b - start).total_seconds() / 3600})
    return {"start": start.isoformat(), "counts": counts, "incidents": bands,
            "labels": [(start + dt.timedelta(hours=i)).astimezone(LOCAL).strftime("%H") for i in range(hours)]}
