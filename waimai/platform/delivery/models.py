"""Riders: who is on shift, on what, and where they were last seen."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from waimai.core.database import Base
from waimai.core.models_base import Timestamped


class Rider(Timestamped, Base):
    __tablename__ = "riders"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    campus_id: Mapped[int] = mapped_column(ForeignKey("campuses.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    vehicle: Mapped[str] = mapped_column(String(16), default="ebike")  # ebike, bike, foot
    capacity: Mapped[int] = mapped_column(default=4)
    on_shift: Mapped[bool] = mapped_column(default=False, index=True)
    shift_started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    shift_ends_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    x: Mapped[float | None] = mapped_column(default=None)
    y: Mapped[float | None] = mapped_column(default=None)
    position_at: Mapped[dt.datetime | None] = mapped_column(default=None)
