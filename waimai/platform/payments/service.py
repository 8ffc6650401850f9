"""Payments: starting a gateway payment, applying callbacks once, refunding cancelled orders."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from waimai.core import uow
from waimai.core.database import Database, utcnow
from waimai.core.deps import Principal
from waimai.core.errors import AppError, Conflict, Unprocessable
from waimai.core.metrics import PAYMENT_ATTEMPTS, PAYMENT_LATENCY
from waimai.core.outbox import emit
from waimai.platform.ordering import service as ordering
from waimai.platform.ordering.models import Order
from waimai.platform.ordering.state import Status
from waimai.platform.payments.base import CallbackEvent, PaymentError, PaymentProvider
from waimai.platform.payments.models import Payment, PaymentCallback

log = structlog.get_logger(__name__)


class GatewayUnavailable(AppError):
    status, code = 503, "payment_gateway_unavailable"


@contextmanager
def observe(provider: str, operation: str) -> Iterator[None]:
    """Count a provider call by outcome and time it: the payment series the firewall watches."""
    t0 = time.perf_counter()
    outcome = "succeeded"
    try:
        yield
    except PaymentError as exc:
        outcome = "error" if exc.retryable else "failed"
        raise
    finally:
        PAYMENT_ATTEMPTS.labels(provider, operation, outcome).inc()
        PAYMENT_LATENCY.labels(provider, operation).observe(time.perf_counter() - t0)


@dataclass(frozen=True)
class Choice:
    provider: PaymentProvider
    channel: str | None


def choose_provider(app_state: Any, name: str | None, channel: str | None, *, user_agent: str = "") -> Choice:
    """The provider (and channel) to pay with: the one asked for if checkout offers it, else the first offered.

    A provider whose breaker is open is not offered; with every online provider down, payment.cod_only
    is on and require_online_payment (in start_payment) explains that to the customer."""
    from waimai.platform.payments import rails

    offered = rails.offerable(app_state)
    online = rails.online(app_state)
    if name is not None and name not in online:
        raise Unprocessable(f"Payment provider {name} is not available here.", code="provider_unavailable")
    if name is None or name not in offered:
        if name is not None and offered:
            raise GatewayUnavailable(f"{name} is not working right now; pay with {offered[0]} or cash on delivery.",
                                     details={"provider": name, "offered": offered}, headers={"Retry-After": "30"})
        name = (offered or online)[0]
    provider = app_state.payment_providers[name]
    allowed = getattr(provider, "channels", None)
    if allowed is None:
        return Choice(provider, None)
    channel = channel or rails.default_channel(name, user_agent)
    if channel not in allowed:
        raise Unprocessable(f"{name} has no channel {channel}.", code="bad_channel")
    return Choice(provider, channel)


def latest_payment(db: Session, order_id: int) -> Payment | None:
    return db.scalar(select(Payment).where(Payment.order_id == order_id).order_by(Payment.id.desc()).limit(1))


def start_payment(database: Database, *, provider: PaymentProvider, order_id: int, payer: Principal,
                  notify_url: str, return_url: str, channel: str | None = None, client_ip: str = "",
                  providers: Mapping[str, PaymentProvider] | None = None, payer_openid: str | None = None) -> Payment:
    """Create (or return the open) payment; the provider call holds no database lock.

    An open payment with another provider (the customer came back to pay another way, e.g. after a
    failover) is first asked about: if it was paid after all, that payment stands and nothing new is
    created; otherwise it is closed at its provider, so one order can never be charged twice."""
    if provider.name != "cod":
        ordering.require_online_payment()
    with database.read_session() as db:
        order = ordering.load_order(db, order_id)
        ordering.check_can_view(db, payer, order)
        if payer.role == "customer" and order.customer_id != payer.user_id:
            raise Unprocessable("You can only pay for your own order.")
        if order.status != Status.created.value:
            raise Conflict(f"Order {order.number} is {order.status}; there is nothing to pay.",
                           code="illegal_transition", details={"current": order.status})
        existing = latest_payment(db, order_id)
        if existing is not None and existing.status == "pending" and existing.provider == provider.name \
                and (channel is None or existing.channel == channel):
            return existing
        others = [(p.id, p.provider) for p in db.scalars(select(Payment).where(
            Payment.order_id == order_id, Payment.status == "pending", Payment.provider != "cod"))]
        number, amount = order.number, order.total_fen
    for pid, name in others:
        other = (providers or {}).get(name)
        if other is None or not hasattr(other, "close_trade"):
            continue
        if settle_by_query(database, provider=other, payment_id=pid) == "paid":
            with database.read_session() as db:
                paid = db.get(Payment, pid)
                assert paid is not None
                return paid
        try:
            other.close_trade(number)
        except PaymentError as exc:
            raise GatewayUnavailable("The earlier payment could not be closed yet; try again in a moment.",
                                     details={"provider": name}, headers={"Retry-After": "10"}) from exc
        with uow.unit_of_work(database) as db:
            old = db.get(Payment, pid)
            if old is not None and old.status == "pending":
                old.status, old.failure_reason = "failed", f"closed: paying with {provider.name} instead"
    extra: dict[str, Any] = {}
    if channel is not None:
        extra = {"channel": channel, "client_ip": client_ip or "127.0.0.1"}
        if payer_openid:
            extra["payer_openid"] = payer_openid
    try:
        with observe(provider.name, "create"):
            intent = provider.create_payment(order_number=number, amount_fen=amount,
                                             description=f"Waimai order {number}", notify_url=notify_url,
                                             return_url=return_url, **extra)
    except PaymentError as exc:
        with uow.unit_of_work(database) as db:
            db.add(Payment(order_id=order_id, provider=provider.name, amount_fen=amount, status="failed",
                           failure_reason=str(exc)[:200]))
            emit(db, "payment.failed", key=str(order_id), order_id=order_id, provider=provider.name,
                 reason=str(exc)[:200])
        raise GatewayUnavailable("Online payment is not working right now; choose cash on delivery or retry.",
                                 details={"provider": provider.name}, headers={"Retry-After": "30"}) from exc
    with uow.unit_of_work(database) as db:
        payment = Payment(order_id=order_id, provider=provider.name, provider_ref=intent.provider_ref,
                          amount_fen=amount, status="pending", pay_url=intent.pay_url, channel=channel)
        db.add(payment)
        emit(db, "payment.started", key=str(order_id), order_id=order_id, provider=provider.name)
        db.flush()  # the payment's id
        pid = payment.id
    if intent.status == "succeeded":  # the provider says this trade is paid already: settle it, charge nothing
        settle_by_query(database, provider=provider, payment_id=pid)
    with database.read_session() as db:
        fresh = db.get(Payment, pid)
        assert fresh is not None
        return fresh


def switch_to_cod(db: Session, *, order: Order, actor: Principal) -> Order:
    """A customer whose online payment fails keeps the order by paying cash at the door."""
    if order.status != Status.created.value:
        raise Conflict(f"Order {order.number} is {order.status}; its payment can no longer change.",
                       code="illegal_transition", details={"current": order.status})
    order.payment_method = "cod"
    for p in db.scalars(select(Payment).where(Payment.order_id == order.id, Payment.status == "pending")):
        p.status = "failed"
        p.failure_reason = "customer switched to cash on delivery"
    db.add(Payment(order_id=order.id, provider="cod", provider_ref=f"cod-{order.number}",
                   amount_fen=order.total_fen, status="pending"))
    ordering.transition(db, order, Status.cod_confirmed, actor=actor, reason="switched to cash on delivery")
    return order


def apply_callback(db: Session, *, provider: PaymentProvider, event: CallbackEvent) -> str:
    """Apply a verified callback (or query answer) exactly once in the caller's unit of work; returns what
    happened (for logs and tests)."""
    payment = db.scalar(select(Payment).where(Payment.provider == provider.name,
                                              Payment.provider_ref == event.provider_ref)
                        .order_by(Payment.id.desc()).limit(1))
    if payment is None:
        # Not recorded as applied: a callback can overtake the commit of the payment it is about (a provider
        # that settles at once), and the provider's redelivery must then find it.
        log.warning("payment_callback_unknown", provider_ref=event.provider_ref)
        return "unknown_payment"
    try:
        with db.begin_nested():  # the event id's unique key: a concurrent or repeated delivery stops here
            db.add(PaymentCallback(provider=provider.name, event_id=event.event_id[:64]))
    except IntegrityError:
        return "duplicate"
    if event.transaction_id and not payment.transaction_id:
        payment.transaction_id = event.transaction_id[:64]
    if event.kind == "refund":
        return _apply_refund(db, payment=payment, event=event)
    if event.amount_fen != payment.amount_fen:
        log.error("payment_callback_amount_mismatch", payment_id=payment.id)
        return "amount_mismatch"
    order = ordering.load_order(db, payment.order_id, for_update=True)
    outcome = "ignored"
    PAYMENT_ATTEMPTS.labels(provider.name, "callback", "succeeded" if event.status == "succeeded"
                            else "failed").inc()
    if event.status == "succeeded" and payment.status in ("pending", "failed"):
        payment.status = "succeeded"
        emit(db, "payment.succeeded", key=str(order.id), order_id=order.id, provider=provider.name,
             amount_fen=payment.amount_fen)
        if order.status == Status.created.value:
            ordering.transition(db, order, Status.paid, actor=None, reason=f"paid via {provider.name}")
            outcome = "paid"
        else:
            # Paid after the order was cancelled or switched to cash: give the money back.
            payment.status = "refund_pending"
            outcome = "refund_needed"
    elif event.status == "failed" and payment.status == "pending":
        payment.status = "failed"
        payment.failure_reason = "declined by gateway"
        emit(db, "payment.failed", key=str(order.id), order_id=order.id, provider=provider.name,
             reason="declined")
        outcome = "failed"
    return outcome


def _apply_refund(db: Session, *, payment: Payment, event: CallbackEvent) -> str:
    """A refund notification: the money is back with the customer (or the refund failed at the bank)."""
    if event.amount_fen > payment.amount_fen:
        log.error("refund_callback_amount_mismatch", payment_id=payment.id)
        return "amount_mismatch"
    if event.status != "refunded":
        if payment.status == "refunding":
            payment.status = "refund_pending"  # the retry job asks again
            emit(db, "payment.refund_failed", key=str(payment.order_id), order_id=payment.order_id,
                 reason="refund failed at the provider")
        return "refund_failed"
    if payment.status == "refunded":
        return "already_refunded"
    if payment.status not in ("refunding", "refund_pending", "succeeded"):
        return "ignored"
    order = ordering.load_order(db, payment.order_id, for_update=True)
    payment.status = "refunded"
    if order.status in (Status.cancelled.value, Status.rejected.value, Status.failed.value):
        ordering.transition(db, order, Status.refunded, actor=None, reason="payment refunded")
    emit(db, "payment.refunded", key=str(order.id), order_id=order.id, amount_fen=event.amount_fen)
    return "refunded"


def settle_by_query(database: Database, *, provider: PaymentProvider, payment_id: int) -> str:
    """Ask the provider how an open payment stands and apply the answer like a callback.

    This is what settles a payment whose callback was lost, and what a customer returning from the
    cashier sees (never the redirect's parameters). Returns the outcome, or "pending"/"unavailable"."""
    query = getattr(provider, "query", None)
    if query is None:
        return "unsupported"
    with database.read_session() as db:
        p = db.get(Payment, payment_id)
        if p is None or p.status != "pending" or not p.provider_ref:
            return "not_pending"
        ref = p.provider_ref
    try:
        with observe(provider.name, "query"):
            event = query(ref)
    except PaymentError:
        return "unavailable"
    if not isinstance(event, CallbackEvent) or event.status == "pending":
        return "pending"
    with uow.unit_of_work(database) as db:
        return apply_callback(db, provider=provider, event=event)


def settle_refund_by_query(database: Database, *, provider: PaymentProvider, payment_id: int) -> str:
    """A refund still `refunding` (its notification overdue): ask the provider and apply the answer."""
    query = getattr(provider, "refund_query", None)
    if query is None:
        return "unsupported"
    with database.read_session() as db:
        p = db.get(Payment, payment_id)
        if p is None or p.status != "refunding" or not p.provider_ref:
            return "not_refunding"
        order = ordering.load_order(db, p.order_id)
        ref, refund_no = p.provider_ref, f"R{order.number}"
    try:
        with observe(provider.name, "query"):
            event = query(ref, refund_no)
    except PaymentError:
        return "unavailable"
    if event.status == "pending":
        return "pending"
    with uow.unit_of_work(database) as db:
        return apply_callback(db, provider=provider, event=event)


def stale_refunding(db: Session, *, older_than_s: float) -> list[int]:
    edge = utcnow() - dt.timedelta(seconds=older_than_s)
    return list(db.scalars(select(Payment.id).where(Payment.status == "refunding", Payment.updated_at <= edge)
                           .order_by(Payment.id).limit(100)))


def stale_pending(db: Session, *, older_than_s: float, providers: Mapping[str, PaymentProvider]) -> list[int]:
    """Open payments old enough that their callback should have come (asked by the settle job)."""
    edge = utcnow() - dt.timedelta(seconds=older_than_s)
    names = [n for n, p in providers.items() if hasattr(p, "query") and n != "gateway"]
    return list(db.scalars(select(Payment.id).where(Payment.status == "pending", Payment.provider.in_(names),
                                                    Payment.created_at <= edge).order_by(Payment.id).limit(100)))


def verify_and_apply(database: Database, *, provider: PaymentProvider, headers: Mapping[str, str],
                     body: bytes) -> str:
    event = provider.verify_callback(headers, body)
    with uow.unit_of_work(database) as db:
        return apply_callback(db, provider=provider, event=event)


def refund_order(database: Database, *, providers: Mapping[str, PaymentProvider], order_id: int) -> str:
    """Refund a cancelled/rejected order's successful payment; on gateway failure leave it pending."""
    with database.read_session() as db:
        payment = db.scalar(select(Payment).where(Payment.order_id == order_id,
                                                  Payment.status.in_(("succeeded", "refund_pending")))
                            .order_by(Payment.id.desc()).limit(1))
        order = ordering.load_order(db, order_id)
        if payment is None or payment.provider == "cod":
            return "nothing_to_refund"
        if order.status not in (Status.cancelled.value, Status.rejected.value, Status.failed.value,
                                Status.created.value, Status.cod_confirmed.value):
            return "not_refundable"
        provider = providers[payment.provider]
        pid, ref, amount, number = payment.id, payment.provider_ref or "", payment.amount_fen, order.number
    try:
        with observe(provider.name, "refund"):
            result = provider.refund(provider_ref=ref, amount_fen=amount, refund_no=f"R{number}")
            if result.status == "pending":  # WeChat Pay: PROCESSING until its REFUND.SUCCESS notification
                with uow.unit_of_work(database) as db:
                    p = db.get(Payment, pid)
                    if p is not None and p.status in ("succeeded", "refund_pending"):
                        p.status, p.refund_ref = "refunding", result.refund_ref[:64]
                return "refunding"
    except PaymentError as exc:
        with uow.unit_of_work(database) as db:
            p = db.get(Payment, pid)
            if p is not None and p.status == "succeeded":
                p.status = "refund_pending"
                emit(db, "payment.refund_failed", key=str(order_id), order_id=order_id, reason=str(exc)[:200])
        return "refund_pending"
    with uow.unit_of_work(database) as db:
        p = db.get(Payment, pid)
        order = ordering.load_order(db, order_id, for_update=True)
        if p is None or p.status == "refunded":
            return "already_refunded"
        p.status, p.refund_ref = "refunded", result.refund_ref
        if order.status in (Status.cancelled.value, Status.rejected.value, Status.failed.value):
            ordering.transition(db, order, Status.refunded, actor=None, reason="payment refunded")
        emit(db, "payment.refunded", key=str(order_id), order_id=order_id, amount_fen=amount)
    return "refunded"


def pending_refunds(db: Session) -> list[int]:
    return list(db.scalars(select(Payment.order_id).where(Payment.status == "refund_pending")))
