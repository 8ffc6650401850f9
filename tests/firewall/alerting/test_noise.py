"""Quiet logs and noise per rule: a receiver without channels is said once at start-up and shown on
/ops/alerts; the 7-day noise table counts fired, acknowledged and self-resolved groups per rule."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from tests.conftest import make_settings
from waimai.app import create_app
from waimai.firewall.alerting.models import AlertHistory
from waimai.firewall.alerting.noise import rule_noise


def test_receiver_without_channel_is_one_warning_and_a_notice(sqlite_url: str, capfd) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(make_settings(sqlite_url), background=False)) as c:
        svc = c.app.state.alerting  # type: ignore[attr-defined]
        assert svc.receivers_without_channels() == ["ops"]
        for _ in range(5):  # five evaluation rounds say nothing more
            svc.evaluate()
        err = capfd.readouterr().err
        assert err.count("alert_receiver_has_no_channel") == 1
        r = c.post("/login", data={"phone": "13800000009", "password": "waimai-demo"}, follow_redirects=False)
        assert r.status_code in (302, 303)
        page = c.get("/ops/alerts").text
        assert "ops" in page and ("WAIMAI_ALERTING_CONFIG_FILE" in page)


def test_rule_noise_counts_fired_acked_and_self_resolved(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url), background=False)
    now = dt.datetime.now(dt.UTC)
    ago = lambda m: now - dt.timedelta(minutes=m)  # noqa: E731
    with TestClient(app), app.state.db.session() as db:
        db.add_all([
            AlertHistory(at=ago(60), event="notified:first", group_key="g1", title="LatencyHigh"),
            AlertHistory(at=ago(59.5), event="notified:resolved", group_key="g1", title="LatencyHigh"),
            AlertHistory(at=ago(50), event="notified:first", group_key="g2", title="LatencyHigh"),
            AlertHistory(at=ago(40), event="notified:resolved", group_key="g2", title="LatencyHigh"),
            AlertHistory(at=ago(30), event="notified:first", group_key="g3", title="PaymentsFailing, DatabaseSlow (2)"),
            AlertHistory(at=ago(29), event="acknowledged", group_key="g3"),
            AlertHistory(at=ago(28.5), event="notified:resolved", group_key="g3", title="PaymentsFailing"),
            AlertHistory(at=now - dt.timedelta(days=8), event="notified:first", group_key="old", title="Old"),
        ])
        db.commit()
        got = {n.rule: n for n in rule_noise(db, since=now - dt.timedelta(days=7),
                                             for_by_rule={"LatencyHigh": dt.timedelta(minutes=1)})}
    assert set(got) == {"LatencyHigh", "PaymentsFailing", "DatabaseSlow"}
    assert (got["LatencyHigh"].fired, got["LatencyHigh"].auto_resolved) == (2, 1)  # 30 s flap; 10 min was real
    assert (got["PaymentsFailing"].acknowledged, got["PaymentsFailing"].auto_resolved) == (1, 0)
