"""Issue, list and redeem coupons.

Rules at checkout (documented for customers on the cart page): one coupon per order (no stacking);
the order's subtotal must reach the coupon's minimum spend; a merchant-scoped coupon only works at
that merchant; the discount never exceeds what the order costs; expired, used or voided coupons are
refused with a reason; `coupons.paused` refuses all redemptions. Redemption is a guarded
`UPDATE … WHERE status = 'active'` in the order's transaction, so a coupon cannot pay for two orders.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from waimai.core import audit
from waimai.core.database import utcnow
from waimai.core.errors import Conflict, NotFound, Unprocessable
from waimai.core.events import Event
from waimai.core.outbox import emit
from waimai.platform.coupons.models import Coupon

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read out over the phone without mistakes


def new_code() -> str:
    return "WM" + "".join(secrets.choice(ALPHABET) for _ in range(10))


def issue(db: Session, *, user_id: int, amount_fen: int, source: str, actor: str, reason: str = "",
          min_spend_fen: int = 0, merchant_id: int | None = None, days: int = 14, incident_id: int | None = None,
          ticket_id: int | None = None, order_id: int | None = None, actor_id: int | None = None,
          now: dt.datetime | None = None) -> tuple[Coupon, bool]:
    """Issue a coupon; returns (coupon, created). With `incident_id`, a second call for the same user
    returns the first coupon (created=False): never two per user per incident."""
    if amount_fen <= 0 or amount_fen > 100_00 * 100:
        raise Unprocessable("A coupon is worth between ¥0.01 and ¥10,000.", code="coupon_amount_invalid")
    if min_spend_fen < 0 or not 1 <= days <= 365:
        raise Unprocessable("Minimum spend must be ≥ 0 and validity 1–365 days.", code="coupon_terms_invalid")
    if incident_id is not None:
        existing = db.scalar(select(Coupon).where(Coupon.user_id == user_id, Coupon.incident_id == incident_id))
        if existing is not None:
            return existing, False
    now = now or utcnow()
    c = Coupon(code=new_code(), user_id=user_id, amount_fen=amount_fen, min_spend_fen=min_spend_fen,
               merchant_id=merchant_id, expires_at=now + dt.timedelta(days=days), source=source,
               incident_id=incident_id, ticket_id=ticket_id, order_id=order_id, reason=reason[:200],
               created_by=actor[:40], created_at=now)
    try:
        with db.begin_nested():  # a concurrent issue for the same (user, incident) loses cleanly
            db.add(c)
            db.flush()
    except IntegrityError:
        existing = db.scalar(select(Coupon).where(Coupon.user_id == user_id, Coupon.incident_id == incident_id))
        if existing is None:
            raise
        return existing, False
    role = actor.split(":", 1)[0]
    audit.record(db, actor_id=actor_id, actor_role=role[:16], action="coupon.issue", target=str(c.id),
                 details={"user_id": user_id, "amount_fen": amount_fen, "source": source, "incident_id": incident_id,
                          "ticket_id": ticket_id, "order_id": order_id})
    emit(db, "coupon.issued", key=str(c.id), coupon_id=c.id, user_id=user_id, amount_fen=amount_fen, source=source)
    return c, True


def mine(db: Session, user_id: int, *, usable_only: bool = False, now: dt.datetime | None = None) -> list[Coupon]:
    q = select(Coupon).where(Coupon.user_id == user_id).order_by(Coupon.expires_at)
    rows = list(db.scalars(q))
    if usable_only:
        now = now or utcnow()
        rows = [c for c in rows if c.status == "active" and c.expires_at > now]
    return rows


def state(c: Coupon, now: dt.datetime | None = None) -> str:
    if c.status != "active":
        return c.status
    return "expired" if c.expires_at <= (now or utcnow()) else "active"


_SEL = select(Coupon.__table__).where(Coupon.code == bindparam("code"))
_REDEEM = (update(Coupon)
           .where(Coupon.id == bindparam("cid"), Coupon.status == "active")
           .values(status="redeemed", redeemed_order_id=bindparam("oid"),
                   redeemed_at=bindparam("at")))


def check(conn: Connection, *, code: str, customer_id: int, merchant_id: int, subtotal_fen: int, payable_fen: int,
          now: dt.datetime) -> tuple[int, int]:
    """(coupon id, discount in fen) if the coupon may pay for this order, else a clear 422/409."""
    row: Any = conn.execute(_SEL, {"code": code.strip().upper()}).first()
    if row is None or row.user_id != customer_id:  # someone else's code is simply unknown
        raise NotFound("No such coupon in your account.", code="coupon_unknown")
    if row.status != "active":
        raise Conflict("This coupon has already been used.", code="coupon_used")
    if row.expires_at <= now:
        raise Unprocessable("This coupon has expired.", code="coupon_expired")
    if row.merchant_id is not None and row.merchant_id != merchant_id:
        raise Unprocessable("This coupon is for another shop.", code="coupon_wrong_merchant")
    if subtotal_fen < row.min_spend_fen:
        raise Unprocessable(f"This coupon needs a subtotal of at least ¥{row.min_spend_fen / 100:.2f}.",
                            code="coupon_min_spend", details={"min_spend_fen": row.min_spend_fen})
    return int(row.id), min(int(row.amount_fen), payable_fen)


def redeem(conn: Connection, *, coupon_id: int, order_id: int, now: dt.datetime) -> None:
    if conn.execute(_REDEEM, {"cid": coupon_id, "oid": order_id, "at": now}).rowcount != 1:
        raise Conflict("This coupon has just been used for another order.", code="coupon_used")


def release(db: Session, order_id: int) -> int:
    """An order that never went ahead (cancelled, rejected) gives its coupon back, if still valid."""
    res = db.execute(update(Coupon).where(Coupon.redeemed_order_id == order_id, Coupon.status == "redeemed")
                     .values(status="active", redeemed_order_id=None, redeemed_at=None))
    return int(res.rowcount or 0)  # type: ignore[attr-defined]


def get_owned(db: Session, coupon_id: int, user_id: int) -> Coupon:
    c = db.get(Coupon, coupon_id)
    if c is None or c.user_id != user_id:
        raise NotFound("No such coupon.")
    return c


def give_back(db: Session, ev: Event) -> None:
    """Subscriber of `order.cancelled` / `order.rejected`: an order that never went ahead gives its coupon back."""
    release(db, int(ev.payload["order_id"]))
