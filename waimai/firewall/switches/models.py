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
