"""Attempt limits on the 4-digit delivery proof code.

Ten thousand codes are guessed in half a minute if nothing stops it, and a guessed code marks an order
delivered (and its cash collected) without meeting the customer. So every wrong code is a row in
`proof_attempts`, committed on its own (the delivery's transaction rolls back), and the checks count rows:
`proof_max_attempts` wrong codes lock the order's proof until support unlocks it (one guess in 2,000 at
most), `proof_max_per_rider` wrong codes in an hour lock the rider's proof entry on every order. The rows
are the state, so every replica counts the same; the order's row (and the rider's) is locked while
counting, so parallel guesses queue instead of all passing the count. A lock raises a security alert.
"""

from __future__ import annotations

import datetime as dt
import hmac

from sqlalchemy import ForeignKey, Index, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from waimai.config import Settings
from waimai.core import uow
from waimai.core.database import Base, Database, utcnow
from waimai.core.deps import Principal
from waimai.core.errors import AppError, Forbidden, Unprocessable
from waimai.core.messages import N_
from waimai.core.security_alerts import raise_alert
from waimai.platform.delivery.models import Rider
from waimai.platform.ordering.models import Order

RIDER_WINDOW = dt.timedelta(hours=1)
# N_: msgids, so the rider's page says them in the rider's language (waimai.web.i18n.say).
MISMATCH = N_("The proof code does not match; ask the customer for the 4 digits on their order page.")
ORDER_LOCKED = N_("Too many wrong proof codes for this order: it is locked. Call customer support to finish "
                  "the delivery.")
RIDER_LOCKED = N_("Too many wrong proof codes in the last hour: proof entry is locked for your account. "
                  "Call customer support.")


class ProofAttempt(Base):
    """One wrong proof code: which order, who typed it, when."""

    __tablename__ = "proof_attempts"
    __table_args__ = (Index("ix_proof_attempts_user_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ProofLocked(AppError):
    status, code = 423, "proof_locked"


def _counts(db: Session, order_id: int, user_id: int) -> tuple[int, int]:
    per_order = db.scalar(select(func.count()).select_from(ProofAttempt).where(ProofAttempt.order_id == order_id))
    per_rider = db.scalar(select(func.count()).select_from(ProofAttempt).where(
        ProofAttempt.user_id == user_id, ProofAttempt.at >= utcnow() - RIDER_WINDOW))
    return int(per_order or 0), int(per_rider or 0)


def check(database: Database, settings: Settings, p: Principal, order_id: int, code: str, *,
          client: str = "") -> None:
    """Let a matching code through; count a wrong one, and refuse (423) once the order or the rider is locked.
    Runs in its own transaction before the delivery's, so a wrong code stays counted."""
    with uow.unit_of_work(database) as db:
        order = db.get(Order, order_id, with_for_update=True)
        if order is None:
            return  # the delivery itself answers 404
        if p.role != "ops":
            rider = db.scalar(select(Rider).where(Rider.user_id == p.user_id).with_for_update())
            if rider is None or order.rider_id != rider.id:
                raise Forbidden("This order is assigned to another rider.")
        per_order, per_rider = _counts(db, order_id, p.user_id)
        if per_order >= settings.proof_max_attempts:
            raise ProofLocked(ORDER_LOCKED, details={"order_id": order_id})
        if per_rider >= settings.proof_max_per_rider:
            raise ProofLocked(RIDER_LOCKED, code="proof_locked_rider")
        if matches(order, code):
            return
        db.add(ProofAttempt(order_id=order_id, user_id=p.user_id))
        per_order, per_rider = per_order + 1, per_rider + 1
        locked: ProofLocked | None = None
        if per_order >= settings.proof_max_attempts:
            raise_alert(db, kind="proof_code_locked", subject=f"order:{order_id}", source=client,
                        order_id=order_id, user_id=p.user_id, wrong_codes=per_order)
            locked = ProofLocked(ORDER_LOCKED, details={"order_id": order_id})
        if per_rider >= settings.proof_max_per_rider:
            raise_alert(db, kind="rider_proof_locked", subject=f"user:{p.user_id}", source=client,
                        user_id=p.user_id, wrong_codes_last_hour=per_rider)
            locked = locked or ProofLocked(RIDER_LOCKED, code="proof_locked_rider")
    if locked is not None:
        raise locked
    raise Unprocessable(MISMATCH, code="proof_code_mismatch",
                        details={"attempts_left": settings.proof_max_attempts - per_order})


def unlock(db: Session, order_id: int) -> int:
    """Support has checked with the customer: clear the order's wrong codes (the caller audits and commits)."""
    return int(db.execute(delete(ProofAttempt).where(ProofAttempt.order_id == order_id)).rowcount or 0)  # type: ignore[attr-defined]


def matches(order: Order, code: str) -> bool:
    return hmac.compare_digest(code.encode(), order.proof_code.encode())
