"""Item 1: attack symptoms never open a public incident; user-facing symptoms still do (SQLite and PostgreSQL).

The chain runs for real: requests through the app, the sampler reading the Prometheus counters into the
metric store, the shipped rules evaluated by the alerting service on a moved clock, the incident manager.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.conftest import make_settings
from tests.security.conftest import bearer
from waimai.app import create_app
from waimai.core.inbox import Notice
from waimai.firewall.alerting.rules import DEFAULT_RULES
from waimai.firewall.incidents.models import Incident

# The shipped rules for these symptoms (wall-clock rules such as OrdersStoppedAtLunch, and probes of
# dependencies that other tests in this process may have left down, would only add noise).
KEEP = {"MeituanSignatureFailures", "MeituanOrderFlood", "ServerErrors", "AnonymousServerErrors"}


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    shipped = yaml.safe_load(DEFAULT_RULES.read_text(encoding="utf-8"))
    groups = [{**g, "rules": [r for r in g["rules"] if r["alert"] in KEEP]} for g in shipped["groups"]]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [g for g in groups if g["rules"]]}), encoding="utf-8")
    return path


@pytest.fixture
def app(db_url: str, rules_file: Path) -> Iterator[FastAPI]:
    app = create_app(make_settings(db_url, alert_rules_file=str(rules_file),
                                   platforms={"meituan": {"app_id": "6001", "secret": "mt-consumer-secret"}}),
                     background=False)

    @app.get("/boom", include_in_schema=False)
    def boom() -> None:  # a stand-in for any bug that answers 5xx
        raise RuntimeError("boom")

    yield app


class Clock:
    """Moves the sampler, the rules and the incident manager through minutes in a second."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.t = time.time()
        app.state.sampler.sample(self.t)
        alerting, manager = app.state.alerting, app.state.incidents
        alerting.clock = manager.clock = lambda: dt.datetime.fromtimestamp(self.t, dt.UTC)

    def advance(self, seconds: float, *, sample: bool = False) -> None:
        self.t += seconds
        if sample:
            self.app.state.sampler.sample(self.t)
        self.app.state.alerting.evaluate()


def firing(app: FastAPI) -> set[str]:
    return {st.alert.name for st in app.state.alerting.pipeline.alerts.values() if st.alert.status == "firing"}


def public_state(c: TestClient, app: FastAPI) -> tuple[int, str, int]:
    with app.state.db.read_session() as db:
        public = db.scalar(select(func.count()).select_from(Incident).where(Incident.public.is_(True))) or 0
        notices = db.scalar(select(func.count()).select_from(Notice)) or 0
    indicator = c.get("/api/v1/status").json()["status"]["indicator"]
    return public, indicator, notices


def test_unsigned_intake_posts_raise_a_security_alert_not_a_public_incident(app: FastAPI) -> None:
    with TestClient(app) as c:
        clock = Clock(app)
        for n in range(8):  # no credentials, one a second, as the probe did
            r = c.post("/api/v1/intake/meituan/orders", data={"order_id": str(n), "sig": "forged"})
            assert r.status_code == 200 and r.json()["data"] == "ng"  # refused in Meituan's own format
        clock.advance(60, sample=True)
        for _ in range(4):
            clock.advance(20)
        assert "MeituanSignatureFailures" in firing(app)
        # Per source address too: one rate-limited alert naming the caller.
        per_address = [st.alert for st in app.state.alerting.pipeline.alerts.values()
                       if st.alert.name == "SecurityEventsFromAddress"]
        assert [(a.labels["kind"], a.labels["source"]) for a in per_address] == [("signature_failure", "testclient")]
        assert public_state(c, app) == (0, "none", 0)
        internal = c.get("/api/v1/incidents?state=all", headers={"Authorization": f"Bearer {bearer(c, 'ops')}"})
        assert all(not i["public"] and i["components"] == [] for i in internal.json())


def test_anonymous_5xx_stay_internal_and_users_5xx_open_a_public_incident(app: FastAPI) -> None:
    with TestClient(app, raise_server_exceptions=False) as c:
        clock = Clock(app)

        def errors_for_two_minutes(headers: dict[str, str]) -> None:
            for _ in range(6):  # 10 errors every 20 s: 30 a minute
                for _ in range(10):
                    assert c.get("/boom", headers=headers).status_code == 500
                clock.advance(20, sample=True)

        errors_for_two_minutes({})
        assert "AnonymousServerErrors" in firing(app) and "ServerErrors" not in firing(app)
        assert public_state(c, app) == (0, "none", 0)
        # The same errors seen by signed-in users are a user-facing symptom: a public incident on ordering.
        errors_for_two_minutes({"Authorization": f"Bearer {bearer(c, 'customer')}"})
        assert "ServerErrors" in firing(app)
        public, indicator, _notices = public_state(c, app)
        assert public == 1 and indicator != "none"
