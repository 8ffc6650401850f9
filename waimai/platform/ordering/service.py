"""Ordering: pricing, placement with stock reservation, and every state change of an order."""

from __future__ import annotations

import datetime as dt
import math
import secrets
import weakref
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import Select, bindparam, false, func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from waimai.core import flags
from waimai.core.cache import TTLCache
from waimai.core.database import table_of, utcnow
from waimai.core.deps import Principal
from waimai.core.errors import AppError, Conflict, Forbidden, NotFound, Unprocessable
from waimai.core.metrics import ORDER_TRANSITIONS
from waimai.core.outbox import OutboxEvent, emit
from waimai.core.prepared import Prepared
from waimai.core.security import mask_phone
from waimai.core.timeutil import is_open_at
from waimai.platform.accounts.models import User
from waimai.platform.catalog.models import (
    Campus,
    DeliveryPoint,
    MenuItem,
    Merchant,
    MerchantStatus,
    PointKind,
)
from waimai.platform.coupons import service as coupons
from waimai.platform.ordering.models import Order, OrderLine, OrderTransition
from waimai.platform.ordering.schemas import LineOut, OrderOut, PlaceOrderIn, QuoteLine, QuoteOut
from waimai.platform.ordering.state import ACTIVE, ACTORS, CUSTOMER_CANCELLABLE, KITCHEN, TRANSITIONS, Status
from waimai.platform.payments.models import Payment

log = structlog.get_logger(__name__)

# Delivery fee: a base within 1 km, then per started 500 m (fen).
BASE_FEE_FEN = 300
FEE_PER_500M_FEN = 100
RIDER_SPEED_M_PER_MIN = 250  # e-bike on campus paths
PROMISE_BUFFER_MIN = 10


class MerchantClosed(Conflict):
    code = "merchant_closed"


class OutOfStock(Conflict):
    code = "out_of_stock"


class IllegalTransition(Conflict):
    code = "illegal_transition"


class CodOnly(Conflict):
    code = "payment_cod_only"


def require_online_payment() -> None:
    """Refuse online payment while `payment.cod_only` is on (the gateway is failing)."""
    if flags.enabled("payment.cod_only"):
        why = flags.why("payment.cod_only")
        raise CodOnly("Online payment is switched off for now (switch payment.cod_only"
                      f"{': ' + why if why else ''}). Choose cash on delivery (payment_method=cod).",
                      details={"switch": "payment.cod_only", "allowed_payment_methods": ["cod"], "reason": why})


def require_door_delivery_allowed(point: Any) -> None:
    """While `delivery.pickup_points` is on, new orders go to a pick-up point (locker), not a door."""
    if point.kind != PointKind.locker.value and flags.enabled("delivery.pickup_points"):
        raise Unprocessable("Riders are short: new orders are delivered to a campus pick-up point (switch "
                            "delivery.pickup_points). Choose a pick-up point as the delivery point.",
                            code="delivery_pickup_only",
                            details={"switch": "delivery.pickup_points", "kinds_allowed": [PointKind.locker.value]})


def delivery_fee(distance_m: float) -> int:
    extra = max(0.0, distance_m - 1000.0)
    return BASE_FEE_FEN + FEE_PER_500M_FEN * math.ceil(extra / 500.0)


@dataclass(frozen=True)
class Priced:
    """A basket checked against the live menu: what placement needs, read with plain rows."""

    merchant: Any  # row: id, name, capacity
    point: Any  # row: id, kind, position
    items: dict[int, Any]  # rows: id, name, stock
    quote: QuoteOut


def _price_options(item: Any, chosen: list[str]) -> tuple[int, list[str]]:
    """Validate the chosen option names against the item's groups; return the price delta."""
    delta = 0
    remaining = list(chosen)
    for group in item.options or []:
        names = {c["name"]: int(c.get("price_fen", 0)) for c in group.get("choices", [])}
        picked = [c for c in remaining if c in names]
        if group.get("required") and not picked:
            raise Unprocessable(f"「{item.name}」 needs a choice for {group['name']}.",
                                details={"item_id": item.id, "group": group["name"]}, code="option_required")
        if len(picked) > 1 and not group.get("multi"):
            raise Unprocessable(f"Choose only one {group['name']} for 「{item.name}」.",
                                details={"item_id": item.id, "group": group["name"]}, code="option_invalid")
        for c in picked:
            delta += names[c]
            remaining.remove(c)
    if remaining:
        raise Unprocessable(f"Unknown option(s) for 「{item.name}」: {', '.join(remaining)}.",
                            details={"item_id": item.id, "options": remaining}, code="option_invalid")
    return delta, list(chosen)


_MERCHANT_COLS = (Merchant.id, Merchant.name, Merchant.status, Merchant.opens_at, Merchant.closes_at,
                  Merchant.campus_id, Merchant.x, Merchant.y, Merchant.prep_minutes, Merchant.capacity,
                  Merchant.min_order_fen)
_POINT_COLS = (DeliveryPoint.id, DeliveryPoint.campus_id, DeliveryPoint.x, DeliveryPoint.y, DeliveryPoint.active,
               DeliveryPoint.kind, Campus.width_m, Campus.height_m)
_ITEM_COLS = (MenuItem.id, MenuItem.merchant_id, MenuItem.name, MenuItem.price_fen, MenuItem.stock,
              MenuItem.available, MenuItem.options)


# The hot path's statements are built once: executing a prebuilt statement with a parameter dict
# skips SQLAlchemy's per-call construction and cache-key work, which dominated placement time.
_SEL_MERCHANT = select(*_MERCHANT_COLS).where(Merchant.id == bindparam("id"))
_SEL_POINT = (select(*_POINT_COLS).join(Campus, Campus.id == DeliveryPoint.campus_id)
              .where(DeliveryPoint.id == bindparam("id")))
_SEL_ITEMS = select(*_ITEM_COLS).where(MenuItem.id.in_(bindparam("ids", expanding=True)))
_T_ORDERS, _T_LINES = table_of(Order), table_of(OrderLine)
_T_ITEMS = table_of(MenuItem)
_COUNT_KITCHEN = (select(func.count()).select_from(_T_ORDERS)
                  .where(_T_ORDERS.c.merchant_id == bindparam("mid"),
                         _T_ORDERS.c.status.in_([s.value for s in KITCHEN])))
_RESERVE = Prepared(update(_T_ITEMS).where(_T_ITEMS.c.id == bindparam("iid"), _T_ITEMS.c.stock >= bindparam("qty"))
                    .values(stock=_T_ITEMS.c.stock - bindparam("qty")))
_SEL_PHONE = select(table_of(User).c.phone).where(table_of(User).c.id == bindparam("uid"))
# The writes go straight to the driver (waimai.core.prepared): no per-statement SQLAlchemy work.
_INS_ORDER = Prepared(insert(_T_ORDERS).returning(_T_ORDERS.c.id))
_INS_LINES = Prepared(insert(_T_LINES))
_INS_TRANSITIONS = Prepared(insert(table_of(OrderTransition)))
_INS_PAYMENT = Prepared(insert(table_of(Payment)))
_INS_OUTBOX = Prepared(insert(table_of(OutboxEvent)))


@dataclass
class HotReads:
    """Hot reads cached per process and database (see waimai.core.cache): how stale each may be."""

    merchant: TTLCache[Any] = field(default_factory=lambda: TTLCache(ttl_s=2.0))  # status, hours, capacity
    point: TTLCache[Any] = field(default_factory=lambda: TTLCache(ttl_s=60.0))  # delivery points, campus bounds
    kitchen_load: TTLCache[int] = field(default_factory=lambda: TTLCache(ttl_s=1.0))  # a soft throttle
    phone: TTLCache[str] = field(default_factory=lambda: TTLCache(ttl_s=60.0))  # customer's contact phone


_HOT: weakref.WeakKeyDictionary[Engine, HotReads] = weakref.WeakKeyDictionary()


def hot_reads(bind: Engine | Connection) -> HotReads:
    engine = bind.engine if isinstance(bind, Connection) else bind
    hot = _HOT.get(engine)
    if hot is None:
        hot = _HOT[engine] = HotReads()
    return hot


def _conn(db: Session | Connection) -> Connection:
    return db if isinstance(db, Connection) else db.connection()


def price(db: Session | Connection, body: PlaceOrderIn, *, now: dt.datetime | None = None) -> Priced:
    """Check the basket against the live menu and compute every amount in fen (three reads)."""
    now = now or utcnow()
    conn = _conn(db)
    hot = hot_reads(conn)
    merchant = hot.merchant.get(body.merchant_id,
                                  lambda: conn.execute(_SEL_MERCHANT, {"id": body.merchant_id}).first())
    if merchant is None:
        raise NotFound(f"Merchant {body.merchant_id} does not exist.")
    if flags.enabled(f"merchant.{merchant.id}.paused"):
        raise MerchantClosed(f"「{merchant.name}」 is paused by the campus team (switch merchant.{merchant.id}.paused) "
                             "and takes no new orders for now.",
                             details={"merchant_id": merchant.id, "switch": f"merchant.{merchant.id}.paused"})
    if merchant.status != MerchantStatus.open.value or not is_open_at(merchant.opens_at, merchant.closes_at, now):
        raise MerchantClosed(f"「{merchant.name}」 is not taking orders now ({merchant.status}, "
                             f"open {merchant.opens_at}–{merchant.closes_at}).",
                             details={"merchant_id": merchant.id, "status": merchant.status})
    point = hot.point.get(body.delivery_point_id,
                            lambda: conn.execute(_SEL_POINT, {"id": body.delivery_point_id}).first())
    if point is None or not point.active:
        raise Unprocessable(f"Delivery point {body.delivery_point_id} does not exist.",
                            code="delivery_point_unknown")
    if point.campus_id != merchant.campus_id or not (
            0 <= point.x <= point.width_m and 0 <= point.y <= point.height_m):
        raise Unprocessable("That delivery point is not on this merchant's campus.",
                            code="delivery_point_off_campus", details={"delivery_point_id": point.id})
    ids = {line.item_id for line in body.items}
    items = {r.id: r for r in conn.execute(_SEL_ITEMS, {"ids": sorted(ids)})}
    lines: list[QuoteLine] = []
    wanted: dict[int, int] = {}
    for line in body.items:
        item = items.get(line.item_id)
        if item is None or item.merchant_id != merchant.id:
            raise Unprocessable(f"Item {line.item_id} is not on 「{merchant.name}」's menu.",
                                code="item_unknown", details={"item_id": line.item_id})
        if not item.available:
            raise OutOfStock(f"「{item.name}」 is sold out.", details={"item_id": item.id})
        wanted[item.id] = wanted.get(item.id, 0) + line.quantity
        if item.stock is not None and wanted[item.id] > item.stock:
            raise OutOfStock(f"Only {item.stock} of 「{item.name}」 left.",
                             details={"item_id": item.id, "left": item.stock})
        delta, opts = _price_options(item, line.options)
        unit = item.price_fen + delta
        lines.append(QuoteLine(item_id=item.id, name=item.name, quantity=line.quantity, options=opts,
                               unit_price_fen=unit, line_total_fen=unit * line.quantity))
    subtotal = sum(ql.line_total_fen for ql in lines)
    if subtotal < merchant.min_order_fen:
        raise Unprocessable(f"「{merchant.name}」 delivers orders from ¥{merchant.min_order_fen / 100:.2f}.",
                            code="below_minimum", details={"min_order_fen": merchant.min_order_fen})
    distance = math.hypot(point.x - merchant.x, point.y - merchant.y)
    fee = delivery_fee(distance)
    minutes = merchant.prep_minutes + math.ceil(distance / RIDER_SPEED_M_PER_MIN) + PROMISE_BUFFER_MIN
    quote = QuoteOut(merchant_id=merchant.id, lines=lines, subtotal_fen=subtotal, delivery_fee_fen=fee,
                     discount_fen=0, total_fen=subtotal + fee, distance_m=round(distance),
                     estimated_minutes=minutes)
    return Priced(merchant=merchant, point=point, items=items, quote=quote)


def _order_number(now: dt.datetime) -> str:
    return now.strftime("W%y%m%d") + secrets.token_hex(5).upper()


def record_transition(db: Session, order: Order, to: Status, *, actor: Principal | None,
                      reason: str | None = None, now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    db.add(OrderTransition(order_id=order.id, from_status=order.status, to_status=to.value,
                           actor_id=actor.user_id if actor else None,
                           actor_role=actor.role if actor else "system", reason=reason or None, at=now))
    order.status = to.value


def place_order(db: Session | Connection, *, customer: Principal, body: PlaceOrderIn, source: str = "app",
                actor: Principal | None = None, contact: str | None = None) -> OrderOut:
    """Create the order, reserve stock and queue `order.placed`, all in the caller's transaction.

    This is the hottest write path, so it uses Core statements (one per table, lines in one
    executemany) rather than the ORM unit of work, and builds the response from what it wrote.
    """
    now = utcnow()
    conn = _conn(db)
    if body.payment_method == "platform" and source == "app":
        raise Unprocessable("Choose gateway or cod: `platform` is for orders taken in from delivery platforms.",
                            code="payment_method_invalid")
    if source == "app" and body.payment_method == "gateway":
        require_online_payment()
    priced = price(conn, body, now=now)
    merchant = priced.merchant
    if source == "app":
        require_door_delivery_allowed(priced.point)
    hot = hot_reads(conn)
    in_kitchen = hot.kitchen_load.get(merchant.id,
                                        lambda: conn.execute(_COUNT_KITCHEN, {"mid": merchant.id}).scalar() or 0)
    if in_kitchen >= merchant.capacity:
        raise Conflict(f"「{merchant.name}」 is at capacity; try again in a few minutes.",
                       code="merchant_busy", headers={"Retry-After": "120"})
    # Reserve counted stock with a guarded update: two buyers can never take the last portion twice.
    reserved: set[int] = set()
    for item_id, qty in sorted(_quantities(body).items()):  # one lock order for every transaction
        if priced.items[item_id].stock is None:
            continue
        if _RESERVE.rowcount(conn, {"iid": item_id, "qty": qty, "updated_at": now}) != 1:
            raise OutOfStock(f"「{priced.items[item_id].name}」 just sold out.", details={"item_id": item_id})
        reserved.add(item_id)
    contact = contact or body.contact_phone
    if contact is None:
        contact = hot.phone.get(customer.user_id,
                                  lambda: conn.execute(_SEL_PHONE, {"uid": customer.user_id}).scalar() or "")
    q = priced.quote
    coupon_id = None
    if body.coupon_code:
        if flags.enabled("coupons.paused"):
            why = flags.why("coupons.paused")
            raise AppError(f"Coupons cannot be used right now (switch coupons.paused{': ' + why if why else ''}); "
                           "order without one and keep it for later.", status=503, code="coupons_paused",
                           headers={"Retry-After": "300"})
        coupon_id, off = coupons.check(conn, code=body.coupon_code, customer_id=customer.user_id,
                                       merchant_id=merchant.id, subtotal_fen=q.subtotal_fen, payable_fen=q.total_fen,
                                       now=now)
        q = q.model_copy(update={"discount_fen": q.discount_fen + off, "total_fen": q.total_fen - off})
    cod = body.payment_method == "cod"
    prepaid = body.payment_method == "platform"  # paid to the platform before it reached us
    status = Status.cod_confirmed.value if cod else Status.paid.value if prepaid else Status.created.value
    number = _order_number(now)
    proof = f"{secrets.randbelow(10000):04d}"
    promised = now + dt.timedelta(minutes=q.estimated_minutes)
    order_id = _INS_ORDER.first_value(conn, {
        "number": number, "customer_id": customer.user_id, "merchant_id": merchant.id,
        "delivery_point_id": priced.point.id, "rider_id": None, "status": status,
        "payment_method": body.payment_method, "source": source, "subtotal_fen": q.subtotal_fen,
        "delivery_fee_fen": q.delivery_fee_fen, "discount_fen": q.discount_fen, "total_fen": q.total_fen,
        "proof_code": proof, "note": body.note, "contact_phone": contact, "reason": None, "promised_at": promised,
        "ready_at": None, "picked_up_at": None, "delivered_at": None, "created_at": now, "updated_at": now,
    })
    if coupon_id is not None:
        coupons.redeem(conn, coupon_id=coupon_id, order_id=order_id, now=now)
    _INS_LINES.execute(conn, [
        {"order_id": order_id, "item_id": ql.item_id, "name": ql.name, "unit_price_fen": ql.unit_price_fen,
         "quantity": ql.quantity, "options": ql.options, "line_total_fen": ql.line_total_fen,
         "stock_reserved": ql.item_id in reserved} for ql in q.lines])
    by = actor or customer
    transitions = [{"order_id": order_id, "from_status": None, "to_status": Status.created.value,
                    "actor_id": by.user_id, "actor_role": by.role, "reason": None, "at": now}]
    if cod:
        transitions.append({"order_id": order_id, "from_status": Status.created.value,
                            "to_status": Status.cod_confirmed.value, "actor_id": None, "actor_role": "system",
                            "reason": "cash on delivery", "at": now})
        _INS_PAYMENT.execute(conn, {"order_id": order_id, "provider": "cod", "provider_ref": f"cod-{number}",
                                    "amount_fen": q.total_fen, "status": "pending", "pay_url": None,
                                    "failure_reason": None, "refund_ref": None, "created_at": now,
                                    "updated_at": now})
    if prepaid:
        transitions.append({"order_id": order_id, "from_status": Status.created.value,
                            "to_status": Status.paid.value, "actor_id": None, "actor_role": "system",
                            "reason": f"paid on {source}", "at": now})
        _INS_PAYMENT.execute(conn, {"order_id": order_id, "provider": source, "provider_ref": f"{source}-{number}",
                                    "amount_fen": q.total_fen, "status": "succeeded", "pay_url": None,
                                    "failure_reason": None, "refund_ref": None, "created_at": now,
                                    "updated_at": now})
    _INS_TRANSITIONS.execute(conn, transitions)
    _INS_OUTBOX.execute(conn, {"topic": "order.placed", "key": str(order_id), "created_at": now,
                               "published_at": None,
                               "payload": {"order_id": order_id, "merchant_id": merchant.id,
                                           "total_fen": q.total_fen, "payment_method": body.payment_method,
                                           "source": source}})
    return to_out(Placed(
        id=order_id, number=number, status=status, customer_id=customer.user_id, merchant_id=merchant.id,
        delivery_point_id=priced.point.id, rider_id=None, payment_method=body.payment_method, source=source,
        lines=q.lines, subtotal_fen=q.subtotal_fen, delivery_fee_fen=q.delivery_fee_fen, discount_fen=q.discount_fen,
        total_fen=q.total_fen, note=body.note, contact_phone=contact, proof_code=proof, reason=None,
        created_at=now, promised_at=promised), viewer=customer)



def _quantities(body: PlaceOrderIn) -> dict[int, int]:
    out: dict[int, int] = {}
    for line in body.items:
        out[line.item_id] = out.get(line.item_id, 0) + line.quantity
    return out


def load_order(db: Session, order_id: int, *, for_update: bool = False) -> Order:
    order = db.get(Order, order_id, with_for_update=for_update or None)
    if order is None:
        raise NotFound(f"Order {order_id} does not exist.")
    return order


@dataclass(frozen=True)
class OrderScope:
    """The orders one principal may see, the one rule for a single order and for a list: ops and support see
    every order, a customer their own, merchant staff their shop's, a rider those assigned to them."""

    everything: bool = False
    customer_id: int | None = None
    merchant_id: int | None = None
    rider_id: int | None = None

    def allows(self, order: Order) -> bool:
        return self.everything or any(mine is not None and mine == theirs for mine, theirs in (
            (self.customer_id, order.customer_id), (self.merchant_id, order.merchant_id),
            (self.rider_id, order.rider_id)))

    def carries(self, order: Order) -> bool:
        """The principal is the rider carrying `order` (sees the customer's full phone number while active)."""
        return self.rider_id is not None and order.rider_id == self.rider_id

    def where(self, q: Select[Any]) -> Select[Any]:
        if self.everything:
            return q
        for col, mine in ((Order.customer_id, self.customer_id), (Order.merchant_id, self.merchant_id),
                          (Order.rider_id, self.rider_id)):
            if mine is not None:
                return q.where(col == mine)
        return q.where(false())


def order_scope(db: Session, p: Principal) -> OrderScope:
    if p.role in ("ops", "support"):
        return OrderScope(everything=True)
    if p.role == "customer":
        return OrderScope(customer_id=p.user_id)
    if p.role == "merchant":
        staff = db.get(User, p.user_id)
        return OrderScope(merchant_id=staff.merchant_id if staff else None)
    if p.role == "rider":
        from waimai.platform.delivery.models import Rider

        return OrderScope(rider_id=db.scalar(select(Rider.id).where(Rider.user_id == p.user_id)))
    return OrderScope()


def check_can_view(db: Session, p: Principal, order: Order) -> None:
    """Refuse an order outside `p`'s scope with the same answer as for a missing one: do not reveal that someone
    else's order exists."""
    if not order_scope(db, p).allows(order):
        raise NotFound(f"Order {order.id} does not exist.")


def viewable(db: Session, p: Principal, order_id: int, *, for_update: bool = False) -> tuple[Order, bool]:
    """The order if `p` may see it (else 404), and whether `p` is the rider carrying it."""
    order = load_order(db, order_id, for_update=for_update)
    scope = order_scope(db, p)
    if not scope.allows(order):
        raise NotFound(f"Order {order.id} does not exist.")
    return order, scope.carries(order)


def transition(db: Session, order: Order, to: Status, *, actor: Principal | None, reason: str | None = None) -> Order:
    """Move an order to `to` if the state machine and the actor's role allow it; queue the event."""
    current = Status(order.status)
    if to not in TRANSITIONS[current]:
        raise IllegalTransition(
            f"Order {order.number} is {current.value}; it cannot become {to.value}.",
            details={"current": current.value, "requested": to.value,
                     "allowed": sorted(s.value for s in TRANSITIONS[current])})
    role = actor.role if actor else "system"
    if role != "ops" and role not in ACTORS.get(to, frozenset()):
        raise Forbidden(f"A {role} cannot mark an order {to.value}.")
    if role == "customer" and to is Status.cancelled and current not in CUSTOMER_CANCELLABLE:
        raise IllegalTransition(f"Order {order.number} is already {current.value}; ask support to cancel it.",
                                details={"current": current.value})
    now = utcnow()
    record_transition(db, order, to, actor=actor, reason=reason, now=now)
    if to is Status.ready:
        order.ready_at = now
    elif to is Status.picked_up:
        order.picked_up_at = now
    elif to is Status.delivered:
        order.delivered_at = now
        if order.payment_method == "cod":  # the rider collected the cash at the door
            db.execute(update(Payment).where(Payment.order_id == order.id, Payment.provider == "cod",
                                             Payment.status == "pending").values(status="succeeded"))
    if to in (Status.cancelled, Status.rejected, Status.failed):
        order.reason = reason or None
        if to is not Status.failed:
            release_stock(db, order)
    # Who reacts (live tracking, platform callbacks, coupons) subscribes to `order.*` in waimai.subscribers.
    emit(db, f"order.{to.value}", key=str(order.id), order_id=order.id, merchant_id=order.merchant_id,
         rider_id=order.rider_id, reason=reason, status=to.value, previous=current.value, actor_role=role)
    ORDER_TRANSITIONS.labels(to.value).inc()
    log.info("order_transition", order_id=order.id, from_status=current.value, to_status=to.value,
             actor_role=role, reason=reason)
    return order


def release_stock(db: Session, order: Order) -> None:
    for line in order.lines:
        if line.stock_reserved:
            db.execute(update(MenuItem).where(MenuItem.id == line.item_id, MenuItem.stock.is_not(None))
                       .values(stock=MenuItem.stock + line.quantity).execution_options(synchronize_session=False))
            line.stock_reserved = False


@dataclass(frozen=True, slots=True)
class Placed:
    """What placement wrote, in the shape `to_out` reads (the hot path builds no ORM object)."""

    id: int
    number: str
    status: str
    customer_id: int
    merchant_id: int
    delivery_point_id: int
    rider_id: int | None
    payment_method: str
    source: str
    lines: list[QuoteLine]
    subtotal_fen: int
    delivery_fee_fen: int
    discount_fen: int
    total_fen: int
    note: str
    contact_phone: str
    proof_code: str
    reason: str | None
    created_at: dt.datetime
    promised_at: dt.datetime | None


def sees_proof_code(viewer: Principal | None, order: Order | Placed) -> bool:
    """The delivery proof code is the customer's to hand over: only they (and ops) see it, never the rider."""
    return viewer is not None and (viewer.role == "ops" or
                                   (viewer.role == "customer" and viewer.user_id == order.customer_id))


def to_out(order: Order | Placed, *, viewer: Principal | None, viewer_is_carrier: bool = False) -> OrderOut:
    """The one builder of `OrderOut` (placement's reply included), with the one rule for who sees what."""
    show_code = sees_proof_code(viewer, order)
    # The rider sees the full number only while carrying the order: delivered, failed or cancelled, it is masked.
    phone = order.contact_phone if viewer_is_carrier and order.status in ACTIVE else mask_phone(order.contact_phone)
    return OrderOut(
        id=order.id, number=order.number, status=order.status, merchant_id=order.merchant_id,
        delivery_point_id=order.delivery_point_id, rider_id=order.rider_id, payment_method=order.payment_method,
        source=order.source,
        lines=[LineOut(item_id=ln.item_id, name=ln.name, quantity=ln.quantity, options=list(ln.options or []),
                       unit_price_fen=ln.unit_price_fen, line_total_fen=ln.line_total_fen) for ln in order.lines],
        subtotal_fen=order.subtotal_fen, delivery_fee_fen=order.delivery_fee_fen,
        discount_fen=order.discount_fen, total_fen=order.total_fen, note=order.note, contact_phone=phone,
        proof_code=order.proof_code if show_code else None, reason=order.reason,
        created_at=order.created_at, promised_at=order.promised_at)


__all__ = ["AppError", "place_order", "price", "transition", "to_out"]
