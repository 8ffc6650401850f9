"""The one event path: subscribers registered in one registry, delivered by one dispatcher from the outbox.

Producers write events with `waimai.core.outbox.emit` (placement through its prepared insert) in the same
transaction as the change. Nothing else carries a cross-domain reaction: no hook lists, no session
listeners. `waimai.subscribers.build_registry` lists every subscriber in one place; `Dispatcher` delivers.

Delivery, by the worker leader (a thread woken by PostgreSQL's `LISTEN waimai_outbox` — an insert trigger
notifies at commit — or a short poll on SQLite):

- undelivered rows are read in id order; a row whose earlier sibling (same topic family and key, e.g. the
  same order) is waiting for a retry is held, so each order's events reach a subscriber in order;
- each subscriber runs in a savepoint of the batch's transaction, and its delivery row is written in that
  same savepoint: a subscriber's database effects and "delivered" commit together, so a retry re-runs only
  the subscribers that failed (effects outside the database, such as the live-tracking push, are at least
  once: a crash between the push and the commit repeats the push);
- a failed row is retried after 1, 2, 4 … s (capped), and dead-lettered after `max_attempts`; ops see dead
  letters on /ops/events and retry or purge them (audited);
- delivered rows are purged after the retention period.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, TypeVar

import structlog
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from waimai.core import audit, uow
from waimai.core.database import Database, utcnow
from waimai.core.errors import Conflict, NotFound
from waimai.core.outbox import OutboxDelivery, OutboxEvent

log = structlog.get_logger(__name__)
CHANNEL = "waimai_outbox"


@dataclass(frozen=True)
class Event:
    """What a subscriber receives: the outbox row, read-only."""

    id: int
    topic: str
    key: str
    payload: dict[str, Any]
    created_at: dt.datetime


Handler = Callable[[Session, Event], None]
H = TypeVar("H", bound=Handler)


@dataclass(frozen=True)
class Subscriber:
    name: str
    topics: tuple[str, ...]  # exact topics or shell patterns (`order.*`)
    handler: Handler

    def wants(self, topic: str) -> bool:
        return any(fnmatchcase(topic, t) for t in self.topics)


class Registry:
    """The subscribers of one app, filled once at composition (`waimai.subscribers.build_registry`)."""

    def __init__(self) -> None:
        self._subs: dict[str, Subscriber] = {}
        self._by_topic: dict[str, tuple[Subscriber, ...]] = {}

    def add(self, name: str, topics: tuple[str, ...] | list[str], handler: Handler) -> Subscriber:
        if name in self._subs:
            raise ValueError(f"subscriber {name!r} is registered twice")
        if not topics:
            raise ValueError(f"subscriber {name!r} names no topic")
        sub = Subscriber(name=name, topics=tuple(topics), handler=handler)
        self._subs[name] = sub
        self._by_topic.clear()
        return sub

    def subscribe(self, *topics: str, name: str) -> Callable[[H], H]:
        """Decorator form of `add`: `@registry.subscribe("order.*", name="tracking.status")`."""
        def register(fn: H) -> H:
            self.add(name, topics, fn)
            return fn
        return register

    def for_topic(self, topic: str) -> tuple[Subscriber, ...]:
        subs = self._by_topic.get(topic)
        if subs is None:
            subs = self._by_topic[topic] = tuple(s for s in self._subs.values() if s.wants(topic))
        return subs

    def names(self) -> list[str]:
        return list(self._subs)

    def __iter__(self) -> Iterator[Subscriber]:
        return iter(self._subs.values())

    def __len__(self) -> int:
        return len(self._subs)


def _block_key(topic: str, key: str) -> tuple[str, str] | None:
    return (topic.split(".", 1)[0], key) if key else None


@dataclass
class Dispatcher:
    db: Database
    registry: Registry
    max_attempts: int = 8
    retention: dt.timedelta = dt.timedelta(hours=72)
    backoff_s: float = 1.0
    backoff_max_s: float = 300.0
    batch: int = 200
    poll_s: float = 0.2
    database_url: str | None = None  # PostgreSQL: LISTEN for the insert trigger's wake-ups
    last_run_at: dt.datetime | None = None
    last_error: str | None = None
    totals: Counter[str] = field(default_factory=Counter)
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _listen_conn: Any = None
    _round: threading.Lock = field(default_factory=threading.Lock)

    # -- delivering ---------------------------------------------------------------------------------
    def run_once(self, now: dt.datetime | None = None) -> dict[str, int]:
        """Deliver every due row (in batches); returns counts of delivered, retried, dead and held rows."""
        stats: Counter[str] = Counter()
        with self._round:  # the wake-up thread and a caller (the job, a test) never deliver at once
            now = now or utcnow()
            after = 0  # page by id: held rows never make a round loop, and rows behind them still get their turn
            while True:
                ids, waiting = self._due(now, after)
                if not ids:
                    break
                self._deliver(ids, waiting, now, stats)
                if len(ids) < self.batch:
                    break
                after = ids[-1]
            self.last_run_at = utcnow()
            self.totals.update(stats)
        return dict(stats)

    def _due(self, now: dt.datetime, after: int) -> tuple[list[int], set[tuple[str, str]]]:
        undelivered = (OutboxEvent.published_at.is_(None), OutboxEvent.dead_at.is_(None))
        with self.db.read_session() as s:  # look before taking the write lock: most rounds find nothing
            ids = list(s.scalars(select(OutboxEvent.id).where(
                *undelivered, OutboxEvent.id > after,
                (OutboxEvent.next_attempt_at.is_(None)) | (OutboxEvent.next_attempt_at <= now))
                .order_by(OutboxEvent.id).limit(self.batch)))
            if not ids:
                return [], set()
            # Held: rows after an earlier one of the same key that waits for its retry, or that was held itself
            # on an earlier page (still undelivered, with an id below this page).
            waiting = s.execute(select(OutboxEvent.topic, OutboxEvent.key).where(
                *undelivered, OutboxEvent.id < ids[-1],
                (OutboxEvent.next_attempt_at > now) | (OutboxEvent.id <= after))).all()
        return ids, {k for t, key in waiting if (k := _block_key(t, key)) is not None}

    def _deliver(self, ids: list[int], blocked: set[tuple[str, str]], now: dt.datetime,
                 stats: Counter[str]) -> None:
        with uow.unit_of_work(self.db) as s:
            # Events nobody subscribes to (an order placed, a rider assigned): one UPDATE marks them delivered,
            # with no row loaded (placements are the busiest topic, and their writer shares the database).
            topics = s.execute(select(OutboxEvent.id, OutboxEvent.topic).where(
                OutboxEvent.id.in_(ids), OutboxEvent.published_at.is_(None), OutboxEvent.dead_at.is_(None))).all()
            wanted = {i: bool(self.registry.for_topic(t)) for i, t in topics}
            quiet = [i for i, w in wanted.items() if not w]
            if quiet:
                s.execute(update(OutboxEvent).where(OutboxEvent.id.in_(quiet), OutboxEvent.published_at.is_(None))
                          .values(published_at=now, last_error=None, next_attempt_at=None)
                          .execution_options(synchronize_session=False))
                stats["delivered"] += len(quiet)
            ids = [i for i, w in wanted.items() if w]
            if not ids:
                return
            # Read again under the write lock: a second leader (a partition's short overlap) may have been here.
            # On PostgreSQL the rows stay locked until the commit, and another dispatcher skips them.
            rows = list(s.scalars(select(OutboxEvent).where(OutboxEvent.id.in_(ids), OutboxEvent.published_at.is_(None),
                                                            OutboxEvent.dead_at.is_(None)).order_by(OutboxEvent.id)
                                  .with_for_update(skip_locked=True)))
            done = {(d.event_id, d.subscriber): d
                    for d in s.scalars(select(OutboxDelivery).where(OutboxDelivery.event_id.in_(ids)))}
            for row in rows:
                bk = _block_key(row.topic, row.key)
                if bk is not None and bk in blocked:
                    stats["held"] += 1
                    continue
                errors = self._run_subscribers(s, row, done, now)
                if not errors:
                    row.published_at, row.last_error, row.next_attempt_at = now, None, None
                    stats["delivered"] += 1
                    continue
                row.attempts = (row.attempts or 0) + 1
                row.last_error = "; ".join(errors)[:300]
                if row.attempts >= self.max_attempts:
                    row.dead_at = now
                    stats["dead"] += 1
                    log.error("event_dead_lettered", event_id=row.id, topic=row.topic, attempts=row.attempts,
                              error=row.last_error)
                else:
                    row.next_attempt_at = now + dt.timedelta(seconds=self.backoff(row.attempts))
                    stats["retried"] += 1
                    if bk is not None:
                        blocked.add(bk)

    def _run_subscribers(self, s: Session, row: OutboxEvent, done: dict[tuple[int, str], OutboxDelivery],
                         now: dt.datetime) -> list[str]:
        errors: list[str] = []
        event = Event(id=row.id, topic=row.topic, key=row.key, payload=dict(row.payload or {}),
                      created_at=row.created_at)
        for sub in self.registry.for_topic(row.topic):
            d = done.get((row.id, sub.name))
            if d is not None and d.status == "delivered":
                continue  # delivered on an earlier attempt: not again
            error: str | None = None
            try:
                with s.begin_nested():
                    sub.handler(s, event)
                    s.flush()
            except Exception as exc:  # noqa: BLE001 - one subscriber's failure is recorded, the rest go on
                error = f"{exc.__class__.__name__}: {exc}"[:250]
                errors.append(f"{sub.name}: {error}")
                log.warning("event_subscriber_failed", event_id=row.id, topic=row.topic, subscriber=sub.name,
                            error=error)
            if d is None:
                d = done[(row.id, sub.name)] = OutboxDelivery(event_id=row.id, subscriber=sub.name, attempts=0)
                s.add(d)
            d.status = "failed" if error else "delivered"
            d.attempts = (d.attempts or 0) + 1
            d.last_error, d.updated_at = error, now
        return errors

    def backoff(self, attempts: int) -> float:
        return float(min(self.backoff_s * 2 ** max(attempts - 1, 0), self.backoff_max_s))

    def purge(self, now: dt.datetime | None = None) -> int:
        """Delete delivered rows older than the retention period (and their delivery records)."""
        cutoff = (now or utcnow()) - self.retention
        with uow.unit_of_work(self.db) as s:
            n = purge_delivered(s, cutoff)
        if n:
            log.info("outbox_purged", rows=n, before=cutoff.isoformat())
        return n

    # -- running in the background ------------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def start(self, leads: Callable[[], bool]) -> None:
        """Deliver whenever woken (or every `poll_s`) while `leads()` — the worker role's leadership."""
        self._stop.clear()
        self._threads = [threading.Thread(target=self._loop, args=(leads,), name="events-dispatch", daemon=True)]
        if self.database_url and self.database_url.startswith("postgresql"):
            self._threads.append(threading.Thread(target=self._listen, name="events-listen", daemon=True))
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        conn = self._listen_conn
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001, S110 - already broken
                pass
        for t in self._threads:
            t.join(timeout=5)
        self._threads = []

    def _loop(self, leads: Callable[[], bool]) -> None:
        pause = 0.0
        while not self._stop.is_set():
            self._wake.wait(max(self.poll_s, pause))
            self._wake.clear()
            if self._stop.is_set() or not leads():
                continue
            try:
                self.run_once()
                self.last_error, pause = None, 0.0
            except Exception as exc:  # noqa: BLE001 - the database may be away: try again, more slowly
                self.last_error = f"{exc.__class__.__name__}: {exc}"[:200]
                pause = min(max(pause * 2, 0.5), 5.0)
                log.warning("event_dispatch_failed", error=self.last_error, retry_s=pause)

    def _listen(self) -> None:
        import psycopg

        from waimai.core.leader import libpq_url

        assert self.database_url is not None
        backoff = 0.5
        while not self._stop.is_set():
            try:
                conn = psycopg.connect(libpq_url(self.database_url), autocommit=True, connect_timeout=3,
                                       application_name="waimai-events-listen")
                self._listen_conn = conn
                conn.execute(f"LISTEN {CHANNEL}")
                backoff = 0.5
                self._wake.set()  # anything committed while we were not listening
                while not self._stop.is_set():
                    for _n in conn.notifies(timeout=1.0):
                        self._wake.set()
            except Exception as exc:  # noqa: BLE001 - database gone or closing: the poll carries on meanwhile
                if self._stop.is_set():
                    break
                log.warning("events_listen_reconnect", error=exc.__class__.__name__, backoff_s=backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                conn_, self._listen_conn = self._listen_conn, None
                if conn_ is not None:
                    try:
                        conn_.close()
                    except Exception:  # noqa: BLE001, S110 - closing a broken connection
                        pass

    def status(self) -> dict[str, Any]:
        return {"subscribers": [{"name": s.name, "topics": list(s.topics)} for s in self.registry],
                "last_run_at": self.last_run_at.isoformat() if self.last_run_at else None,
                "last_error": self.last_error, "totals": dict(self.totals),
                "max_attempts": self.max_attempts, "retention_hours": self.retention.total_seconds() / 3600}


# -- ops: the dead-letter view, retry and purge -------------------------------------------------------------

def counts(db: Session) -> dict[str, int]:
    pending = db.scalar(select(func.count()).select_from(OutboxEvent).where(
        OutboxEvent.published_at.is_(None), OutboxEvent.dead_at.is_(None))) or 0
    dead = db.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.dead_at.is_not(None))) or 0
    delivered = db.scalar(select(func.count()).select_from(OutboxEvent).where(
        OutboxEvent.published_at.is_not(None))) or 0
    return {"pending": int(pending), "dead": int(dead), "delivered": int(delivered)}


def dead_letters(db: Session, limit: int = 100) -> list[dict[str, Any]]:
    rows = list(db.scalars(select(OutboxEvent).where(OutboxEvent.dead_at.is_not(None))
                           .order_by(OutboxEvent.id.desc()).limit(limit)))
    failed: dict[int, list[str]] = {}
    if rows:
        for d in db.scalars(select(OutboxDelivery).where(OutboxDelivery.event_id.in_([r.id for r in rows]),
                                                         OutboxDelivery.status == "failed")):
            failed.setdefault(d.event_id, []).append(d.subscriber)
    return [{"id": r.id, "topic": r.topic, "key": r.key, "payload": r.payload, "created_at": r.created_at,
             "attempts": r.attempts, "dead_at": r.dead_at, "last_error": r.last_error,
             "failed_subscribers": sorted(failed.get(r.id, []))} for r in rows]


def _dead(db: Session, event_id: int) -> OutboxEvent:
    row = db.get(OutboxEvent, event_id, with_for_update=True)
    if row is None:
        raise NotFound(f"Event {event_id} does not exist.", code="event_not_found")
    if row.dead_at is None:
        raise Conflict(f"Event {event_id} is not a dead letter.", code="event_not_dead")
    return row


def retry(db: Session, event_id: int, *, actor_id: int | None = None, actor_role: str = "system") -> OutboxEvent:
    """Give a dead letter its attempts back: the dispatcher delivers it to the subscribers that failed.
    Audited in the caller's transaction (the API and the console page alike)."""
    row = _dead(db, event_id)
    row.dead_at, row.next_attempt_at, row.attempts = None, None, 0
    audit.record(db, actor_id=actor_id, actor_role=actor_role, action="event.retry", target=str(event_id),
                 details={"topic": row.topic, "key": row.key})
    return row


def discard(db: Session, event_id: int, *, actor_id: int | None = None, actor_role: str = "system") -> OutboxEvent:
    """Purge one dead letter (ops decided its reaction is not owed any more); the audit entry keeps what it was."""
    row = _dead(db, event_id)
    audit.record(db, actor_id=actor_id, actor_role=actor_role, action="event.purge", target=str(event_id),
                 details={"topic": row.topic, "key": row.key, "payload": row.payload, "last_error": row.last_error})
    db.execute(delete(OutboxDelivery).where(OutboxDelivery.event_id == event_id))
    db.delete(row)
    return row


def purge_delivered(db: Session, before: dt.datetime) -> int:
    old = select(OutboxEvent.id).where(OutboxEvent.published_at.is_not(None), OutboxEvent.published_at < before)
    db.execute(delete(OutboxDelivery).where(OutboxDelivery.event_id.in_(old.scalar_subquery())),
               execution_options={"synchronize_session": False})
    res = db.execute(delete(OutboxEvent).where(OutboxEvent.published_at.is_not(None),
                                               OutboxEvent.published_at < before),
                     execution_options={"synchronize_session": False})
    return int(res.rowcount or 0)  # type: ignore[attr-defined]
