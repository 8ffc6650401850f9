"""Order-volume forecast for the ops console: the next 30 and 60 minutes with a band, a surge
warning, and the riders needed — from the embedded store's `orders_placed_per_min` history.

Horizons: 15, 30 and 60 minutes. The model works on 30-minute buckets; the 15-minute figure is half of
the next bucket (orders arrive at a steady rate within half an hour), its band scaled alike.

Holidays (Chinese public holidays from the `holidays` package, plus campus days off given in
WAIMAI_FORECAST_EXTRA_HOLIDAYS) change the shape of a day: on a holiday the forecast is multiplied by
the ratio of past holidays' daily orders to ordinary days of the same weekday in the history — or, with
no holiday in the history yet, by the ratio of Sundays to that weekday. The factor is shown.

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
    next_15: tuple[float, float, float]  # orders in the next 15 min: mean, low, high
    next_30: tuple[float, float, float]
    next_60: tuple[float, float, float]
    riders_needed: int
    riders_on_shift: float | None
    surge: bool
    message: str
    holiday: str | None = None  # today's holiday, if any
    holiday_factor: float = 1.0


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


LOCAL_TZ = "Asia/Shanghai"


def holiday_name(day: dt.date, extra: frozenset[dt.date] = frozenset()) -> str | None:
    import holidays

    if day in extra:
        return "campus day off"
    return holidays.China(years=day.year).get(day)  # type: ignore[no-any-return]


def holiday_factor(hist: pd.Series, today: dt.date, extra: frozenset[dt.date] = frozenset()) -> float:
    """Holiday orders / ordinary orders of the same weekday, from the history (1.0 when it cannot tell)."""
    if hist.empty:
        return 1.0
    daily = hist.tz_convert(LOCAL_TZ).groupby(lambda t: t.date()).sum()
    daily = daily.iloc[1:-1] if len(daily) > 2 else daily.iloc[0:0]  # whole days only
    if daily.empty:
        return 1.0
    is_hol = pd.Series({d: holiday_name(d, extra) is not None for d in daily.index})
    same_wd = daily[[d.weekday() == today.weekday() and not is_hol[d] for d in daily.index]]
    base = float(same_wd.mean()) if len(same_wd) else float(daily[~is_hol.values].mean())
    hol = daily[is_hol.values]
    if len(hol):
        num = float(hol.mean())
    else:
        sundays = daily[[d.weekday() == 6 for d in daily.index]]
        if not len(sundays):
            return 1.0
        num = float(sundays.mean())
    if not base or math.isnan(base) or math.isnan(num):
        return 1.0
    return float(min(max(num / base, 0.2), 3.0))


def forecast_orders(store: MetricStore, now: dt.datetime | None = None,
                    extra_holidays: frozenset[dt.date] = frozenset()) -> OrderForecast | None:
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
    today = pd.Timestamp(now).tz_convert(LOCAL_TZ).date()
    holiday = holiday_name(today, extra_holidays)
    factor = holiday_factor(hist, today, extra_holidays) if holiday else 1.0
    mean, lo, hi = mean * factor, lo * factor, hi * factor
    riders = int(np.atleast_1d(recommend_riders(float(hi[0])))[0])
    on_shift = store.latest("riders_on_shift")
    recent = float(hist.iloc[-4:].mean()) if len(hist) >= 4 else float(hist.mean())
    surge = bool(mean[0] > 1.5 * max(recent, 1.0)) or (on_shift is not None and riders > on_shift.value)
    msg = (f"expect {mean[0]:.0f} orders in the next 30 min ({lo[0]:.0f}–{hi[0]:.0f}); "
           f"{riders} riders needed" + (f", {on_shift.value:.0f} on shift" if on_shift else "")
           + (f"; {holiday}: × {factor:.2f}" if holiday else ""))
    return OrderForecast(at=now, model=type(model).__name__,
                         next_15=(float(mean[0]) / 2, float(lo[0]) / 2, float(hi[0]) / 2), next_30=(float(mean[0]), float(lo[0]), float(hi[0])),
                         next_60=(float(mean[1]), float(lo[1]), float(hi[1])), riders_needed=riders,
                         riders_on_shift=on_shift.value if on_shift else None, surge=surge,
                         message=msg if not math.isnan(mean[0]) else "no forecast", holiday=holiday,
                         holiday_factor=round(factor, 3))
