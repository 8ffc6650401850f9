"""The write fence: how a restore knows that no replica can still commit an order it would lose.

`system.read_only` is read through a cache (flags.py), so a replica may accept a write for a moment after
the switch flips, and a write that passed the check before the flip may commit later. The fence closes
both gaps per process:

* `SwitchGuard` calls `enter()` before it lets a write through and `leave()` when the write has answered;
  once the fence is closed, `enter()` refuses.
* `beat()` (every second, on every process) reads the switch from the database, closes or opens the fence
  accordingly and writes this process's heartbeat row: `read_only_seen` is the switch's version (its
  `updated_at`) once the fence is closed *and* no write is in flight, else empty.
* `wait_fenced()` (the restore) waits until every replica that beat recently reports that version.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import structlog
from sqlalchemy import delete, select

from waimai.core import uow
from waimai.core.database import Database, utcnow
from waimai.firewall.switches.models import ReplicaBeat, Switch

log = structlog.get_logger(__name__)
READ_ONLY = "system.read_only"
ALIVE = dt.timedelta(seconds=5)  # a replica that has not beaten for this long is not running
FORGET = dt.timedelta(days=1)  # heartbeat rows of processes gone this long are deleted


class Fence:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_flight = 0
        self.closed: str | None = None  # the read-only version that closed it
        self._beats = 0

    def enter(self) -> bool:
        with self._lock:
            if self.closed is not None:
                return False
            self.in_flight += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def beat(self, database: Database, replica: str, roles: str = "") -> str | None:
        """Follow the switch, then say in the heartbeat row whether this process is fenced."""
        with database.read_session() as s:
            row = s.get(Switch, READ_ONLY)
            version = read_only_version(row)
        with self._lock:
            self.closed = version
            quiet = self.in_flight == 0
            n = self.in_flight
        seen = version if version is not None and quiet else None
        self._beats += 1
        with uow.unit_of_work(database) as s:
            s.merge(ReplicaBeat(replica=replica[:120], roles=roles[:60], beat_at=utcnow(), read_only_seen=seen,
                                writes_in_flight=n))
            if self._beats % 600 == 1:  # every ten minutes or so: forget processes gone for a day
                s.execute(delete(ReplicaBeat).where(ReplicaBeat.beat_at < utcnow() - FORGET))
        return seen


def read_only_version(row: Switch | None) -> str | None:
    return row.updated_at.isoformat() if row is not None and row.enabled else None


def current_version(database: Database) -> str | None:
    with database.read_session() as s:
        return read_only_version(s.get(Switch, READ_ONLY))


def unfenced(database: Database, version: str) -> list[str]:
    """Replicas beating now that have not yet confirmed `version` with no write in flight."""
    since = utcnow() - ALIVE
    with database.read_session() as s:
        rows = s.scalars(select(ReplicaBeat).where(ReplicaBeat.beat_at >= since)).all()
    return sorted(r.replica for r in rows if r.read_only_seen != version)


def wait_fenced(database: Database, version: str, *, timeout_s: float = 15.0) -> list[str]:
    """Wait until every live replica is fenced; returns those that were not (empty: all confirmed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        missing = unfenced(database, version)
        if not missing or time.monotonic() > deadline:
            if missing:
                log.warning("fence_not_confirmed", replicas=missing)
            return missing
        time.sleep(0.1)
