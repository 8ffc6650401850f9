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
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # An Alipay cashier URL carries the whole signed request: long.
    pay_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    failure_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    refund_ref: Mapped[str | None] = mapped_column(String(64), default=None)
    # WeChat Pay / Alipay: how the customer pays (native, h5, jsapi / wap, page) and the provider's trade number.
    channel: Mapped[str | None] = mapped_column(String(12), default=None)
    transaction_id: Mapped[str | None] = mapped_column(String(64), default=None)


class PaymentCallback(Base):
    """Provider notifications already applied: a redelivered callback changes nothing."""

    __tablename__ = "payment_callbacks"
    __table_args__ = (UniqueConstraint("provider", "event_id", name="uq_callback_event"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BillMismatch(Timestamped, Base):
    """One line of a provider's daily bill (对账单) that disagrees with our payments, or one of ours it lacks.

    kind: paid_not_recorded (the provider took money we did not record) · unknown_trade (no order of
    ours at all) · amount_mismatch · not_in_bill (we recorded a payment the provider does not have) ·
    refund_not_recorded · refund_missing. status: open -> recovered | refunded | resolved."""

    __tablename__ = "bill_mismatches"
    __table_args__ = (UniqueConstraint("provider", "bill_date", "kind", "out_trade_no", name="uq_bill_mismatch"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    bill_date: Mapped[dt.date] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(24))
    out_trade_no: Mapped[str] = mapped_column(String(64))
    bill_amount_fen: Mapped[int | None] = mapped_column(default=None)
    our_amount_fen: Mapped[int | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(12), default="open")
    detail: Mapped[str] = mapped_column(String(200), default="")
