"""Tables of the intake: which platform shop is which merchant, which platform order became which
order (deduplication), and the status callbacks owed to each platform (an outbox delivered in order)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from waimai.core.database import Base, utcnow


class PlatformShop(Base):
    __tablename__ = "platform_shops"
    __table_args__ = (UniqueConstraint("platform", "external_shop_id", name="uq_platform_shop"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    external_shop_id: Mapped[str] = mapped_column(String(64))
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))


class ExternalOrderLink(Base):
    __tablename__ = "external_orders"
    __table_args__ = (UniqueConstraint("platform", "external_id", name="uq_external_order"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PlatformCallback(Base):
    """A status the platform must hear, in order per order; retried with backoff, dead after too many."""

    __tablename__ = "platform_callbacks"
    __table_args__ = (Index("ix_platform_callbacks_state_next", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # accepted | picked_up | delivered | cancelled
    reason: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(8), default="pending")  # pending | sent | dead
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(300), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(default=None)
