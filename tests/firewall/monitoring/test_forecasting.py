"""The order forecast on the ops console: from store history to a band, riders needed and surge."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from tests.conftest import Api, make_settings
from waimai.app import create_app
from waimai.firewall.monitoring.forecasting import forecast_orders
from waimai.firewall.monitoring.store import QUARTER, MetricStore, samples_t

NOON = dt.datetime(2026, 11, 25, 3, 40, tzinfo=dt.UTC)  # 11:40 in Shanghai, lunch is coming


def _campus_history(st: MetricStore, weeks: int, end: dt.datetime = NOON) -> None:
    rng = np.random.default_rng(0)
    with st.engine.begin() as conn:
        sid = st._series_id(conn, "orders_placed_per_min")  # noqa: SLF001
    rows, t = [], end - dt.timedelta(weeks=weeks)
    while t < end:
        h = (t + dt.timedelta(hours=8)).hour + (t + dt.timedelta(hours=8)).minute / 60
        v = max(0.0, 0.5 + 8 * np.exp(-((h - 12) / 0.7) ** 2) + 5 * np.exp(-((h - 18) / 0.8) ** 2)
                + rng.normal(0, 0.3))
        rows.append({"series_id": sid, "resolution": QUARTER, "ts": int(t.timestamp()), "value": v, "vmin": v,
                     "vmax": v, "n": 180})
        t += dt.timedelta(minutes=15)
    with st.engine.begin() as conn:
        conn.execute(samples_t.insert(), rows)


def test_forecast_sees_the_lunch_peak_coming(tmp_path: Path) -> None:
    st = MetricStore(f"sqlite:///{tmp_path / 'm.db'}")
    _campus_history(st, weeks=9)
    st.write(NOON, {"riders_on_shift": 3.0})
    f = forecast_orders(st, NOON)
    assert f is not None and f.model == "ProfileRegression"
    mean, lo, hi = f.next_30
    assert lo <= mean <= hi
    # Lunch (12:00–12:30) is ~8 orders/min -> ~220 orders in the half hour, far above the last hour.
    assert 150 < mean < 300
    assert f.surge and f.riders_needed > 3


def test_short_history_gives_no_forecast_and_says_so(tmp_path: Path) -> None:
    st = MetricStore(f"sqlite:///{tmp_path / 'm.db'}")
    _campus_history(st, weeks=0 + 1, end=NOON - dt.timedelta(days=2))
    assert forecast_orders(st, NOON) is None or forecast_orders(st, NOON).model != "ProfileRegression"  # type: ignore[union-attr]


def test_ops_overview_shows_the_forecast(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url), background=False)
    with TestClient(app) as c:
        Api(c).token("ops")
        c.post("/login", data={"phone": "13800000009", "password": "waimai-demo"})
        assert "历史数据不足" in c.get("/ops").text
        _campus_history(app.state.metric_store, weeks=9)
        app.state.forecast = forecast_orders(app.state.metric_store, NOON)
        page = c.get("/ops").text
        assert 'id="riders-needed"' in page and "即将迎来高峰" in page
