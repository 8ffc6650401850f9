"""Detector plug-in interface and registry.

A :class:`Detector` consumes one metric stream point by point:

* ``score_one(t, x)`` returns the anomaly score of ``x`` at time ``t`` in ``[0, 1]`` (higher = more
  anomalous) given everything learnt so far. It does **not** change the detector's state;
* ``learn_one(t, x)`` then folds the point into the state (call it after ``score_one``);
* ``score_series(timestamps, values)`` is the batch path used for back-testing: it scores and learns
  every row in order, so the score at row ``i`` only depends on rows ``<= i`` (causal), continues
  from the current state and leaves the detector ready for the next point. It returns exactly what
  the ``score_one``/``learn_one`` loop returns (the contract tests check this), only faster where a
  detector overrides it with a vectorised implementation;
* ``get_state()`` / ``set_state()`` save and restore the whole state (detectors are also pickle-able).

Timestamps may be ``datetime``, ``numpy.datetime64``, ``pandas.Timestamp`` or epoch seconds; values
are finite floats (detectors marked ``multivariate`` also accept 1-D vectors per point). Non-finite
values raise ``ValueError`` in ``score_series`` and in the default detector's per-point path.

Register a detector with :func:`register`; build one with :func:`get_detector`.
"""

from __future__ import annotations

import copy
import datetime as _dt
from collections.abc import Callable
from typing import Any

import numpy as np


def to_epoch_seconds(t: Any) -> float:
    """Convert one timestamp to float epoch seconds (UTC-naive timestamps are taken as is)."""
    if isinstance(t, int | float | np.integer | np.floating):
        return float(t)
    if isinstance(t, np.datetime64):
        return float(t.astype("datetime64[us]").astype(np.int64)) / 1e6
    if isinstance(t, _dt.datetime):
        if t.tzinfo is not None:
            return t.timestamp()
        return (t - _dt.datetime(1970, 1, 1)).total_seconds()
    if isinstance(t, str):
        return float(np.datetime64(t, "us").astype(np.int64)) / 1e6
    raise TypeError(f"unsupported timestamp type {type(t).__name__}")


def series_to_epoch_seconds(timestamps: Any) -> np.ndarray:
    """Vectorised :func:`to_epoch_seconds` for an array/Series/list of timestamps."""
    arr = np.asarray(timestamps)
    if np.issubdtype(arr.dtype, np.datetime64):
        return arr.astype("datetime64[us]").astype(np.int64) / 1e6
    if np.issubdtype(arr.dtype, np.number):
        return arr.astype(float)
    return np.array([to_epoch_seconds(t) for t in arr], dtype=float)


def check_values(values: Any, n: int | None = None) -> np.ndarray:
    """Values as a float array; raises ValueError on NaN/inf or a length mismatch (fill gaps and
    missing values before scoring: an imputed value can hide or fake an anomaly)."""
    vals = np.asarray(values, dtype=float)
    if n is not None and len(vals) != n:
        raise ValueError(f"{len(vals)} values for {n} timestamps")
    if not np.isfinite(vals).all():
        raise ValueError("values contain NaN or infinity; fill or drop them before scoring")
    return vals


class Detector:
    """Base class of streaming anomaly detectors (see the module docstring for the contract)."""

    name: str = "base"
    multivariate: bool = False

    def score_one(self, t: Any, x: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def learn_one(self, t: Any, x: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def score_series(self, timestamps: Any, values: Any) -> np.ndarray:
        """Score then learn every row in order (causal); returns one score per row."""
        ts = series_to_epoch_seconds(timestamps)
        vals = check_values(values, len(ts))
        out = np.empty(len(ts))
        for i in range(len(ts)):
            x = vals[i] if vals.ndim == 1 else vals[i]
            out[i] = self.score_one(ts[i], x)
            self.learn_one(ts[i], x)
        return out

    def get_state(self) -> dict[str, Any]:
        """A deep copy of everything the detector has learnt (restorable with :meth:`set_state`)."""
        return copy.deepcopy(self.__dict__)

    def set_state(self, state: dict[str, Any]) -> None:
        self.__dict__.clear()
        self.__dict__.update(copy.deepcopy(state))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


DETECTORS: dict[str, Callable[..., Detector]] = {}
DEFAULT_DETECTOR = "novelty"


def register(name: str) -> Callable[[type[Detector]], type[Detector]]:
    def deco(cls: type[Detector]) -> type[Detector]:
        cls.name = name
        DETECTORS[name] = cls
        return cls

    return deco


def get_detector(name: str = DEFAULT_DETECTOR, **params: Any) -> Detector:
    """Build a registered detector: ``get_detector("novelty", warmup=300)``."""
    _load_builtin()
    try:
        factory = DETECTORS[name]
    except KeyError:
        raise KeyError(f"unknown detector {name!r}; choose from {', '.join(sorted(DETECTORS))}") from None
    return factory(**params)


def _load_builtin() -> None:
    # importing the modules registers their detectors
    from waimai.firewall.detect import baselines, detectors, product  # noqa: F401
