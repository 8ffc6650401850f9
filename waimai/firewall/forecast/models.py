"""Forecasters for order volume (regularly sampled counts, e.g. orders per 30 minutes).

Interface: ``fit(series)`` on a ``pandas.Series`` with a regular ``DatetimeIndex``, then
``predict(horizon) -> (mean, lower, upper)`` for the next ``horizon`` intervals after the last
observation; ``update(series)`` appends new observations without re-estimating parameters (cheap, for
rolling use). ``lower``/``upper`` form a central ``coverage`` prediction band.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd


class Forecaster:
    """Base class; subclasses implement ``_fit`` and ``_point(y, origin_index, h)``."""

    coverage = 0.9

    def __init__(self) -> None:
        self.y: np.ndarray | None = None
        self.index: pd.DatetimeIndex | None = None
        self.freq: pd.Timedelta | None = None
        self.resid_q: dict[int, tuple[float, float]] = {}

    # -- public API ------------------------------------------------------------------------------
    def fit(self, series: pd.Series) -> Forecaster:
        y, idx = _check(series)
        self.y, self.index = y, idx
        self.freq = pd.Timedelta(idx[1] - idx[0])
        self._fit(y)
        self.resid_q = {}
        return self

    def update(self, series: pd.Series) -> Forecaster:
        """Append observations (same frequency, right after the last one); parameters stay fixed."""
        y, idx = _check(series, min_len=1)
        assert self.y is not None and self.index is not None
        self.y = np.concatenate([self.y, y])
        self.index = self.index.append(idx)
        return self

    def predict(self, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        assert self.y is not None, "fit() first"
        n = len(self.y)
        mean = np.array([self._point(self.y, n - 1, h) for h in range(1, horizon + 1)])
        lo = np.empty(horizon)
        hi = np.empty(horizon)
        for h in range(1, horizon + 1):
            ql, qh = self._residual_quantiles(h)
            lo[h - 1], hi[h - 1] = mean[h - 1] + ql, mean[h - 1] + qh
        return mean, np.maximum(lo, 0.0), hi

    def predict_index(self, horizon: int) -> pd.DatetimeIndex:
        assert self.index is not None and self.freq is not None
        return pd.date_range(self.index[-1] + self.freq, periods=horizon, freq=self.freq)

    # -- rolling helpers (vectorised in subclasses where possible) -------------------------------
    def rolling_point(self, y: np.ndarray, origins: np.ndarray, h: int) -> np.ndarray:
        """Forecast y[o + h] from y[: o + 1] for every origin o (parameters fixed by ``fit``)."""
        return np.array([self._point(y, int(o), h) for o in origins])

    def _residual_quantiles(self, h: int) -> tuple[float, float]:
        if h not in self.resid_q:
            assert self.y is not None
            y = self.y
            start = self._min_history()
            origins = np.arange(start, len(y) - h)[-4000:]
            if len(origins) < 20:
                sd = float(np.std(np.diff(y))) * math.sqrt(h) if len(y) > 2 else 0.0
                self.resid_q[h] = (-1.645 * sd, 1.645 * sd)
            else:
                err = y[origins + h] - self.rolling_point(y, origins, h)
                a = (1 - self.coverage) / 2
                self.resid_q[h] = (float(np.quantile(err, a)), float(np.quantile(err, 1 - a)))
        return self.resid_q[h]

    def _min_history(self) -> int:
        return 1

    def _fit(self, y: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _point(self, y: np.ndarray, o: int, h: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


def _check(series: pd.Series, min_len: int = 3) -> tuple[np.ndarray, pd.DatetimeIndex]:
    if not isinstance(series.index, pd.DatetimeIndex):
        raise TypeError("series needs a DatetimeIndex")
    y = series.to_numpy(dtype=float)
    if len(y) < min_len:
        raise ValueError(f"need at least {min_len} observations")
    if not np.isfinite(y).all():
        raise ValueError("series has NaN/inf values; fill them first")
    if len(series.index) > 2:
        d = np.diff(series.index.asi8)
        if (d != d[0]).any():
            raise ValueError("series must be regularly sampled (no gaps)")
    return y, series.index


def season_length(freq: pd.Timedelta, days: int = 7) -> int:
    return int(round(pd.Timedelta(days=days) / freq))


class SeasonalNaive(Forecaster):
    """``y[t+h] = y[t+h-m]`` with ``m`` one week."""

    def _fit(self, y: np.ndarray) -> None:
        self.m = season_length(self.freq)

    def _min_history(self) -> int:
        return self.m

    def _point(self, y, o, h):
        return float(y[o + h - self.m])

    def rolling_point(self, y, origins, h):
        return y[origins + h - self.m]


class LastWeekPlusDeviation(Forecaster):
    """``y[t+h] = y[t+h-m] + (y[t] - y[t-m])``: last week's shape shifted by today's deviation."""

    def _fit(self, y: np.ndarray) -> None:
        self.m = season_length(self.freq)

    def _min_history(self) -> int:
        return self.m

    def _point(self, y, o, h):
        return float(y[o + h - self.m] + y[o] - y[o - self.m])

    def rolling_point(self, y, origins, h):
        return y[origins + h - self.m] + y[origins] - y[origins - self.m]


class ProfileRegression(Forecaster):
    """Default order-volume model: weekly profile plus a regression on the current deviation, on
    the log scale, one direct model per horizon.

    ``P[t]`` is the mean of the same weekly slot over the previous ``weeks`` weeks (``m`` = one week,
    ``d`` = one day of intervals) and ``dev[t] = z[t] - P[t]`` with ``z = log1p(orders)``. The
    forecast is ``P[t+h] + b . features`` where the features are the recent deviations
    ``dev[t..t-3]``, their exponentially weighted mean (``ew_alpha``), how unusual the target slot
    was last week (``z[t+h-m] - P[t+h]``) and yesterday (``z[t+h-d] - P[t+h-d]``), today's change
    from last week (``z[t] - z[t-m]``) and a constant.
    ``b`` is fitted by (lightly ridge-regularised) least squares on the training data, so the model
    learns how much of today's deviation persists ``h`` intervals ahead — the part the seasonal
    naive and "last week plus deviation" forecasts get wrong. Prediction bands are empirical
    residual quantiles of rolling in-sample forecasts. Parameters are fixed after ``fit``;
    ``update`` only appends data. Needs ``weeks`` weeks of history plus some training rows.
    """

    def __init__(self, weeks: int = 8, ridge: float = 1e-6, log: bool = True, ew_alpha: float = 0.3) -> None:
        super().__init__()
        self.ew_alpha = float(ew_alpha)
        self.weeks = int(weeks)
        self.ridge = float(ridge)
        self.log = bool(log)
        self.coef: dict[int, np.ndarray] = {}

    def _min_history(self) -> int:
        return self.m * self.weeks + 4

    def _transform(self, y: np.ndarray) -> np.ndarray:
        return np.log1p(np.maximum(y, 0.0)) if self.log else y

    def _features(self, z: np.ndarray, origins: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray]:
        m, d = self.m, self.d
        t = origins

        def prof(idx):
            return np.mean([z[idx - k * m] for k in range(1, self.weeks + 1)], axis=0)

        def dev(idx):
            return z[idx] - prof(idx)

        ew = self._ew_dev(z)
        cols = [
            dev(t),
            dev(t - 1),
            dev(t - 2),
            dev(t - 3),
            ew[t],
            z[t + h - m] - prof(t + h),
            z[t + h - d] - prof(t + h - d) if h <= d else np.zeros(len(t)),
            z[t] - z[t - m],
            np.ones(len(t)),
        ]
        return np.column_stack(cols), prof(t + h)

    def _ew_dev(self, z: np.ndarray) -> np.ndarray:
        from scipy.signal import lfilter

        key = (id(z), len(z))
        if getattr(self, "_ew_key", None) != key:
            start = self.m * self.weeks
            devs = np.zeros(len(z))
            if len(z) > start:
                idx = np.arange(start, len(z))
                p = np.mean([z[idx - k * self.m] for k in range(1, self.weeks + 1)], axis=0)
                a = self.ew_alpha
                devs[start:] = lfilter([a], [1.0, -(1.0 - a)], z[start:] - p)
            self._ew_cache, self._ew_key = devs, key
        return self._ew_cache

    def _fit(self, y: np.ndarray) -> None:
        self.m = season_length(self.freq)
        self.d = season_length(self.freq, days=1)
        z = self._transform(y)
        self.coef = {}
        self._z = z
        self._fit_n = len(y)

    def _coef(self, h: int) -> np.ndarray:
        if h not in self.coef:
            assert self.y is not None, "fit() first"
            z = self._transform(self.y[: self._fit_n])
            origins = np.arange(self._min_history(), len(z) - h)
            if len(origins) < 50:
                raise ValueError(f"need more than {self._min_history() + 50} observations to fit")
            X, base = self._features(z, origins, h)
            target = z[origins + h] - base
            A = X.T @ X + self.ridge * len(origins) * np.eye(X.shape[1])
            self.coef[h] = np.linalg.solve(A, X.T @ target)
        return self.coef[h]

    def _back(self, v: np.ndarray) -> np.ndarray:
        return np.expm1(v) if self.log else v

    def rolling_point(self, y, origins, h):
        z = self._transform(np.asarray(y, dtype=float))
        X, base = self._features(z, np.asarray(origins), h)
        return self._back(base + X @ self._coef(h))

    def _point(self, y, o, h):
        # uses the profile of the *forecast* slot, which only needs data up to o (t+h-m <= o for h <= m)
        return float(self.rolling_point(y, np.array([o]), h)[0])


class StatsmodelsETS(Forecaster):
    """statsmodels Holt-Winters (``ExponentialSmoothing``: additive level and weekly season,
    no trend) fitted on the training data; forecasts from later origins reuse the fitted smoothing
    parameters and filter the states forward (no re-estimation)."""

    def _fit(self, y: np.ndarray) -> None:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        self.m = season_length(self.freq)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning on long seasonal periods is harmless here
            res = ExponentialSmoothing(
                y, trend=None, seasonal="add", seasonal_periods=self.m, initialization_method="estimated"
            ).fit()
        self.alpha = float(res.params["smoothing_level"])
        self.gamma = float(res.params["smoothing_seasonal"])
        self.l0 = float(res.params["initial_level"])
        self.s0 = np.asarray(res.params["initial_seasons"], dtype=float)
        self._cache_len = -1

    def _min_history(self) -> int:
        return self.m

    def _states(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """level[t] and season value for every index (season[t] = seasonal state of slot t)."""
        n = len(y)
        level = np.empty(n)
        season = np.empty(n + self.m)
        season[: self.m] = self.s0  # season[t] = seasonal state applied at time t
        lev = self.l0
        for t in range(n):
            s = season[t]
            new_lev = self.alpha * (y[t] - s) + (1 - self.alpha) * lev
            # statsmodels' convention: the seasonal update uses the previous level
            season[t + self.m] = self.gamma * (y[t] - lev) + (1 - self.gamma) * s
            lev = new_lev
            level[t] = lev
        return level, season

    def rolling_point(self, y, origins, h):
        y = np.asarray(y, dtype=float)
        level, season = self._states(y)
        origins = np.asarray(origins)
        # forecast for t+h from origin t: level[t] + latest season state for slot t+h
        if h > self.m:
            raise ValueError("horizon longer than one season")
        return level[origins] + season[origins + h]

    def _point(self, y, o, h):
        return float(self.rolling_point(y, np.array([o]), h)[0])


FORECASTERS = {
    "profile_regression": ProfileRegression,
    "seasonal_naive": SeasonalNaive,
    "last_week_plus_deviation": LastWeekPlusDeviation,
    "statsmodels_ets": StatsmodelsETS,
}
DEFAULT_FORECASTER = "profile_regression"


def recommend_riders(
    orders_per_interval: np.ndarray | float,
    interval_minutes: float = 30.0,
    minutes_per_delivery: float = 25.0,
    target_utilisation: float = 0.8,
    min_riders: int = 1,
) -> np.ndarray:
    """Riders needed per interval.

    ``riders = ceil(orders_per_hour * minutes_per_delivery / 60 / target_utilisation)`` with
    ``orders_per_hour = orders_per_interval * 60 / interval_minutes``: the rider-minutes of work per
    hour divided by the 60 minutes one rider offers, inflated so riders stay ``target_utilisation``
    busy (slack keeps waiting times short — queueing delay explodes as utilisation nears 1). Feed it
    the forecast mean for the expected staffing or the upper band to staff for a busy interval.
    """
    if target_utilisation <= 0 or target_utilisation > 1:
        raise ValueError("target_utilisation must be in (0, 1]")
    orders = np.maximum(np.asarray(orders_per_interval, dtype=float), 0.0)
    per_hour = orders * 60.0 / interval_minutes
    riders = np.ceil(per_hour * minutes_per_delivery / 60.0 / target_utilisation - 1e-9)
    return np.maximum(riders, min_riders).astype(int)
