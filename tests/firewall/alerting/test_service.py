"""The alerting service in the running app: rules over the store, intake from a real Prometheus
Alertmanager and from PagerDuty-style events, acknowledgement by API and by signed link."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from tests.conftest import IN_CI, Api, make_settings
from tests.servers import free_port, serve
from waimai.app import create_app

TOKEN = "intake-token-for-tests"


@pytest.fixture
def svc_app(sqlite_url: str) -> Iterator[TestClient]:
    app = create_app(make_settings(sqlite_url, alert_ingest_token=TOKEN, public_url="http://waimai.test"),
                     background=False)
    with TestClient(app) as c:
        yield c


def test_rule_breach_in_the_store_becomes_an_alert_group(svc_app: TestClient) -> None:
    api = Api(svc_app)
    store, alerting = svc_app.app.state.metric_store, svc_app.app.state.alerting  # type: ignore[attr-defined]
    t = [dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)]
    alerting.clock = lambda: t[0]
    for _ in range(6):  # the gateway probe fails for half a minute, evaluated every 5 s
        store.write(t[0], {"dependency_up.payment_gateway": 0.0})
        alerting.evaluate()
        t[0] += dt.timedelta(seconds=5)
    groups = svc_app.get("/api/v1/alerts", headers=api.h("ops")).json()
    g = next(g for g in groups if any(a["name"] == "PaymentGatewayDown" for a in g["alerts"]))
    assert g["alerts"][0]["severity"] == "P1" and g["alerts"][0]["status"] == "firing"
    assert svc_app.get("/api/v1/alerts", headers=api.h("merchant")).status_code == 403
    r = svc_app.post("/api/v1/alerts/ack", params={"group": g["group"]}, headers=api.h("ops"))
    assert r.status_code == 200 and r.json()["acknowledged_by"].startswith("user:")
    audit = svc_app.get("/api/v1/ops/audit", headers=api.h("ops")).json()
    assert audit[0]["action"] == "alert.ack"


def test_signed_ack_link_over_http(svc_app: TestClient) -> None:
    from waimai.firewall.alerting.rules import Alert

    alerting = svc_app.app.state.alerting  # type: ignore[attr-defined]
    alerting.ingest([Alert(labels={"alertname": "X", "severity": "P2"}, annotations={}, status="firing",
                           starts_at=dt.datetime.now(dt.UTC))])
    key = next(iter(alerting.pipeline.groups))
    token = alerting.pipeline.ack_token(key, dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    assert svc_app.get("/api/v1/alerts/ack", params={"token": token + "x"}).status_code == 401
    r = svc_app.get("/api/v1/alerts/ack", params={"token": token})
    assert r.status_code == 200 and alerting.view().groups[key].acked_by == "signed-link"


def test_events_api_trigger_acknowledge_resolve(svc_app: TestClient) -> None:
    h = {"Authorization": f"Bearer {TOKEN}"}
    ev = {"routing_key": "r", "event_action": "trigger", "dedup_key": "sms-provider-down",
          "payload": {"summary": "SMS provider down", "source": "sms-probe", "severity": "critical"}}
    assert svc_app.post("/api/v1/alerts/ingest/events", json=ev).status_code == 401
    assert svc_app.post("/api/v1/alerts/ingest/events", json=ev, headers=h).json()["status"] == "success"
    alerting = svc_app.app.state.alerting  # type: ignore[attr-defined]

    def state():  # type: ignore[no-untyped-def]  # what the database holds now
        [st] = [s for s in alerting.view().alerts.values() if s.alert.name == "sms-provider-down"]
        return st

    assert state().alert.severity == "P1"
    r = svc_app.post("/api/v1/alerts/ingest/events", json={"event_action": "acknowledge",
                                                          "dedup_key": "sms-provider-down"}, headers=h)
    assert r.status_code == 200 and state().acked_by == "events-api"
    svc_app.post("/api/v1/alerts/ingest/events", json={"event_action": "resolve", "dedup_key": "sms-provider-down"},
                 headers=h)
    assert state().alert.status == "resolved"
    bad = svc_app.post("/api/v1/alerts/ingest/events", json={"event_action": "explode"}, headers=h)
    assert bad.status_code == 422


def test_real_alertmanager_posts_into_the_pipeline(sqlite_url: str, tmp_path: Path) -> None:
    am_bin = shutil.which("prometheus-alertmanager")
    if am_bin is None:
        if IN_CI:
            pytest.fail("CI=true needs Debian's prometheus-alertmanager (.ci/run installs it)")
        pytest.skip("prometheus-alertmanager not installed")
    port, am_port = free_port(), free_port()
    app = create_app(make_settings(sqlite_url, alert_ingest_token=TOKEN), background=False)
    cfg = {"route": {"receiver": "waimai", "group_by": ["alertname"], "group_wait": "1s", "group_interval": "1s",
                     "repeat_interval": "1h"},
           "receivers": [{"name": "waimai", "webhook_configs": [{
               "url": f"http://127.0.0.1:{port}/api/v1/alerts/ingest/alertmanager", "send_resolved": True,
               "http_config": {"authorization": {"type": "Bearer", "credentials": TOKEN}}}]}]}
    (tmp_path / "am.yml").write_text(yaml.safe_dump(cfg))
    with serve(app, port):
        am = subprocess.Popen([am_bin, f"--config.file={tmp_path / 'am.yml'}",
                               f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address=",
                               f"--storage.path={tmp_path / 'am-data'}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{am_port}"
            deadline = time.time() + 30
            while time.time() < deadline:
                try:
                    if httpx.get(f"{base}/-/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            r = httpx.post(f"{base}/api/v2/alerts", json=[{
                "labels": {"alertname": "PaymentGatewayDown", "severity": "critical", "component": "payment"},
                "annotations": {"summary": "gateway probe failing (from Prometheus)"}}])
            assert r.status_code == 200, r.text
            deadline = time.time() + 30
            got = []
            while time.time() < deadline and not got:
                got = [s for s in app.state.alerting.view().alerts.values() if s.alert.generator == "alertmanager"]
                time.sleep(0.2)
            assert got, "Alertmanager's webhook never reached the pipeline"
            a = got[0].alert
            assert a.name == "PaymentGatewayDown" and a.severity == "P1" and a.labels["component"] == "payment"
            assert a.annotations["am_group_key"]
        finally:
            am.terminate()
            am.wait(timeout=20)


NEW_RULES = """
groups:
  - name: custom
    rules:
      - alert: QueueTooLong
        expr: {kind: threshold, series: dispatch_backlog, op: ">", value: 3, window: 30s, agg: last}
        severity: P2
        labels: {component: delivery}
        summary: "{{ value }} orders wait for a rider"
"""


def test_rules_edited_via_api_apply_at_once_and_survive_a_restart(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, alert_ingest_token=TOKEN)
    with TestClient(create_app(settings, background=False)) as c:
        api = Api(c)
        bad = c.put("/api/v1/alerts/rules", json={"yaml": "groups: [{name: x, rules: [{alert: 1bad}]}]"},
                    headers=api.h("ops"))
        assert bad.status_code == 422
        assert c.put("/api/v1/alerts/rules", json={"yaml": NEW_RULES}, headers=api.h("merchant")).status_code == 403
        r = c.put("/api/v1/alerts/rules", json={"yaml": NEW_RULES}, headers=api.h("ops"))
        assert r.status_code == 200 and r.json()["rules"] == ["QueueTooLong"]
        svc = c.app.state.alerting  # type: ignore[attr-defined]
        now = dt.datetime.now(dt.UTC)
        c.app.state.metric_store.write(now, {"dispatch_backlog": 7.0})  # type: ignore[attr-defined]
        svc.clock = lambda: now + dt.timedelta(seconds=1)
        svc.evaluate()
        svc.clock = lambda: now + dt.timedelta(seconds=20)
        svc.evaluate()
        hist = c.get("/api/v1/alerts/history", headers=api.h("ops")).json()
        events = [h["event"] for h in hist]
        assert "rules:updated" in events and "notified:first" in events
        assert any(h["title"].startswith("QueueTooLong") for h in hist)
    with TestClient(create_app(settings, background=False)) as c:  # a restart
        names = c.get("/api/v1/alerts/rules", headers=Api(c).h("ops")).json()["rules"]
        assert names == ["QueueTooLong"]


def test_rules_page_refuses_invalid_rules_and_keeps_the_text(sqlite_url: str) -> None:
    with TestClient(create_app(make_settings(sqlite_url), background=False)) as c:
        c.post("/login", data={"phone": "13800000009", "password": "waimai-demo"})
        page = c.get("/ops/alerts/rules")
        assert page.status_code == 200 and "PaymentGatewayDown" in page.text
        r = c.post("/ops/alerts/rules", data={"text": "groups: [{name: x, rules: [{alert: Oops, expr: {kind: nope}}]}]"})
        assert r.status_code == 422 and "Oops" in r.text
        r = c.post("/ops/alerts/rules", data={"text": NEW_RULES})
        assert r.status_code == 200 and "QueueTooLong" in r.text
