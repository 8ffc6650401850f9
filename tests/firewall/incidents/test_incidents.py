"""Incidents from alerts, their timeline and times, the commander's API, component status, the
status page's JSON/Atom/uptime, and notices to users — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import Api, make_settings
from tests.servers import serve
from waimai.app import create_app
from waimai.core.inbox import Notice
from waimai.firewall.alerting.channels.standins import create_aliyun_sms_standin
from waimai.firewall.alerting.rules import Alert
from waimai.firewall.incidents.models import Incident
from waimai.platform.accounts import service as accounts
from waimai.platform.accounts.models import User

NOW = dt.datetime.now(dt.UTC)


def alert(name: str, severity: str, component: str, status: str = "firing", *, onset_s: float = 0,
          kind: str = "threshold") -> Alert:
    ann = {"summary": f"{name} summary", "kind": kind}
    if onset_s:
        ann["onset_at"] = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=onset_s)).isoformat()
    return Alert(labels={"alertname": name, "severity": severity, "component": component}, annotations=ann,
                 status=status, starts_at=dt.datetime.now(dt.UTC))  # type: ignore[arg-type]


@pytest.fixture
def app_client(db_url: str) -> Iterator[tuple[TestClient, Api]]:
    app = create_app(make_settings(db_url), background=False)
    with TestClient(app) as c:
        yield c, Api(c)


def incidents_of(c: TestClient, api: Api, state: str = "all") -> list[dict]:  # type: ignore[type-arg]
    r = c.get(f"/api/v1/incidents?state={state}", headers=api.h("ops"))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def component(c: TestClient, name: str) -> str:
    return next(x["status"] for x in c.get("/api/v1/status").json()["components"] if x["id"] == name)


def test_alerts_of_one_fault_open_one_incident(app_client: tuple[TestClient, Api]) -> None:
    c, api = app_client
    svc = c.app.state.alerting  # type: ignore[attr-defined]
    svc.ingest([alert("PaymentFailureRateHigh", "P2", "payment", onset_s=20)])
    [inc] = incidents_of(c, api)
    assert (inc["severity"], inc["status"], inc["components"], inc["source"]) == ("P2", "investigating", ["payment"],
                                                                                    "alert")
    assert component(c, "payment") == "partial_outage"
    assert inc["mttd_s"] == pytest.approx(20, abs=2)
    # More alerts of the same fault join it; a P1 raises it; a P3 elsewhere opens nothing.
    svc.ingest([alert("PaymentGatewayDown", "P1", "payment"), alert("PaymentSLOBurn", "P2", "payment"),
                alert("DispatchBacklog", "P3", "delivery")])
    [inc] = incidents_of(c, api)
    assert inc["severity"] == "P1" and len(inc["alerts"]) == 3
    assert component(c, "payment") == "major_outage" and component(c, "delivery") == "operational"
    # A silenced P1 opens nothing; a different fault opens its own incident.
    svc.add_silence({"component": "database"}, ends_at=NOW + dt.timedelta(hours=1), created_by="test")
    svc.ingest([alert("DatabaseDown", "P1", "database")])
    assert len(incidents_of(c, api)) == 1
    svc.ingest([alert("RidersShort", "P2", "delivery")])
    assert len(incidents_of(c, api)) == 2
    assert component(c, "delivery") == "partial_outage"
    summary = c.get("/api/v1/status").json()
    assert summary["status"]["indicator"] == "critical"
    assert {i["components"][0] for i in summary["incidents"]} == {"payment", "delivery"}


def test_lifecycle_timeline_and_times(app_client: tuple[TestClient, Api]) -> None:
    c, api = app_client
    app = c.app
    svc = app.state.alerting  # type: ignore[attr-defined]
    svc.ingest([alert("PaymentGatewayDown", "P1", "payment", onset_s=15)])
    [inc] = incidents_of(c, api)
    # The on-call acknowledges the alert group: the incident is acknowledged too.
    [group] = list(svc.pipeline.groups)
    svc.acknowledge(group, by="user:5")
    # The commander flips a switch: it lands on the timeline by itself.
    r = c.put("/api/v1/switches/payment.cod_only", json={"enabled": True, "reason": "gateway down"},
              headers=api.h("ops"))
    assert r.status_code == 200, r.text
    r = c.post(f"/api/v1/incidents/{inc['id']}/notes", json={"text": "gateway vendor called"}, headers=api.h("ops"))
    assert r.status_code == 201
    svc.ingest([alert("PaymentGatewayDown", "P1", "payment", status="resolved")])
    cur = c.get(f"/api/v1/incidents/{inc['id']}", headers=api.h("ops")).json()
    assert cur["status"] == "monitoring"
    assert component(c, "payment") == "degraded_performance"
    # Quiet for the auto-resolve period: resolved by itself.
    mgr = app.state.incidents  # type: ignore[attr-defined]
    mgr.clock = lambda: dt.datetime.now(dt.UTC) + dt.timedelta(minutes=11)
    mgr.tick()
    cur = c.get(f"/api/v1/incidents/{inc['id']}", headers=api.h("ops")).json()
    assert cur["status"] == "resolved" and component(c, "payment") == "operational"
    assert cur["mttd_s"] == pytest.approx(15, abs=2)
    assert cur["mtta_s"] is not None and cur["mttr_s"] is not None and cur["mttr_s"] >= cur["mttd_s"]
    kinds = [e["kind"] for e in cur["timeline"]]
    assert kinds[:2] == ["opened", "alert"]
    for k in ("ack", "switch", "note", "alert_resolved", "status"):
        assert k in kinds, (k, kinds)
    assert kinds.index("ack") < kinds.index("switch") < kinds.index("note") < kinds.index("alert_resolved")
    times = [e["at"] for e in cur["timeline"]]
    assert times == sorted(times)
    assert [e["details"]["to"] for e in cur["timeline"] if e["kind"] == "status"] == ["monitoring", "resolved"]
    assert "payment.cod_only ON" in next(e["text"] for e in cur["timeline"] if e["kind"] == "switch")


def test_commander_api_checks_input_and_roles(app_client: tuple[TestClient, Api]) -> None:
    c, api = app_client
    assert c.get("/api/v1/incidents", headers=api.h("customer")).status_code == 403
    assert c.get("/api/v1/incidents").status_code == 401
    body = {"title": "Orders stuck", "severity": "P2", "components": ["ordering"]}
    assert c.post("/api/v1/incidents", json={**body, "severity": "P0"}, headers=api.h("ops")).status_code == 422
    r = c.post("/api/v1/incidents", json={**body, "components": ["kitchen"]}, headers=api.h("ops"))
    assert r.status_code == 422 and "kitchen" in r.json()["error"]["message"]
    r = c.post("/api/v1/incidents", json=body, headers=api.h("ops"))
    assert r.status_code == 201, r.text
    inc = r.json()
    assert inc["acknowledged_at"] is not None and inc["roles"]["commander"].startswith("ops:")
    assert [i["id"] for i in inc["sop"]][:2] == ["page", "switches"]
    iid = inc["id"]
    assert c.patch(f"/api/v1/incidents/{iid}", json={"roles": {"chef": "x"}}, headers=api.h("ops")).status_code == 422
    r = c.patch(f"/api/v1/incidents/{iid}", json={"roles": {"scribe": "Li Wei"}}, headers=api.h("ops"))
    assert r.json()["roles"]["scribe"] == "Li Wei"
    assert c.put(f"/api/v1/incidents/{iid}/checklist/nope", json={"done": True},
                 headers=api.h("ops")).status_code == 404
    r = c.put(f"/api/v1/incidents/{iid}/checklist/switches", json={"done": True}, headers=api.h("ops"))
    assert "switches" in r.json()["checklist"]
    r = c.post(f"/api/v1/incidents/{iid}/updates", json={"status": "resolved", "text_en": "All good."},
               headers=api.h("ops"))
    assert r.status_code == 201 and r.json()["details"]["text"] == {"zh": "All good.", "en": "All good."}
    r = c.post(f"/api/v1/incidents/{iid}/updates", json={"status": "monitoring"}, headers=api.h("ops"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "incident_resolved"
    assert c.get("/api/v1/incidents/999999", headers=api.h("ops")).status_code == 404
    from sqlalchemy import func

    from waimai.core.audit import AuditEntry
    with c.app.state.db.read_session() as db:  # type: ignore[attr-defined]
        n = db.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action.like("incident.%")))
    assert n == 4  # open, roles, checklist, update: each change audited; refused ones leave no trace


def test_overrides_maintenance_feed_and_uptime(app_client: tuple[TestClient, Api]) -> None:
    c, api = app_client
    r = c.put("/api/v1/status/components/notifications", json={"status": "degraded_performance", "reason": "SMS slow"},
              headers=api.h("ops"))
    assert r.status_code == 200 and component(c, "notifications") == "degraded_performance"
    assert c.put("/api/v1/status/components/notifications", json={"status": "broken"},
                 headers=api.h("ops")).status_code == 422
    assert c.put("/api/v1/status/components/notifications", json={"status": None},
                 headers=api.h("customer")).status_code == 403
    c.put("/api/v1/status/components/notifications", json={"status": None}, headers=api.h("ops"))
    assert component(c, "notifications") == "operational"
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    r = c.post("/api/v1/status/maintenances", headers=api.h("ops"),
               json={"title": "Database upgrade", "components": ["merchant_console"], "starts_at": start.isoformat(),
                     "ends_at": (start + dt.timedelta(hours=1)).isoformat()})
    assert r.status_code == 201, r.text
    assert component(c, "merchant_console") == "under_maintenance"
    assert c.get("/api/v1/status").json()["scheduled_maintenances"][0]["name"] == "Database upgrade"
    bad = c.post("/api/v1/status/maintenances", headers=api.h("ops"),
                 json={"title": "Backwards", "components": ["ordering"], "starts_at": start.isoformat(),
                       "ends_at": (start - dt.timedelta(hours=1)).isoformat()})
    assert bad.status_code == 422
    c.app.state.alerting.ingest([alert("OrdersStoppedAtLunch", "P1", "ordering")])  # type: ignore[attr-defined]
    [inc] = incidents_of(c, api)
    c.post(f"/api/v1/incidents/{inc['id']}/updates", headers=api.h("ops"),
           json={"status": "identified", "text_zh": "数据库连接池耗尽。", "text_en": "The connection pool ran dry."})
    feed = c.get("/status/feed.atom?lang=en")
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("application/atom+xml")
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = ET.fromstring(feed.content).findall("a:entry", ns)  # noqa: S314 - our own feed
    assert entries[0].find("a:content", ns).text == "The connection pool ran dry."  # type: ignore[union-attr]
    assert len(entries) == 2  # opened + identified, newest first
    up = c.get("/api/v1/status/uptime?days=3").json()
    assert len(up["ordering"]["days"]) == 3
    assert up["ordering"]["days"][-1]["worst"] == "major_outage"
    assert up["payment"]["days"][-1]["worst"] in ("operational", "no_data")
    page = c.get("/status?lang=en")
    assert page.status_code == 200 and "The connection pool ran dry." in page.text and 'data-progress="50"' in page.text
    assert c.get(f"/status/incidents/{inc['id']}").status_code == 200


@pytest.fixture
def sms_standin() -> Iterator[str]:
    app = create_aliyun_sms_standin(access_keys={"LTAI-test": "sms-secret"}, sign_names=["外卖"],
                                    templates={"SMS_ZH": ["component", "status", "eta"],
                                               "SMS_EN": ["component", "status", "eta"]})
    with serve(app) as url:
        yield url


def test_notices_reach_affected_users_once_per_update(sqlite_url: str, sms_standin: str) -> None:
    app = create_app(make_settings(sqlite_url, notice_sms_url=sms_standin, notice_sms_key_id="LTAI-test",
                                   notice_sms_key_secret="sms-secret",
                                   notice_sms_templates={"zh_CN": "SMS_ZH", "en": "SMS_EN"}), background=False)
    with TestClient(app) as c:
        api = Api(c)
        with app.state.db.session() as db:
            en = accounts.create_user(db, phone="13711110011", name="Ann", role="customer", password="waimai-demo")
            en.locale = "en"
            accounts.create_user(db, phone="13711110012", name="Bystander", role="customer", password="waimai-demo")
            db.commit()
        assert api.place().status_code == 201  # the demo customer has an open order: affected
        r = c.post("/api/v1/auth/login", json={"phone": "13711110011", "password": "waimai-demo"})
        ann = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert c.put("/api/v1/status/subscription", json={"sms": True}, headers=ann).json()["subscribed"]

        app.state.alerting.ingest([alert("PaymentGatewayDown", "P1", "payment")])
        notifier = app.state.notifier
        assert notifier.run_once() == 1
        assert notifier.run_once() == 0  # nothing twice
        mine = c.get("/api/v1/notices", headers=api.h("customer")).json()
        assert mine["unread"] == 1 and mine["notices"][0]["title"] == "在线支付：调查中"
        assert "货到付款" in mine["notices"][0]["body"]
        hers = c.get("/api/v1/notices", headers=ann).json()["notices"]
        assert hers[0]["title"] == "Online payment: Investigating" and "Cash on delivery" in hers[0]["body"]
        with app.state.db.read_session() as db:
            told = set(db.scalars(select(User.phone).join(Notice, Notice.user_id == User.id)))
        assert told == {"13800000001", "13711110011"}  # not the bystander, not the rider or the merchant
        state = httpx.get(f"{sms_standin}/_standin/state").json()
        sent = {n: a["template_code"] for a in state["accepted"] for n in a["phone_numbers"]}
        assert sent == {"13800000001": "SMS_ZH", "13711110011": "SMS_EN"}, state
        assert state["rejected"] == []

        # An update: a new notice each, no second one for the first update; SMS rate-limited (60 s gap).
        [inc] = incidents_of(c, api)
        c.post(f"/api/v1/incidents/{inc['id']}/updates", json={"status": "identified", "eta_minutes": 15},
               headers=api.h("ops"))
        assert notifier.run_once() == 1 and notifier.run_once() == 0
        assert len(c.get("/api/v1/notices", headers=api.h("customer")).json()["notices"]) == 2
        with app.state.db.read_session() as db:
            rows = list(db.scalars(select(Notice).order_by(Notice.id)))
            users = {n.user_id for n in rows}
            per = {(n.user_id, n.event_id) for n in rows}
        assert len(per) == len(rows) == 4 and len(users) == 2
        assert [n.sms for n in rows[2:]] == ["rate_limited", "rate_limited"]
        assert len(httpx.get(f"{sms_standin}/_standin/state").json()["accepted"]) == 2
        detail = c.get(f"/api/v1/incidents/{inc['id']}", headers=api.h("ops")).json()
        notes = [e for e in detail["timeline"] if e["kind"] == "notice"]
        assert len(notes) == 2 and "SMS 2" in notes[0]["text"] and "rate-limited 2" in notes[1]["text"]
        # Someone else's notice cannot be marked read.
        other = rows[0].id if rows[0].user_id != 1 else rows[1].id
        assert c.post(f"/api/v1/notices/{other}/read", headers=api.h("customer")).status_code == 404


def test_commander_is_reminded_to_post_updates(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url), background=False)
    with TestClient(app) as c:
        api = Api(c)
        sent: list[object] = []
        app.state.alerting.send_direct = lambda msg, receiver=None: sent.append(msg) or []
        r = c.post("/api/v1/incidents", json={"title": "Slow delivery", "severity": "P2", "components": ["delivery"]},
                   headers=api.h("ops"))
        iid = r.json()["id"]
        mgr = app.state.incidents
        mgr.tick()
        assert sent == []
        mgr.clock = lambda: dt.datetime.now(dt.UTC) + dt.timedelta(minutes=31)
        mgr.tick()
        mgr.tick()  # once per cadence, not every tick
        assert len(sent) == 1 and f"Incident #{iid}" in sent[0].title  # type: ignore[attr-defined]
        kinds = [e["kind"] for e in c.get(f"/api/v1/incidents/{iid}", headers=api.h("ops")).json()["timeline"]]
        assert kinds.count("reminder") == 1


def test_incident_pages_for_ops(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url), background=False)
    with TestClient(app) as c:
        api = Api(c)
        c.cookies.set("waimai_token", api.token("ops"))
        r = c.post("/ops/incidents", data={"title": "Payment slow", "severity": "P2", "components": ["payment"],
                                           "public": "1"}, follow_redirects=False)
        assert r.status_code == 303 and "/ops/incidents/" in r.headers["location"]
        iid = int(r.headers["location"].split("/ops/incidents/")[1].split("?")[0])
        r = c.post(f"/ops/incidents/{iid}/update", data={"status": "identified", "text_zh": "已定位", "eta_minutes": "20",
                                                         "public": "1"}, follow_redirects=False)
        assert "err=" not in r.headers["location"], r.headers["location"]
        r = c.post(f"/ops/incidents/{iid}/update", data={"status": "bogus"}, follow_redirects=False)
        assert "err=" in r.headers["location"]
        page = c.get(f"/ops/incidents/{iid}")
        assert page.status_code == 200 and "data-timeline" in page.text and "已定位" in page.text
        assert c.get("/ops/incidents").status_code == 200
        overview = c.get("/ops").text
        assert "data-active-incidents" in overview and f'href="/ops/incidents/{iid}"' in overview
        c.cookies.set("waimai_token", api.token("customer"))
        assert c.get(f"/ops/incidents/{iid}", follow_redirects=False).status_code == 303
        with app.state.db.read_session() as db:
            assert db.get(Incident, iid).status == "identified"  # type: ignore[union-attr]


def test_subscribe_from_the_status_page(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url), background=False)
    with TestClient(app) as c:
        api = Api(c)
        assert c.post("/status/subscription", data={"action": "subscribe"}, follow_redirects=False
                      ).headers["location"].startswith("/login")
        c.cookies.set("waimai_token", api.token("customer"))
        assert "Subscribe to updates" in c.get("/status?lang=en").text
        c.post("/status/subscription", data={"action": "subscribe"})
        assert "You are subscribed" in c.get("/status?lang=en").text
        c.post("/status/subscription", data={"action": "unsubscribe"})
        assert "Subscribe to updates" in c.get("/status?lang=en").text


def test_a_restore_lands_on_the_incident_timeline(sqlite_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(sqlite_url, backup_dir=str(tmp_path / "backups")), background=False)
    with TestClient(app) as c:
        api = Api(c)
        m = c.post("/api/v1/backups", json={}, headers=api.h("ops")).json()
        r = c.post("/api/v1/incidents", headers=api.h("ops"),
                   json={"title": "Menu prices wiped", "severity": "P2", "components": ["ordering"]})
        assert r.status_code == 201
        r = c.post(f"/api/v1/backups/{m['id']}/restore", json={"confirm": m["id"]}, headers=api.h("ops"))
        assert r.status_code == 200, r.text
        found = [e for i in incidents_of(c, api)
                 for e in c.get(f"/api/v1/incidents/{i['id']}", headers=api.h("ops")).json()["timeline"]
                 if e["kind"] == "restore"]
        assert found and m["id"] in found[0]["text"] and "orders written after it" in found[0]["text"]
