"""A coupon belongs to one user, takes `amount_fen` off an order of at least `min_spend_fen`
(optionally only at one merchant) until it expires, and is redeemed at most once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from waimai.core.database import Base, utcnow


class Coupon(Base):
    __tablename__ = "coupons"
    __table_args__ = (
        # Compensation issues at most one coupon per user per incident, however often it runs.
        UniqueConstraint("user_id", "incident_id", name="uq_coupon_user_incident"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        CheckConstraint("min_spend_fen >= 0", name="min_spend_nonneg"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(24), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    amount_fen: Mapped[int] = mapped_column()
    min_spend_fen: Mapped[int] = mapped_column(default=0)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), default=None)
    expires_at: Mapped[dt.datetime] = mapped_column()
    source: Mapped[str] = mapped_column(String(16))  # compensation | ticket | promo
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), default=None, index=True)
    ticket_id: Mapped[int | None] = mapped_column(default=None)
    order_id: Mapped[int | None] = mapped_column(default=None)  # the order it makes up for, if any
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(40), default="system")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(12), default="active", index=True)  # active | redeemed | void
    redeemed_order_id: Mapped[int | None] = mapped_column(default=None)
    redeemed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
