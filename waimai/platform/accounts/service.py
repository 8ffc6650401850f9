"""Accounts: creating users, signing in with rate limits."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from waimai.config import Settings
from waimai.core.database import utcnow
from waimai.core.errors import Conflict, NotFound, TooManyRequests, Unauthorized, Unprocessable
from waimai.core.security import DUMMY_HASH, hash_password, issue_token, mask_phone, verify_password
from waimai.platform.accounts.models import LoginAttempt, Role, User
from waimai.platform.accounts.schemas import TokenOut, UserOut
from waimai.platform.catalog.models import Merchant


def create_user(db: Session, *, phone: str, name: str, role: Role | str, password: str,
                merchant_id: int | None = None) -> User:
    role = Role(role)
    if role is Role.merchant and merchant_id is None:
        raise Unprocessable("Merchant staff must belong to a merchant (merchant_id).")
    if role is not Role.merchant and merchant_id is not None:
        raise Unprocessable("Only merchant staff can have a merchant_id.")
    if merchant_id is not None and db.get(Merchant, merchant_id) is None:
        raise Unprocessable(f"Merchant {merchant_id} does not exist.")
    if db.scalar(select(User.id).where(User.phone == phone)) is not None:
        raise Conflict("An account with this phone number already exists.")
    user = User(phone=phone, name=name, role=role.value, password_hash=hash_password(password),
                merchant_id=merchant_id)
    db.add(user)
    try:
        db.flush()
    except IntegrityError as exc:
        raise Conflict("An account with this phone number already exists.") from exc
    return user


def get_user(db: Session, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def user_out(user: User) -> UserOut:
    return UserOut(id=user.id, name=user.name, role=user.role, phone_masked=mask_phone(user.phone),
                   merchant_id=user.merchant_id)


def login(db: Session, *, settings: Settings, phone: str, password: str, client: str) -> TokenOut:
    """Check the password; after too many failures per phone and address, refuse for a while."""
    key = f"{phone}|{client}"
    since = utcnow() - dt.timedelta(seconds=settings.login_window_s)
    failures = db.scalar(select(func.count()).select_from(LoginAttempt)
                         .where(LoginAttempt.key == key, LoginAttempt.at >= since)) or 0
    if failures >= settings.login_max_attempts:
        raise TooManyRequests("Too many failed sign-ins; wait a few minutes and try again.",
                              headers={"Retry-After": str(settings.login_window_s)})
    user = db.scalar(select(User).where(User.phone == phone))
    ok = verify_password(user.password_hash if user else DUMMY_HASH, password)
    if not ok or user is None or not user.is_active:
        db.add(LoginAttempt(key=key))
        db.commit()
        raise Unauthorized("Phone number or password is wrong.")
    db.execute(delete(LoginAttempt).where(LoginAttempt.key == key))
    db.commit()
    token = issue_token(secret=settings.secret_key, user_id=user.id, role=user.role,
                        ttl_minutes=settings.token_ttl_minutes)
    return TokenOut(access_token=token, role=user.role, user_id=user.id,
                    expires_in=settings.token_ttl_minutes * 60)
