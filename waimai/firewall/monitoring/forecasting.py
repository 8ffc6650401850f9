"""Order-volume forecast for the ops console: the next 30 and 60 minutes with a band, a surge
warning, and the riders needed — from the embedded store's `orders_placed_per_min` history.

The model is the benchmark's default (profile regression, MASE 0.44 / 0.68 on nyc_taxi) once the
store holds the weeks of history it needs; before that it falls back to last week plus the latest
deviation, then to seasonal naive, and says which one it used — or that history is too short.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from waimai.firewall.forecast.models import (
    LastWeekPlusDeviation,
    ProfileRegression,
    SeasonalNaive,
    recommend_riders,
)
from waimai.firewall.monitoring.store import MetricStore

BUCKET = dt.timedelta(minutes=30)


@dataclass
class OrderForecast:
    at: dt.datetime
    model: str
    next_30: tuple[float, float, float]  # orders in the next 30 min: mean, low, high
    next_60: tuple[float, float, float]
    riders_needed: int
    riders_on_shift: float | None
    surge: bool
    message: str


def _history(store: MetricStore, now: dt.datetime, weeks: int) -> pd.Series:
    end = now.replace(second=0, microsecond=0)
    end -= dt.timedelta(minutes=end.minute % 30)
    start = end - dt.timedelta(weeks=weeks)
    pts = store.query("orders_placed_per_min", start, end - dt.timedelta(seconds=1), step_s=1800)
    idx = pd.date_range(start, end - BUCKET, freq="30min", tz="UTC")
    s = pd.Series(0.0, index=idx)
    for p in pts:  # per-minute rate averaged over the bucket → orders in the bucket
        t = pd.Timestamp(int(p.ts) // 1800 * 1800, unit="s", tz="UTC")
        if t in s.index:
            s[t] = p.value * 30.0
    if not pts:
        return s.iloc[0:0]
    first = pd.Timestamp(int(pts[0].ts) // 1800 * 1800, unit="s", tz="UTC")
    return s[s.index >= first]  # history starts when the store does


def forecast_orders(store: MetricStore, now: dt.datetime | None = None) -> OrderForecast | None:
    now = now or dt.datetime.now(dt.UTC)
    hist = _history(store, now, weeks=9)
    week = 7 * 48
    candidates = ((ProfileRegression(), ProfileRegression().weeks * week + 50),
                  (LastWeekPlusDeviation(), week + 4), (SeasonalNaive(), week + 1))
    usable = [m for m, need in candidates if len(hist) >= need]
    if not usable:
        return None
    model = usable[0]
    model.fit(hist.tz_convert(None))
    mean, lo, hi = model.predict(2)
    riders = int(np.atleast_1d(recommend_riders(float(hi[0])))[0])
    on_shift = store.latest("riders_on_shift")
    recent = float(hist.iloc[-4:].mean()) if len(hist) >= 4 else float(hist.mean())
    surge = bool(mean[0] > 1.5 * max(recent, 1.0)) or (on_shift is not None and riders > on_shift.value)
    msg = (f"expect {mean[0]:.0f} orders in the next 30 min ({lo[0]:.0f}–{hi[0]:.0f}); "
           f"{riders} riders needed" + (f", {on_shift.value:.0f} on shift" if on_shift else ""))
    return OrderForecast(at=now, model=type(model).__name__, next_30=(float(mean[0]), float(lo[0]), float(hi[0])),
                         next_60=(float(mean[1]), float(lo[1]), float(hi[1])), riders_needed=riders,
                         riders_on_shift=on_shift.value if on_shift else None, surge=surge,
                         message=msg if not math.isnan(mean[0]) else "no forecast")
