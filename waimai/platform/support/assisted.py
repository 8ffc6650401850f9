"""Assisted ordering: support staff take an order by phone (or WeChat) and place it for the customer.

The order goes through the same placement as the app (`idempotency.place_once`: key claimed, stock
reserved, order, outbox event and stored response in one transaction), marked `source="assisted"`,
with the staff member as the actor of its first transition and an `order.assisted` audit entry in that
same transaction. It takes cash on delivery, or starts an online payment and hands back the payment
link to send to the customer; while `payment.cod_only` is on only cash is offered. Nothing here reads
`ordering.simple_mode`: the console is the channel that keeps working when the app does not.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from waimai.core import audit, flags, uow
from waimai.core.database import Database
from waimai.core.deps import Principal
from waimai.core.errors import AppError, Conflict, NotFound, Unprocessable
from waimai.platform.accounts import service as accounts
from waimai.platform.accounts.models import Role, User
from waimai.platform.catalog.models import DeliveryPoint, PointKind
from waimai.platform.ordering import idempotency
from waimai.platform.ordering import service as ordering
from waimai.platform.ordering.models import Order
from waimai.platform.ordering.schemas import PlaceOrderIn
from waimai.platform.payments import service as payments
from waimai.platform.payments.base import PaymentProvider
from waimai.platform.support.service import require_staff

_PHONE = re.compile(r"^\+?\d{6,15}$")
KEY_PREFIX = "assisted:"  # keeps staff keys apart from the customer's own app keys


def normalise_phone(raw: str) -> str:
    phone = re.sub(r"[\s\-()]", "", raw or "")
    if not _PHONE.match(phone):
        raise Unprocessable("Enter a phone number (digits, 6–15 long).", code="phone_invalid")
    return phone


def find_customer(db: Session, phone: str) -> User | None:
    """The customer with this phone number; an account of another role is a 409 (staff cannot order for it)."""
    user = db.scalar(select(User).where(User.phone == normalise_phone(phone)))
    if user is not None and user.role != Role.customer.value:
        raise Conflict("This number belongs to a staff account, not a customer.", code="phone_not_customer")
    return user


def find_or_create_customer(db: Session, staff: Principal, *, phone: str, name: str) -> tuple[User, bool]:
    """(customer, created). A new account gets a random password nobody knows: the customer orders by phone
    until they set one."""
    require_staff(staff)
    user = find_customer(db, phone)
    if user is not None:
        return user, False
    name = name.strip()
    if not 1 <= len(name) <= 80:
        raise Unprocessable("Give the customer's name (1–80 characters).", code="name_invalid")
    user = accounts.create_user(db, phone=normalise_phone(phone), name=name, role=Role.customer,
                                password=secrets.token_urlsafe(24))
    audit.record(db, actor_id=staff.user_id, actor_role=staff.role, action="support.customer_create",
                 target=f"user:{user.id}")
    return user, True


def recent_orders(db: Session, customer_id: int, limit: int = 5) -> list[Order]:
    return list(db.scalars(select(Order).where(Order.customer_id == customer_id).order_by(Order.id.desc())
                           .limit(limit)))


@dataclass
class Placed:
    status: int
    order: dict[str, Any]  # the stored response: the order as the customer sees it (with the proof code)
    replayed: bool
    pay_url: str | None = None
    pay_error: str | None = None


def _check_switches(db: Session, body: PlaceOrderIn) -> None:
    if body.payment_method == "gateway" and flags.enabled("payment.cod_only"):
        raise Conflict("Online payment is switched off for now (switch payment.cod_only): take cash on delivery.",
                       code="payment_cod_only", details={"switch": "payment.cod_only",
                                                         "allowed_payment_methods": ["cod"]})
    if flags.enabled("delivery.pickup_points"):
        point = db.get(DeliveryPoint, body.delivery_point_id)
        if point is not None and point.kind != PointKind.locker.value:
            raise Unprocessable("Riders are short: new orders go to a pick-up point (switch delivery.pickup_points).",
                                code="delivery_pickup_only", details={"switch": "delivery.pickup_points"})


def place(database: Database, staff: Principal, *, customer_id: int, body: PlaceOrderIn, key: str,
          ttl: dt.timedelta, provider: PaymentProvider | None = None, public_url: str = "") -> Placed:
    """Place `body` for the customer; with `payment_method="gateway"` also start the payment and return its
    link (a failing gateway leaves the order waiting for payment, with `pay_error`: switch it to cash)."""
    require_staff(staff)
    if body.payment_method not in ("cod", "gateway"):
        raise Unprocessable("Choose cash on delivery (cod) or a payment link (gateway).", code="payment_method_invalid")
    key = idempotency.validate_key(key)
    if len(key) > idempotency.MAX_KEY_LENGTH - len(KEY_PREFIX):
        raise AppError("Idempotency-Key is too long.", code="idempotency_key_invalid", status=400)
    with database.read_session() as db:
        user = db.get(User, customer_id)
        if user is None or user.role != Role.customer.value or not user.is_active:
            raise NotFound(f"Customer {customer_id} does not exist.")
        _check_switches(db, body)
    customer = Principal(user_id=customer_id, role=Role.customer.value)
    fp = idempotency.request_fingerprint(body.model_dump(mode="json"))
    status, (payload, _oid), replayed = idempotency.place_once(database, customer, body, KEY_PREFIX + key, fp, ttl,
                                                               source="assisted", actor=staff)
    out = Placed(status=status, order=json.loads(payload), replayed=replayed)
    if body.payment_method == "gateway" and provider is not None and out.order.get("status") == "created":
        oid = int(out.order["id"])
        try:
            pay = payments.start_payment(database, provider=provider, order_id=oid, payer=staff,
                                         notify_url=f"{public_url}/api/v1/payments/callbacks/gateway",
                                         return_url=f"{public_url}/orders/{oid}")
            out.pay_url = pay.pay_url
        except AppError as exc:
            out.pay_error = exc.message
    return out


def switch_to_cod(database: Database, staff: Principal, order_id: int) -> Order:
    """The payment link did not work (or the customer prefers cash): the order becomes cash on delivery."""
    require_staff(staff)
    with uow.unit_of_work(database) as db:
        order = ordering.load_order(db, order_id, for_update=True)
        payments.switch_to_cod(db, order=order, actor=staff)
        audit.record(db, actor_id=staff.user_id, actor_role=staff.role, action="order.switch_to_cod",
                     target=f"order:{order_id}")
        return order
