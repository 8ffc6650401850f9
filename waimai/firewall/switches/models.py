"""Degradation switches: named, audited on/off flags stored in the database (read by every replica)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from waimai.core.database import Base, utcnow


class Switch(Base):
    __tablename__ = "switches"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str] = mapped_column(String(200), default="")
    updated_by: Mapped[str] = mapped_column(String(40), default="system")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ReplicaBeat(Base):
    """One row per running process, beaten every second: how a restore learns that every replica has seen
    `system.read_only` (the `read_only_seen` stamp is that switch's `updated_at`) and holds no write in flight."""

    __tablename__ = "replica_heartbeats"

    replica: Mapped[str] = mapped_column(String(120), primary_key=True)
    roles: Mapped[str] = mapped_column(String(60), default="")
    beat_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    read_only_seen: Mapped[str | None] = mapped_column(String(40))
    writes_in_flight: Mapped[int] = mapped_column(default=0)
