"""Circuit-breaker state as purgatory sees it: one breaker's record, the store interface (a purgatory
repository that can also list and configure its breakers), the in-memory store and the unit of work.

The shared stores (the database table, Redis) that every replica reads are the firewall's
(waimai/firewall/resilience/stores.py); this part lives in core with the policy, so the platform's
outbound clients are protected without importing the firewall.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

from purgatory.domain.messages.base import Message
from purgatory.domain.model import Context
from purgatory.service._sync.repository import SyncAbstractRepository
from purgatory.service._sync.unit_of_work import SyncAbstractUnitOfWork

from waimai.core.database import utcnow


@dataclass(frozen=True)
class BreakerRecord:
    """One breaker's shared state (what the table row or the Redis hash holds)."""

    name: str
    state: str = "closed"
    failure_count: int = 0
    opened_at: float | None = None
    threshold: int = 5
    ttl_s: float = 10.0
    changed_at: dt.datetime = field(default_factory=utcnow)

    def context(self) -> Context:
        return Context(self.name, self.threshold, self.ttl_s, state=self.state,  # type: ignore[arg-type]
                       failure_count=self.failure_count,
                       opened_at=self.opened_at)

    @property
    def reopens_at(self) -> float | None:
        """Wall-clock time from which an open breaker lets a trial call through."""
        return self.opened_at + self.ttl_s if self.state == "opened" and self.opened_at is not None else None


class BreakerStore(SyncAbstractRepository):
    """A purgatory repository that can also list and configure its breakers (for ops and metrics)."""

    kind = "abstract"

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def record(self, name: str) -> BreakerRecord | None:
        raise NotImplementedError

    def records(self) -> list[BreakerRecord]:
        raise NotImplementedError

    def configure(self, name: str, threshold: int, ttl_s: float) -> None:
        """Create the breaker if new, and apply the configured threshold and open time."""
        raise NotImplementedError

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until changes made so far are in the shared store (writes may be queued)."""
        return True

    def force(self, name: str, state: str) -> None:
        """Set a state by hand (ops: reset to closed, or trip open for a drill)."""
        opened_at = time.time() if state == "opened" else None
        self.update_state(name, state, opened_at)
        if state == "closed":
            self.reset_failure(name)

    # purgatory's repository interface
    def get(self, name: str) -> Context | None:
        rec = self.record(name)
        return rec.context() if rec is not None else None

    def register(self, context: Context) -> None:
        self.configure(context.name, int(context.threshold), float(context.ttl))


class MemoryStore(BreakerStore):
    """One process's breakers (a single replica, tests, and the fallback of the shared stores)."""

    kind = "memory"

    def __init__(self) -> None:
        super().__init__()
        self._rows: dict[str, BreakerRecord] = {}
        self._lock = threading.Lock()

    def put(self, rec: BreakerRecord) -> None:
        with self._lock:
            self._rows[rec.name] = rec

    def record(self, name: str) -> BreakerRecord | None:
        return self._rows.get(name)

    def records(self) -> list[BreakerRecord]:
        return sorted(self._rows.values(), key=lambda r: r.name)

    def configure(self, name: str, threshold: int, ttl_s: float) -> None:
        with self._lock:
            old = self._rows.get(name) or BreakerRecord(name=name)
            self._rows[name] = replace(old, threshold=threshold, ttl_s=ttl_s)

    def _change(self, name: str, **kw: Any) -> None:
        with self._lock:
            old = self._rows.get(name) or BreakerRecord(name=name)
            self._rows[name] = replace(old, **kw)

    def update_state(self, name: str, state: str, opened_at: float | None) -> None:
        self._change(name, state=state, opened_at=opened_at, changed_at=utcnow())

    def inc_failures(self, name: str, failure_count: int) -> None:
        with self._lock:
            old = self._rows.get(name) or BreakerRecord(name=name)
            self._rows[name] = replace(old, failure_count=old.failure_count + 1)

    def reset_failure(self, name: str) -> None:
        self._change(name, failure_count=0)


class StoreUnitOfWork(SyncAbstractUnitOfWork):
    """purgatory's unit of work over one of our stores (each store operation is its own transaction)."""

    def __init__(self, store: BreakerStore) -> None:
        self.contexts = store

    def commit(self) -> None:
        """Each store operation commits itself."""

    def rollback(self) -> None:
        """Nothing is held open between store operations."""
