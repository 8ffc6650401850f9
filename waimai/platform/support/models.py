"""Customer-service tables: complaint tickets, their history, their photos, and one-tap ratings."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from waimai.core.database import Base, utcnow


class Ticket(Base):
    """A problem reported on an order, by its customer, its merchant or its rider (or by support for them)."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_category_created", "category", "created_at"),
        Index("ix_tickets_status_due", "status", "resolution_due"),
        CheckConstraint("refund_fen >= 0", name="refund_nonneg"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)  # the order's customer
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    reporter_role: Mapped[str] = mapped_column(String(16))  # customer | merchant | rider (support: on their behalf)
    category: Mapped[str] = mapped_column(String(24))
    description: Mapped[str] = mapped_column(String(1000), default="")
    status: Mapped[str] = mapped_column(String(12), default="open", index=True)  # open → in_progress → resolved
    source: Mapped[str] = mapped_column(String(12), default="app")  # app | phone (taken by support)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), default=None, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    first_response_due: Mapped[dt.datetime] = mapped_column()
    first_response_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    resolution_due: Mapped[dt.datetime] = mapped_column()
    resolved_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    resolution: Mapped[str | None] = mapped_column(String(16), default=None)  # refund | redelivery | coupon | no_action
    resolution_note: Mapped[str] = mapped_column(String(500), default="")
    refund_fen: Mapped[int] = mapped_column(default=0)
    refund_ref: Mapped[str | None] = mapped_column(String(64), default=None)
    coupon_id: Mapped[int | None] = mapped_column(default=None)
    redelivery_order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), default=None)


class TicketEvent(Base):
    """One line of a ticket's history. `public` lines (replies, status) are shown to whoever may see the
    ticket; the rest (internal notes) only to staff."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    actor_role: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))  # created, status, reply, note, photo, linked, resolved
    text: Mapped[str] = mapped_column(String(1000), default="")
    public: Mapped[bool] = mapped_column(default=True)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class TicketPhoto(Base):
    """A photo attached to a ticket: re-encoded without its metadata, kept in the database (every replica
    sees it, the backups carry it); the uploaded file name is never used."""

    __tablename__ = "ticket_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Rating(Base):
    """A one-tap rating (1–5 stars) of a delivered order or of how a ticket was resolved; tapping again
    changes it. Merchant and rider are copied from the order, so the satisfaction page needs no join."""

    __tablename__ = "ratings"
    __table_args__ = (
        UniqueConstraint("user_id", "subject", name="uq_rating_user_subject"),
        CheckConstraint("stars BETWEEN 1 AND 5", name="stars_range"),
        Index("ix_ratings_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    subject: Mapped[str] = mapped_column(String(24))  # order:<id> | ticket:<id>
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), default=None)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    rider_id: Mapped[int | None] = mapped_column(ForeignKey("riders.id"), default=None)
    stars: Mapped[int] = mapped_column()
    comment: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
