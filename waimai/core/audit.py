"""The audit log: who did what to which thing, for every ops action."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from waimai.core.database import Base, utcnow


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    actor_role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(80), index=True)
    target: Mapped[str] = mapped_column(String(120), default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


def record(db: Session, *, actor_id: int | None, actor_role: str, action: str, target: str = "",
           details: dict[str, Any] | None = None) -> AuditEntry:
    """Add an audit entry to the caller's transaction (it commits or rolls back with the action)."""
    entry = AuditEntry(actor_id=actor_id, actor_role=actor_role, action=action, target=target,
                       details=details or {})
    db.add(entry)
    return entry
