"""The key series describe the deployment: two real replicas on PostgreSQL with the default metric store
(the database). Orders are placed only at the api-only replica, which neither samples nor leads anything;
the worker leader (the other replica) still counts them, and both replicas answer /ops's queries alike."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.reliability.cluster import Replica, wait_until

pytestmark = [pytest.mark.xdist_group("reliability"), pytest.mark.slow,
              pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)]
BODY = {"merchant_id": 1, "delivery_point_id": 1, "items": [{"item_id": 5, "quantity": 1}], "payment_method": "cod"}
ORDERS = 30


def test_orders_at_a_non_leader_are_in_the_deployment_series(db_url: str, tmp_path: Path) -> None:
    eng = create_engine(db_url)
    with eng.begin() as conn:
        conn.execute(text("UPDATE merchants SET capacity = 1000000, opens_at = '00:00', closes_at = '24:00'"))
        conn.execute(text("UPDATE menu_items SET stock = NULL"))
    eng.dispose()
    env = {"WAIMAI_SAMPLE_INTERVAL_S": "1"}
    leader, api = Replica("all", db_url, tmp_path, env=env), Replica("api", db_url, tmp_path, roles="api", env=env)
    for r in (leader, api):
        del r.env["WAIMAI_METRICS_URL"]  # the default: on PostgreSQL the store is the database
    try:
        for r in (leader, api):
            r.start()
        for r in (leader, api):
            r.wait_ready(180)
        assert wait_until(lambda: leader.leads("worker"), 30)
        login = {"password": "waimai-demo"}
        cust = httpx.post(f"{api.url}/api/v1/auth/login", json={**login, "phone": "13800000001"}, timeout=30).json()
        ops = httpx.post(f"{api.url}/api/v1/auth/login", json={**login, "phone": "13800000009"}, timeout=30).json()
        h = {"Authorization": f"Bearer {cust['access_token']}"}
        start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
        time.sleep(3)  # both processes have contributed a baseline
        with httpx.Client(base_url=api.url, timeout=30, headers=h) as c:
            for _ in range(ORDERS):
                r = c.post("/api/v1/orders", json=BODY, headers={"Idempotency-Key": uuid.uuid4().hex})
                assert r.status_code == 201, r.text
                time.sleep(0.15)  # spread over several sample intervals, as a real minute's orders are
        time.sleep(5)
        oh = {"Authorization": f"Bearer {ops['access_token']}"}
        # up to a few seconds ago: a sample taken just before `to` may be written just after the first query
        until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=3)
        q = {"name": "orders_placed_per_min", "from": start.isoformat(), "to": until.isoformat()}

        def points(rep: Replica) -> list[list[float]]:
            got = httpx.get(f"{rep.url}/api/v1/metrics/query", params=q, headers=oh, timeout=30)
            assert got.status_code == 200, got.text
            return [list(p) for p in got.json()["points"]]

        at_leader, at_api = points(leader), points(api)
        # Each point is the rate over the leader's last sample interval (its own clock); the query gives whole
        # seconds, so one point's gap can read 2 s for an interval of 1.02 s. The mean gap is exact enough.
        mean_gap = (at_leader[-1][0] - at_leader[0][0]) / max(1, len(at_leader) - 1)
        counted = sum(p[1] for p in at_leader[1:]) * mean_gap / 60
        anomalies = [httpx.get(f"{rep.url}/api/v1/anomalies", headers=oh, timeout=30).json() for rep in (leader, api)]
    finally:
        for r in (leader, api):
            r.stop()
    assert at_leader == at_api, "the replicas disagree about the deployment's series"
    assert ORDERS * 0.5 <= counted <= ORDERS * 1.5, (counted, at_leader)
    assert anomalies[0] == anomalies[1]
    print(f"\n{ORDERS} orders placed at the api-only replica; the worker leader's series counts {counted:.1f}; "
          f"{len(at_leader)} points, identical on both replicas")
