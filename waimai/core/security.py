"""Password hashing, signed login tokens and phone masking."""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP's minimum Argon2id configuration: ~20 ms a hash here, slow enough to hurt guessing.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_ALG = "HS256"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# A fixed hash to verify against when the user does not exist, so timing does not reveal accounts.
DUMMY_HASH = hash_password("not-a-real-password")


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    role: str  # the role at sign-in, for clients; authority is read from the database (core.deps.AuthzCache)
    version: int  # the user's token version at sign-in: a later logout or role change bumps it


def issue_token(*, secret: str, user_id: int, role: str, ttl_minutes: int, version: int = 0) -> str:
    now = dt.datetime.now(dt.UTC)
    payload = {"sub": str(user_id), "role": role, "tv": version, "iat": now,
               "exp": now + dt.timedelta(minutes=ttl_minutes)}
    return jwt.encode(payload, secret, algorithm=_ALG)


_verified: dict[tuple[str, str], tuple[float, TokenClaims]] = {}
_VERIFIED_MAX = 8192


def read_token(token: str, *, secret: str) -> TokenClaims | None:
    """Claims of a valid token. A token verified once is remembered until it expires (its HMAC
    check costs more than the rest of a light request)."""
    hit = _verified.get((secret, token))
    if hit is not None and hit[0] > time.time():
        return hit[1]
    try:
        data = jwt.decode(token, secret, algorithms=[_ALG], options={"require": ["exp", "sub"]})
        claims = TokenClaims(user_id=int(data["sub"]), role=str(data["role"]), version=int(data.get("tv", 0)))
    except (jwt.PyJWTError, KeyError, ValueError):
        return None
    if len(_verified) >= _VERIFIED_MAX:
        _verified.clear()
    _verified[(secret, token)] = (float(data["exp"]), claims)
    return claims


_PHONE = re.compile(r"(?<!\d)((?:\+?86)?1[3-9]\d)(\d{4})(\d{4})(?!\d)")


def mask_phone(phone: str | None) -> str:
    """138****1234: the form shown to everyone but the rider carrying the order."""
    if not phone:
        return ""
    digits = phone.strip()
    if len(digits) >= 7:
        return digits[:3] + "****" + digits[-4:]
    return "****"


def mask_phones_in_text(text: str) -> str:
    """Mask every mainland mobile number inside free text (log lines, notes)."""
    return _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


MIN_PASSWORD = 8


def _common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of the leaked-password corpora zxcvbn ships (its `passwords`
    frequency list), lower-cased: the guesses an attacker tries first."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


_COMMON: frozenset[str] | None = None


def password_problem(password: str, *, phone: str | None = None) -> str | None:
    """Why a new password is refused (None: acceptable), after NIST SP 800-63B 5.1.1.2: at least 8
    characters, not a commonly used password, not derived from the account's phone number."""
    global _COMMON
    if len(password) < MIN_PASSWORD:
        return "The password needs at least 8 characters."
    if _COMMON is None:
        _COMMON = _common_passwords()
    lowered = password.lower()
    if lowered in _COMMON or len(set(lowered)) <= 2:
        return "This password is too common; choose one that is hard to guess."
    digits = "".join(ch for ch in (phone or "") if ch.isdigit())
    if digits and (digits[-8:] in "".join(ch for ch in password if ch.isdigit()) or lowered in digits):
        return "The password must not contain your phone number."
    return None
