"""Sign-in throttling: failed logins counted per phone and address, per phone, per address and for
everyone, in the database so every replica counts the same.

The four limits stop four attacks: one person guessing one account (`login_max_attempts` per phone and
address), many addresses guessing one account (`login_max_per_phone`), one address trying many accounts
with a common password (`login_max_per_address`), and a botnet spraying everything (`login_max_global`).
The address is `request.client.host`, which names the real client only because X-Forwarded-For is believed
from the configured trusted proxies alone (core.proxies). Reaching a limit raises a security alert.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from waimai.config import Settings
from waimai.core.database import utcnow
from waimai.core.errors import TooManyRequests
from waimai.core.security import mask_phone
from waimai.core.security_alerts import raise_alert
from waimai.platform.accounts.models import LoginAttempt

LOCKED = "Too many failed sign-ins; wait a few minutes and try again."


def _keys(phone: str, client: str) -> dict[str, str]:
    phone, client = phone[:32], client[:64]  # the page's form is not length-checked; keys fit String(120)
    return {"phone_address": f"pa:{phone}|{client}", "phone": f"p:{phone}", "address": f"a:{client}", "global": "*"}


def _limits(settings: Settings) -> dict[str, int]:
    return {"phone_address": settings.login_max_attempts, "phone": settings.login_max_per_phone,
            "address": settings.login_max_per_address, "global": settings.login_max_global}


def _counts(db: Session, keys: dict[str, str], window_s: int) -> dict[str, int]:
    since = utcnow() - dt.timedelta(seconds=window_s)
    rows = dict(db.execute(select(LoginAttempt.key, func.count()).where(
        LoginAttempt.key.in_(keys.values()), LoginAttempt.at >= since).group_by(LoginAttempt.key)).all())
    return {name: int(rows.get(key, 0)) for name, key in keys.items()}


def check(db: Session, settings: Settings, *, phone: str, client: str) -> None:
    """Refuse (429) while any of the four counts is at its limit."""
    keys, limits = _keys(phone, client), _limits(settings)
    counts = _counts(db, keys, settings.login_window_s)
    if any(counts[k] >= limits[k] for k in keys):
        raise TooManyRequests(LOCKED, headers={"Retry-After": str(settings.login_window_s)})


def failed(db: Session, settings: Settings, *, phone: str, client: str) -> None:
    """Count a failure under every key (the caller commits); alert on the one that reaches its limit."""
    keys, limits = _keys(phone, client), _limits(settings)
    now = utcnow()
    db.add_all([LoginAttempt(key=k, at=now) for k in keys.values()])
    counts = _counts(db, keys, settings.login_window_s)
    subjects = {"phone_address": f"phone:{mask_phone(phone)}|address:{client}", "phone": f"phone:{mask_phone(phone)}",
                "address": f"address:{client}", "global": "everyone"}
    for name in keys:
        if counts[name] >= limits[name]:
            raise_alert(db, kind="login_lockout", subject=subjects[name], source=client, limit=name,
                        failures=counts[name], window_s=settings.login_window_s)


def succeeded(db: Session, *, phone: str, client: str) -> None:
    """A right password clears that phone's counts; the address's and everyone's stay (an attacker owning
    one account must not reset the counter that stops them spraying others)."""
    keys = _keys(phone, client)
    db.execute(delete(LoginAttempt).where(LoginAttempt.key.in_([keys["phone_address"], keys["phone"]])))


def prune(db: Session, settings: Settings) -> int:
    """Forget failures older than the window (housekeeping)."""
    cut = utcnow() - dt.timedelta(seconds=settings.login_window_s)
    return int(db.execute(delete(LoginAttempt).where(LoginAttempt.at < cut)).rowcount or 0)  # type: ignore[attr-defined]
