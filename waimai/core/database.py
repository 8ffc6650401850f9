"""Engine, sessions and the declarative base shared by every domain's models."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: in-process lock only
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import JSON, DateTime, MetaData, Table, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator
from starlette.concurrency import run_in_threadpool

from waimai.config import Timeouts
from waimai.core.writer import GroupWriter

T = TypeVar("T")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC in and out, on SQLite (which stores naive text) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store timezone-aware UTC")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _lock_file_for(url: str) -> str | None:
    raw = url.split("///", 1)[-1].split("?", 1)[0]
    if raw in ("", ":memory:") or fcntl is None:
        return None
    return raw + ".writelock"


def pg_connect_args(url: str, t: Timeouts) -> dict[str, Any]:
    """libpq settings for `t`; whatever the URL itself sets wins (operators may tune per deployment)."""
    query = make_url(url).query
    out: dict[str, Any] = {}
    if "connect_timeout" not in query and t.connect_s:
        out["connect_timeout"] = t.connect_s
    if "options" not in query:
        opts = [f"-c {k}={v}" for k, v in (("statement_timeout", t.statement_ms), ("lock_timeout", t.lock_ms),
                                            ("idle_in_transaction_session_timeout", t.idle_in_transaction_ms)) if v]
        if opts:
            out["options"] = " ".join(opts)
    # Notice a peer that vanished (a primary killed with its host) within ~10 s instead of hours.
    for k, v in (("keepalives", 1), ("keepalives_idle", 5), ("keepalives_interval", 2), ("keepalives_count", 3)):
        if k not in query:
            out[k] = v
    return out


def is_connection_error(exc: BaseException) -> bool:
    """True when `exc` says the database could not be reached or dropped us (not a constraint, not a bug)."""
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        name = type(orig).__name__ if orig is not None else ""
        # psycopg: OperationalError (refused, reset, timeout), QueryCanceled (statement_timeout on a stuck
        # server), ReadOnlySqlTransaction (a standby not yet promoted, or a demoted primary).
        return name in ("OperationalError", "QueryCanceled", "ReadOnlySqlTransaction", "AdminShutdown",
                        "CannotConnectNow", "ConnectionTimeout")
    return False


def make_engine(url: str, *, echo: bool = False, timeouts: Timeouts | None = None) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and `BEGIN IMMEDIATE` for writers; PostgreSQL gets
    connect, statement and lock timeouts, TCP keepalives and a pre-ping (a connection to a server that was
    failed over is replaced at checkout, without a restart)."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 30, "isolation_level": None},
            hide_parameters=True,  # phones, hashes, proof codes never in an exception's text
            pool_size=8,
            max_overflow=16,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # Checkpoints (copying the WAL into the database, with an fsync) run in the background
            # job `Database.checkpoint`, never inside an order's commit where they stall the writer.
            cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.close()

        # SQLite has one writer at a time. Writers queue on a lock instead of SQLite's busy handler,
        # which polls with sleeps of up to 100 ms and wrecks tail latency: a thread lock inside the
        # process and, for several worker processes, an flock on a file beside the database (the
        # kernel wakes the next waiter the moment the holder commits).
        # A plain Lock, not an RLock: FastAPI may close a request's session (and so release the lock) on
        # another worker thread than the one that opened it, which an RLock refuses.
        write_lock = threading.Lock()
        lock_path = _lock_file_for(url)
        lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600) if lock_path else None

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # A deferred transaction that later writes can fail with SQLITE_BUSY that no timeout
            # cures; writers therefore take the write lock up front. Readers stay deferred.
            if conn.get_execution_options().get("readonly", False):
                conn.exec_driver_sql("BEGIN")
                return
            write_lock.acquire()
            if lock_fd is not None:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
            conn.info["holds_write_lock"] = True
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                _release(conn)
                raise

        def _release(conn: Any) -> None:
            if conn.info.pop("holds_write_lock", False):
                if lock_fd is not None:
                    fcntl.flock(lock_fd, fcntl.LOCK_UN)
                write_lock.release()

        event.listen(engine, "commit", _release)
        event.listen(engine, "rollback", _release)

        return engine
    return create_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True,
                         pool_timeout=(timeouts or Timeouts()).pool_wait_s,
                         connect_args=pg_connect_args(url, timeouts or Timeouts()), hide_parameters=True)


# Group-commit threads per PostgreSQL pool (see GroupWriter): placement is latency-bound on round trips.
PG_WRITER_THREADS = 4


class Database:
    """Owns the engine and hands out write and read-only sessions."""

    def __init__(self, url: str, *, timeouts: Timeouts | None = None) -> None:
        self.url = url
        self.engine = make_engine(url, timeouts=timeouts)
        # Set while the database is slow (firewall/resilience DbLatencyWatch): work leaves the event loop.
        self.slow = False
        # Set by the same watch while the database cannot be reached (wall clock of the first failed probe):
        # placement then spools at once instead of waiting on a timeout, pages serve last-known state.
        self.unreachable_since: float | None = None
        self._write = sessionmaker(self.engine, expire_on_commit=False)
        self._read = sessionmaker(self.engine.execution_options(readonly=True), expire_on_commit=False)
        # Hot writes (order placement) queue here and are committed many per transaction by one
        # thread per pool, off the event loop (waimai.core.writer).
        self.writer = GroupWriter(self.engine, threads=1 if self.dialect == "sqlite" else PG_WRITER_THREADS)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def reachable(self) -> bool:
        return self.unreachable_since is None

    def session(self) -> Session:
        return self._write()

    def read_session(self) -> Session:
        return self._read()

    def checkpoint(self) -> None:
        """Fold the SQLite WAL into the database file without blocking writers (PASSIVE)."""
        path = self.url.split("///", 1)[-1]
        if self.dialect != "sqlite" or path in ("", ":memory:"):
            return
        conn = sqlite3.connect(path, timeout=1.0)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()

    def dispose(self) -> None:
        self.writer.stop()
        self.engine.dispose()


async def run_db(database: Database, fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking database *read* from the event loop: inline on SQLite (microsecond statements; WAL
    readers never wait for the writer), in the thread pool on a networked database and whenever the
    database is slow. Writes go through `database.writer` (core/writer.py), never through here."""
    if database.dialect == "sqlite" and not database.slow:
        return fn(*args)
    return await run_in_threadpool(fn, *args)


def table_of(model: type[Base]) -> Table:
    """The Core table of a mapped class, typed as such (for prebuilt hot-path statements)."""
    return cast(Table, model.__table__)
