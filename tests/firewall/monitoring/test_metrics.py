"""/metrics, the embedded store and its query API, health, and request-scoped logs."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Api, make_settings
from waimai.app import create_app
from waimai.firewall.monitoring.sampler import SERIES

LISTED = ["waimai_http_requests_total", "waimai_http_request_duration_seconds", "waimai_orders_placed_total",
          "waimai_orders", "waimai_payment_attempts_total", "waimai_dispatch_backlog_orders",
          "waimai_dispatch_assignment_latency_seconds", "waimai_riders_on_shift", "waimai_sse_connections",
          "waimai_db_query_duration_seconds", "waimai_event_loop_lag_seconds", "waimai_dependency_up",
          "waimai_dependency_probe_duration_seconds", "process_cpu_seconds_total", "process_resident_memory_bytes"]


@pytest.fixture
def mon(sqlite_url: str) -> TestClient:
    app = create_app(make_settings(sqlite_url, log_level="INFO", access_log="all"), background=False)
    with TestClient(app) as c:
        yield c  # type: ignore[misc]


def test_metrics_exposes_every_listed_series(mon: TestClient) -> None:
    from prometheus_client import REGISTRY

    api = Api(mon)
    labels = {"payment_method": "cod", "source": "app"}
    before = REGISTRY.get_sample_value("waimai_orders_placed_total", labels) or 0.0
    api.place()
    mon.app.state.probes.run()  # type: ignore[attr-defined]
    from waimai.firewall.monitoring.probes import refresh_business_gauges

    refresh_business_gauges(mon.app.state.db)  # type: ignore[attr-defined]
    body = mon.get("/metrics").text
    for name in LISTED:
        assert re.search(rf"^{name}(_bucket|_count|_sum)?[{{ ]", body, re.M), f"{name} missing from /metrics"
    assert 'route="/api/v1/orders",status="201"' in body
    assert f'waimai_orders_placed_total{{payment_method="cod",source="app"}} {before + 1}' in body
    assert 'waimai_orders{status="cod_confirmed"} 1.0' in body
    assert 'waimai_dependency_up{dependency="database"} 1.0' in body
    assert 'waimai_dependency_up{dependency="payment_gateway"} 0.0' in body  # nothing listens on :9


def test_sampler_writes_key_series_and_query_api_reads_them(mon: TestClient) -> None:
    api = Api(mon)
    sampler = mon.app.state.sampler  # type: ignore[attr-defined]
    sampler.sample()
    for _ in range(3):
        assert api.place().status_code == 201
    mon.app.state.probes.run()  # type: ignore[attr-defined]
    values = sampler.sample()
    assert values["orders_placed_per_min"] > 0
    assert values["http_latency_p95_ms"] > 0
    assert values["dependency_up.payment_gateway"] == 0
    r = mon.get("/api/v1/metrics/query", params={"name": "orders_placed_per_min"}, headers=api.h("ops"))
    assert r.status_code == 200, r.text
    pts = r.json()["points"]
    assert len(pts) == 1 and pts[0][1] == pytest.approx(values["orders_placed_per_min"])
    names = {s["name"] for s in mon.get("/api/v1/metrics/series", headers=api.h("ops")).json()}
    assert set(SERIES) <= names
    assert mon.get("/api/v1/metrics/query", params={"name": "x"}, headers=api.h("customer")).status_code == 403
    bad = mon.get("/api/v1/metrics/query", params={"name": "x", "from": "2026-01-02T00:00:00Z",
                                                   "to": "2026-01-01T00:00:00Z"}, headers=api.h("ops"))
    assert bad.status_code == 422


def test_store_rolls_up_and_expires(tmp_path: Path) -> None:
    from waimai.firewall.monitoring.store import MINUTE, QUARTER, RAW, MetricStore

    st = MetricStore(f"sqlite:///{tmp_path / 'm.db'}")
    t0 = 1_800_000_000 // 900 * 900
    for i in range(0, 1800, 5):
        st.write(t0 + i, {"s": float(i // 60)})
    st.rollup(t0 + 1800)
    minute = st.query("s", t0, t0 + 1799, 60)
    assert len(minute) == 30 and minute[3].value == 3.0
    assert st.count(QUARTER) == 2
    st.rollup(t0 + 3 * 86400)  # two days later the raw samples are gone, the rollups stay
    assert st.count(RAW) == 0 and st.count(MINUTE) == 30
    assert st.write(t0, {"nan": float("nan")}) == 0


def test_livez_and_readyz(mon: TestClient) -> None:
    assert mon.get("/livez").json()["status"] == "alive"
    assert mon.get("/readyz").status_code == 200
    mon.app.state.draining = True  # type: ignore[attr-defined]
    assert mon.get("/readyz").json()["status"] == "draining"
    mon.app.state.draining = False  # type: ignore[attr-defined]


def test_dependency_probes_on_the_api(mon: TestClient) -> None:
    api = Api(mon)
    deps = {d["name"]: d for d in mon.get("/api/v1/health/dependencies?fresh=true", headers=api.h("ops")).json()}
    assert deps["database"]["ok"] is True and deps["payment_gateway"]["ok"] is False
    assert "sms" not in deps  # not configured


def test_sms_provider_probe(sqlite_url: str) -> None:
    from tests.servers import serve
    from waimai.firewall.alerting.channels.standins import create_aliyun_sms_standin

    with serve(create_aliyun_sms_standin(access_keys={"k": "s"}, sign_names=["外卖"], templates={})) as url:
        app = create_app(make_settings(sqlite_url, sms_provider_url=url), background=False)
        with TestClient(app) as c:
            api = Api(c)
            deps = {d["name"]: d for d in c.get("/api/v1/health/dependencies?fresh=true", headers=api.h("ops")).json()}
            assert deps["sms"]["ok"] is True
    app = create_app(make_settings(sqlite_url, sms_provider_url="http://127.0.0.1:9"), background=False)
    with TestClient(app) as c:
        deps = {d["name"]: d for d in c.get("/api/v1/health/dependencies?fresh=true",
                                            headers=Api(c).h("ops")).json()}
        assert deps["sms"]["ok"] is False
        assert 'waimai_dependency_up{dependency="sms"} 0.0' in c.get("/metrics").text


def test_logs_of_one_request_by_its_id_and_no_phone_unmasked(mon: TestClient) -> None:
    api = Api(mon)
    rid = uuid.uuid4().hex
    r = mon.post("/api/v1/orders", headers=api.h("customer", **{"Idempotency-Key": uuid.uuid4().hex,
                                                                 "X-Request-ID": rid}),
                 json={"merchant_id": 1, "delivery_point_id": 1, "items": [{"item_id": 5, "quantity": 1}],
                       "payment_method": "cod", "note": "call me on 13912345678"})
    assert r.status_code == 201 and r.headers["x-request-id"] == rid
    oid = r.json()["id"]
    mon.post(f"/api/v1/orders/{oid}/accept", headers=api.h("merchant"))
    # A failed login carries the phone number in the request body and must not leak it either.
    mon.post("/api/v1/auth/login", json={"phone": "13812345678", "password": "wrong"})
    lines = mon.get("/api/v1/logs", params={"request_id": rid}, headers=api.h("ops")).json()
    assert lines and all(d["trace"]["id"] == rid for d in lines)
    assert {d["message"] for d in lines} >= {"request", "order_placed"}
    access = next(d for d in lines if d["message"] == "request")
    assert access["event"]["dataset"] == "waimai.access" and access["http"]["response"]["status_code"] == 201
    assert access["service"]["name"] == "waimai" and "@timestamp" in access
    by_order = mon.get("/api/v1/logs", params={"order_id": oid}, headers=api.h("ops")).json()
    assert {d["message"] for d in by_order} >= {"order_placed", "order_transition"}
    window = mon.get("/api/v1/logs", params={"since": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()},
                     headers=api.h("ops")).json()
    assert window == []
    raw = Path(mon.app.state.settings.log_file).read_text()  # type: ignore[attr-defined]
    assert raw.strip()
    for line in raw.splitlines():
        json.loads(line)
        assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", line), f"unmasked phone in: {line[:200]}"


def test_log_processor_masks_phones_and_secrets(tmp_path: Path) -> None:
    import structlog

    from waimai.core import logging as wlogging

    f = tmp_path / "l.jsonl"
    wlogging.configure(json_lines=True, level="INFO", file=f)
    structlog.get_logger().info("contact 13912345678", phone="+8613912345678", password="hunter2",
                                nested={"token": "abc", "note": "ring 15012341234"})
    doc = json.loads(f.read_text().splitlines()[-1])
    text = json.dumps(doc, ensure_ascii=False)
    assert "13912345678" not in text and "15012341234" not in text and "hunter2" not in text and "abc" not in text
    assert doc["message"] == "contact 139****5678"
    assert doc["waimai"]["phone"] == "+86139****5678" and doc["waimai"]["password"] == "***"


def test_logs_page_in_the_console(mon: TestClient) -> None:
    api = Api(mon)
    rid = uuid.uuid4().hex
    r = mon.post("/api/v1/orders", headers=api.h("customer", **{"Idempotency-Key": uuid.uuid4().hex,
                                                                 "X-Request-ID": rid}),
                 json={"merchant_id": 1, "delivery_point_id": 1, "items": [{"item_id": 5, "quantity": 1}],
                       "payment_method": "cod"})
    oid = r.json()["id"]
    mon.post("/login", data={"phone": "13800000009", "password": "waimai-demo"})
    page = mon.get("/ops/logs", params={"request_id": rid}).text
    assert "order_placed" in page and rid[:12] in page
    assert "order_placed" in mon.get("/ops/logs", params={"order_id": oid}).text
    assert "没有匹配的日志" in mon.get("/ops/logs", params={"request_id": "nope"}).text
