"""Where circuit-breaker state lives: purgatory repositories over our database (default) or Redis,
so every replica reads and writes one state. The store interface and the in-memory store (a single
process or a test) are in waimai/core/outbound/breakers.py, beside the policy that uses them.

purgatory's circuit breaker (`purgatory.SyncCircuitBreakerFactory`) keeps a `Context` per breaker and
tells its repository about every change (new state, one more failure, failures reset). The stores
here persist those changes and build a fresh `Context` from the shared record on every `get`, so a
breaker opened by one replica is open for all of them on their next call.

If the shared store itself fails (the database is down, Redis unreachable), each store carries on
from an in-memory mirror of what it last knew: outbound calls stay protected per process, and the
shared state resumes when the store answers again.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from waimai.core import uow
from waimai.core.database import Database, utcnow
from waimai.core.outbound.breakers import BreakerRecord, BreakerStore, MemoryStore
from waimai.firewall.resilience.models import BreakerRow

log = structlog.get_logger(__name__)


class _Mirrored(BreakerStore):
    """A shared store with an in-memory mirror it falls back on while the store fails."""

    def __init__(self) -> None:
        super().__init__()
        self.mirror = MemoryStore()
        self._failing_since: float | None = None

    def _failed(self, op: str, exc: Exception) -> None:
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            log.warning("breaker_store_unavailable", store=self.kind, op=op, error=exc.__class__.__name__)

    def _ok(self) -> None:
        if self._failing_since is not None:
            log.info("breaker_store_back", store=self.kind,
                     after_s=round(time.monotonic() - self._failing_since, 1))
            self._failing_since = None

    @property
    def degraded(self) -> bool:
        return self._failing_since is not None


class BackgroundWriter:
    """Runs database writes in order on one thread of its own.

    Guarded calls happen in threads that may already hold a write transaction (on SQLite the process
    write lock, which is not re-entrant): writing breaker changes and their events from there could
    deadlock, and would add a write to the call's latency. So they are queued here; `flush` waits
    until everything queued so far is written (ops actions and tests).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._q: queue.Queue[Callable[[], None] | threading.Event] = queue.Queue(maxsize=10_000)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.pending = 0  # writes queued and not yet done

    def submit(self, fn: Callable[[], None]) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        try:
            with self._lock:
                self.pending += 1
            self._q.put_nowait(fn)
        except queue.Full:
            with self._lock:
                self.pending -= 1
            log.error("background_writes_dropped", writer=self.name)

    def flush(self, timeout_s: float = 5.0) -> bool:
        if self._thread is None:
            return True
        done = threading.Event()
        self._q.put(done)
        return done.wait(timeout_s)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                item()
            except Exception:  # noqa: BLE001 - one failed write must not stop the writer
                log.exception("background_write_failed", writer=self.name)
            finally:
                with self._lock:
                    self.pending -= 1


class DatabaseStore(_Mirrored):
    """Breakers in the `circuit_breakers` table: one row per dependency, read on every guarded call,
    changes written in the background (see BackgroundWriter) and mirrored in memory at once."""

    kind = "database"
    ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError,)

    def __init__(self, database: Database) -> None:
        super().__init__()
        self.database = database
        self.writer = BackgroundWriter("breaker-writer")

    @staticmethod
    def _rec(row: BreakerRow) -> BreakerRecord:
        return BreakerRecord(name=row.name, state=row.state, failure_count=row.failure_count, opened_at=row.opened_at,
                             threshold=row.threshold, ttl_s=row.ttl_s, changed_at=row.changed_at)

    def record(self, name: str) -> BreakerRecord | None:
        if self.writer.pending and (mine := self.mirror.record(name)) is not None:
            return mine  # our own changes are still on their way to the table: they are the latest
        try:
            with self.database.read_session() as s:
                row = s.get(BreakerRow, name)
                rec = self._rec(row) if row is not None else None
        except self.ERRORS as exc:
            self._failed("get", exc)
            return self.mirror.record(name)
        self._ok()
        if rec is not None:
            self.mirror.put(rec)
        return rec

    def records(self) -> list[BreakerRecord]:
        try:
            with self.database.read_session() as s:
                recs = [self._rec(r) for r in s.scalars(select(BreakerRow).order_by(BreakerRow.name))]
        except self.ERRORS as exc:
            self._failed("list", exc)
            return self.mirror.records()
        self._ok()
        for r in recs:
            self.mirror.put(r)
        return recs

    def flush(self, timeout_s: float = 5.0) -> bool:
        return self.writer.flush(timeout_s)

    def _write(self, op: str, name: str, values: dict[str, Any]) -> None:
        def go() -> None:
            try:
                with uow.unit_of_work(self.database) as s:
                    s.execute(update(BreakerRow).where(BreakerRow.name == name)
                              .values(updated_at=utcnow(), **values))
            except self.ERRORS as exc:
                self._failed(op, exc)
                return
            self._ok()
        self.writer.submit(go)

    def configure(self, name: str, threshold: int, ttl_s: float) -> None:
        self.mirror.configure(name, threshold, ttl_s)

        def go() -> None:
            try:
                with uow.unit_of_work(self.database) as s:
                    row = s.get(BreakerRow, name)
                    if row is None:
                        s.add(BreakerRow(name=name, threshold=threshold, ttl_s=ttl_s))
                    elif (row.threshold, row.ttl_s) != (threshold, ttl_s):
                        row.threshold, row.ttl_s, row.updated_at = threshold, ttl_s, utcnow()
            except IntegrityError:
                pass  # another replica registered it at the same moment
            except self.ERRORS as exc:
                self._failed("configure", exc)
        self.writer.submit(go)

    def update_state(self, name: str, state: str, opened_at: float | None) -> None:
        self.mirror.update_state(name, state, opened_at)
        self._write("update_state", name, {"state": state, "opened_at": opened_at, "changed_at": utcnow()})

    def inc_failures(self, name: str, failure_count: int) -> None:
        self.mirror.inc_failures(name, failure_count)
        self._write("inc_failures", name, {"failure_count": BreakerRow.failure_count + 1})

    def reset_failure(self, name: str) -> None:
        self.mirror.reset_failure(name)
        self._write("reset_failure", name, {"failure_count": 0})


class RedisStore(_Mirrored):
    """Breakers as Redis hashes (`waimai:breaker:<name>`), for deployments that run Redis anyway."""

    kind = "redis"
    PREFIX = "waimai:breaker:"
    INDEX = "waimai:breakers"

    def __init__(self, url: str, *, timeout_s: float = 0.5) -> None:
        super().__init__()
        import redis

        self.redis = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                          decode_responses=True)
        self.ERRORS = (redis.RedisError, OSError)

    def _key(self, name: str) -> str:
        return self.PREFIX + name

    @staticmethod
    def _rec(name: str, h: dict[str, str]) -> BreakerRecord:
        opened = h.get("opened_at") or ""
        return BreakerRecord(name=name, state=h.get("state", "closed"), failure_count=int(h.get("failure_count", 0)),
                             opened_at=float(opened) if opened else None, threshold=int(h.get("threshold", 5)),
                             ttl_s=float(h.get("ttl_s", 10.0)),
                             changed_at=dt.datetime.fromtimestamp(float(h.get("changed_at", time.time())), dt.UTC))

    def record(self, name: str) -> BreakerRecord | None:
        try:
            h = self.redis.hgetall(self._key(name))
        except self.ERRORS as exc:
            self._failed("get", exc)
            return self.mirror.record(name)
        self._ok()
        if not h:
            return None
        rec = self._rec(name, h)  # type: ignore[arg-type]
        self.mirror.put(rec)
        return rec

    def records(self) -> list[BreakerRecord]:
        try:
            names = sorted(self.redis.smembers(self.INDEX))  # type: ignore[arg-type]
        except self.ERRORS as exc:
            self._failed("list", exc)
            return self.mirror.records()
        return [r for n in names if (r := self.record(str(n))) is not None]

    def _do(self, op: str, fn: Any) -> None:
        try:
            fn()
        except self.ERRORS as exc:
            self._failed(op, exc)
            return
        self._ok()

    def configure(self, name: str, threshold: int, ttl_s: float) -> None:
        self.mirror.configure(name, threshold, ttl_s)

        def go() -> None:
            key = self._key(name)
            self.redis.hsetnx(key, "state", "closed")
            self.redis.hsetnx(key, "failure_count", 0)
            self.redis.hsetnx(key, "changed_at", time.time())
            self.redis.hset(key, mapping={"threshold": threshold, "ttl_s": ttl_s})
            self.redis.sadd(self.INDEX, name)
        self._do("configure", go)

    def update_state(self, name: str, state: str, opened_at: float | None) -> None:
        self.mirror.update_state(name, state, opened_at)
        self._do("update_state", lambda: self.redis.hset(self._key(name), mapping={
            "state": state, "opened_at": "" if opened_at is None else opened_at, "changed_at": time.time()}))

    def inc_failures(self, name: str, failure_count: int) -> None:
        self.mirror.inc_failures(name, failure_count)
        self._do("inc_failures", lambda: self.redis.hincrby(self._key(name), "failure_count", 1))

    def reset_failure(self, name: str) -> None:
        self.mirror.reset_failure(name)
        self._do("reset_failure", lambda: self.redis.hset(self._key(name), "failure_count", 0))
