"""Reliability: the database goes away (stopped, then frozen) under a real Waimai process.

The test builds its own PostgreSQL cluster (initdb on a free loopback port in a scratch directory;
never the shared server), so it can stop and SIGSTOP it. With the database gone, the process stays
alive and in rotation (readiness "degraded"), serves the status page, its API, /simple and banners
from its last-known copy, detects the outage within 15 s, takes cash-on-delivery orders into its
local spool (202, 待确认), keeps them across a kill -9 and replays each exactly once when the database
is back: confirmed, or refused (stock checked at replay) — each with a notice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import IN_CI
from tests.reliability.cluster import Replica, wait_until
from tests.reliability.procs import login

pytestmark = pytest.mark.xdist_group("reliability")
CUSTOMER, OPS = "13800000001", "13800000009"


@pytest.fixture
def own_pg() -> Iterator[tuple[Any, str]]:
    from waimai.drill.pgcluster import PgCluster, pg_bindir

    try:
        pg_bindir()
    except RuntimeError as exc:
        if IN_CI:
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    cluster = PgCluster().init()
    try:
        cluster.start()
        url = cluster.create_database("waimai")
        from waimai.drill.dbfail import seed

        seed(url)
        yield cluster, url
    finally:
        cluster.destroy()


def _sql(url: str, sql: str, **params: Any) -> list[Any]:
    eng = create_engine(url)
    try:
        with eng.begin() as c:
            res = c.execute(text(sql), params)
            return list(res.fetchall()) if res.returns_rows else []
    finally:
        eng.dispose()


def _order(c: httpx.Client, h: dict[str, str], item: int, *, key: str | None = None, method: str = "cod"
           ) -> httpx.Response:
    return c.post("/api/v1/orders", headers={**h, "Idempotency-Key": key or uuid.uuid4().hex},
                  json={"merchant_id": 1, "delivery_point_id": 1, "payment_method": method,
                        "items": [{"item_id": item, "quantity": 1}]})


def _wait_degraded(r: Replica, within_s: float) -> float | None:
    t0 = time.monotonic()
    def degraded() -> bool:
        try:
            return bool(httpx.get(r.url + "/readyz", timeout=3).json().get("status") == "degraded")
        except (httpx.HTTPError, ValueError):
            return False

    ok = wait_until(degraded, within_s, every=0.2)
    return time.monotonic() - t0 if ok else None


def test_outage_spools_orders_survives_kill_and_replays_once(own_pg: tuple[Any, str], tmp_path: Path) -> None:
    cluster, url = own_pg
    items = [row[0] for row in _sql(url, "SELECT id FROM menu_items WHERE merchant_id = 1 AND available "
                                         "AND CAST(options AS TEXT) = '[]' ORDER BY id LIMIT 2")]
    plenty, scarce = items
    _sql(url, "UPDATE menu_items SET stock = NULL WHERE id = :i", i=plenty)
    _sql(url, "UPDATE menu_items SET stock = 1 WHERE id = :i", i=scarce)
    env = {"WAIMAI_SPOOL_PATH": str(tmp_path / "spool.db"), "WAIMAI_DB_OUTAGE_AFTER_S": "2",
           "WAIMAI_SAMPLE_INTERVAL_S": "1"}
    rep = Replica("a", url, tmp_path, env=env).start()
    try:
        rep.wait_ready(120)
        c = httpx.Client(base_url=rep.url, timeout=15)
        cust = login(c, CUSTOMER)
        assert _order(c, cust, plenty).status_code == 201
        # the copies the outage will serve
        assert c.get("/api/v1/status?lang=zh_CN").status_code == 200
        assert c.get("/status").status_code == 200
        assert c.get("/simple").status_code == 200

        cluster.stop("immediate")
        detected = _wait_degraded(rep, 15)
        assert detected is not None, rep.tail()
        print(f"\noutage detected after {detected:.1f} s")
        assert c.get("/livez").status_code == 200
        assert c.get("/readyz/database").status_code == 503
        st = c.get("/api/v1/status?lang=zh_CN").json()
        assert st["stale"] is True and st["database"] == "unreachable"
        assert {x["id"]: x["status"] for x in st["components"]}["ordering"] in ("partial_outage", "major_outage")
        assert "数据库" in st["incidents"][0]["name"]
        page = c.get("/status")
        assert page.status_code == 200 and 'id="last-known"' in page.text
        assert c.get("/simple").status_code == 200

        # orders keep coming: cash on delivery into the spool, online payment refused honestly
        key = uuid.uuid4().hex
        first = _order(c, cust, plenty, key=key)
        assert first.status_code == 202, first.text
        assert first.json()["status"] == "pending_confirmation"
        again = _order(c, cust, plenty, key=key)
        assert again.status_code == 202 and again.json()["reference"] == first.json()["reference"]
        refs = [first.json()["reference"]] + [_order(c, cust, i).json()["reference"] for i in (plenty, scarce, scarce)]
        gw = _order(c, cust, plenty, method="gateway")
        assert gw.status_code == 503 and gw.json()["error"]["code"] == "database_unavailable"

        # killed with a full spool, restarted while the database is still down
        rep.kill9()
        rep.start()
        assert _wait_degraded(rep, 90) is not None, rep.tail()  # a start-up on a loaded machine
        assert c.get(f"/api/v1/orders/pending/{refs[0]}", headers=cust).json()["status"] == "pending_confirmation"
        assert len(c.get("/api/v1/orders/pending", headers=cust).json()) == 4

        cluster.start()
        t_back = time.monotonic()

        def settled() -> list[dict[str, Any]] | None:
            rows = [c.get(f"/api/v1/orders/pending/{r}", headers=cust).json() for r in refs]
            return rows if all(x.get("status") in ("confirmed", "refused") for x in rows) else None

        rows = wait_until(settled, 60, every=0.5)
        assert rows is not None, rep.tail()
        print(f"spool settled {time.monotonic() - t_back:.1f} s after the database returned")
        states = [x["status"] for x in rows]
        assert states[:3] == ["confirmed", "confirmed", "confirmed"] and states[3] == "refused", rows
        assert rows[3]["reason_code"] == "out_of_stock", rows[3]
        ids = [x["order_id"] for x in rows[:3]]
        assert len(set(ids)) == 3
        # exactly one order per acknowledged request: 1 before the outage + 3 confirmed, none twice
        n = _sql(url, "SELECT COUNT(*) FROM orders WHERE customer_id = (SELECT id FROM users WHERE phone = :p)",
                 p=CUSTOMER)[0][0]
        assert n == 4
        # one notice per spooled order (no incident); the customer's order placed before the outage was open,
        # so the outage's incident also tells them once per update (opened, then monitoring)
        notices = wait_until(lambda: _sql(url, "SELECT title FROM notices WHERE incident_id IS NULL AND user_id = "
                                                "(SELECT id FROM users WHERE phone = :p)", p=CUSTOMER) or None, 10)
        assert notices is not None and len(notices) == 4, notices
        assert sum("抱歉" in t[0] or "Sorry" in t[0] for t in notices) == 1
        # the incident is written once the database is back, and its notices go out after it (later on a busy machine)
        def told() -> list[Any]:
            return _sql(url, "SELECT n.incident_id FROM notices n JOIN incidents i ON i.id = n.incident_id "
                             "WHERE i.fault_key = 'database-unreachable' AND n.user_id = "
                             "(SELECT id FROM users WHERE phone = :p)", p=CUSTOMER)

        wait_until(lambda: len(told()) >= 2 or None, 30, every=0.5)
        assert len(told()) == 2, told()
        assert c.get("/readyz/database").status_code == 200
        # what could not be written during the outage: its incident on 下单, with the real onset
        inc = _sql(url, "SELECT status, components, onset_at <= detected_at FROM incidents "
                        "WHERE fault_key = 'database-unreachable'")
        assert len(inc) == 1 and inc[0][0] == "monitoring" and "ordering" in inc[0][1] and inc[0][2], inc
    finally:
        rep.stop()


def test_hung_database_is_an_outage(own_pg: tuple[Any, str], tmp_path: Path) -> None:
    """Accepts connections, answers nothing (SIGSTOP): detected, pages served, orders spooled, then replayed."""
    cluster, url = own_pg
    env = {"WAIMAI_SPOOL_PATH": str(tmp_path / "spool.db"), "WAIMAI_DB_OUTAGE_AFTER_S": "2"}
    item = _sql(url, "SELECT id FROM menu_items WHERE merchant_id = 1 AND available AND CAST(options AS TEXT) = '[]' "
                     "ORDER BY id LIMIT 1")[0][0]
    rep = Replica("h", url, tmp_path, env=env).start()
    try:
        rep.wait_ready(120)
        c = httpx.Client(base_url=rep.url, timeout=15)
        cust = login(c, CUSTOMER)
        assert c.get("/api/v1/status").status_code == 200
        cluster.freeze()
        try:
            detected = _wait_degraded(rep, 15)
            assert detected is not None, rep.tail()
            print(f"\nhang detected after {detected:.1f} s")
            t0 = time.monotonic()
            assert c.get("/api/v1/status").json()["stale"] is True
            assert c.get("/livez").status_code == 200
            r = _order(c, cust, item)
            assert r.status_code == 202, r.text
            assert time.monotonic() - t0 < 5  # answered from memory, not after a timeout
        finally:
            cluster.thaw()
        ref = r.json()["reference"]
        row = wait_until(lambda: (lambda x: x if x["status"] != "pending_confirmation" else None)(
            c.get(f"/api/v1/orders/pending/{ref}", headers=cust).json()), 60, every=0.5)
        assert row is not None and row["status"] == "confirmed", rep.tail()
    finally:
        rep.stop()
