"""What the layers above may read about accounts (the firewall's compensation, notices and restore):
through these functions, never the `users` table (the `firewall-through-services` contract)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from waimai.platform.accounts.models import User


def phones(db: Session, user_ids: Iterable[int]) -> dict[int, str]:
    """user id -> phone number (unmasked: mask before showing it)."""
    ids = list(set(user_ids))
    return dict(db.execute(select(User.id, User.phone).where(User.id.in_(ids))).tuples().all()) if ids else {}


def locales(db: Session, user_ids: Iterable[int]) -> dict[int, str | None]:
    """user id -> preferred locale (None when never chosen)."""
    ids = list(set(user_ids))
    return dict(db.execute(select(User.id, User.locale).where(User.id.in_(ids))).tuples().all()) if ids else {}


def active_users(db: Session, user_ids: Iterable[int]) -> dict[int, User]:
    """The active accounts among `user_ids`, by id."""
    ids = list(set(user_ids))
    return {u.id: u for u in db.scalars(select(User).where(User.id.in_(ids), User.is_active.is_(True)))} if ids else {}


def existing(db: Session, user_ids: Iterable[int]) -> set[int]:
    """Which of `user_ids` have an account (a restored database may lack those created after its backup)."""
    ids = list(set(user_ids))
    return set(db.scalars(select(User.id).where(User.id.in_(ids)))) if ids else set()
