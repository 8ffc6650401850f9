"""Group commit: one writer thread per connection pool commits many queued units of work at once.

A unit of work is a function `fn(conn, *args)` that writes through a Core `Connection` and either
returns or raises. The writer takes everything queued (up to `max_batch`), opens ONE transaction,
runs each unit inside its own savepoint — a unit that raises is rolled back alone, the others stay —
and commits once. Only after that commit is each caller told its result, so an answer never
announces a write that could still be lost. If the batch's BEGIN or COMMIT fails (nothing of it is
written), every unit is run again in a transaction of its own, so one bad unit cannot sink the rest.
A unit must therefore keep side effects outside the database (metrics, logs, HTTP) to its caller.

Why: on SQLite every commit is a WAL append (and the one write lock is taken once per batch, not
per order); on PostgreSQL every commit is a WAL flush that the client waits for. Batching turns
N of those into one. And because the waiting happens on this thread, an async request that
places an order never holds the event loop while another writer owns SQLite's lock.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from sqlalchemy.engine import Connection, Engine

T = TypeVar("T")
log = structlog.get_logger(__name__)


@dataclass(eq=False)
class _Unit:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    loop: asyncio.AbstractEventLoop | None = None
    afut: asyncio.Future[Any] | None = None
    cfut: Future[Any] | None = None
    result: Any = None
    error: BaseException | None = field(default=None)


class _RollBack(Exception):
    """The single unit of a one-unit batch failed: roll the transaction back, report its error."""


class _Retry(Exception):
    """The single unit of a one-unit batch hit a deadlock: roll back and run it again."""


# PostgreSQL's deadlock_detected and serialization_failure: the other side went on, so running the
# unit again succeeds. Batches of several processes can lock the same hot rows (stock) in another
# order; the database breaks the cycle by failing one statement, and its unit is simply re-run.
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})
TRANSIENT_RETRIES = 3


def is_transient(exc: BaseException) -> bool:
    state = getattr(exc, "sqlstate", None) or getattr(getattr(exc, "orig", None), "sqlstate", None)
    return state in TRANSIENT_SQLSTATES


class GroupWriter:
    """Queue of write units for one engine, committed in groups by dedicated threads.

    SQLite has one writer at a time, so one thread. On PostgreSQL a placement is a dozen round trips
    that one thread would make one after another (and with a busy server each waits milliseconds):
    a few threads, each committing its own groups, keep the round trips of several batches in flight.
    """

    def __init__(self, engine: Engine, *, max_batch: int = 128, threads: int = 1,
                 name: str = "waimai-writer") -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.threads = threads
        self.name = name
        self._queue: deque[_Unit] = deque()
        self._cv = threading.Condition(threading.Lock())
        self._workers: list[threading.Thread] = []
        self._stopping = False
        # Figures for the bench and /metrics-minded readers: batches committed and units in them.
        self.batches = 0
        self.units = 0

    # -- callers ---------------------------------------------------------------------------------
    async def submit(self, fn: Callable[..., T], *args: Any) -> T:
        """From the event loop: queue `fn(conn, *args)` and wait (without blocking the loop) for its commit."""
        loop = asyncio.get_running_loop()
        unit = _Unit(fn, args, loop=loop, afut=loop.create_future())
        self._put(unit)
        assert unit.afut is not None
        return await unit.afut  # type: ignore[no-any-return]

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """From a worker thread: queue `fn(conn, *args)` and block this thread until it is committed.

        Never call it while this thread holds a write transaction of its own on the same database
        (SQLite): the writer would wait for that lock and this thread for the writer.
        """
        unit = _Unit(fn, args, cfut=Future())
        self._put(unit)
        assert unit.cfut is not None
        return unit.cfut.result()  # type: ignore[no-any-return]

    def _put(self, unit: _Unit) -> None:
        with self._cv:
            if self._stopping:
                raise RuntimeError("the database writer is stopped")
            if not self._workers:  # started lazily: after fork, and only where something writes
                for i in range(self.threads):
                    t = threading.Thread(target=self._run, name=f"{self.name}-{i}", daemon=True)
                    t.start()
                    self._workers.append(t)
            self._queue.append(unit)
            self._cv.notify()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish what is queued, then end the thread."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
            workers = list(self._workers)
        for thread in workers:
            if thread is not threading.current_thread():
                thread.join(timeout)

    # -- the writer thread -----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._stopping:
                    self._cv.wait()
                if not self._queue:
                    return
                batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            self._commit_group(batch)
            self._deliver(batch)

    def _commit_group(self, batch: list[_Unit], retries: int = 0) -> None:
        try:
            with self.engine.begin() as conn:
                if len(batch) == 1:  # nothing to isolate it from: no savepoint round trips
                    self._attempt(conn, batch[0])
                    if batch[0].error is not None:
                        if is_transient(batch[0].error) and retries < TRANSIENT_RETRIES:
                            raise _Retry
                        raise _RollBack
                else:
                    for unit in batch:
                        self._attempt_in_savepoint(conn, unit)
        except _RollBack:
            return
        except _Retry:
            batch[0].error = None
            self._commit_group(batch, retries + 1)
            return
        except Exception as exc:  # noqa: BLE001 - BEGIN/COMMIT failed: nothing of the batch was written
            if len(batch) == 1:
                batch[0].result, batch[0].error = None, exc
                return
            log.warning("group_commit_failed", units=len(batch), error=exc.__class__.__name__)
            for unit in batch:  # each alone, so the one that cannot commit fails by itself
                unit.result, unit.error = None, None
                self._commit_group([unit])
            return
        self.batches += 1
        self.units += len(batch)

    @staticmethod
    def _attempt(conn: Connection, unit: _Unit) -> None:
        try:
            unit.result = unit.fn(conn, *unit.args)
        except Exception as exc:  # noqa: BLE001 - handed to the caller
            unit.error = exc

    @staticmethod
    def _attempt_in_savepoint(conn: Connection, unit: _Unit) -> None:
        for attempt in range(TRANSIENT_RETRIES + 1):
            sp = conn.begin_nested()
            try:
                unit.result = unit.fn(conn, *unit.args)
            except Exception as exc:  # noqa: BLE001 - handed to the caller; the rest of the batch stays
                sp.rollback()  # also frees the row locks the unit took after its savepoint
                unit.result, unit.error = None, exc
                if attempt < TRANSIENT_RETRIES and is_transient(exc):
                    unit.error = None
                    continue
                return
            sp.commit()
            return

    @staticmethod
    def _deliver(batch: list[_Unit]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Unit]] = {}
        for unit in batch:
            if unit.cfut is not None:
                if unit.error is not None:
                    unit.cfut.set_exception(unit.error)
                else:
                    unit.cfut.set_result(unit.result)
            elif unit.loop is not None:
                by_loop.setdefault(unit.loop, []).append(unit)
        for loop, units in by_loop.items():  # one wake-up per loop and batch, not one per unit
            try:
                loop.call_soon_threadsafe(_resolve, units)
            except RuntimeError:  # the loop has closed: nobody is waiting any more
                pass


def _resolve(units: list[_Unit]) -> None:
    for unit in units:
        fut = unit.afut
        if fut is None or fut.done():  # the request was cancelled (client gone): the write stands
            continue
        if unit.error is not None:
            fut.set_exception(unit.error)
        else:
            fut.set_result(unit.result)
