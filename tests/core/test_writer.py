"""Group commit (waimai.core.writer) on SQLite and PostgreSQL: many units in one transaction, each all
or nothing, every answer given only once its unit is committed; placements through it keep their
idempotency (a key placed twice in one batch is one order and one replay)."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import Connection, func, select, text

from waimai.core.database import Database
from waimai.core.deps import Principal
from waimai.core.outbox import OutboxEvent
from waimai.core.writer import GroupWriter
from waimai.platform.accounts.models import User
from waimai.platform.ordering import idempotency
from waimai.platform.ordering.models import IdempotencyRecord, Order
from waimai.platform.ordering.schemas import PlaceOrderIn


class Boom(Exception):
    pass


def _write(conn: Connection, v: str) -> str:
    conn.execute(text("INSERT INTO writer_probe (v) VALUES (:v)"), {"v": v})
    if v.startswith("bad"):
        raise Boom(v)  # after its write: the savepoint must take the row back
    return v


def _one_writer(url: str) -> Database:
    """A Database whose group writer has one thread (PostgreSQL's default has several), so what
    queues behind a busy writer lands in one batch."""
    database = Database(url)
    database.writer = GroupWriter(database.engine)
    return database


def _committed(database: Database) -> set[str]:
    with database.engine.connect() as conn:
        return {r[0] for r in conn.execute(text("SELECT v FROM writer_probe"))}


def test_a_batch_commits_once_and_a_failing_unit_alone_is_rolled_back(db_url: str) -> None:
    database = _one_writer(db_url)
    with database.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE writer_probe (v VARCHAR(40) PRIMARY KEY)")
    gate, inside = threading.Event(), threading.Event()

    def blocker(conn: Connection) -> str:
        inside.set()
        gate.wait(10)  # keeps the writer busy while the next units queue up behind it
        return _write(conn, "first")

    results: dict[str, Any] = {}
    seen_at_answer: dict[str, bool] = {}

    def caller(v: str) -> None:
        try:
            results[v] = database.writer.call(_write, v)
        except Boom as exc:
            results[v] = exc
        # The answer comes only after the commit: another connection already sees the row.
        seen_at_answer[v] = v in _committed(database)

    first = threading.Thread(target=lambda: results.setdefault("first", database.writer.call(blocker)))
    first.start()
    assert inside.wait(10)
    batches_before = database.writer.batches
    names = [f"ok{i}" for i in range(8)] + ["bad1"]
    threads = [threading.Thread(target=caller, args=(v,)) for v in names]
    for t in threads:
        t.start()
    while len(database.writer._queue) < len(names):  # all queued behind the blocker
        threading.Event().wait(0.01)
    gate.set()
    for t in [first, *threads]:
        t.join(10)
    assert isinstance(results["bad1"], Boom)
    assert all(results[v] == v for v in names if v.startswith("ok"))
    assert _committed(database) == {"first"} | {v for v in names if v.startswith("ok")}
    assert all(seen_at_answer[v] for v in names if v.startswith("ok"))
    # The nine queued units went in one transaction: two commits in all, the blocker's and theirs.
    assert database.writer.batches - batches_before == 2 and database.writer.units == 10
    database.dispose()


def test_placements_in_one_batch_keep_idempotency(db_url: str) -> None:
    database = _one_writer(db_url)
    with database.read_session() as s:
        uid = s.scalar(select(User.id).where(User.role == "customer").order_by(User.id))
    assert uid is not None
    customer = Principal(user_id=uid, role="customer")
    body = PlaceOrderIn(merchant_id=1, delivery_point_id=1, items=[{"item_id": 5, "quantity": 1}],  # type: ignore[list-item]
                        payment_method="cod")
    fp = idempotency.request_fingerprint(body.model_dump(mode="json"))
    ttl = dt.timedelta(hours=24)
    keys = [uuid.uuid4().hex for _ in range(6)]

    async def burst() -> list[Any]:
        # Twice each key, all queued before the writer runs: same-key pairs land in one transaction.
        calls = [idempotency.place(database, customer, body, k, fp, ttl) for k in keys + keys]
        return await asyncio.gather(*calls, return_exceptions=True)

    outcomes = asyncio.run(burst())
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    fresh = [o for o in outcomes if not o[2]]
    replays = [o for o in outcomes if o[2]]
    assert len(fresh) == len(keys) and len(replays) == len(keys)
    assert {o[0] for o in outcomes} == {201}
    assert {r[1][0] for r in replays} == {f[1][0] for f in fresh}  # each replay is its first answer
    with database.read_session() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == len(keys)
        assert s.scalar(select(func.count(func.distinct(IdempotencyRecord.order_id)))) == len(keys)
        assert s.scalar(select(func.count()).select_from(OutboxEvent)
                        .where(OutboxEvent.topic == "order.placed")) == len(keys)
    database.dispose()


def test_a_stopped_writer_refuses_new_work(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    assert database.writer.call(lambda conn: conn.execute(text("SELECT 1")).scalar()) == 1
    database.dispose()
    with pytest.raises(RuntimeError):
        database.writer.call(lambda conn: 1)


class _Deadlock(Exception):
    sqlstate = "40P01"  # what psycopg's DeadlockDetected carries


def test_a_unit_that_hits_a_deadlock_is_run_again(db_url: str) -> None:
    database = _one_writer(db_url)
    with database.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE writer_probe (v VARCHAR(40) PRIMARY KEY)")
    tries: dict[str, int] = {}

    def flaky(conn: Connection, v: str) -> str:
        tries[v] = tries.get(v, 0) + 1
        _write(conn, v)
        if tries[v] == 1:
            raise _Deadlock("deadlock detected")  # after its write: the retry must not find it twice
        return v

    gate, inside = threading.Event(), threading.Event()
    holder = threading.Thread(target=lambda: database.writer.call(lambda c: (inside.set(), gate.wait(10))))
    holder.start()
    assert inside.wait(10)
    results: dict[str, Any] = {}
    batch = [threading.Thread(target=lambda v=v: results.setdefault(v, database.writer.call(flaky, v)))
             for v in ("a", "b")]
    for t in batch:
        t.start()
    while len(database.writer._queue) < 2:
        threading.Event().wait(0.01)
    gate.set()
    for t in [holder, *batch]:
        t.join(10)
    alone = database.writer.call(flaky, "c")  # a batch of one retries its whole transaction
    assert results == {"a": "a", "b": "b"} and alone == "c"
    assert tries == {"a": 2, "b": 2, "c": 2}
    assert _committed(database) == {"a", "b", "c"}
    database.dispose()


def test_postgresql_keeps_several_batches_in_flight(db_url: str) -> None:
    database = Database(db_url)
    with database.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE writer_probe (v VARCHAR(40) PRIMARY KEY)")
    gate = threading.Event()
    inside = threading.Semaphore(0)

    def slow(conn: Connection, v: str) -> str:
        inside.release()
        gate.wait(10)
        return _write(conn, v)

    threads = [threading.Thread(target=database.writer.call, args=(slow, f"s{i}")) for i in range(2)]
    # The second unit is queued only once the first is inside its transaction: queued together, one
    # writer would take both as one group, and that says nothing about groups in flight.
    threads[0].start()
    first = inside.acquire(timeout=10)
    threads[1].start()
    # SQLite: one writer, so the second waits; PostgreSQL: both run at once in their own transactions.
    both = first and inside.acquire(timeout=1 if database.dialect == "sqlite" else 10)
    gate.set()
    for t in threads:
        t.join(10)
    assert both == (database.dialect == "postgresql")
    assert _committed(database) == {"s0", "s1"}
    database.dispose()
