"""Transactional outbox: domain events written in the same transaction as the change they describe.

`emit` adds a row; it exists only if the caller's transaction commits. The one dispatcher
(`waimai.core.events.Dispatcher`, run by the worker leader) reads undelivered rows in order and hands each to
the subscribers registered for its topic, recording every subscriber's delivery in `outbox_deliveries` in the
same transaction as the subscriber's own writes, so a retry never re-runs a subscriber that succeeded.
A row is delivered (`published_at`) when every subscriber has it; one that keeps failing is dead-lettered
(`dead_at`) after the configured number of attempts and waits for ops (/ops/events) to retry or purge it.
Delivered rows are purged after the retention period.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Integer, String, insert, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from waimai.core.database import Base, utcnow


class OutboxEvent(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(String(64), index=True)
    key: Mapped[str] = mapped_column(String(64), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Delivered to every subscriber (the name predates the dispatcher).
    published_at: Mapped[dt.datetime | None] = mapped_column(default=None, index=True)
    # The dispatcher's columns have no Python default: placement's prepared statement and `emit` name only the
    # columns above (and so still work in a database restored from a backup older than these columns).
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column()
    dead_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    last_error: Mapped[str | None] = mapped_column(String(300))


class OutboxDelivery(Base):
    """One subscriber's delivery of one event: `delivered` (written with the subscriber's effects) or `failed`."""

    __tablename__ = "outbox_deliveries"

    event_id: Mapped[int] = mapped_column(primary_key=True)
    subscriber: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(300), default=None)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def emit(db: Session, topic: str, *, key: str = "", **payload: Any) -> None:
    """Queue an event; it exists only if the caller's transaction commits. The insert names only the columns
    every schema version has (a restore into an older backup still records itself)."""
    db.execute(insert(OutboxEvent).values(topic=topic, key=key, payload=payload, created_at=utcnow()))
