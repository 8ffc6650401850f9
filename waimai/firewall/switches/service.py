"""Read and flip switches. Names are dotted (`intake.meituan.paused`, later `payment.cod_only` …);
every flip is audited and emitted as an event so the incident timeline can show it."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from waimai.core import audit
from waimai.core.database import utcnow
from waimai.core.errors import Unprocessable
from waimai.core.outbox import emit
from waimai.firewall.switches.models import Switch

NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+){1,3}$")
# Called inside the flip's transaction (db, switch, previous, actor): the incident timeline listens here.
SWITCH_HOOKS: list[Callable[[Session, Switch, bool, str], None]] = []
KNOWN_PREFIXES = ("intake.", "payment.", "ordering.", "dispatch.", "delivery.", "merchant.", "coupons.", "system.")


def is_on(db: Session, name: str) -> bool:
    row = db.get(Switch, name)
    return bool(row and row.enabled)


def set_switch(db: Session, name: str, *, enabled: bool, actor_id: int | None, actor_role: str,
               reason: str = "") -> Switch:
    if not NAME.match(name) or not name.startswith(KNOWN_PREFIXES):
        raise Unprocessable(f"Unknown switch name {name!r}.", code="switch_unknown")
    row = db.get(Switch, name)
    if row is None:
        row = Switch(name=name)
        db.add(row)
    old = row.enabled
    row.enabled, row.reason, row.updated_at = enabled, reason[:200], utcnow()
    row.updated_by = f"{actor_role}:{actor_id}" if actor_id else actor_role
    audit.record(db, actor_id=actor_id, actor_role=actor_role, action="switch.set", target=name,
                 details={"from": old, "to": enabled, "reason": reason})
    emit(db, "switch.changed", key=name, name=name, enabled=enabled, previous=old, reason=reason)
    for hook in SWITCH_HOOKS:
        hook(db, row, bool(old), row.updated_by)
    return row


def all_switches(db: Session) -> list[Switch]:
    return list(db.scalars(select(Switch).order_by(Switch.name)))
