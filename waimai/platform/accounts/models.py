"""Accounts: every person who signs in, whatever their role."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from waimai.core.database import Base, utcnow
from waimai.core.models_base import Timestamped


class Role(enum.StrEnum):
    customer = "customer"
    merchant = "merchant"
    rider = "rider"
    support = "support"
    ops = "ops"


class User(Timestamped, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    role: Mapped[str] = mapped_column(String(16), index=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(default=True)
    # Merchant staff belong to one shop; riders to one rider profile.
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), default=None)
    locale: Mapped[str | None] = mapped_column(String(8), default=None)
    # Bumped by logout and by a role or active change: tokens carrying an older version are refused.
    token_version: Mapped[int] = mapped_column(default=0, server_default="0")


class LoginAttempt(Base):
    """One failed login under one key: `pa:<phone>|<address>`, `p:<phone>`, `a:<address>` or `*` (everyone);
    counted per key over the window to slow down guessing (accounts.throttle)."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
