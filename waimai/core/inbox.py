"""The in-app inbox: messages to one user (incident updates, compensation apologies, spooled orders settled).

In core, like the outbox and the audit log, because every layer writes to it: the firewall's status page fans
incident updates out to it, the platform's order spool tells customers what became of their spooled orders, and
the pages show it. The incident columns name the update a notice carries, if any.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from waimai.core.database import Base, utcnow


class Notice(Base):
    """A message in a user's in-app inbox; one per user and incident update, never twice."""

    __tablename__ = "notices"
    __table_args__ = (UniqueConstraint("user_id", "event_id", name="uq_notice_user_event"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), default=None)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("incident_events.id"), default=None)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(String(1000))
    sms: Mapped[str] = mapped_column(String(16), default="")  # "", sent, rate_limited, failed, off
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    read_at: Mapped[dt.datetime | None] = mapped_column(default=None)
