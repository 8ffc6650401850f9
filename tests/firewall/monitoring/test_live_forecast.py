"""The live order forecast: 15/30/60-minute horizons and holiday awareness, over a real metric store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from waimai.firewall.monitoring.forecasting import forecast_orders, holiday_factor, holiday_name
from waimai.firewall.monitoring.store import MetricStore

SH = ZoneInfo("Asia/Shanghai")


def _fill(store: MetricStore, start: dt.datetime, end: dt.datetime, holidays: set[dt.date]) -> None:
    """Orders per minute with a lunch and a dinner peak; holidays at half volume."""
    t = start
    while t < end:
        local = t.astimezone(SH)
        h = local.hour + local.minute / 60
        rate = 2 + 20 * max(0.0, 1 - abs(h - 12) / 1.5) + 12 * max(0.0, 1 - abs(h - 18) / 1.5)
        if local.date() in holidays:
            rate *= 0.5
        store.write(t, {"orders_placed_per_min": rate})
        t += dt.timedelta(minutes=30)


def test_holiday_calendar() -> None:
    assert holiday_name(dt.date(2026, 10, 1)) and holiday_name(dt.date(2026, 11, 25)) is None
    assert holiday_name(dt.date(2026, 11, 26), frozenset({dt.date(2026, 11, 26)})) == "campus day off"


def test_forecast_horizons_and_holiday_factor(tmp_path: Path) -> None:
    store = MetricStore(f"sqlite:///{tmp_path / 'm.db'}")
    now = dt.datetime(2026, 10, 2, 3, 0, tzinfo=dt.UTC)  # 11:00 in Shanghai on a National Day holiday
    # In the history: Mid-Autumn (25 Sep) and National Day (1 Oct) at half volume, and a campus day off.
    _fill(store, now - dt.timedelta(weeks=3), now, {dt.date(2026, 9, 25), dt.date(2026, 10, 1), dt.date(2026, 9, 18)})
    f = forecast_orders(store, now=now, extra_holidays=frozenset({dt.date(2026, 9, 18)}))
    assert f is not None and f.holiday == "National Day"
    assert f.holiday_factor == pytest.approx(0.5, abs=0.05)  # learnt from the past holidays
    assert f.next_15[0] == pytest.approx(f.next_30[0] / 2) and f.next_15[1] <= f.next_15[0] <= f.next_15[2]
    assert "National Day: × 0.5" in f.message
    ordinary = forecast_orders(store, now=now - dt.timedelta(days=2))  # 30 Sep: an ordinary Wednesday
    assert ordinary is not None and ordinary.holiday is None and ordinary.holiday_factor == 1.0
    store.dispose()


def test_factor_needs_history() -> None:
    import pandas as pd

    assert holiday_factor(pd.Series(dtype=float), dt.date(2026, 10, 1)) == 1.0
