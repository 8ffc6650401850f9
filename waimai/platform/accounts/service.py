"""Accounts: creating users, signing in with rate limits."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from waimai.config import Settings
from waimai.core import uow
from waimai.core.errors import Conflict, NotFound, Unauthorized, Unprocessable
from waimai.core.security import (
    DUMMY_HASH,
    hash_password,
    issue_token,
    mask_phone,
    password_problem,
    verify_password,
)
from waimai.platform.accounts import throttle
from waimai.platform.accounts.models import Role, User
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
    if (problem := password_problem(password, phone=phone)) is not None:
        raise Unprocessable(problem, code="password_weak")
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
    """Check the password; past a limit per phone and address, per phone, per address or for everyone,
    refuse for a while (accounts.throttle)."""
    throttle.check(db, settings, phone=phone, client=client)
    user = db.scalar(select(User).where(User.phone == phone))
    ok = verify_password(user.password_hash if user else DUMMY_HASH, password)
    if not ok or user is None or not user.is_active:
        throttle.failed(db, settings, phone=phone, client=client)
        uow.checkpoint(db, why="a wrong password stays counted although the sign-in is refused")
        raise Unauthorized("Phone number or password is wrong.")
    throttle.succeeded(db, phone=phone, client=client)
    token = issue_token(secret=settings.secret_key, user_id=user.id, role=user.role,
                        ttl_minutes=settings.token_ttl_minutes, version=user.token_version)
    return TokenOut(access_token=token, role=user.role, user_id=user.id,
                    expires_in=settings.token_ttl_minutes * 60)


def revoke_tokens(db: Session, user_id: int) -> None:
    """Every token issued to the user so far stops working (logout signs out every device; a role or
    active change takes effect at once). The caller commits."""
    db.execute(update(User).where(User.id == user_id).values(token_version=User.token_version + 1))


def change_user(db: Session, user: User, *, role: Role | str | None = None, is_active: bool | None = None) -> User:
    """Ops change a user's role or switch the account off; their tokens are revoked either way."""
    if role is not None:
        role = Role(role)
        if (role is Role.merchant) != (user.merchant_id is not None):
            raise Unprocessable("Merchant staff, and only they, belong to a merchant: create a new account.")
        user.role = role.value
    if is_active is not None:
        user.is_active = is_active
    db.flush()
    revoke_tokens(db, user.id)
    return user
