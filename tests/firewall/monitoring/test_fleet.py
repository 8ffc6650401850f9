"""Metrics and anomaly signals of the deployment, not of one process: two stores on one file stand for two
replicas (each its own engine and instruments); the worker leader's figures add up both, and the signals
its watcher opens are what every replica lists — and what the next leader carries on."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram

from waimai.firewall.monitoring.anomaly import AnomalyWatcher, stored_signals
from waimai.firewall.monitoring.sampler import Contributor, FleetSampler, Sampler
from waimai.firewall.monitoring.store import MetricStore


class Proc:
    def __init__(self, url: str) -> None:
        self.store = MetricStore(url)
        self.reg = CollectorRegistry()
        self.orders = Counter("waimai_orders_placed_total", "orders", registry=self.reg)
        self.http = Histogram("waimai_http_request_duration_seconds", "t", registry=self.reg)


@pytest.fixture
def two(tmp_path: Path) -> tuple[Proc, Proc]:
    url = f"sqlite:///{tmp_path / 'metrics.db'}"
    return Proc(url), Proc(url)


def test_the_leader_samples_the_whole_deployment_once(two: tuple[Proc, Proc]) -> None:
    leader, other = two
    fleet = FleetSampler(leader.store, "leader", leader.reg)
    alone = Sampler(MetricStore("sqlite:///:memory:"), leader.reg)  # the old, per-process view
    helper = Contributor(other.store, "other", other.reg)
    t = 1_000_000.0
    for step in range(4):
        leader.orders.inc(3)
        other.orders.inc(9)
        for _ in range(3):
            leader.http.observe(0.01)
        for _ in range(9):
            other.http.observe(2.0)  # the slow replica: invisible to a per-process sampler
        helper.contribute(t)
        got, own = fleet.sample(t), alone.sample(t)
        if step:
            assert got["orders_placed_per_min"] == pytest.approx(12 * 12)  # 12 orders in 5 s, both replicas
            assert own["orders_placed_per_min"] == pytest.approx(3 * 12)
            assert got["http_latency_p95_ms"] > 1000 > own["http_latency_p95_ms"]
        t += 5
    # The figures are written once, into the shared store, and read the same from the other replica.
    assert other.store.latest("orders_placed_per_min").value == pytest.approx(144)  # type: ignore[union-attr]
    assert fleet.processes == 2
    # A replica restarts (its counters start again) and another stops contributing: no negative or stale sums.
    other.reg = CollectorRegistry()
    restarted = Counter("waimai_orders_placed_total", "orders", registry=other.reg)
    restarted.inc(2)
    Contributor(other.store, "other", other.reg).contribute(t)
    leader.orders.inc(3)
    assert fleet.sample(t)["orders_placed_per_min"] == pytest.approx(5 * 12)
    t += 60
    leader.orders.inc(6)
    assert fleet.sample(t)["orders_placed_per_min"] == pytest.approx(6) and fleet.processes == 1


def test_signals_are_stored_once_and_seen_and_carried_on_by_every_replica(two: tuple[Proc, Proc]) -> None:
    leader, other = two
    t = 1_000_000.0
    for i in range(40):  # steady orders, then a collapse
        leader.store.write(t + 5 * i, {"orders_placed_per_min": 40.0 + (i % 3)})
    for i in range(40, 44):
        leader.store.write(t + 5 * i, {"orders_placed_per_min": 0.0})
    # One detector forced on the series: this test is about where signals live, not which detector fits orders.
    watcher = AnomalyWatcher(leader.store, series={"orders_placed_per_min": 5.0}, detector="robust_seasonal")
    watcher._adopted = True  # noqa: SLF001 - it has been running all along: nothing to adopt or learn silently
    opened = watcher.step(t + 5 * 44)
    assert [s.series for s in opened] == ["orders_placed_per_min"]
    [seen] = stored_signals(other.store)  # another replica lists the same signal
    assert seen.series == "orders_placed_per_min" and seen.closed_at is None and seen.value == 0.0
    # The leader dies; the next one's watcher adopts the open signal and closes it when orders return.
    nxt = AnomalyWatcher(other.store, series={"orders_placed_per_min": 5.0}, detector="robust_seasonal")
    for i in range(45, 60):
        other.store.write(t + 5 * i, {"orders_placed_per_min": 41.0})
    assert nxt.step(t + 5 * 60) == []  # nothing new opened: the collapse is the same signal
    [after] = stored_signals(leader.store)
    assert after.closed_at is not None
    assert stored_signals(leader.store, active=True) == []
