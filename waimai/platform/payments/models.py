"""Payments against orders and the provider callbacks already applied."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from waimai.core.database import Base, utcnow
from waimai.core.models_base import Timestamped


class Payment(Timestamped, Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    provider_ref: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    amount_fen: Mapped[int] = mapped_column()
    # pending -> succeeded | failed; succeeded -> refunded
    status: Mapped[str] = mapped_column(String(12), default="pending")
    pay_url: Mapped[str | None] = mapped_column(String(300), default=None)
    failure_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    refund_ref: Mapped[str | None] = mapped_column(String(64), default=None)


class PaymentCallback(Base):
    """Provider notifications already applied: a redelivered callback changes nothing."""

    __tablename__ = "payment_callbacks"
    __table_args__ = (UniqueConstraint("provider", "event_id", name="uq_callback_event"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
