"""Live tracking across replicas: PostgreSQL LISTEN/NOTIFY carries every event to every replica."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import DEMO_ACCOUNTS, DEMO_PASSWORD
from tests.platform.tracking.test_sse import _reader
from tests.reliability.cluster import Replica, wait_until
from waimai.platform.accounts.models import Role
from waimai.platform.tracking.broker import Broker, Event, _after
from waimai.platform.tracking.bus import PgBus

PG_ONLY = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def _follow(*args: object) -> None:
    """The SSE reader of test_sse, quiet when the replica goes away under it at the end of the test."""
    try:
        _reader(*args)  # type: ignore[arg-type]
    except httpx.HTTPError:
        pass


def test_resume_follows_ring_order_not_id_order() -> None:
    # Ids come from several replicas' clocks; every replica holds the ring in the same (commit) order.
    ring = [Event(10, "status", {}), Event(30, "status", {}), Event(20, "position", {}), Event(40, "status", {})]
    assert [e.id for e in _after(ring, 30)] == [20, 40]
    assert [e.id for e in _after(ring, 25)] == [30, 40]  # left the ring: everything newer
    assert _after(ring, None) == []


@PG_ONLY
def test_brokers_on_one_database_share_events(db_url: str) -> None:
    a, b = Broker(), Broker()
    buses = [PgBus(db_url, br.ingest_remote) for br in (a, b)]
    for br, bus in zip((a, b), buses, strict=True):
        br.bus = bus
        bus.start()
    try:
        assert all(bus.listening.wait(5) for bus in buses)
        sent = a.publish(7, "status", {"status": "accepted"})
        b.publish(7, "position", {"x": 1.0, "y": 2.0})
        for br in (a, b):  # both replicas, the publisher too, hold both events in the same order
            assert wait_until(lambda br=br: len(br._topics.get(7, None).ring) == 2 if 7 in br._topics else False, 5)
        ra, rb = (list(br._topics[7].ring) for br in (a, b))
        assert [(e.id, e.kind, e.data) for e in ra] == [(e.id, e.kind, e.data) for e in rb]
        assert next(e for e in ra if e.id == sent.id).data == {"order_id": 7, "status": "accepted"}
    finally:
        for bus in buses:
            bus.stop()


@PG_ONLY
def test_sse_client_on_one_replica_follows_an_order_changed_on_another(db_url: str, tmp_path: Path) -> None:
    r1, r2 = (Replica(n, db_url, tmp_path).start() for n in ("r1", "r2"))
    try:
        r1.wait_ready()
        r2.wait_ready()
        c1 = httpx.Client(base_url=r1.url, timeout=10)
        heads = {}
        for role in (Role.customer, Role.merchant):
            tok = c1.post("/api/v1/auth/login", json={"phone": DEMO_ACCOUNTS[role][0], "password": DEMO_PASSWORD})
            heads[role.value] = {"Authorization": f"Bearer {tok.json()['access_token']}"}
        o = c1.post("/api/v1/orders", headers={**heads["customer"], "Idempotency-Key": uuid.uuid4().hex},
                    json={"merchant_id": 1, "delivery_point_id": 3, "items": [{"item_id": 5, "quantity": 1}],
                          "payment_method": "cod"}).json()
        path = f"/api/v1/orders/{o['id']}/events"
        got: list[dict] = []  # type: ignore[type-arg]
        stop = threading.Event()
        threading.Thread(target=_follow, args=(r2.url, path, heads["customer"], got, stop), daemon=True).start()
        assert wait_until(lambda: got, 10), "no stream on replica 2"
        time.sleep(0.5)
        t0 = time.monotonic()
        assert c1.post(f"/api/v1/orders/{o['id']}/accept", headers=heads["merchant"]).status_code == 200
        assert wait_until(lambda: any(e.get("data", {}).get("status") == "accepted" for e in got), 5), got
        latency = time.monotonic() - t0
        c1.post(f"/api/v1/orders/{o['id']}/preparing", headers=heads["merchant"])
        assert wait_until(lambda: any(e.get("data", {}).get("status") == "preparing" for e in got), 5), got
        print(f"\naccepted on replica 1 → SSE client on replica 2 in {latency * 1000:.0f} ms")
        stop.set()

        # Replica 1 heard the same events in the same order: a client resumes there with Last-Event-ID.
        accepted = next(e for e in got if e.get("data", {}).get("status") == "accepted")
        resumed: list[dict] = []  # type: ignore[type-arg]
        stop2 = threading.Event()
        threading.Thread(target=_follow, args=(r1.url, path, {**heads["customer"], "Last-Event-ID": str(accepted["id"])},
                                               resumed, stop2), daemon=True).start()
        assert wait_until(lambda: any(e.get("data", {}).get("status") == "preparing" for e in resumed), 5), resumed
        assert all(e.get("data", {}).get("status") != "accepted" for e in resumed)
        stop2.set()
    finally:
        r1.stop()
        r2.stop()


@PG_ONLY
def test_status_events_keep_flowing_when_the_worker_leader_is_killed(db_url: str, tmp_path: Path) -> None:
    # The dispatcher runs on the worker leader; its state is the outbox. Kill -9 the leader: the survivor takes
    # the role over and delivers what was written after the kill.
    r1, r2 = (Replica(n, db_url, tmp_path).start() for n in ("r1", "r2"))
    try:
        r1.wait_ready()
        r2.wait_ready()
        assert wait_until(lambda: r1.leads("worker") or r2.leads("worker"), 15), "no worker leader"
        leader, survivor = (r1, r2) if r1.leads("worker") else (r2, r1)
        c = httpx.Client(base_url=survivor.url, timeout=10)
        heads = {}
        for role in (Role.customer, Role.merchant):
            tok = c.post("/api/v1/auth/login", json={"phone": DEMO_ACCOUNTS[role][0], "password": DEMO_PASSWORD})
            heads[role.value] = {"Authorization": f"Bearer {tok.json()['access_token']}"}
        o = c.post("/api/v1/orders", headers={**heads["customer"], "Idempotency-Key": uuid.uuid4().hex},
                   json={"merchant_id": 1, "delivery_point_id": 3, "items": [{"item_id": 5, "quantity": 1}],
                         "payment_method": "cod"}).json()
        got: list[dict] = []  # type: ignore[type-arg]
        stop = threading.Event()
        threading.Thread(target=_follow, args=(survivor.url, f"/api/v1/orders/{o['id']}/events", heads["customer"],
                                               got, stop), daemon=True).start()
        assert wait_until(lambda: got, 10), "no stream on the survivor"
        leader.kill9()
        t0 = time.monotonic()
        assert c.post(f"/api/v1/orders/{o['id']}/accept", headers=heads["merchant"]).status_code == 200
        assert wait_until(lambda: any(e.get("data", {}).get("status") == "accepted" for e in got), 20), \
            (got, survivor.tail())
        print(f"\nworker leader killed → status delivered by the survivor in {time.monotonic() - t0:.1f} s")
        assert survivor.leads("worker")
        stop.set()
    finally:
        r1.stop()
        r2.stop()
