"""Read and flip switches. Names are dotted (`intake.meituan.paused`, `payment.cod_only`, `module.ordering.off`
…, see catalog.py); every flip is audited and emitted as an event so the incident timeline can show it.
Hot paths read switches through OpenFeature (`flags.enabled`), which caches them briefly; `is_on` reads
the row in the caller's transaction, for code that must see its own writes."""

from __future__ import annotations

import re

from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from waimai.core import audit, uow
from waimai.core.database import Database, utcnow
from waimai.core.errors import Unprocessable
from waimai.core.outbox import emit
from waimai.firewall.switches import flags
from waimai.firewall.switches.catalog import CATALOG, is_known
from waimai.firewall.switches.models import Switch

NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+){1,3}$")
KNOWN_PREFIXES = ("intake.", "payment.", "ordering.", "dispatch.", "delivery.", "merchant.", "coupons.", "system.",
                  "module.")


def is_on(db: Session, name: str) -> bool:
    row = db.get(Switch, name)
    return bool(row and row.enabled)


def set_switch(db: Session, name: str, *, enabled: bool, actor_id: int | None, actor_role: str,
               reason: str = "") -> Switch:
    if not NAME.match(name) or not name.startswith(KNOWN_PREFIXES) or not is_known(name):
        raise Unprocessable(f"Unknown switch name {name!r}.", code="switch_unknown",
                            details={"known": [i.name for i in CATALOG]})
    row = db.get(Switch, name)
    if row is None:
        row = Switch(name=name)
        db.add(row)
    old = row.enabled
    row.enabled, row.reason, row.updated_at = enabled, reason[:200], utcnow()
    row.updated_by = f"{actor_role}:{actor_id}" if actor_id else actor_role
    audit.record(db, actor_id=actor_id, actor_role=actor_role, action="switch.set", target=name,
                 details={"from": old, "to": enabled, "reason": reason})
    # The incident timeline subscribes to `switch.changed` (waimai.subscribers).
    emit(db, "switch.changed", key=name, name=name, enabled=enabled, previous=bool(old), reason=reason,
         actor=row.updated_by)
    # This process sees the flip as soon as it commits; other replicas within the flag cache's TTL.
    event.listen(db, "after_commit", lambda _s: flags.invalidate(), once=True)
    return row


def set_automatic(database: Database, name: str, *, enabled: bool, actor: str, reason: str,
                  only_undo: bool = False) -> bool:
    """A flip by the platform itself (`actor` like "system:breaker"), audited like any other.

    Does nothing when the switch already is as asked. With `only_undo`, it only turns off a switch
    that the same actor turned on: what ops set by hand stays as they set it. Returns whether it flipped.
    """
    try:
        with uow.unit_of_work(database) as db:
            row = db.get(Switch, name, with_for_update=True)
            current = bool(row and row.enabled)
            if current == enabled or (only_undo and (row is None or row.updated_by != actor)):
                return False
            set_switch(db, name, enabled=enabled, actor_id=None, actor_role=actor, reason=reason)
            return True
    except IntegrityError:  # another replica created the row at the same moment: it did the flip
        return False


def all_switches(db: Session) -> list[Switch]:
    return list(db.scalars(select(Switch).order_by(Switch.name)))
