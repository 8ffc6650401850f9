"""Circuit-breaker state shared by every replica (the database store; Redis keeps the same fields)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from waimai.core.database import Base, utcnow


class BreakerRow(Base):
    __tablename__ = "circuit_breakers"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="closed")  # closed | opened | half-opened
    failure_count: Mapped[int] = mapped_column(default=0)
    opened_at: Mapped[float | None] = mapped_column(default=None)  # epoch seconds, as the breaker keeps it
    threshold: Mapped[int] = mapped_column(default=5)
    ttl_s: Mapped[float] = mapped_column(default=10.0)
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)  # last change of state
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
