"""Orders, their lines, every state transition, and idempotency records for placement."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from waimai.core.database import Base, utcnow
from waimai.core.models_base import Timestamped


class Order(Timestamped, Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("total_fen >= 0", name="total_nonneg"),
        Index("ix_orders_merchant_status", "merchant_id", "status"),
        Index("ix_orders_customer_created", "customer_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    delivery_point_id: Mapped[int] = mapped_column(ForeignKey("delivery_points.id"))
    rider_id: Mapped[int | None] = mapped_column(ForeignKey("riders.id"), default=None, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    payment_method: Mapped[str] = mapped_column(String(16))  # gateway | cod
    source: Mapped[str] = mapped_column(String(16), default="app")  # app, assisted, meituan, ...
    subtotal_fen: Mapped[int] = mapped_column()
    delivery_fee_fen: Mapped[int] = mapped_column()
    discount_fen: Mapped[int] = mapped_column(default=0)
    total_fen: Mapped[int] = mapped_column()
    proof_code: Mapped[str] = mapped_column(String(8))
    note: Mapped[str] = mapped_column(String(200), default="")
    contact_phone: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(200), default=None)
    promised_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    ready_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    picked_up_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(default=None)

    lines: Mapped[list[OrderLine]] = relationship(back_populates="order", lazy="selectin",
                                                  order_by="OrderLine.id")


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="qty_pos"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("menu_items.id"))
    name: Mapped[str] = mapped_column(String(80))
    unit_price_fen: Mapped[int] = mapped_column()
    quantity: Mapped[int] = mapped_column()
    options: Mapped[list[Any]] = mapped_column(default=list)
    line_total_fen: Mapped[int] = mapped_column()
    stock_reserved: Mapped[bool] = mapped_column(default=False)

    order: Mapped[Order] = relationship(back_populates="lines")


class OrderTransition(Base):
    """Every change of an order's state, with who made it and why."""

    __tablename__ = "order_transitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    actor_role: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(200), default=None)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class IdempotencyRecord(Base):
    """The first response to a placement request, replayed for retries with the same key."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idem_user_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(12), default="running")  # running | done
    response_status: Mapped[int | None] = mapped_column(default=None)
    response_body: Mapped[str | None] = mapped_column(Text, default=None)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
