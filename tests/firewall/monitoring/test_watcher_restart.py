"""A restart does not re-log old anomaly signals: the first step learns the last hour silently."""

from __future__ import annotations

import time

from waimai.firewall.monitoring.anomaly import AnomalyWatcher
from waimai.firewall.monitoring.store import MetricStore


def test_restart_learns_the_past_silently_and_still_judges_new_points(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = MetricStore(f"sqlite:///{tmp_path}/m.db")
    now = time.time() - 600
    t = now
    for i in range(100):  # a steady backlog with one wild jump in the middle
        t += 5
        store.write(t, {"dispatch_backlog": 80.0 if 60 <= i < 70 else 6.0 + (i % 3)})
    first = AnomalyWatcher(store, series={"dispatch_backlog": 5.0})
    first._adopted = True  # noqa: SLF001 - this one has been running all along (nothing to adopt or learn silently)
    opened = first.step(t)
    assert [s.series for s in opened] == ["dispatch_backlog"]
    again = AnomalyWatcher(store, series={"dispatch_backlog": 5.0})  # the process restarts
    assert again.step(t) == [] and not again.signals
    t += 5
    store.write(t, {"dispatch_backlog": 90.0})
    t += 5
    store.write(t, {"dispatch_backlog": 95.0})
    assert [s.series for s in again.step(t)] == ["dispatch_backlog"]  # new trouble is still seen
    sig = again.signals[-1]
    assert sig.expected_low >= 0
