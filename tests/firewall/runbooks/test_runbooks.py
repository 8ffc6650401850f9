"""Runbooks (plan, run, confirm, one at a time, audited, on the timeline) and remediation policies
(guard rails, verification, automatic rollback)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Api, make_settings
from waimai.app import create_app
from waimai.firewall import runbooks
from waimai.firewall.alerting.rules import Alert


@pytest.fixture
def env(db_url: str, tmp_path) -> Iterator[tuple[TestClient, Api]]:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(db_url, backup_dir=str(tmp_path / "backups")), background=False)
    with TestClient(app) as c:
        yield c, Api(c)


def switch_on(c: TestClient, api: Api, name: str) -> bool:
    return any(s["name"] == name and s["enabled"] for s in c.get("/api/v1/switches", headers=api.h("ops")).json())


def test_plan_run_confirm_audit_and_timeline(env: tuple[TestClient, Api]) -> None:
    c, api = env
    assert c.get("/api/v1/runbooks", headers=api.h("support")).status_code == 403
    names = {b["name"] for b in c.get("/api/v1/runbooks", headers=api.h("ops")).json()}
    assert {"switch_to_cod", "pause_merchant", "drain_replica", "restart_job", "rebuild_caches",
            "restore_latest_verified_backup"} <= names
    inc = c.post("/api/v1/incidents", headers=api.h("ops"),
                 json={"title": "Gateway flaky", "severity": "P2", "components": ["payment"]}).json()
    plan = c.post("/api/v1/runbooks/pause_merchant/plan", json={"params": {"merchant_id": 2}}, headers=api.h("ops"))
    assert plan.status_code == 200 and "merchant.2.paused" in plan.json()["plan"][0]
    assert not switch_on(c, api, "merchant.2.paused")  # a dry run changes nothing
    bad = c.post("/api/v1/runbooks/pause_merchant/run", json={"params": {"merchant_id": "x"}}, headers=api.h("ops"))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "runbook_params_invalid"
    assert c.post("/api/v1/runbooks/pause_merchant/run", json={"params": {"merchant_id": 999}},
                  headers=api.h("ops")).status_code == 404
    r = c.post("/api/v1/runbooks/pause_merchant/run", json={"params": {"merchant_id": 2, "reason": "kitchen fire"}},
               headers=api.h("ops"))
    assert r.status_code == 200 and r.json()["ok"] and switch_on(c, api, "merchant.2.paused")
    assert c.post("/api/v1/runbooks/nope/run", json={}, headers=api.h("ops")).status_code == 404
    # Destructive: the name must be repeated.
    r = c.post("/api/v1/runbooks/drain_replica/run", json={}, headers=api.h("ops"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "confirmation_required"
    r = c.post("/api/v1/runbooks/drain_replica/run", json={"confirm": "drain_replica"}, headers=api.h("ops"))
    assert r.status_code == 200 and c.get("/readyz").status_code == 503
    runbooks.undo(runbooks.Context(c.app.state, "ops:5"), "drain_replica", {}, r.json()["undo"], "test")  # type: ignore[attr-defined]
    assert c.get("/readyz").status_code == 200
    r = c.post("/api/v1/runbooks/restore_latest_verified_backup/plan", json={}, headers=api.h("ops"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_verified_backup"
    m = c.post("/api/v1/backups", json={}, headers=api.h("ops")).json()
    r = c.post("/api/v1/runbooks/restore_latest_verified_backup/plan", json={}, headers=api.h("ops"))
    assert r.status_code == 200 and m["id"] in r.json()["plan"][0] and r.json()["destructive"]
    timeline = c.get(f"/api/v1/incidents/{inc['id']}", headers=api.h("ops")).json()["timeline"]
    lines = [e["text"] for e in timeline if e["kind"] == "runbook"]
    assert any("pause_merchant done" in t for t in lines) and any("drain_replica" in t for t in lines)
    runs = c.get("/api/v1/runbooks/remediation", headers=api.h("ops")).json()["runs"]
    assert {"runbook.run", "runbook.rollback"} <= {x["action"] for x in runs}


def test_one_run_at_a_time(env: tuple[TestClient, Api]) -> None:
    c, api = env
    assert runbooks._RUNNING.acquire(blocking=False)  # noqa: SLF001 - as if another run were in progress
    try:
        r = c.post("/api/v1/runbooks/rebuild_caches/run", json={}, headers=api.h("ops"))
        assert r.status_code == 409 and r.json()["error"]["code"] == "runbook_busy"
    finally:
        runbooks._RUNNING.release()  # noqa: SLF001
    assert c.post("/api/v1/runbooks/rebuild_caches/run", json={}, headers=api.h("ops")).json()["ok"]


def _alert(name: str, status: str = "firing") -> Alert:
    return Alert(labels={"alertname": name, "severity": "P1", "component": "payment"}, annotations={},
                 status=status, starts_at=dt.datetime.now(dt.UTC))  # type: ignore[arg-type]


def test_remediation_guard_rails_and_rollback(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url), background=False)
    with TestClient(app) as c:
        api = Api(c)
        now = [1000.0]
        pol = runbooks.Policy(name="cod", alert="PaymentsFailing", runbook="switch_to_cod", cooldown_s=300,
                              max_per_hour=2, verify_after_s=60)
        rem = runbooks.Remediator(app.state, [pol], clock=lambda: now[0])
        app.state.alerting.listeners[:] = [app.state.incidents, rem]
        app.state.alerting.ingest([_alert("PaymentsFailing")])
        assert switch_on(c, api, "payment.cod_only")
        # Steady state did not return (no order in the last minute): rolled back after verify_after.
        now[0] += 61
        rem.tick()
        assert not switch_on(c, api, "payment.cod_only") and "rolled_back" in rem.history[-1]
        # Fires again inside the cooldown: skipped.
        app.state.alerting.ingest([_alert("PaymentsFailing", "resolved")])
        app.state.alerting.ingest([_alert("PaymentsFailing")])
        assert rem.history[-1]["skipped"].startswith("cooldown") and not switch_on(c, api, "payment.cod_only")
        # After the cooldown it runs again; an order placed meanwhile means steady: it stays.
        now[0] += 301
        app.state.alerting.ingest([_alert("PaymentsFailing", "resolved")])
        app.state.alerting.ingest([_alert("PaymentsFailing")])
        assert switch_on(c, api, "payment.cod_only")
        assert api.place().status_code == 201
        now[0] += 61
        rem.tick()
        assert rem.history[-1].get("verified") and switch_on(c, api, "payment.cod_only")
        # Max two per hour.
        now[0] += 301
        app.state.alerting.ingest([_alert("PaymentsFailing", "resolved")])
        app.state.alerting.ingest([_alert("PaymentsFailing")])
        assert "runs in the last hour" in rem.history[-1]["skipped"]
        c.cookies.set("waimai_token", api.token("ops"))
        page = c.get("/ops/runbooks")
        assert page.status_code == 200 and 'data-runbook="switch_to_cod"' in page.text
        r = c.post("/ops/runbooks/rebuild_caches", data={"action": "plan"}, follow_redirects=False)
        assert "plan=" in r.headers["location"]


def test_shipped_policies_load() -> None:
    assert {p.runbook for p in runbooks.PolicyFile.model_validate(
        __import__("yaml").safe_load(runbooks.POLICIES_FILE.read_text())).policies} <= set(runbooks.REGISTRY)
