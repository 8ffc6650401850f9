"""Reliability: kill -9 the primary of a pg_auto_failover formation under order load (short run of
bench/db_failover.py). The standby is promoted, the running process reconnects through its multi-host
URL without a restart, orders acknowledged meanwhile were spooled and are confirmed, and the ledger
checked against the database holds: nothing lost, nothing twice."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import IN_CI

pytestmark = pytest.mark.xdist_group("reliability")


def test_primary_killed_standby_takes_over_nothing_lost_or_doubled() -> None:
    if shutil.which("pg_autoctl") is None:
        msg = "pg_autoctl not installed (apt-get install postgresql-15-auto-failover; .ci/run installs it)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    from waimai.drill.dbfail import run

    f = run(standby=True, before_s=5, after_s=15, workers=3, progress=lambda m: None)
    print(f"\n{f}")
    assert f["orders_acknowledged"] > 20
    assert f["lost"] == 0 and f["duplicated"] == 0, f
    assert f["spooled_still_pending"] == 0, f
    assert f["s_kill_to_first_order_placed"] is not None and f["s_kill_to_first_order_placed"] <= 30, f
