"""Resolving a ticket with something of value, always through the service that owns it: a refund through
the payment provider, a re-delivery through order placement, a coupon through the coupon service.
Nothing edits a balance by hand, and no network call runs inside a database transaction.

Each is safe to retry: the refund number (`T<ticket>-<attempt>`) and the re-delivery's idempotency key
are derived from the ticket, so a retried request neither refunds nor cooks twice.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from waimai.core import uow
from waimai.core.database import Database
from waimai.core.deps import Principal
from waimai.core.errors import Conflict, Forbidden, Unprocessable
from waimai.core.outbox import emit
from waimai.platform.ordering import idempotency
from waimai.platform.ordering import service as ordering
from waimai.platform.ordering.schemas import LineIn, PlaceOrderIn
from waimai.platform.payments import service as payments
from waimai.platform.payments.base import (
    CallbackEvent,
    CallbackRejected,
    PaymentError,
    PaymentIntent,
    PaymentProvider,
    ProbeResult,
    RefundResult,
)
from waimai.platform.payments.models import Payment
from waimai.platform.support import service as tickets
from waimai.platform.support.models import Ticket, TicketEvent
from waimai.platform.support.schemas import ResolveIn

# The most a coupon may be worth, by role (fen): larger gestures are for ops.
COUPON_MAX_FEN = {"support": 30_00, "ops": 200_00}
REDELIVERY = "redelivery"


class MakeGood:
    """The payment provider of re-delivery orders: the platform pays the merchant, the customer nothing.
    Registered as `redelivery` so a re-delivery that is cancelled settles like any other order."""

    name = REDELIVERY

    def create_payment(self, *, order_number: str, amount_fen: int, description: str, notify_url: str,
                       return_url: str) -> PaymentIntent:
        raise PaymentError("re-delivery orders are paid by the platform", retryable=False)

    def refund(self, *, provider_ref: str, amount_fen: int, refund_no: str) -> RefundResult:
        return RefundResult(refund_ref=f"makegood-{refund_no}", status="succeeded")  # nothing left the platform

    def verify_callback(self, headers: Mapping[str, str], body: bytes) -> CallbackEvent:
        raise CallbackRejected("re-delivery has no callbacks")

    def health(self) -> ProbeResult:
        return ProbeResult(ok=True, latency_ms=0.0, detail="internal")


def _attempt(db: Session, t: Ticket) -> int:
    """How many times this ticket was resolved before: a reopened ticket's next refund is a new one."""
    return int(db.scalar(select(func.count()).select_from(TicketEvent).where(
        TicketEvent.ticket_id == t.id, TicketEvent.kind == "resolved")) or 0)


def _load(db: Session, staff: Principal, ticket_id: int) -> Ticket:
    t = tickets.get_visible(db, staff, ticket_id)
    tickets.check_resolvable(staff, t)
    return t


def _reload(db: Session, ticket_id: int) -> Ticket | None:
    """The ticket in the write transaction; None if someone resolved it meanwhile."""
    t = db.get(Ticket, ticket_id, with_for_update=True)
    return None if t is None or t.status == "resolved" else t


def refund(database: Database, providers: Mapping[str, PaymentProvider], staff: Principal, ticket_id: int, *,
           amount_fen: int | None = None, note: str = "") -> Ticket:
    """Refund (part of) what the customer paid online for the ticket's order; the default is what is left.
    Cash and platform-paid orders have nothing to refund here: use a coupon or a re-delivery."""
    with database.read_session() as db:
        t = _load(db, staff, ticket_id)
        paid = list(db.scalars(select(Payment).where(Payment.order_id == t.order_id, Payment.provider == "gateway",
                                                     Payment.status == "succeeded").order_by(Payment.id)))
        if not paid:
            raise Conflict("Nothing was paid online for this order: resolve with a coupon or a re-delivery.",
                           code="ticket_nothing_to_refund")
        target = paid[-1]  # with two charges, the later one is the duplicate
        done = db.scalar(select(func.coalesce(func.sum(Ticket.refund_fen), 0)).where(
            Ticket.order_id == t.order_id, Ticket.refund_ref.is_not(None))) or 0
        left = target.amount_fen - int(done) if len(paid) == 1 else target.amount_fen
        amount = left if amount_fen is None else amount_fen
        if not 0 < amount <= left:
            raise Unprocessable(f"Refund between ¥0.01 and ¥{left / 100:.2f} (what is left of the payment).",
                                code="refund_amount_invalid", details={"refundable_fen": left})
        pid, ref, refund_no = target.id, target.provider_ref or "", f"T{t.id}-{_attempt(db, t)}"
        full = amount == left  # nothing of this payment is left afterwards
    provider = providers["gateway"]
    try:
        with payments.observe("gateway", "refund"):
            result = provider.refund(provider_ref=ref, amount_fen=amount, refund_no=refund_no)
    except PaymentError as exc:
        with uow.unit_of_work(database) as db:
            if (t2 := db.get(Ticket, ticket_id)) is not None:
                tickets.event(db, t2, staff, "refund_failed", str(exc)[:200], public=False,
                              details={"amount_fen": amount, "refund_no": refund_no})
                tickets.audit_staff(db, staff, "refund_failed", t2, amount_fen=amount, refund_no=refund_no)
        if not exc.retryable:
            raise Conflict(f"The payment gateway refused the refund ({str(exc)[:120]}); resolve with a coupon.",
                           code="refund_refused") from exc
        raise payments.GatewayUnavailable("The refund did not go through (the payment gateway is failing); "
                                          "retry in a moment or resolve with a coupon.",
                                          headers={"Retry-After": "30"}) from exc
    with uow.unit_of_work(database) as db:
        t2 = _reload(db, ticket_id)
        if t2 is None:  # resolved by a concurrent request, which made this same refund (same number)
            return tickets.get_visible(db, staff, ticket_id)
        t2.refund_fen, t2.refund_ref = amount, result.refund_ref
        pay = db.get(Payment, pid)
        if pay is not None and full:
            pay.status, pay.refund_ref = "refunded", result.refund_ref
        emit(db, "payment.refunded", key=str(t2.order_id), order_id=t2.order_id, amount_fen=amount, ticket_id=t2.id)
        tickets.mark_resolved(db, staff, t2, "refund", note, amount_fen=amount, refund_ref=result.refund_ref)
        return t2


def redeliver(database: Database, staff: Principal, ticket_id: int, *, item_ids: list[int] | None = None,
              note: str = "", ttl: dt.timedelta = dt.timedelta(hours=24)) -> Ticket:
    """Cook and deliver (some of) the order's lines again, paid by the platform: a new order for the same
    customer and delivery point, `source="redelivery"`, placed through the ordering service."""
    with database.read_session() as db:
        t = _load(db, staff, ticket_id)
        order = ordering.load_order(db, t.order_id)
        lines = [ln for ln in order.lines if item_ids is None or ln.item_id in set(item_ids)]
        if not lines:
            raise Unprocessable("Choose at least one item of the order to deliver again.", code="redelivery_empty")
        contact = order.contact_phone if order.contact_phone and order.contact_phone.lstrip("+").isdigit() \
            and 6 <= len(order.contact_phone.lstrip("+")) <= 15 else None
        body = PlaceOrderIn(merchant_id=order.merchant_id, delivery_point_id=order.delivery_point_id,
                            items=[LineIn(item_id=ln.item_id, quantity=ln.quantity, options=list(ln.options or []))
                                   for ln in lines],
                            payment_method="platform", note=f"re-delivery of {order.number} (ticket {t.id})",
                            contact_phone=contact)
        key = f"ticket-{t.id}-redelivery-{_attempt(db, t)}"
    customer = Principal(user_id=t.customer_id, role="customer")
    fp = idempotency.request_fingerprint(body.model_dump(mode="json"))
    _status, (payload, _oid), _replayed = idempotency.place_once(database, customer, body, key, fp, ttl,
                                                                 source=REDELIVERY, actor=staff)
    new_id = int(json.loads(payload)["id"])
    with uow.unit_of_work(database) as db:
        t2 = _reload(db, ticket_id)
        if t2 is None:
            return tickets.get_visible(db, staff, ticket_id)
        t2.redelivery_order_id = new_id
        tickets.mark_resolved(db, staff, t2, "redelivery", note, redelivery_order_id=new_id,
                              items=[ln.item_id for ln in lines])
        return t2


def coupon(db: Session, staff: Principal, t: Ticket, *, amount_fen: int, min_spend_fen: int = 0, days: int = 14,
           note: str = "") -> Ticket:
    """A coupon for the customer, through the coupon service (source `ticket`, tied to the ticket and order)."""
    from waimai.platform.coupons import service as coupons

    tickets.check_resolvable(staff, t)
    cap = COUPON_MAX_FEN.get(staff.role, 0)
    if amount_fen > cap:
        raise Forbidden(f"A {staff.role} may give coupons up to ¥{cap / 100:.2f}; ask ops for more.",
                        code="coupon_over_limit", details={"max_fen": cap})
    c, _created = coupons.issue(db, user_id=t.customer_id, amount_fen=amount_fen, min_spend_fen=min_spend_fen,
                                days=days, source="ticket", actor=tickets.actor_name(staff), actor_id=staff.user_id,
                                reason=(note or f"ticket #{t.id}: {t.category}")[:200], ticket_id=t.id,
                                order_id=t.order_id)
    t.coupon_id = c.id
    return tickets.mark_resolved(db, staff, t, "coupon", note, coupon_id=c.id, amount_fen=amount_fen)


def resolve(database: Database, providers: Mapping[str, PaymentProvider], staff: Principal, ticket_id: int,
            body: ResolveIn, *, ttl: dt.timedelta = dt.timedelta(hours=24)) -> None:
    """Resolve a ticket as `body` says (the API and the console page alike): a refund through the gateway, a
    re-delivery, a coupon, or no action. Each runs in its own units of work (no gateway call inside one)."""
    if body.resolution == "refund":
        refund(database, providers, staff, ticket_id, amount_fen=body.amount_fen, note=body.note)
    elif body.resolution == "redelivery":
        redeliver(database, staff, ticket_id, item_ids=body.item_ids, note=body.note, ttl=ttl)
    else:
        with uow.unit_of_work(database) as db:
            t = tickets.get_visible(db, staff, ticket_id)
            if body.resolution == "coupon":
                if body.amount_fen is None:
                    raise Unprocessable("Give the coupon's value (amount_fen).", code="coupon_amount_invalid")
                coupon(db, staff, t, amount_fen=body.amount_fen, min_spend_fen=body.min_spend_fen,
                       days=body.days, note=body.note)
            else:
                tickets.mark_resolved(db, staff, t, "no_action", body.note)
