"""The root-cause report: impact, first movers, charts, timeline, review and action items, CLI."""

from __future__ import annotations

import base64
import datetime as dt
import re
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from typer.testing import CliRunner

from tests.conftest import Api, make_settings
from waimai.app import create_app
from waimai.firewall.alerting.rules import Alert
from waimai.firewall.incidents.models import ComponentStatusChange
from waimai.platform.payments.models import Payment

PNG = b"\x89PNG\r\n\x1a\n"


def _series(app: object, onset: dt.datetime, detected: dt.datetime) -> None:
    """Ten minutes of samples: payment success falls at the onset; its anomaly score crosses first."""
    store = app.state.metric_store  # type: ignore[attr-defined]
    t = onset - dt.timedelta(minutes=8)
    while t <= detected + dt.timedelta(minutes=2):
        bad = t >= onset
        store.write(t, {"payment_success_ratio": 0.1 if bad else 0.99, "orders_placed_per_min": 30 if bad else 40,
                        "anomaly.payment_success_ratio": 0.97 if bad else 0.1,
                        "anomaly.orders_placed_per_min": 0.85 if t >= onset + dt.timedelta(seconds=40) else 0.2,
                        "band_low.payment_success_ratio": 0.95, "band_high.payment_success_ratio": 1.0,
                        "http_latency_p95_ms": 80.0})
        t += dt.timedelta(seconds=5)


def test_report_has_impact_first_movers_charts_and_review(sqlite_url: str, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(sqlite_url)
    app = create_app(settings, background=False)
    with TestClient(app) as c:
        api = Api(c)
        # Two customers' online payments fail in the window.
        ids = []
        for _ in range(2):
            r = api.place(payment_method="gateway")
            ids.append(r.json()["id"])  # type: ignore[attr-defined]
        now = dt.datetime.now(dt.UTC)
        onset = now - dt.timedelta(minutes=3)
        with app.state.db.session() as s:
            for oid in ids:
                s.add(Payment(order_id=oid, provider="gateway", amount_fen=1000, status="failed", created_at=now))
            s.commit()
        ann = {"summary": "Most online payments fail", "kind": "threshold",
               "onset_at": onset.isoformat()}
        app.state.alerting.ingest([Alert(labels={"alertname": "PaymentsFailing", "severity": "P1",
                                                 "component": "payment"}, annotations=ann, status="firing",
                                         starts_at=now)])
        [inc] = c.get("/api/v1/incidents", headers=api.h("ops")).json()
        iid = inc["id"]
        _series(app, onset, dt.datetime.fromisoformat(inc["detected_at"]))
        time.sleep(0.05)
        c.post(f"/api/v1/incidents/{iid}/updates", json={"status": "resolved"}, headers=api.h("ops"))
        with app.state.db.session() as s:  # as if payment had been red since the onset
            s.execute(update(ComponentStatusChange).where(ComponentStatusChange.component == "payment",
                                                          ComponentStatusChange.status == "major_outage")
                      .values(at=onset))
            s.commit()
        r = c.put(f"/api/v1/incidents/{iid}/review", headers=api.h("ops"),
                  json={"whys": ["Payments failed", "The gateway's certificate expired"],
                        "root_cause": "Nobody watched the certificate's expiry date."})
        assert r.status_code == 200
        a = c.post(f"/api/v1/incidents/{iid}/actions", headers=api.h("ops"),
                   json={"text": "Alert 14 days before certificate expiry", "owner": "Li Wei"}).json()
        assert c.patch(f"/api/v1/incidents/{iid}/actions/{a['id']}", json={"status": "done"},
                       headers=api.h("ops")).json()["closed_by"].startswith("ops:")
        assert c.patch(f"/api/v1/incidents/{iid}/actions/999", json={"status": "done"},
                       headers=api.h("ops")).status_code == 404
        assert c.get(f"/api/v1/incidents/{iid}/report", headers=api.h("customer")).status_code == 403

        rep = c.get(f"/api/v1/incidents/{iid}/report", headers=api.h("ops")).json()
        assert rep["impact"]["payment_failures"] == 2 and rep["impact"]["users_affected"] == 1
        assert rep["impact"]["gmv_at_risk_fen"] > 0
        assert rep["impact"]["degraded_minutes"]["payment"]["major_outage"] == pytest.approx(3, abs=0.2)
        movers = [m["series"] for m in rep["first_movers"]]
        assert movers[:2] == ["payment_success_ratio", "orders_placed_per_min"]  # earliest first
        assert rep["first_movers"][0]["lead_s"] == pytest.approx(180, abs=10)
        assert rep["metrics"]["mttd_s"] == pytest.approx(180, abs=5) and rep["metrics"]["mttr_s"] is not None
        assert [x["kind"] for x in rep["timeline"]][:2] == ["opened", "alert"]
        assert rep["review"]["whys"][1] == "The gateway's certificate expired"
        assert rep["actions"][0]["status"] == "done"

        html = c.get(f"/api/v1/incidents/{iid}/report.html", headers=api.h("ops"))
        assert html.status_code == 200 and "<table>" in html.text and "Five whys" in html.text
        pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', html.text)
        assert len(pngs) >= 2 and all(base64.b64decode(p).startswith(PNG) for p in pngs)
        md = c.get(f"/api/v1/incidents/{iid}/report.md", headers=api.h("ops")).text
        assert "MTTD **" in md and "- [x] Alert 14 days before certificate expiry — Li Wei" in md

        c.cookies.set("waimai_token", api.token("ops"))
        page = c.get(f"/ops/incidents/{iid}/report?budget=50")
        assert page.status_code == 200 and "data-report" in page.text and "¥" in page.text
        r = c.post(f"/ops/incidents/{iid}/compensate", data={"budget_yuan": "50", "confirm": "1"},
                   follow_redirects=False)
        assert "err=" not in r.headers["location"], r.headers["location"]
        assert c.get(f"/api/v1/incidents/{iid}/compensation/report", headers=api.h("ops")).json()["users"] == 1

    # The CLI writes the same report with chart files.
    monkeypatch.setenv("WAIMAI_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("WAIMAI_METRICS_URL", settings.metrics_url)
    monkeypatch.setenv("WAIMAI_LOG_FILE", settings.log_file or "")
    from waimai.cli import app as cli
    from waimai.config import get_settings

    get_settings.cache_clear()
    try:
        res = CliRunner().invoke(cli, ["incident", "report", str(iid), "--out", str(tmp_path)])
        assert res.exit_code == 0, res.output
        folder = tmp_path / f"incident-{iid}"
        assert (folder / "report.md").read_text().startswith(f"# Incident #{iid}")
        charts = list((folder / "charts").glob("*.png"))
        assert len(charts) >= 2 and all(p.read_bytes().startswith(PNG) for p in charts)
        missing = CliRunner().invoke(cli, ["incident", "report", "99999", "--out", str(tmp_path)])
        assert missing.exit_code == 2 and "No incident 99999" in missing.output
        listed = CliRunner().invoke(cli, ["incident", "list"])
        assert listed.exit_code == 0 and "Most online" in listed.output
    finally:
        get_settings.cache_clear()
