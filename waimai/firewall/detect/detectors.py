"""Built-in detectors (registered on import).

Each class docstring says what the detector catches. All are causal and streaming; the NAB bench
passes ``warmup`` = NAB's probationary period (rows learnt but scored 0).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from waimai.firewall.detect.base import (
    Detector,
    check_values,
    register,
    series_to_epoch_seconds,
    to_epoch_seconds,
)
from waimai.firewall.detect.novelty import NoveltyDetector, _nms

__all__ = [
    "CusumDetector",
    "EnsembleDetector",
    "HoltWintersDetector",
    "IsolationForestDetector",
    "NoveltyDetector",
    "RobustSeasonalDetector",
    "WindowedGaussianDetector",
]


def _squash(z: float, scale: float) -> float:
    """Map a non-negative deviation to [0, 1): z / (z + scale)."""
    return z / (z + scale) if z > 0 else 0.0


# ------------------------------------------------------------------------------------------------
@register("windowed_gaussian")
class WindowedGaussianDetector(Detector):
    """NAB's ``windowedGaussian`` baseline: tail probability under a Gaussian fitted to the last
    ``window`` (1000) values: ``score = 1 - Q(|x - mean| / std)``.

    Catches isolated large spikes in stationary data; misses anything seasonal or gradual, and fires
    on every value of a new level until the window forgets the old one. Kept as the simple baseline
    (NAB v1.1 publishes 39.6 / 20.9 / 47.4 for it; our reproduction is in the bench).
    """

    def __init__(self, window: int = 1000, warmup: int = 0) -> None:
        self.window = int(window)
        self.warmup = int(warmup)
        self.buf: deque[float] = deque(maxlen=self.window)
        self.n = 0

    def _score(self, x: float) -> float:
        if not self.buf:
            return 0.0
        arr = np.fromiter(self.buf, dtype=float)
        mean = float(arr.mean())
        std = float(arr.std()) or 1e-6
        z = abs(x - mean) / std
        return 1.0 - 0.5 * math.erfc(z / math.sqrt(2.0))

    def score_one(self, t: Any, x: float) -> float:
        return self._score(float(x)) if self.n >= self.warmup else 0.0

    def learn_one(self, t: Any, x: float) -> None:
        self.buf.append(float(x))
        self.n += 1

    def score_series(self, timestamps: Any, values: Any) -> np.ndarray:
        vals = check_values(values)
        if self.n or len(vals) < 2:
            return super().score_series(timestamps, vals)
        s = pd.Series(vals)
        mean = s.rolling(self.window, min_periods=1).mean().shift(1).to_numpy()
        std = s.rolling(self.window, min_periods=1).std(ddof=0).shift(1).to_numpy()
        std = np.where((std == 0) | np.isnan(std), 1e-6, std)
        z = np.abs(vals - mean) / std
        from scipy.special import erfc

        out = 1.0 - 0.5 * erfc(z / math.sqrt(2.0))
        out[0] = 0.0
        out[: self.warmup] = 0.0
        self.buf.extend(vals[-self.window :].tolist())
        self.n = len(vals)
        return np.nan_to_num(out)


# ------------------------------------------------------------------------------------------------
@register("robust_seasonal")
class RobustSeasonalDetector(Detector):
    """Median/MAD per seasonal slot (hour of day x weekday/weekend).

    Catches values that are abnormal *for this time of day and kind of day* — a lunch-time order
    volume at 3 am, a dinner peak that does not come — which plain z-scores miss because the daily
    swing dominates the variance. Robust statistics (median, MAD over the last ``history`` values of
    the slot) keep one outage from poisoning the baseline. Slots fall back hierarchically while they
    have fewer than ``min_slot`` values: hour x day-type -> hour of day -> the last ``window`` points.
    The MAD is floored at half the median absolute step of recent data, so near-constant slots do not
    turn noise into alarms. ``score = z / (z + 5)`` with ``z = |x - median| / (1.4826 MAD)``.
    """

    def __init__(self, history: int = 12, window: int = 96, min_slot: int = 5, warmup: int = 0) -> None:
        self.history = int(history)
        self.window = int(window)
        self.min_slot = int(min_slot)
        self.warmup = int(warmup)
        self.slots: dict[tuple[int, ...], deque[float]] = {}
        self.recent: deque[float] = deque(maxlen=self.window)
        self.n = 0

    @staticmethod
    def _keys(t: Any) -> tuple[tuple[int, int], tuple[int]]:
        sec = to_epoch_seconds(t)
        day = math.floor(sec / 86400.0)
        hour = int((sec - day * 86400.0) // 3600)
        weekend = 1 if (day + 3) % 7 >= 5 else 0  # 1970-01-01 was a Thursday
        return (hour, weekend), (hour,)

    def score_one(self, t: Any, x: float) -> float:
        if self.n < max(self.warmup, 1):
            return 0.0
        ref = self.recent
        for key in self._keys(t):
            hist = self.slots.get(key)
            if hist is not None and len(hist) >= self.min_slot:
                ref = hist
                break
        arr = np.fromiter(ref, dtype=float)
        med = float(np.median(arr))
        mad = float(np.median(np.abs(arr - med)))
        rec = np.fromiter(self.recent, dtype=float)
        floor = 0.5 * float(np.median(np.abs(np.diff(rec)))) if len(rec) > 2 else 0.0
        z = abs(float(x) - med) / (1.4826 * max(mad, floor) + 1e-9)
        return _squash(z, 5.0)

    def learn_one(self, t: Any, x: float) -> None:
        for key in self._keys(t):
            self.slots.setdefault(key, deque(maxlen=self.history)).append(float(x))
        self.recent.append(float(x))
        self.n += 1


# ------------------------------------------------------------------------------------------------
@register("holt_winters")
class HoltWintersDetector(Detector):
    """Forecast-residual detector: incremental additive Holt-Winters (damped trend, daily season).

    Catches deviations from the *expected* value given level, trend and daily shape — a slow drift
    that stays within the historical range but leaves the forecast band, or a missing peak. The
    season length is one day in rows, taken from the sampling interval (no season when a day is
    longer than ``max_period`` rows). Residuals are scaled by an exponentially weighted mean absolute
    residual; ``score = z / (z + 5)``. The update is O(1) per point (this is the incremental
    equivalent of statsmodels' ``ExponentialSmoothing``; the forecaster module uses statsmodels).
    """

    def __init__(
        self,
        alpha: float = 0.3,
        beta: float = 0.01,
        gamma: float = 0.1,
        phi: float = 0.98,
        scale_alpha: float = 0.02,
        max_period: int = 2000,
        warmup: int = 0,
    ) -> None:
        self.alpha, self.beta, self.gamma, self.phi = alpha, beta, gamma, phi
        self.scale_alpha = scale_alpha
        self.max_period = int(max_period)
        self.warmup = int(warmup)
        self.n = 0
        self.t_prev: float | None = None
        self.period = 0
        self.level = 0.0
        self.trend = 0.0
        self.season: list[float] = []
        self.scale = 0.0
        self.dts: list[float] = []

    def _forecast(self) -> float:
        s = self.season[self.n % self.period] if self.period else 0.0
        return self.level + self.phi * self.trend + s

    def score_one(self, t: Any, x: float) -> float:
        if self.n < max(self.warmup, 2) or self.scale <= 0:
            return 0.0
        z = abs(float(x) - self._forecast()) / (1.25 * self.scale)
        return _squash(z, 5.0)

    def learn_one(self, t: Any, x: float) -> None:
        x = float(x)
        sec = to_epoch_seconds(t)
        if self.t_prev is not None and len(self.dts) < 20:
            self.dts.append(sec - self.t_prev)
            if len(self.dts) == 20:
                dt = float(np.median(self.dts))
                p = int(round(86400.0 / dt)) if dt > 0 else 0
                self.period = p if 2 <= p <= self.max_period else 0
                self.season = [0.0] * self.period
        self.t_prev = sec
        if self.n == 0:
            self.level = x
        else:
            f = self._forecast()
            err = x - f
            self.scale = (
                abs(err)
                if self.scale == 0
                else (1 - self.scale_alpha) * self.scale + self.scale_alpha * abs(err)
            )
            s = self.season[self.n % self.period] if self.period else 0.0
            prev_level = self.level
            self.level = self.alpha * (x - s) + (1 - self.alpha) * (self.level + self.phi * self.trend)
            self.trend = self.beta * (self.level - prev_level) + (1 - self.beta) * self.phi * self.trend
            if self.period:
                self.season[self.n % self.period] = self.gamma * (x - self.level) + (1 - self.gamma) * s
        self.n += 1


# ------------------------------------------------------------------------------------------------
@register("cusum")
class CusumDetector(Detector):
    """Change-point detector: CUSUM on Holt-Winters forecast residuals — two-sided for level shifts
    plus one on squared standardised residuals for variance shifts.

    Catches *sustained* small shifts that no single point reveals — latency creeping up by one
    standard deviation, a metric that suddenly gets noisy (a flapping dependency) — because the
    evidence accumulates: ``S+ = max(0, S+ + z - k)``. Running it on forecast residuals (instead of
    raw values) keeps the daily cycle from looking like a change. After an alarm (statistic > ``h``)
    the sums restart. ``score = S / (S + h)`` for the largest of the three statistics.
    """

    def __init__(self, k: float = 0.5, h: float = 8.0, kv: float = 1.0, warmup: int = 0) -> None:
        self.k, self.h, self.kv = k, h, kv
        self.warmup = int(warmup)
        self.hw = HoltWintersDetector()
        self.n = 0
        self.sp = self.sm = self.sv = 0.0

    def _stats(self, x: float) -> tuple[float, float, float]:
        hw = self.hw
        if hw.n < 2 or hw.scale <= 0:
            return 0.0, 0.0, 0.0
        z = max(min((x - hw._forecast()) / (1.25 * hw.scale), 50.0), -50.0)
        sp = max(0.0, self.sp + z - self.k)
        sm = max(0.0, self.sm - z - self.k)
        sv = max(0.0, self.sv + (z * z - 1.0) - self.kv)
        return sp, sm, sv

    def score_one(self, t: Any, x: float) -> float:
        if self.n < max(self.warmup, 2):
            return 0.0
        return _squash(max(self._stats(float(x))), self.h)

    def learn_one(self, t: Any, x: float) -> None:
        x = float(x)
        self.sp, self.sm, self.sv = self._stats(x)
        if max(self.sp, self.sm, self.sv) > self.h:  # alarm: restart the sums
            self.sp = self.sm = self.sv = 0.0
        self.hw.learn_one(t, x)
        self.n += 1


# ------------------------------------------------------------------------------------------------
@register("iforest")
class IsolationForestDetector(Detector):
    """scikit-learn IsolationForest over rolling-window features, multi-metric capable.

    Features per metric: value, deviation from the rolling mean, rolling std and first difference
    over ``window`` rows — so it isolates points that are unusual in *combination* (CPU normal but
    latency and error rate jointly odd), which per-metric thresholds miss. Pass a 2-D ``values``
    array (rows x metrics) or a vector per point for several metrics. The forest is fitted on the
    first ``warmup`` rows and refitted every ``refit`` rows on the last ``buffer`` rows.
    ``score = -score_samples`` (the original paper's anomaly score, in (0, 1]).
    """

    multivariate = True

    def __init__(
        self,
        window: int = 16,
        warmup: int = 256,
        refit: int = 2000,
        buffer: int = 2000,
        n_estimators: int = 50,
        seed: int = 0,
    ) -> None:
        self.window = int(window)
        self.warmup = max(int(warmup), 8)
        self.refit = int(refit)
        self.buffer = int(buffer)
        self.n_estimators = int(n_estimators)
        self.seed = int(seed)
        self.n = 0
        self.hist: deque[np.ndarray] = deque(maxlen=self.window)
        self.feats: deque[np.ndarray] = deque(maxlen=self.buffer)
        self.model: Any = None  # sklearn IsolationForest once fitted
        self.fitted_at = -1

    def _features(self, x: np.ndarray) -> np.ndarray:
        h = np.vstack([*self.hist, x])[-self.window :]
        mean = h.mean(axis=0)
        std = h.std(axis=0)
        diff = x - (self.hist[-1] if self.hist else x)
        return np.concatenate([x, x - mean, std, diff])

    def _fit(self) -> None:
        from sklearn.ensemble import IsolationForest

        self.model = IsolationForest(n_estimators=self.n_estimators, random_state=self.seed)
        self.model.fit(np.vstack(self.feats))
        self.fitted_at = self.n

    def score_one(self, t: Any, x: Any) -> float:
        if self.model is None:
            return 0.0
        f = self._features(np.atleast_1d(np.asarray(x, dtype=float)))
        return float(-self.model.score_samples(f[None, :])[0])

    def learn_one(self, t: Any, x: Any) -> None:
        x = np.atleast_1d(np.asarray(x, dtype=float))
        self.feats.append(self._features(x))
        self.hist.append(x)
        self.n += 1
        if self.n == self.warmup or (self.model is not None and self.n - self.fitted_at >= self.refit):
            self._fit()

    def score_series(self, timestamps: Any, values: Any) -> np.ndarray:
        vals = check_values(values)
        if self.n or len(vals) <= self.warmup:
            return super().score_series(timestamps, vals)
        v2 = vals[:, None] if vals.ndim == 1 else vals
        n, _ = v2.shape
        w = self.window
        cs = np.vstack([np.zeros((1, v2.shape[1])), np.cumsum(v2, axis=0)])
        cs2 = np.vstack([np.zeros((1, v2.shape[1])), np.cumsum(v2 * v2, axis=0)])
        idx = np.arange(n)
        lo = np.maximum(idx - w + 1, 0)
        cnt = (idx + 1 - lo)[:, None]
        mean = (cs[idx + 1] - cs[lo]) / cnt
        var = np.maximum((cs2[idx + 1] - cs2[lo]) / cnt - mean * mean, 0.0)
        diff = np.vstack([np.zeros((1, v2.shape[1])), np.diff(v2, axis=0)])
        feats = np.hstack([v2, v2 - mean, np.sqrt(var), diff])
        out = np.zeros(n)
        fit_points = list(range(self.warmup, n + 1, self.refit))
        for j, start in enumerate(fit_points):
            self.n = start
            self.feats = deque(
                (row for row in feats[max(0, start - self.buffer) : start]), maxlen=self.buffer
            )
            self._fit()
            end = fit_points[j + 1] if j + 1 < len(fit_points) else n
            if end > start:
                out[start:end] = -self.model.score_samples(feats[start:end])
        self.feats = deque((row for row in feats[max(0, n - self.buffer) : n]), maxlen=self.buffer)
        self.hist = deque((row for row in v2[-w:]), maxlen=w)
        self.n = n
        return out


# ------------------------------------------------------------------------------------------------
@register("ensemble")
class EnsembleDetector(Detector):
    """Weighted blend of novelty (unsuppressed), robust-seasonal, Holt-Winters and CUSUM scores,
    followed by causal non-maximum suppression over ``suppress`` rows (default ``warmup / 5``).

    Each member covers a different failure shape (new behaviour, time-of-day anomaly, forecast
    miss, sustained shift); the blend raises rows several members agree on, and the suppression
    keeps one incident from raising a stream of alarms (only the first detection of an incident is
    useful and every repeat costs operator attention — and NAB false-positive points).
    """

    def __init__(
        self,
        warmup: int = 300,
        weights: tuple[float, float, float, float] = (0.7, 0.1, 0.1, 0.1),
        suppress: int | None = None,
    ) -> None:
        self.warmup = int(warmup)
        self.weights = tuple(weights)
        self.suppress = int(self.warmup / 5) if suppress is None else int(suppress)
        self.members: list[Detector] = [
            NoveltyDetector(warmup=warmup, suppress=0),
            RobustSeasonalDetector(warmup=warmup),
            HoltWintersDetector(warmup=warmup),
            CusumDetector(warmup=warmup),
        ]
        self.raw_hist: deque[float] = deque(maxlen=max(self.suppress, 1))

    def _raw(self, t: Any, x: float) -> float:
        return float(sum(w * m.score_one(t, x) for w, m in zip(self.weights, self.members, strict=True)))

    def score_one(self, t: Any, x: float) -> float:
        raw = self._raw(t, x)
        if self.suppress > 0 and self.raw_hist and raw <= max(self.raw_hist):
            return 0.0
        return raw

    def learn_one(self, t: Any, x: float) -> None:
        raw = self._raw(t, x)
        for m in self.members:
            m.learn_one(t, x)
        self.raw_hist.append(raw)

    def score_series(self, timestamps: Any, values: Any) -> np.ndarray:
        ts = series_to_epoch_seconds(timestamps)
        vals = check_values(values)
        raws = np.zeros(len(vals))
        for w, m in zip(self.weights, self.members, strict=True):
            raws += w * m.score_series(ts, vals)
        prev = np.fromiter(self.raw_hist, dtype=float)
        full = np.concatenate([prev, raws])
        out = _nms(full, self.suppress)[len(prev) :] if self.suppress > 0 else raws
        self.raw_hist.extend(raws.tolist())
        return out


# ------------------------------------------------------------------------------------------------
class RecordCalibrated(Detector):
    """Wrap a detector so its scores are comparable across metrics and do not flood.

    The inner score ``s`` is turned into odds ``s / (1 - s)`` (proportional to the deviation for our
    ``z / (z + c)`` squashes), divided by its slowly decaying historical maximum (half-life
    ``2 * max(warmup, 100)`` rows) — "how much larger than anything recent" — squashed to
    ``r / (1 + r)`` and passed through causal non-maximum suppression over ``suppress`` rows
    (default ``warmup / 5``). This is the same calibration the default detector uses internally.
    """

    multivariate = True

    def __init__(self, inner: Detector, warmup: int = 300, suppress: int | None = None) -> None:
        self.inner = inner
        self.warmup = int(warmup)
        self.suppress = int(self.warmup / 5) if suppress is None else int(suppress)
        self.decay = 0.5 ** (1.0 / (2.0 * max(self.warmup, 100)))
        self.m = 0.0
        self.n = 0
        self.raw_hist: deque[float] = deque(maxlen=max(self.suppress, 1))

    @staticmethod
    def _odds(s: float) -> float:
        return s / max(1.0 - s, 1e-12)

    def _raw(self, v: float) -> float:
        if self.n < self.warmup:
            return 0.0
        r = v / self.m if self.m > 0 else (1.0 if v > 0 else 0.0)
        return r / (1.0 + r)

    def score_one(self, t: Any, x: Any) -> float:
        raw = self._raw(self._odds(self.inner.score_one(t, x)))
        if self.suppress > 0 and self.raw_hist and raw <= max(self.raw_hist):
            return 0.0
        return raw

    def learn_one(self, t: Any, x: Any) -> None:
        v = self._odds(self.inner.score_one(t, x))
        self.raw_hist.append(self._raw(v))
        self.inner.learn_one(t, x)
        self.m *= self.decay
        if v > self.m:
            self.m = v
        self.n += 1

    def score_series(self, timestamps: Any, values: Any) -> np.ndarray:
        s = np.asarray(self.inner.score_series(timestamps, values), dtype=float)
        v = s / np.maximum(1.0 - s, 1e-12)
        active = np.arange(self.n, self.n + len(v)) >= self.warmup
        from waimai.firewall.detect.novelty import _decaying_max_ratio

        r, self.m = _decaying_max_ratio(v, self.m, self.decay, active)
        raw = np.where(active, r / (1.0 + r), 0.0)
        prev = np.fromiter(self.raw_hist, dtype=float)
        out = _nms(np.concatenate([prev, raw]), self.suppress)[len(prev) :] if self.suppress > 0 else raw
        self.raw_hist.extend(raw.tolist())
        self.n += len(v)
        return out

    def __repr__(self) -> str:
        return f"RecordCalibrated({self.inner!r})"


def _calibrated(cls: Callable[..., Detector], name: str) -> None:
    def factory(warmup: int = 300, suppress: int | None = None, **params: Any) -> Detector:
        return RecordCalibrated(cls(warmup=warmup, **params), warmup=warmup, suppress=suppress)

    factory.__doc__ = f"{cls.__name__} with record-ratio calibration and suppression.\n\n{cls.__doc__}"
    from waimai.firewall.detect.base import DETECTORS

    DETECTORS[name] = factory


for _cls, _name in (
    (RobustSeasonalDetector, "robust_seasonal_cal"),
    (HoltWintersDetector, "holt_winters_cal"),
    (CusumDetector, "cusum_cal"),
    (IsolationForestDetector, "iforest_cal"),
):
    _calibrated(_cls, _name)
