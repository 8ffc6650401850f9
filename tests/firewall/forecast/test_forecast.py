"""Forecasters: interface, accuracy against seasonal naive on seeded data, rider formula."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from waimai.firewall.forecast import DEFAULT_FORECASTER, FORECASTERS, recommend_riders
from waimai.firewall.forecast.bench import evaluate_models, simulate_campus_orders
from waimai.firewall.forecast.models import LastWeekPlusDeviation, ProfileRegression, SeasonalNaive


def seasonal_series(weeks: int = 14, seed: int = 5) -> pd.Series:
    rng = np.random.default_rng(seed)
    n = weeks * 336
    idx = pd.date_range("2024-01-01", periods=n, freq="30min")
    slot = np.arange(n) % 48
    daily = 50 + 30 * np.exp(-0.5 * ((slot - 24) / 3) ** 2) + 20 * np.exp(-0.5 * ((slot - 37) / 2.5) ** 2)
    weekly = np.where(idx.dayofweek >= 5, 0.8, 1.0)
    ar = np.zeros(n)
    for i in range(1, n):
        ar[i] = 0.9 * ar[i - 1] + rng.normal(0, 0.04)
    return pd.Series(daily * weekly * np.exp(ar) + rng.normal(0, 2, n), index=idx)


def test_default_beats_seasonal_naive_and_last_week_on_seeded_data():
    res = evaluate_models(
        seasonal_series(), [DEFAULT_FORECASTER, "seasonal_naive", "last_week_plus_deviation"]
    )
    for h in (1, 2):
        ours = res[DEFAULT_FORECASTER][h]["mase"]
        assert ours < res["seasonal_naive"][h]["mase"]
        assert ours < res["last_week_plus_deviation"][h]["mase"]


def test_predict_interface_and_band():
    s = seasonal_series()
    for name, cls in FORECASTERS.items():
        model = cls().fit(s.iloc[:-10])
        mean, lo, hi = model.predict(4)
        assert mean.shape == lo.shape == hi.shape == (4,), name
        assert (lo <= mean + 1e-9).all() and (mean <= hi + 1e-9).all(), name
        assert list(model.predict_index(2)) == list(s.index[-10:-8])


def test_update_appends_without_refit_and_matches_rolling():
    s = seasonal_series()
    m = ProfileRegression().fit(s.iloc[:-20])
    coef = m._coef(1).copy()
    m.update(s.iloc[-20:-10])
    np.testing.assert_array_equal(m._coef(1), coef)
    y = s.to_numpy()
    direct = m.predict(1)[0][0]
    assert direct == pytest.approx(m.rolling_point(y, np.array([len(y) - 11]), 1)[0])


def test_baseline_formulas():
    s = seasonal_series(weeks=3)
    y = s.to_numpy()
    o = np.array([800, 900])
    np.testing.assert_allclose(SeasonalNaive().fit(s).rolling_point(y, o, 2), y[o + 2 - 336])
    np.testing.assert_allclose(
        LastWeekPlusDeviation().fit(s).rolling_point(y, o, 1), y[o + 1 - 336] + y[o] - y[o - 336]
    )


def test_bad_series_rejected():
    s = seasonal_series(weeks=1)
    with pytest.raises(ValueError):
        SeasonalNaive().fit(s.drop(s.index[10]))  # gap
    with pytest.raises(ValueError):
        SeasonalNaive().fit(s.where(s.index != s.index[5]))  # NaN


def test_recommend_riders_formula():
    # 20 orders per 30 min = 40/h; 40 * 25 min / 60 = 16.7 busy riders; / 0.8 utilisation = 20.8 -> 21
    assert (
        recommend_riders(20, interval_minutes=30, minutes_per_delivery=25, target_utilisation=0.8)[()] == 21
    )
    np.testing.assert_array_equal(recommend_riders(np.array([0.0, 6.0])), [1, 7])
    with pytest.raises(ValueError):
        recommend_riders(5, target_utilisation=0)


def test_campus_simulation_is_seeded_and_peaky():
    a, b = simulate_campus_orders(weeks=2, seed=1), simulate_campus_orders(weeks=2, seed=1)
    pd.testing.assert_series_equal(a, b)
    by_hour = a.groupby(a.index.hour).mean()
    assert by_hour.loc[12] > 3 * by_hour.loc[4] and by_hour.loc[18] > 3 * by_hour.loc[4]
