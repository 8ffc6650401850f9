"""Anomaly signals on the service's key series, computed continuously from the embedded store.

After each sample the watcher scores the new point of every watched series with the detector fitted
to that kind of series (`waimai.firewall.detect.product.SERIES_DETECTORS`: counts as counts, success
and error ratios with their denominators, percentiles on the log scale, gauges), writes the score as
the series `anomaly.<name>` (so alert rules of kind `anomaly` and the charts can use it) and opens a
signal — series, onset, score, the expected range — when the score crosses the threshold. A signal
closes when the score stays below 70% of the threshold. The figures behind these choices:
`waimai bench faults` (README).

On its first step after a start the watcher learns the last hour silently: a restart neither opens
nor re-logs signals for points it had already judged.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from waimai.core.numbers import readable
from waimai.firewall.detect import get_detector
from waimai.firewall.detect.product import DENOMINATORS, SERIES_DETECTORS
from waimai.firewall.monitoring.store import MetricStore

log = structlog.get_logger(__name__)

# Series watched and the smallest change that matters to operations; the detectors' own minimum
# changes come from product.SERIES_DETECTORS, these are kept for a custom `series=` mapping.
WATCHED: dict[str, float] = {
    "payment_success_ratio": 0.1, "payment_latency_p95_ms": 100.0, "orders_placed_per_min": 5.0,
    "http_latency_p95_ms": 100.0, "http_error_ratio": 0.02, "db_query_p95_ms": 20.0, "dispatch_backlog": 5.0,
    "riders_on_shift": 3.0}


@dataclass
class Signal:
    series: str
    onset: dt.datetime
    score: float
    value: float
    expected_low: float
    expected_high: float
    closed_at: dt.datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"series": self.series, "onset": self.onset.isoformat(), "score": round(self.score, 3),
                "value": readable(self.value),
                "expected": f"{readable(self.expected_low)}–{readable(self.expected_high)}",
                "closed_at": self.closed_at.isoformat() if self.closed_at else None}

    def row(self) -> dict[str, Any]:
        return {"series": self.series, "onset": self.onset.timestamp(), "score": self.score, "value": self.value,
                "expected_low": self.expected_low, "expected_high": self.expected_high,
                "closed_at": self.closed_at.timestamp() if self.closed_at else None}

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> Signal:
        def at(v: Any) -> dt.datetime | None:
            return dt.datetime.fromtimestamp(float(v), dt.UTC) if v is not None else None

        onset = at(r["onset"])
        assert onset is not None
        return cls(series=str(r["series"]), onset=onset, score=float(r["score"]), value=float(r["value"]),
                   expected_low=float(r["expected_low"]), expected_high=float(r["expected_high"]),
                   closed_at=at(r["closed_at"]))


def stored_signals(store: MetricStore, *, limit: int = 500, active: bool = False) -> list[Signal]:
    """The deployment's signals, oldest first, as the watcher on the worker leader stored them."""
    return [Signal.from_row(r) for r in reversed(store.signals(limit=limit, active=active))]


@dataclass
class _Track:
    detector: Any
    last_ts: float = 0.0
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=120))
    open: Signal | None = None
    open_id: int | None = None  # its row in the store


class AnomalyWatcher:
    def __init__(self, store: MetricStore, *, detector: str | None = None, threshold: float = 0.8,
                 series: dict[str, float] | None = None, params: dict[str, Any] | None = None,
                 interval_s: float = 5.0, holidays: frozenset[dt.date] = frozenset()) -> None:
        """``detector=None`` (the default) picks the detector fitted to each series; a name forces
        one detector (with ``params``) on every series."""
        self.store = store
        self.threshold = threshold
        self.detector = detector
        self.interval_s = interval_s
        self.min_delta = dict(WATCHED if series is None else series)
        self.tracks = {s: _Track(self._build(s, params, holidays)) for s in self.min_delta}
        self.signals: deque[Signal] = deque(maxlen=500)  # this process's own; the store has the deployment's
        self._adopted = False

    def _build(self, name: str, params: dict[str, Any] | None, holidays: frozenset[dt.date]) -> Any:
        if self.detector is not None or name not in SERIES_DETECTORS:
            return get_detector(self.detector or "robust_seasonal",
                                **(params if params is not None else {"history": 60, "window": 120}))
        kind, p = SERIES_DETECTORS[name]
        p = dict(p)
        if kind == "counts":
            p.update(interval_s=self.interval_s, holidays=holidays)
        elif p.get("profile_window"):
            p.update(holidays=holidays)
        return get_detector(kind, **p)

    def _denominators(self, name: str, start: float, end: float) -> dict[float, float]:
        den = DENOMINATORS.get(name)
        if den is None or self.detector is not None:
            return {}
        # a per-minute rate back to the calls behind each sample
        return {p.ts: p.value * self.interval_s / 60.0 for p in self.store.query(den, start, end)}

    def step(self, now: float) -> list[Signal]:
        """Score every point that arrived since the last step; returns signals opened now."""
        opened: list[Signal] = []
        scores: dict[float, dict[str, float]] = {}
        judged: dict[str, float] = {}
        if not self._adopted:  # a new leader (or a restart) carries on the signals its predecessor left open
            self._adopted = True
            # What is already in the store is learned from, not judged: a fresh detector would call the past
            # anomalous (and a restart would re-log old signals).
            judged = {name: now - 2 * self.interval_s for name in self.tracks}
            for r in self.store.signals():
                name = str(r["series"])
                tr = self.tracks.get(name)
                if tr is None:
                    continue
                # Points up to the predecessor's last verdict are learned from, not judged again.
                judged[name] = max(judged.get(name, 0.0), float(r["closed_at"] or r["onset"]))  # type: ignore[arg-type]
                if r["closed_at"] is None and tr.open is None:
                    tr.open, tr.open_id = Signal.from_row(r), int(r["id"])  # type: ignore[arg-type]
        for name, tr in self.tracks.items():
            start = tr.last_ts + 1 if tr.last_ts else now - 3600
            dens = self._denominators(name, start, now)
            for p in self.store.query(name, start, now):
                if p.ts <= tr.last_ts:
                    continue
                x: Any = (p.value, dens.get(p.ts, 1.0)) if name in DENOMINATORS and dens else p.value
                score = float(tr.detector.score_one(p.ts, x))
                tr.detector.learn_one(p.ts, x)
                if self.detector is not None and tr.recent and \
                        abs(p.value - statistics.median(tr.recent)) < self.min_delta[name]:
                    score = min(score, 0.5 * self.threshold)
                tr.last_ts = p.ts
                if p.ts <= judged.get(name, 0.0):
                    if score < self.threshold:
                        tr.recent.append(p.value)
                    continue
                scores.setdefault(p.ts, {})[f"anomaly.{name}"] = score
                if len(tr.recent) >= 10:  # the expected band the charts draw around the series
                    lo, hi = self._expected(tr)
                    scores[p.ts][f"band_low.{name}"], scores[p.ts][f"band_high.{name}"] = lo, hi
                if tr.open is None and score >= self.threshold and len(tr.recent) >= 10:
                    lo, hi = self._expected(tr)
                    tr.open = Signal(series=name, onset=dt.datetime.fromtimestamp(p.ts, dt.UTC), score=score,
                                     value=p.value, expected_low=lo, expected_high=hi)
                    self.signals.append(tr.open)
                    opened.append(tr.open)
                    tr.open_id = self.store.save_signal(tr.open.row())
                    log.warning("anomaly_signal", **tr.open.as_dict())
                elif tr.open is not None:
                    before = (tr.open.score, tr.open.closed_at)
                    tr.open.score = max(tr.open.score, score)
                    if score < 0.7 * self.threshold:
                        tr.open.closed_at = dt.datetime.fromtimestamp(p.ts, dt.UTC)
                    if (tr.open.score, tr.open.closed_at) != before:
                        self.store.save_signal(tr.open.row(), tr.open_id)
                    if tr.open.closed_at is not None:
                        tr.open, tr.open_id = None, None
                if tr.open is None:
                    tr.recent.append(p.value)  # the baseline for "expected" excludes anomalous points
        for ts, values in scores.items():
            self.store.write(ts, values)
        return opened

    @staticmethod
    def _expected(tr: _Track) -> tuple[float, float]:
        """The band a normal value falls in: the detector's own when it has one, else median ± 3 MAD;
        never below zero (every watched series is a count, a ratio or a time)."""
        band = getattr(tr.detector, "expected", None)
        if band is not None:
            lo, hi = band()
        else:
            vals = list(tr.recent)
            med = statistics.median(vals)
            mad = statistics.median(abs(v - med) for v in vals) * 1.4826
            lo, hi = med - 3 * mad, med + 3 * mad
        return round(max(0.0, lo), 4), round(max(0.0, hi), 4)

    def active(self) -> list[Signal]:
        return [t.open for t in self.tracks.values() if t.open is not None]
