"""Transactional outbox: domain events written in the same transaction as the change they describe."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, Session, mapped_column

from waimai.core.database import Base, utcnow


class OutboxEvent(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(String(64), index=True)
    key: Mapped[str] = mapped_column(String(64), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(default=None, index=True)


def emit(db: Session, topic: str, *, key: str = "", **payload: Any) -> OutboxEvent:
    """Queue an event; it exists only if the caller's transaction commits."""
    ev = OutboxEvent(topic=topic, key=key, payload=payload)
    db.add(ev)
    return ev
