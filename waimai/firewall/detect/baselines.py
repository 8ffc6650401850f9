"""Off-the-shelf detectors a user would pick instead of ours, wrapped in the same interface so the
NAB bench shows the ratios.

* ``sklearn_iforest_raw`` — scikit-learn ``IsolationForest`` on raw sliding windows of ``window``
  values, the way PyOD users typically run it; to stay causal it is fitted on the warm-up rows only
  (fitting on the whole series would peek at the future).
* ``river_hst`` — river's ``HalfSpaceTrees`` behind a ``MinMaxScaler`` (the pipeline from river's
  documentation), learning online point by point.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from waimai.core.extras import require
from waimai.firewall.detect.base import Detector, check_values, register


@register("sklearn_iforest_raw")
class SklearnIForestRaw(Detector):
    """IsolationForest (100 trees, sklearn defaults) on the last ``window`` raw values."""

    def __init__(self, window: int = 32, warmup: int = 256, seed: int = 0) -> None:
        self.window = int(window)
        self.warmup = max(int(warmup), self.window + 8)
        self.seed = int(seed)
        self.hist: deque[float] = deque(maxlen=self.window)
        self.train: list[np.ndarray] = []
        self.model: Any = None  # sklearn IsolationForest once fitted
        self.n = 0

    def _vec(self, x: float) -> np.ndarray | None:
        if len(self.hist) < self.window - 1:
            return None
        return np.array([*list(self.hist)[-(self.window - 1) :], x])

    def score_one(self, t: Any, x: float) -> float:
        v = self._vec(float(x))
        if self.model is None or v is None:
            return 0.0
        return float(-self.model.score_samples(v[None, :])[0])

    def _fit(self) -> None:
        from sklearn.ensemble import IsolationForest

        self.model = IsolationForest(random_state=self.seed).fit(np.vstack(self.train))
        self.train = []

    def learn_one(self, t: Any, x: float) -> None:
        v = self._vec(float(x))
        if self.model is None and v is not None:
            self.train.append(v)
        self.hist.append(float(x))
        self.n += 1
        if self.n == self.warmup:
            self._fit()

    def score_series(self, timestamps: Any, values: Any) -> np.ndarray:
        vals = check_values(values)
        if self.n or len(vals) <= self.warmup:
            return super().score_series(timestamps, vals)
        w = self.window
        win = np.lib.stride_tricks.sliding_window_view(vals, w)  # row j ends at index j + w - 1
        self.train = list(win[: self.warmup - w + 1])
        self._fit()
        out = np.zeros(len(vals))
        out[self.warmup :] = -self.model.score_samples(win[self.warmup - w + 1 :])
        self.hist = deque(vals[-w:].tolist(), maxlen=w)
        self.n = len(vals)
        return out


@register("river_hst")
class RiverHalfSpaceTrees(Detector):
    """river ``MinMaxScaler | HalfSpaceTrees(seed=42)`` with river's defaults (10 trees, height 8,
    window 250), fed ``{"x": value}``."""

    def __init__(self, seed: int = 42, warmup: int = 0) -> None:
        require("river", "bench", "The river_hst baseline of the NAB bench")
        from river import anomaly, compose, preprocessing

        self.model = compose.Pipeline(preprocessing.MinMaxScaler(), anomaly.HalfSpaceTrees(seed=seed))
        self.warmup = int(warmup)
        self.n = 0

    def score_one(self, t: Any, x: float) -> float:
        if self.n < self.warmup:
            return 0.0
        return float(min(max(self.model.score_one({"x": float(x)}), 0.0), 1.0))

    def learn_one(self, t: Any, x: float) -> None:
        self.model.learn_one({"x": float(x)})
        self.n += 1
