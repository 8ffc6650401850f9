"""Outbound-call guards: retry budget, bulkhead, purgatory breakers with shared state, events, metrics."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from waimai.core.database import Database
from waimai.core.outbound.breakers import MemoryStore
from waimai.core.outbound.policy import (
    Bulkhead,
    BulkheadFull,
    CircuitOpen,
    Policy,
    Resilience,
    RetryBudget,
)
from waimai.core.outbox import OutboxEvent
from waimai.firewall.resilience.stores import DatabaseStore, RedisStore

FAST = Policy(attempts=3, wait_initial_s=0.001, wait_max_s=0.002, wait_jitter_s=0.001, failure_threshold=3,
              open_s=0.3)


class Boom(Exception):
    pass


def _fail(counter: list[int]):  # type: ignore[no-untyped-def]
    def fn() -> None:
        counter.append(1)
        raise Boom("down")
    return fn


def test_retry_budget_caps_retries_to_a_share_of_calls() -> None:
    now = [0.0]
    b = RetryBudget(ratio=0.1, min_per_s=0.0, window_s=10, clock=lambda: now[0])
    for _ in range(50):
        b.record_call()
    taken = sum(b.try_spend() for _ in range(20))
    assert taken == 5  # 10% of 50 calls
    now[0] = 11.0  # the window moved on: nothing left to spend until calls come in
    assert not b.available()
    b.record_call()
    assert not b.try_spend()  # 0.1 of one call rounds below one retry


def test_budget_refuses_retries_once_spent() -> None:
    res = Resilience(MemoryStore(), default=Policy(attempts=5, wait_initial_s=0.001, wait_max_s=0.001,
                                                   wait_jitter_s=0, retry_ratio=0.0, min_retries_per_s=0.3,
                                                   budget_window_s=10, failure_threshold=100))
    dep = res.dependency("svc")
    tries: list[int] = []
    for _ in range(3):
        with pytest.raises(Boom):
            dep.call(_fail(tries), retry_on=Boom)
    # three calls, floor of 0.3/s over 10 s = 3 retries in all, not 3 x 4
    assert len(tries) == 3 + 3


def test_bulkhead_bounds_concurrency() -> None:
    bh = Bulkhead("slow", max_concurrent=2, acquire_timeout_s=0.01)
    inside = threading.Barrier(3)
    release = threading.Event()

    def hold() -> None:
        with bh.slot():
            inside.wait()
            release.wait(5)

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for t in threads:
        t.start()
    inside.wait()
    with pytest.raises(BulkheadFull):
        with bh.slot():
            pass
    release.set()
    for t in threads:
        t.join()
    with bh.slot():
        pass


def test_breaker_opens_refuses_then_trial_closes_it() -> None:
    events: list[tuple[str, str, str, str]] = []
    res = Resilience(MemoryStore(), default=FAST, on_change=[lambda *a: events.append(a)])
    dep = res.dependency("gw")
    tries: list[int] = []
    for _ in range(3):
        with pytest.raises(Boom):
            dep.call(_fail(tries), retry_on=Boom)
    assert res.store.record("gw").state == "opened"  # type: ignore[union-attr]
    n = len(tries)
    with pytest.raises(CircuitOpen) as refused:
        dep.call(_fail(tries), retry_on=Boom)
    assert len(tries) == n, "an open breaker must not call the dependency"
    assert 0 < refused.value.retry_after_s <= 0.3
    gauge = REGISTRY.get_sample_value("waimai_circuit_breaker_state", {"dependency": "gw"})
    assert gauge == 2
    time.sleep(0.35)
    assert dep.call(lambda: "ok", retry_on=Boom) == "ok"
    assert res.store.record("gw").state == "closed"  # type: ignore[union-attr]
    assert [e[2] for e in events] == ["opened", "half-opened", "closed"]
    assert REGISTRY.get_sample_value("waimai_circuit_breaker_state", {"dependency": "gw"}) == 0


def test_refusals_that_prove_the_dependency_answered_do_not_open_it() -> None:
    res = Resilience(MemoryStore(), default=FAST)
    dep = res.dependency("strict")

    class Refused(Exception):
        pass

    def refuse() -> None:
        raise Refused("400")
    for _ in range(10):
        with pytest.raises(Refused):
            dep.call(refuse, retry_on=Boom)
    assert res.store.record("strict").state == "closed"  # type: ignore[union-attr]


def test_breaker_state_is_shared_by_replicas_through_the_database(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        a = Resilience(DatabaseStore(db), default=FAST)  # two replicas: two processes' registries
        b = Resilience(DatabaseStore(db), default=FAST)
        dep_a, dep_b = a.dependency("payment_gateway"), b.dependency("payment_gateway")
        a.store.flush()
        b.store.flush()
        tries: list[int] = []
        for _ in range(3):
            with pytest.raises(Boom):
                dep_a.call(_fail(tries), retry_on=Boom)
        a.store.flush()
        n = len(tries)
        with pytest.raises(CircuitOpen):  # replica B never saw a failure, yet it agrees
            dep_b.call(_fail(tries), retry_on=Boom)
        assert len(tries) == n
        assert [r.state for r in b.refresh()] == ["opened"]
        time.sleep(0.35)
        assert dep_b.call(lambda: 1, retry_on=Boom) == 1  # B's trial closes it for A too
        b.store.flush()
        assert a.store.record("payment_gateway").state == "closed"  # type: ignore[union-attr]
    finally:
        db.dispose()


def test_breaker_changes_are_events_in_the_outbox(sqlite_url: str) -> None:
    from fastapi.testclient import TestClient

    from tests.conftest import make_settings
    from waimai.app import create_app

    app = create_app(make_settings(sqlite_url, breaker_failure_threshold=2), background=False)
    with TestClient(app):
        res: Resilience = app.state.resilience
        res.force("payment_gateway", "opened", actor="ops:9")
        app.state.breaker_events.flush()
        with app.state.db.read_session() as s:
            ev = s.scalars(select(OutboxEvent).where(OutboxEvent.topic == "breaker.state_changed")).all()
        assert [(e.payload["dependency"], e.payload["state"], e.payload["actor"]) for e in ev] == [
            ("payment_gateway", "opened", "ops:9")]


def test_database_store_falls_back_to_memory_when_the_database_fails(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path / 'nothing-here.db'}")  # no tables: every query fails
    try:
        res = Resilience(DatabaseStore(db), default=FAST)
        dep = res.dependency("gw")
        tries: list[int] = []
        for _ in range(3):
            with pytest.raises(Boom):
                dep.call(_fail(tries), retry_on=Boom)
        res.store.flush()
        with pytest.raises(CircuitOpen):  # still protected, from the in-memory mirror
            dep.call(_fail(tries), retry_on=Boom)
        assert res.store.degraded  # type: ignore[attr-defined]
    finally:
        db.dispose()


def _redis_url() -> str | None:
    try:
        import redis

        r = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5)
        r.ping()
        r.close()
        return "redis://127.0.0.1:6379/0"
    except Exception:  # noqa: BLE001 - no server: skip
        return None


def test_breaker_state_is_shared_through_redis() -> None:
    url = _redis_url()
    if url is None:
        pytest.skip("no Redis at 127.0.0.1:6379")
    name = f"test.{uuid.uuid4().hex[:8]}"
    a, b = Resilience(RedisStore(url), default=FAST), Resilience(RedisStore(url), default=FAST)
    try:
        dep_a, dep_b = a.dependency(name), b.dependency(name)
        tries: list[int] = []
        for _ in range(3):
            with pytest.raises(Boom):
                dep_a.call(_fail(tries), retry_on=Boom)
        with pytest.raises(CircuitOpen):
            dep_b.call(_fail(tries), retry_on=Boom)
        assert b.store.record(name).state == "opened"  # type: ignore[union-attr]
    finally:
        store = a.store
        assert isinstance(store, RedisStore)
        store.redis.delete(store.PREFIX + name)
        store.redis.srem(store.INDEX, name)


def test_a_channel_behind_an_open_breaker_queues_and_sends_once_it_recovers() -> None:
    from waimai.firewall.alerting.channels.base import AlertMessage, DeliveryLog
    from waimai.firewall.alerting.channels.delivery import (
        ChannelConfig,
        Delivery,
        ManagedChannel,
        RetryPolicy,
        Sent,
        TransientError,
    )

    class Flaky(ManagedChannel):
        kind = "flaky"
        down = True
        attempts = 0

        def _attempt(self, delivery: Delivery, attempt: int) -> Sent:
            type(self).attempts += 1
            if self.down:
                raise TransientError("HTTP 503", 503)
            return Sent(200)

    log = DeliveryLog()
    ch = Flaky(ChannelConfig(retry=RetryPolicy(attempts=2, wait_initial_s=0, wait_max_s=0, wait_jitter_s=0)), log=log)
    res = Resilience(MemoryStore(), default=Policy(failure_threshold=2, open_s=0.3, retry_ratio=1.0))
    ch.use_dependency(res.dependency("channel.flaky"))

    def msg(i: int) -> AlertMessage:
        return AlertMessage(title=f"alert {i}", body_markdown="x", severity="P2", dedup_key=f"k{i}")
    assert not ch.send(msg(1)).ok and not ch.send(msg(2)).ok  # two failed deliveries open the breaker
    tried = Flaky.attempts
    r = ch.send(msg(3))
    assert r.queued and Flaky.attempts == tried, "no call while the breaker is open"
    assert ch.pending == 1 and ch.next_flush_at() is not None
    Flaky.down = False
    time.sleep(0.35)
    out = ch.flush()
    assert out is not None and out.ok and ch.pending == 0
    assert res.store.record("channel.flaky").state == "closed"  # type: ignore[union-attr]
    assert any(rec.event == "queued" and "circuit open" in (rec.error or "") for rec in log.records())
