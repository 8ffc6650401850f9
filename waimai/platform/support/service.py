"""Complaint tickets: who may report what on which order, who may see it, the SLA clock, the staff's
actions, and the links to incidents.

A ticket belongs to one order. Customers report on their own orders, merchant staff on their shop's,
riders on orders they carry; support takes reports by phone on the customer's behalf. Status moves
open → in_progress → resolved (staff may reopen). Every ticket gets two deadlines from its category:
a first response and a resolution; `sla()` says which are met, due or breached.

Linking: a ticket whose category points at a public component (`Category.components`) is linked to an
incident affecting that component when the ticket is created, or its order was placed, inside the
incident's window (onset − `LEAD` → resolution). Tickets that arrive before the incident exists
(complaints often come before the metrics move) are linked by `link_recent`, which the periodic job
runs. Every link is a line on the incident's timeline.

Every function here works in the caller's transaction; the caller commits.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.orm import Session

from waimai.core import audit
from waimai.core.database import utcnow
from waimai.core.deps import Principal
from waimai.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from waimai.core.messages import N_
from waimai.core.outbox import emit
from waimai.core.security import mask_phones_in_text
from waimai.platform.accounts.models import User
from waimai.platform.ordering import service as ordering
from waimai.platform.ordering.models import Order
from waimai.platform.support.incidents import IncidentRef, incidents
from waimai.platform.support.models import Ticket, TicketEvent

STAFF = ("support", "ops")
STATUSES = ("open", "in_progress", "resolved")
RESOLUTIONS = ("refund", "redelivery", "coupon", "no_action")
LEAD = dt.timedelta(minutes=15)  # a ticket this long before an incident's onset still belongs to it
MAX_ORDER_AGE = dt.timedelta(days=7)  # older orders: call support
SEVERITY_RANK = {"P1": 0, "P2": 1, "P3": 2, "P4": 3}
_M = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Category:
    label: str  # English; the pages translate it
    reporters: frozenset[str]  # roles that may report it (support files customer ones by phone)
    components: tuple[str, ...]  # public components (sop.yml) whose incidents it may belong to
    first_response: dt.timedelta
    resolution: dt.timedelta


_C, _M_, _R = frozenset({"customer"}), frozenset({"merchant"}), frozenset({"rider"})
CATEGORIES: dict[str, Category] = {
    "late": Category(N_("Late delivery"), _C, ("delivery",), 15 * _M, 120 * _M),
    "missing_item": Category(N_("Missing item"), _C, ("ordering", "merchant_console"), 15 * _M, 240 * _M),
    "wrong_item": Category(N_("Wrong item"), _C, ("ordering", "merchant_console"), 15 * _M, 240 * _M),
    "cold": Category(N_("Food arrived cold"), _C, ("delivery",), 30 * _M, 240 * _M),
    "rider_behaviour": Category(N_("Rider behaviour"), _C | _M_, ("delivery",), 30 * _M, 24 * 60 * _M),
    "charged_twice": Category(N_("Charged twice"), _C, ("payment",), 15 * _M, 24 * 60 * _M),
    "rider_no_show": Category(N_("No rider came for the order"), _M_, ("delivery",), 10 * _M, 120 * _M),
    "merchant_delay": Category(N_("Food not ready at pickup"), _R, ("ordering", "merchant_console"), 30 * _M, 240 * _M),
    "customer_unreachable": Category(N_("Customer unreachable"), _R, ("delivery", "notifications"), 10 * _M, 120 * _M),
    "wrong_address": Category(N_("Wrong or unclear address"), _R, ("delivery",), 10 * _M, 120 * _M),
    "other": Category(N_("Something else"), _C | _M_ | _R, (), 60 * _M, 24 * 60 * _M),
}
# Categories whose surge is an alert signal (default_rules.yml, group "complaints").
SURGE_WINDOW = dt.timedelta(minutes=10)


def categories_for(role: str) -> list[str]:
    """What a role may report (staff report for the customer on the phone)."""
    role = "customer" if role in STAFF else role
    return [k for k, c in CATEGORIES.items() if role in c.reporters]


# --- who may see and do what --------------------------------------------------------------------------------

def _staff_merchant_id(db: Session, p: Principal) -> int | None:
    user = db.get(User, p.user_id)
    return user.merchant_id if user is not None else None


def _rider_id(db: Session, p: Principal) -> int | None:
    from waimai.platform.delivery.models import Rider

    return db.scalar(select(Rider.id).where(Rider.user_id == p.user_id))


def can_view(db: Session, p: Principal, t: Ticket) -> bool:
    """Staff see every ticket; a customer the tickets they reported; merchant staff those on their shop's
    orders; a rider those on orders they carry."""
    if p.role in STAFF:
        return True
    if p.role == "customer":
        return t.reporter_id == p.user_id
    if p.role == "merchant":
        return t.merchant_id == _staff_merchant_id(db, p)
    if p.role == "rider":
        order = db.get(Order, t.order_id)
        rid = _rider_id(db, p)
        return order is not None and rid is not None and order.rider_id == rid
    return False


def get_visible(db: Session, p: Principal, ticket_id: int) -> Ticket:
    t = db.get(Ticket, ticket_id)
    if t is None or not can_view(db, p, t):
        # Same answer as for a missing ticket: another person's ticket does not visibly exist.
        raise NotFound(f"Ticket {ticket_id} does not exist.")
    return t


def visible_query(db: Session, p: Principal) -> Select[Any]:
    q = select(Ticket)
    if p.role in STAFF:
        return q
    if p.role == "customer":
        return q.where(Ticket.reporter_id == p.user_id)
    if p.role == "merchant":
        return q.where(Ticket.merchant_id == (_staff_merchant_id(db, p) or -1))
    if p.role == "rider":
        return q.join(Order, Order.id == Ticket.order_id).where(Order.rider_id == (_rider_id(db, p) or -1))
    return q.where(Ticket.id == -1)


def list_tickets(db: Session, p: Principal, *, status: str | None = None, category: str | None = None,
                 order_id: int | None = None, incident_id: int | None = None, limit: int = 50) -> list[Ticket]:
    q = visible_query(db, p)
    if status is not None:
        q = q.where(Ticket.status == status)
    if category is not None:
        q = q.where(Ticket.category == category)
    if order_id is not None:
        q = q.where(Ticket.order_id == order_id)
    if incident_id is not None:
        q = q.where(Ticket.incident_id == incident_id)
    return list(db.scalars(q.order_by(Ticket.id.desc()).limit(limit)))


def require_staff(p: Principal) -> None:
    if p.role not in STAFF:
        raise Forbidden("Only support staff can do this.")


def actor_name(p: Principal | None) -> str:
    return f"{p.role}:{p.user_id}" if p is not None else "system"


def event(db: Session, t: Ticket, p: Principal | None, kind: str, text: str = "", *, public: bool = True,
          details: dict[str, Any] | None = None, now: dt.datetime | None = None) -> TicketEvent:
    ev = TicketEvent(ticket_id=t.id, at=now or utcnow(), actor_id=p.user_id if p else None,
                     actor_role=p.role if p else "system", kind=kind, text=text[:1000], public=public,
                     details=details or {})
    db.add(ev)
    t.updated_at = ev.at
    return ev


def events(db: Session, p: Principal, t: Ticket) -> list[TicketEvent]:
    """The ticket's history; internal notes only for staff."""
    q = select(TicketEvent).where(TicketEvent.ticket_id == t.id)
    if p.role not in STAFF:
        q = q.where(TicketEvent.public.is_(True))
    return list(db.scalars(q.order_by(TicketEvent.at, TicketEvent.id)))


def audit_staff(db: Session, p: Principal, action: str, t: Ticket, **details: Any) -> None:
    """Every staff action on a ticket is in the audit log, committed with the action."""
    if p.role in STAFF:
        audit.record(db, actor_id=p.user_id, actor_role=p.role, action=f"ticket.{action}", target=f"ticket:{t.id}",
                     details={"order_id": t.order_id, **details})


# --- the SLA clock -------------------------------------------------------------------------------------------------

def sla(t: Ticket, now: dt.datetime | None = None) -> dict[str, str]:
    """{"first_response": met | due | breached, "resolution": …} at `now`."""
    now = now or utcnow()

    def state(done: dt.datetime | None, due: dt.datetime) -> str:
        if done is not None:
            return "met" if done <= due else "breached"
        return "due" if now <= due else "breached"

    return {"first_response": state(t.first_response_at, t.first_response_due),
            "resolution": state(t.resolved_at, t.resolution_due)}


def _overdue(now: dt.datetime) -> Any:
    return (Ticket.status != "resolved") & or_(
        Ticket.resolution_due < now, Ticket.first_response_at.is_(None) & (Ticket.first_response_due < now))


def breached(db: Session, now: dt.datetime | None = None) -> list[Ticket]:
    """Unresolved tickets past a deadline, the most overdue first (the queue's red rows)."""
    return list(db.scalars(select(Ticket).where(_overdue(now or utcnow())).order_by(Ticket.first_response_due)))


def _responded(t: Ticket, p: Principal, now: dt.datetime) -> None:
    if p.role in STAFF and t.first_response_at is None:
        t.first_response_at = now


# --- creating ------------------------------------------------------------------------------------------------------

def create(db: Session, p: Principal, *, order_id: int, category: str, description: str = "",
           now: dt.datetime | None = None) -> Ticket:
    """A report on an order. Staff file it for the order's customer (a phone call): the customer is then the
    reporter and sees it in their list."""
    now = now or utcnow()
    order = ordering.load_order(db, order_id)
    ordering.check_can_view(db, p, order)  # another person's order is a 404
    if category not in CATEGORIES:
        raise Unprocessable(f"Unknown category {category!r}; one of {', '.join(CATEGORIES)}.",
                            code="ticket_category_unknown")
    allowed = categories_for(p.role)
    if category not in allowed:
        raise Unprocessable(f"A {p.role} cannot report {category!r}; choose one of {', '.join(allowed)}.",
                            code="ticket_category_invalid", details={"allowed": allowed})
    if now - order.created_at > MAX_ORDER_AGE:
        raise Unprocessable("This order is more than 7 days old; please call support.", code="ticket_order_too_old")
    on_behalf = p.role in STAFF
    reporter_id = order.customer_id if on_behalf else p.user_id
    dup = db.scalar(select(Ticket.id).where(Ticket.order_id == order.id, Ticket.reporter_id == reporter_id,
                                            Ticket.category == category, Ticket.status != "resolved"))
    if dup is not None:
        raise Conflict(f"This problem is already reported as ticket {dup}; add to it instead.",
                       code="ticket_exists", details={"ticket_id": dup})
    cat = CATEGORIES[category]
    t = Ticket(order_id=order.id, customer_id=order.customer_id, merchant_id=order.merchant_id,
               reporter_id=reporter_id, reporter_role="customer" if on_behalf else p.role, category=category,
               description=description.strip()[:1000], status="open", source="phone" if on_behalf else "app",
               created_at=now, updated_at=now, first_response_due=now + cat.first_response,
               resolution_due=now + cat.resolution)
    if on_behalf:  # taking the call is the first response
        t.first_response_at, t.assignee_id = now, p.user_id
    db.add(t)
    db.flush()
    event(db, t, p, "created", t.description, details={"category": category, "source": t.source}, now=now)
    audit_staff(db, p, "create", t, category=category)
    emit(db, "ticket.created", key=str(t.id), ticket_id=t.id, order_id=order.id, category=category,
         reporter_role=t.reporter_role)
    link_incident(db, t, order=order, now=now)
    return t


# --- incidents -----------------------------------------------------------------------------------------------------

def _link(db: Session, t: Ticket, inc: IncidentRef, *, actor: str, now: dt.datetime) -> None:
    t.incident_id = inc.id
    text = f"ticket #{t.id} ({t.category}) on order {t.order_id}"
    if t.description:
        text += f": {mask_phones_in_text(t.description)[:160]}"
    incidents().record(db, inc.id, text, actor=actor, at=now,
                       details={"ticket_id": t.id, "order_id": t.order_id, "category": t.category})
    event(db, t, None, "linked", f"incident #{inc.id}", public=False, details={"incident_id": inc.id}, now=now)


def matching_incident(db: Session, t: Ticket, *, order_created_at: dt.datetime,
                      now: dt.datetime) -> IncidentRef | None:
    comps = set(CATEGORIES[t.category].components)
    if not comps:
        return None
    earliest = min(order_created_at, t.created_at)
    hits = []
    for inc in incidents().overlapping(db, since=earliest, until=now + LEAD):
        if not comps & set(inc.components):
            continue
        start, end = inc.onset_at - LEAD, inc.resolved_at or now
        if start <= t.created_at <= end or start <= order_created_at <= end:
            hits.append(inc)
    hits.sort(key=lambda i: (SEVERITY_RANK.get(i.severity, 9), -i.onset_at.timestamp()))
    return hits[0] if hits else None


def link_incident(db: Session, t: Ticket, *, order: Order | None = None,
                  now: dt.datetime | None = None) -> IncidentRef | None:
    """Link `t` to the incident it belongs to, if any (and if not linked yet)."""
    if t.incident_id is not None:
        return None
    now = now or utcnow()
    order = order or db.get(Order, t.order_id)
    inc = matching_incident(db, t, order_created_at=order.created_at if order else t.created_at, now=now)
    if inc is not None:
        _link(db, t, inc, actor="system:support", now=now)
    return inc


def link_recent(db: Session, now: dt.datetime | None = None) -> int:
    """Link unlinked tickets to open incidents that began after them (the periodic job)."""
    now = now or utcnow()
    open_ = incidents().open(db)
    if not open_:
        return 0
    since = min(i.onset_at for i in open_) - LEAD
    affected = {c for i in open_ for c in i.components}
    kinds = [k for k, c in CATEGORIES.items() if affected & set(c.components)]
    if not kinds:
        return 0
    n = 0
    for t in db.scalars(select(Ticket).where(Ticket.incident_id.is_(None), Ticket.created_at >= since,
                                             Ticket.category.in_(kinds)).order_by(Ticket.id)):
        n += link_incident(db, t, now=now) is not None
    return n


def set_incident(db: Session, p: Principal, t: Ticket, incident_id: int | None) -> None:
    """Ops correct a link by hand (a ticket that is not part of the fault, or one that is)."""
    if p.role != "ops":
        raise Forbidden("Only ops link tickets to incidents.")
    now = utcnow()
    if incident_id is None:
        if t.incident_id is not None:
            incidents().record(db, t.incident_id, f"ticket #{t.id} unlinked", actor=actor_name(p),
                               details={"ticket_id": t.id, "unlinked": True})
            event(db, t, p, "linked", "unlinked", public=False, now=now)
        t.incident_id = None
    else:
        inc = incidents().find(db, incident_id)
        if inc is None:
            raise NotFound("No such incident.")
        t.incident_id = None
        _link(db, t, inc, actor=actor_name(p), now=now)
    audit_staff(db, p, "link", t, incident_id=incident_id)


def tickets_for_incident(db: Session, incident_id: int) -> list[Ticket]:
    """The tickets linked to an incident, oldest first (for the root-cause report)."""
    return list(db.scalars(select(Ticket).where(Ticket.incident_id == incident_id).order_by(Ticket.created_at,
                                                                                                Ticket.id)))


def incident_summary(db: Session, incident_id: int, *, sample: int = 3) -> dict[str, Any]:
    """What the root-cause report quotes: how many tickets, by category and status, and a few of their
    texts (phone numbers masked)."""
    rows = tickets_for_incident(db, incident_id)
    quoted = [t for t in rows if t.description][:sample]
    return {"count": len(rows), "by_category": dict(Counter(t.category for t in rows)),
            "by_status": dict(Counter(t.status for t in rows)),
            "compensated": sum(1 for t in rows if t.resolution in ("refund", "redelivery", "coupon")),
            "sample": [{"ticket_id": t.id, "category": t.category, "at": t.created_at.isoformat(),
                        "text": mask_phones_in_text(t.description)[:300]} for t in quoted]}


def report_section(db: Session, inc: Any) -> dict[str, Any] | None:
    """The root-cause report's complaint section (`waimai.firewall.incidents.report.EXTRA_SECTIONS`): how many
    tickets, by category, and a few quoted."""
    s = incident_summary(db, inc.id, sample=5)
    if not s["count"]:
        return None
    kinds = ", ".join(f"{c} {n}" for c, n in sorted(s["by_category"].items(), key=lambda cn: -cn[1]))
    return {"title": f"Complaint tickets ({kinds})", "count": s["count"], "summary": s,
            "lines": [f"{q['text']} — {q['category']}, ticket #{q['ticket_id']}" for q in s["sample"]]}


def compensated_orders(db: Session, user_id: int, order_ids: set[int] | None = None) -> set[int]:
    """Orders of `user_id` already made good through a ticket (refund, re-delivery or coupon): incident
    compensation skips them. Fits `waimai.firewall.compensation.ALREADY_COMPENSATED`."""
    q = select(Ticket.order_id).where(Ticket.customer_id == user_id, Ticket.status == "resolved",
                                      Ticket.resolution.in_(("refund", "redelivery", "coupon")))
    if order_ids is not None:
        if not order_ids:
            return set()
        q = q.where(Ticket.order_id.in_(sorted(order_ids)))
    return set(db.scalars(q))


# --- staff actions ----------------------------------------------------------------------------------------------

def take(db: Session, p: Principal, t: Ticket) -> Ticket:
    """A support agent takes the ticket: in progress, theirs, and the first response is on the clock."""
    require_staff(p)
    if t.status == "resolved":
        raise Conflict(f"Ticket {t.id} is resolved; reopen it first.", code="ticket_resolved")
    now = utcnow()
    previous = t.status
    t.status, t.assignee_id = "in_progress", p.user_id
    _responded(t, p, now)
    event(db, t, p, "status", "in_progress", details={"from": previous, "to": "in_progress"}, now=now)
    audit_staff(db, p, "take", t)
    return t


def reply(db: Session, p: Principal, t: Ticket, text: str, *, internal: bool = False) -> TicketEvent:
    """A message on the ticket. Staff may keep it internal (a note); anyone who sees the ticket may add to it."""
    text = text.strip()
    if not text:
        raise Unprocessable("Write something first.", code="ticket_reply_empty")
    if internal and p.role not in STAFF:
        raise Forbidden("Only staff write internal notes.")
    now = utcnow()
    if not internal:
        _responded(t, p, now)
    ev = event(db, t, p, "note" if internal else "reply", text, public=not internal, now=now)
    audit_staff(db, p, "note" if internal else "reply", t)
    return ev


def reopen(db: Session, p: Principal, t: Ticket, reason: str = "") -> Ticket:
    require_staff(p)
    if t.status != "resolved":
        raise Conflict(f"Ticket {t.id} is {t.status}, not resolved.", code="ticket_not_resolved")
    now = utcnow()
    t.status, t.resolved_at = "in_progress", None
    t.resolution_due = max(t.resolution_due, now + CATEGORIES[t.category].resolution)
    event(db, t, p, "status", reason or "reopened", details={"from": "resolved", "to": "in_progress"}, now=now)
    audit_staff(db, p, "reopen", t, reason=reason)
    return t


def check_resolvable(p: Principal, t: Ticket) -> None:
    require_staff(p)
    if t.status == "resolved":
        raise Conflict(f"Ticket {t.id} is already resolved ({t.resolution}).", code="ticket_resolved",
                       details={"resolution": t.resolution})


def mark_resolved(db: Session, p: Principal, t: Ticket, resolution: str, note: str = "", **details: Any) -> Ticket:
    """Close the ticket with what was done (the refund, coupon or re-delivery was made by the caller)."""
    if resolution not in RESOLUTIONS:
        raise Unprocessable(f"Resolution must be one of {', '.join(RESOLUTIONS)}.", code="ticket_resolution_invalid")
    check_resolvable(p, t)
    now = utcnow()
    previous = t.status
    # One resolution per ticket, decided by the database: of two parallel resolutions the second's guarded
    # UPDATE waits for the first's row lock, then matches no row (PostgreSQL re-reads the row under READ
    # COMMITTED; SQLite has one writer) and its whole transaction, coupon included, rolls back as a 409.
    won = db.execute(update(Ticket).where(Ticket.id == t.id, Ticket.status != "resolved")
                     .values(status="resolved", resolved_at=now).execution_options(synchronize_session=False))
    if won.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"Ticket {t.id} is resolved already.", code="ticket_resolved")
    t.status, t.resolution, t.resolution_note, t.resolved_at = "resolved", resolution, note.strip()[:500], now
    t.assignee_id = t.assignee_id or p.user_id
    _responded(t, p, now)
    event(db, t, p, "resolved", t.resolution_note or resolution,
          details={"from": previous, "to": "resolved", "resolution": resolution, **details}, now=now)
    audit_staff(db, p, "resolve", t, resolution=resolution, **details)
    emit(db, "ticket.resolved", key=str(t.id), ticket_id=t.id, order_id=t.order_id, resolution=resolution)
    if t.incident_id is not None:
        incidents().record(db, t.incident_id, f"ticket #{t.id} resolved: {resolution}", actor=actor_name(p),
                           details={"ticket_id": t.id, "resolution": resolution})
    return t


# --- the surge signal ---------------------------------------------------------------------------------------------

def complaint_counts(db: Session, now: dt.datetime | None = None) -> dict[str, float]:
    """People complaining per category over the last 10 minutes (distinct reporters, so one person filing
    many tickets is one voice): the series `complaints_per_10min.<category>` and their total, plus
    `tickets_sla_breached`."""
    now = now or utcnow()
    rows = dict(db.execute(select(Ticket.category, func.count(func.distinct(Ticket.reporter_id)))
                           .where(Ticket.created_at > now - SURGE_WINDOW, Ticket.created_at <= now)
                           .group_by(Ticket.category)).all())
    out = {f"complaints_per_10min.{c}": float(rows.get(c, 0)) for c in CATEGORIES}
    out["complaints_per_10min"] = float(db.scalar(select(func.count(func.distinct(Ticket.reporter_id))).where(
        Ticket.created_at > now - SURGE_WINDOW, Ticket.created_at <= now)) or 0)
    out["tickets_sla_breached"] = float(db.scalar(select(func.count()).select_from(Ticket).where(_overdue(now))) or 0)
    return out
