"""Detectors fitted to the platform's own series (issue 19), one per kind of series the sampler writes.

All four share one test: over the last 1, 3, 12, 60 and 240 samples (5 s to 20 min at the sampler's
5 s cadence) the observed amount is compared with what a *lagged* baseline expects — the baseline
learns only from samples older than ``lag`` (5 min), so a fault does not teach the baseline while it
is being judged. The evidence is a z-score on a scale fitted to the series; the score is
``z / (z + z_alarm / 4)`` (0.8 at ``z_alarm``, the watcher's threshold). A second channel catches a
series whose source died: the same value repeated for longer than the series' own history makes
plausible.

* :class:`CountDetector` (``counts``) — orders per minute: the value is turned back into the count
  of the sample (x · interval / 60) and judged as a count: expected count = daily profile (5-minute
  slots, weekday vs weekend/holiday, learnt on the fly) × today's factor (a Gamma–Poisson estimate
  of observed / profile, so low volume moves it little); z on the Anscombe (variance-stabilised)
  scale with a negative-binomial allowance for over-dispersion. Nothing at night is anomalous because
  a handful of orders carries no evidence — the minimum volume follows from the arithmetic, not a
  cut-off. A slow channel compares the last 20 min against the factor of the last 4 hours: slow
  drifts and a meal peak that does not come.
* :class:`RatioDetector` (``ratio``) — success or error ratios *with their denominators*
  (``x = [ratio, attempts]``): the failures in the window are judged as a count against
  attempts × the usual failure share, so 3 failed calls out of 3 at night is no outage, while 20 of
  40 at lunch is.
* :class:`LogLevelDetector` (``latency``) — percentiles: the log of the value against a lagged
  exponentially weighted level, scaled by the deviations the series itself showed at each window
  length (a p95 over few requests is noisy, one over many is not), with a minimum relative change; with
  ``profile_window`` also the mean of that many samples against the same times of day on earlier days of
  the kind (weekday, weekend/holiday), where a slow drift the lagged level follows stays visible.
* :class:`GaugeDetector` (``gauge``) — slowly moving counts such as the dispatch backlog or the
  riders on shift: the same as the latency detector on the raw scale, with a minimum absolute change.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import deque
from collections.abc import Iterable
from typing import Any

import numpy as np
from scipy.special import gammainc, gammaincc, ndtri

from waimai.firewall.detect.base import Detector, register, to_epoch_seconds

WINDOWS = (1, 3, 12, 60, 240)


def _squash(z: float, z_alarm: float) -> float:
    return z / (z + z_alarm / 4.0) if z > 0 else 0.0


def _ans(x: float) -> float:
    return 2.0 * math.sqrt(max(x, 0.0) + 0.375)


def poisson_z(obs: float, mu: float, k: float) -> float:
    """How many standard deviations ``obs`` counts lie from a mean of ``mu``: the exact Poisson tail
    (the normal approximation is far too timid for 8 failures where 0.1 were expected) turned into a
    normal quantile, shrunk by the negative-binomial variance factor ``sqrt(1 + mu / k)``."""
    mu = max(mu, 1e-9)
    if obs > mu:
        p = float(gammainc(math.floor(obs + 1e-9), mu))  # P(X >= obs)
    elif obs < mu:
        p = float(gammaincc(math.floor(obs + 1e-9) + 1, mu))  # P(X <= obs)
    else:
        return 0.0
    if p >= 0.5:
        return 0.0
    return float(-ndtri(max(p, 1e-300))) / math.sqrt(1.0 + mu / k)


class _Windows:
    """Running sums of the last 1…240 samples of a few parallel quantities."""

    def __init__(self, width: int, windows: tuple[int, ...] = WINDOWS) -> None:
        self.windows = windows
        self.buf: deque[tuple[float, ...]] = deque(maxlen=max(windows) + 1)
        self.sums = [[0.0] * width for _ in windows]

    def push(self, row: tuple[float, ...]) -> None:
        self.buf.append(row)
        n = len(self.buf)
        for wi, m in enumerate(self.windows):
            s = self.sums[wi]
            for j, v in enumerate(row):
                s[j] += v
            if n > m:
                old = self.buf[n - 1 - m]
                for j, v in enumerate(old):
                    s[j] -= v

    def count(self, wi: int) -> int:
        return min(len(self.buf), self.windows[wi])


class _Stuck:
    """How surprising the current run of identical values is: −log10 of the chance of that run,
    with the chance of a repeat learnt (exponentially weighted) from the series itself."""

    def __init__(self, half_life: float = 720.0) -> None:
        self.a = 1.0 - 0.5 ** (1.0 / half_life)
        self.p_same = 0.5
        self.last: float | None = None
        self.run = 0
        self.seen = 0

    def surprise(self, x: float) -> float:
        # 0 again is a quiet gauge (no backlog), not a dead one: a dead source that reads 0 is a drop
        if self.last is None or x != self.last or self.seen < 200 or x == 0:
            return 0.0
        p = min(max(self.p_same, 0.01), 0.999)
        return (self.run + 1) * -math.log10(p)

    def learn(self, x: float) -> None:
        same = self.last is not None and x == self.last
        self.run = self.run + 1 if same else 0
        self.p_same += self.a * ((1.0 if same else 0.0) - self.p_same)
        self.last = x
        self.seen += 1


class _Base(Detector):
    z_alarm = 6.0
    stuck_bits = 10.0  # a run this unlikely (10^-10) is a dead source

    def __init__(self, lag: int = 60, warmup: int = 12, z_alarm: float | None = None,
                 stuck_bits: float | None = None) -> None:
        self.lag = int(lag)
        self.warmup = int(warmup)
        if z_alarm is not None:
            self.z_alarm = float(z_alarm)
        if stuck_bits is not None:
            self.stuck_bits = float(stuck_bits)
        self.n = 0
        self.stuck = _Stuck()
        self.pending: deque[Any] = deque()  # samples waiting to reach the baseline (lag)

    def _stuck_score(self, x: float) -> float:
        s = self.stuck.surprise(x)
        return _squash(s / self.stuck_bits * self.z_alarm, self.z_alarm) if s else 0.0

    def _z(self, t: float, x: Any) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def score_one(self, t: Any, x: Any) -> float:
        if self.n < max(self.warmup, 1):
            return 0.0
        sec = to_epoch_seconds(t)
        z = self._z(sec, x)
        return max(_squash(z, self.z_alarm), self._stuck_score(self._stuck_value(x)))

    def _stuck_value(self, x: Any) -> float:
        return float(x[0]) if isinstance(x, list | tuple | np.ndarray) else float(x)

    def expected(self) -> tuple[float, float]:  # pragma: no cover - abstract
        """The band (low, high) a normal next value falls in, never negative."""
        raise NotImplementedError


def _slot(sec: float, offset_h: float, holidays: frozenset[dt.date]) -> int:
    local = sec + offset_h * 3600.0
    day = math.floor(local / 86400.0)
    date = dt.date(1970, 1, 1) + dt.timedelta(days=day)
    weekend = 1 if date.weekday() >= 5 or date in holidays else 0
    return weekend * 288 + int((local - day * 86400.0) // 300)


@register("counts")
class CountDetector(_Base):
    """Counts per sample (see the module docstring). ``interval_s`` is the sampling interval the
    per-minute value was computed over; ``dispersion`` the negative-binomial k (variance μ + μ²/k)."""

    z_alarm = 6.0

    def __init__(self, interval_s: float = 5.0, dispersion: float = 400.0, slow_dispersion: float = 100.0,
                 half_life: float = 360.0, slow_half_life: float = 2880.0, prior_counts: float = 5.0,
                 utc_offset_h: float = 8.0, holidays: Iterable[dt.date] = (), day_sd: float = 0.12,
                 day_z: float = 6.0, **kw: Any) -> None:
        super().__init__(**kw)
        self.day_sd = float(day_sd)
        self.day_z = float(day_z)
        self.per = float(interval_s) / 60.0
        self.k = float(dispersion)
        self.k_slow = float(slow_dispersion)
        self.a_fast = 1.0 - 0.5 ** (1.0 / half_life)
        self.a_slow = 1.0 - 0.5 ** (1.0 / slow_half_life)
        self.prior = float(prior_counts)
        self.offset = float(utc_offset_h)
        self.holidays = frozenset(holidays)
        self.profile = [0.0] * 576
        self.profile_n = [0] * 576
        self.o_fast = self.e_fast = self.o_slow = self.e_slow = 0.0
        self.win = _Windows(2)
        self.last_mu = 0.0
        self.last_c: float | None = None
        self.run_bits = 0.0
        self.stuck = _Stuck(half_life=120.0)

    def _count(self, x: Any) -> float:
        return max(0.0, round(float(x) * self.per))

    def _prof(self, slot: int) -> float:
        if self.profile_n[slot] < 30:  # no day of this type yet: a flat profile, the factor does it all
            return 1.0
        return max(self.profile[slot], 0.002)

    def _factor(self, o: float, e: float) -> float:
        return (self.prior + o) / (self.prior + e) if e > 0 else 1.0

    def _z(self, t: float, x: Any) -> float:
        c = self._count(x)
        p = self._prof(_slot(t, self.offset, self.holidays))
        f = self._factor(self.o_fast, self.e_fast)
        fs = self._factor(self.o_slow, self.e_slow)
        self.last_mu = f * p
        best = 0.0
        if self.profile_n[_slot(t, self.offset, self.holidays)] >= 120:
            # the day channel: today's factor against the profile, in units of how much days differ
            # (plus its own uncertainty) — a slow drift or a missing peak moves it, a holiday little
            best = abs(math.log(f)) / math.sqrt(self.day_sd ** 2 + 1.0 / (self.prior + self.o_fast)) \
                * self.z_alarm / self.day_z
        for wi, m in enumerate(self.win.windows):
            got = self.win.count(wi)
            if got < m - 1:
                break
            obs, exp = self.win.sums[wi]
            if got >= m:  # the window slides: drop its oldest sample, add this one
                old = self.win.buf[-m]
                obs, exp = obs - old[0], exp - old[1]
            obs, exp = obs + c, exp + p
            mu = f * exp
            z = poisson_z(obs, mu, self.k)
            if m >= 60:  # the slow channel: against the last hours' factor
                z = max(z, poisson_z(obs, fs * exp, self.k_slow))
            best = max(best, z)
        return best

    def _run_bits(self, c: float) -> float:
        """−log10 of the chance of this count again, at the current expectation (a dead source repeats
        its last value; at night, 0 again and again is what Poisson expects and costs nothing)."""
        if self.last_c is None or c != self.last_c or self.n < 120:
            return 0.0
        mu = max(self.last_mu, 1e-6)
        log_pmf = (-mu + c * math.log(mu) - math.lgamma(c + 1.0)) / math.log(10.0)
        # a series that repeats itself by habit (a steady test load, a quiet shop) is not dead
        return self.run_bits - max(log_pmf, math.log10(max(self.stuck.p_same, 1e-6)))

    def _stuck_score(self, x: float) -> float:
        bits = self._run_bits(x)
        return _squash(bits / self.stuck_bits * self.z_alarm, self.z_alarm) if bits else 0.0

    def _stuck_value(self, x: Any) -> float:
        return self._count(x)

    def learn_one(self, t: Any, x: Any) -> None:
        sec = to_epoch_seconds(t)
        c = self._count(x)
        self.run_bits = self._run_bits(c)
        self.last_c = c
        self.stuck.learn(c)
        slot = _slot(sec, self.offset, self.holidays)
        p = self._prof(slot)
        self.win.push((c, p))
        self.pending.append((c, p, slot))
        while len(self.pending) > min(self.lag, max(1, self.n // 2)):
            oc, op, oslot = self.pending.popleft()
            self.o_fast = (1 - self.a_fast) * self.o_fast + oc
            self.e_fast = (1 - self.a_fast) * self.e_fast + op
            self.o_slow = (1 - self.a_slow) * self.o_slow + oc
            self.e_slow = (1 - self.a_slow) * self.e_slow + op
            n = self.profile_n[oslot]
            a = 1.0 / (n + 1) if n < 60 else 1.0 / 180.0  # about three days of memory per slot
            self.profile[oslot] += a * (oc - self.profile[oslot])
            self.profile_n[oslot] = n + 1
        self.n += 1

    def expected(self) -> tuple[float, float]:
        mu = self.last_mu / self.per  # per minute
        sd = math.sqrt(max(self.last_mu, 0.0) + self.last_mu ** 2 / self.k) / self.per
        return max(0.0, mu - 3 * sd), mu + 3 * sd


@register("ratio")
class RatioDetector(_Base):
    """A success or error ratio with its denominator: ``x = [ratio, attempts]`` (a plain ratio counts
    as one attempt). ``bad`` says which side is the failure: ``"low"`` for a success ratio,
    ``"high"`` for an error ratio."""

    z_alarm = 6.0

    def __init__(self, bad: str = "low", half_life: float = 1440.0, prior_share: float = 0.02,
                 prior_attempts: float = 200.0, dispersion: float = 30.0, **kw: Any) -> None:
        super().__init__(**kw)
        if bad not in ("low", "high"):
            raise ValueError("bad must be 'low' or 'high'")
        self.bad = bad
        self.a = 1.0 - 0.5 ** (1.0 / half_life)
        self.prior_share = float(prior_share)
        self.prior_n = float(prior_attempts)
        self.k = float(dispersion)
        self.f_sum = 0.0
        self.n_sum = 0.0
        self.win = _Windows(2)
        self.last_q = prior_share

    def _split(self, x: Any) -> tuple[float, float]:
        if isinstance(x, list | tuple | np.ndarray):
            r, n = float(x[0]), float(x[1])
        else:
            r, n = float(x), 1.0
        fail = (1.0 - r) if self.bad == "low" else r
        return max(0.0, fail * n), max(0.0, n)

    def _q(self) -> float:
        return (self.prior_share * self.prior_n + self.f_sum) / (self.prior_n + self.n_sum)

    def _z(self, t: float, x: Any) -> float:
        f, n = self._split(x)
        q = self._q()
        self.last_q = q
        best = 0.0
        for wi, m in enumerate(self.win.windows):
            got = self.win.count(wi)
            if got < m - 1:
                break
            fs, ns = self.win.sums[wi]
            if got >= m:
                old = self.win.buf[-m]
                fs, ns = fs - old[0], ns - old[1]
            fs, ns = fs + f, ns + n
            mu = q * ns
            if fs > mu:  # only more failures than usual is a fault
                best = max(best, poisson_z(fs, mu, self.k))
        return best

    def learn_one(self, t: Any, x: Any) -> None:
        f, n = self._split(x)
        self.win.push((f, n))
        self.pending.append((f, n))
        while len(self.pending) > min(self.lag, max(1, self.n // 2)):
            of, on = self.pending.popleft()
            if on > 0 and of / on < 0.5:  # an outage is not the usual failure share
                self.f_sum = (1 - self.a) * self.f_sum + of
                self.n_sum = (1 - self.a) * self.n_sum + on
        self.stuck.learn(self._stuck_value(x))
        self.n += 1

    def _stuck_score(self, x: float) -> float:
        return 0.0  # a ratio of few calls repeats itself (1.0, 1.0, ...) by nature

    def expected(self) -> tuple[float, float]:
        q = self.last_q
        return (max(0.0, 1.0 - 3 * q), 1.0) if self.bad == "low" else (0.0, min(1.0, 3 * q))


class _LevelDetector(_Base):
    """Window means of ``y = transform(x)`` against a lagged EW level, in units of the deviations the
    series showed at that window length."""

    def __init__(self, half_life: float = 360.0, scale_half_life: float = 2880.0, min_change: float = 0.0,
                 both_ways: bool = True, windows: tuple[int, ...] = WINDOWS, min_scale: float = 0.0,
                 prior_scale: float = 0.3, max_scale: float = math.inf, profile_window: int = 0,
                 profile_z: float = 6.0, profile_min_scale: float = 0.03, utc_offset_h: float = 8.0,
                 holidays: Iterable[dt.date] = (), **kw: Any) -> None:
        super().__init__(**kw)
        # The profile channel (``profile_window`` > 0): the mean over that many samples against what the
        # same times of day gave on earlier days of the same kind — a slow drift the lagged level follows
        # stays visible here, while the day's own rhythm (lunch is slower) is in the profile.
        self.pw = int(profile_window)
        self.profile_z = float(profile_z)
        self.p_min_scale = float(profile_min_scale)
        self.offset = float(utc_offset_h)
        self.holidays = frozenset(holidays)
        self.prof = [0.0] * 576
        self.prof_n = [0] * 576
        self.resid: deque[float] = deque(maxlen=max(self.pw, 1))
        self.resid_sum = 0.0
        self.p_scale = 0.0
        self.p_scale_n = 0
        self.p_slot = -1
        self.max_scale = float(max_scale)
        self.min_scale = float(min_scale)
        self.prior_scale = float(prior_scale)
        self.a = 1.0 - 0.5 ** (1.0 / half_life)
        self.a_s = 1.0 - 0.5 ** (1.0 / scale_half_life)
        self.min_change = float(min_change)
        self.both = both_ways
        self.level: float | None = None
        self.win = _Windows(1, tuple(windows))
        self.scale = [0.0] * len(self.win.windows)
        self.scale_n = [0] * len(self.win.windows)
        self.last_y = 0.0

    def _y(self, x: float) -> float:
        return x

    def _x(self, y: float) -> float:
        return y

    def _devs(self, y: float) -> list[tuple[int, float]]:
        out: list[tuple[int, float]] = []
        if self.level is None:
            return out
        for wi, m in enumerate(self.win.windows):
            got = self.win.count(wi)
            if got < m - 1:
                break
            s = self.win.sums[wi][0]
            if got >= m:
                s -= self.win.buf[-m][0]
            out.append((wi, (s + y) / m - self.level))
        return out

    def _change_ok(self, d: float) -> bool:
        return abs(d) >= self.min_change

    def _scale(self, wi: int) -> float:
        """The learnt deviation at this window length, blended with the prior while it is young."""
        w = min(1.0, self.scale_n[wi] / 100.0)
        s = max(w * self.scale[wi] + (1.0 - w) * self.prior_scale, self.min_scale, 1e-6)
        # however noisy single samples are, a change held over 3+ samples beyond max_scale matters
        return min(s, self.max_scale) if self.win.windows[wi] >= 3 else s

    def _profile_dev(self, t: float, y: float) -> tuple[float, float] | None:
        """(mean residual over the window including y, the profile's level now), once the profile knows
        these times of day from at least two earlier days and the window is mostly covered."""
        if not self.pw:
            return None
        slot = _slot(t, self.offset, self.holidays)
        if self.prof_n[slot] < 120:
            return None
        r = y - self.prof[slot]
        full = len(self.resid) == self.resid.maxlen
        total = self.resid_sum + r - (self.resid[0] if full else 0.0)
        count = len(self.resid) + (0 if full else 1)
        if count < self.pw // 2:
            return None
        return total / count, self.prof[slot]

    def _profile_z(self, t: float, y: float) -> float:
        got = self._profile_dev(t, y)
        if got is None or self.p_scale_n < 240:
            return 0.0
        d, base = got
        if (not self.both and d < 0) or not self._change_at(base, d):
            return 0.0
        return abs(d) / (1.25 * max(self.p_scale, self.p_min_scale)) * self.z_alarm / self.profile_z

    def _change_at(self, level: float, d: float) -> bool:
        saved, self.level = self.level, level
        try:
            return self._change_ok(d)
        finally:
            self.level = saved

    def _z(self, t: float, x: Any) -> float:
        y = self._y(float(x))
        best = self._profile_z(t, y)
        for wi, d in self._devs(y):
            if not self._change_ok(d) or (not self.both and d < 0):
                continue
            best = max(best, abs(d) / (1.25 * self._scale(wi)))
        return best

    def _learn_profile(self, t: float, y: float, calm: bool) -> None:
        slot = _slot(t, self.offset, self.holidays)
        got = self._profile_dev(t, y)
        if got is not None and calm:
            d = abs(got[0])
            if self.p_scale_n < 240 or d < 3 * max(self.p_scale, self.p_min_scale):
                a = max(1.0 / 5760.0, 1.0 / (self.p_scale_n + 1))
                self.p_scale += a * (d - self.p_scale)
                self.p_scale_n += 1
        if self.prof_n[slot] >= 120:
            r = y - self.prof[slot]
            if len(self.resid) == self.resid.maxlen:
                self.resid_sum -= self.resid[0]
            self.resid.append(r)
            self.resid_sum += r
        elif slot != self.p_slot:  # a time of day the profile does not know yet: no window across it
            self.resid.clear()
            self.resid_sum = 0.0
        self.p_slot = slot
        if calm:  # a fault does not teach the profile
            n = self.prof_n[slot]
            a = 1.0 / (n + 1) if n < 60 else 1.0 / 180.0  # about three days of memory per slot
            self.prof[slot] += a * (y - self.prof[slot])
            self.prof_n[slot] = n + 1

    def learn_one(self, t: Any, x: Any) -> None:
        y = self._y(float(x))
        devs = self._devs(y)
        z = max((abs(d) / (1.25 * self._scale(wi)) for wi, d in devs), default=0.0)
        if self.pw:
            sec = to_epoch_seconds(t)
            self._learn_profile(sec, y, max(z, self._profile_z(sec, y)) < self.z_alarm)
        if z < self.z_alarm:  # deviations during a fault do not widen the scale
            for wi, d in devs:
                n = self.scale_n[wi]
                a = max(self.a_s, 1.0 / (n + 1))
                self.scale[wi] += a * (abs(d) - self.scale[wi])
                self.scale_n[wi] = n + 1
        self.win.push((y,))
        self.pending.append(y)
        while len(self.pending) > min(self.lag, max(1, self.n // 2)):
            old = self.pending.popleft()
            self.level = old if self.level is None else self.level + self.a * (old - self.level)
        self.stuck.learn(float(x))
        self.last_y = y
        self.n += 1

    def expected(self) -> tuple[float, float]:
        if self.level is None:
            return 0.0, 0.0
        s = 3 * 1.25 * self.scale[0]
        return max(0.0, self._x(self.level - s)), max(0.0, self._x(self.level + s))


@register("latency")
class LogLevelDetector(_LevelDetector):
    """Percentile latencies (ms) on the log scale; ``min_ratio`` the smallest change that matters
    (1.5 = 50 % slower) and ``min_ms`` the smallest in milliseconds."""

    z_alarm = 6.0

    def __init__(self, min_ratio: float = 1.5, min_ms: float = 50.0, **kw: Any) -> None:
        kw.setdefault("max_scale", 0.25)
        super().__init__(min_change=math.log(min_ratio), both_ways=False, **kw)
        self.min_ms = float(min_ms)

    def _y(self, x: float) -> float:
        return math.log(max(x, 0.1))

    def _x(self, y: float) -> float:
        return math.exp(y)

    def _change_ok(self, d: float) -> bool:
        if d < self.min_change or self.level is None:
            return False
        return math.exp(self.level) * (math.exp(d) - 1.0) >= self.min_ms


@register("gauge")
class GaugeDetector(_LevelDetector):
    """Slowly moving counts (backlog, riders on shift); ``min_change`` in the series' units.
    ``sqrt`` judges on the square-root scale, where a queue's noise no longer grows with its length."""

    z_alarm = 6.0

    def __init__(self, min_change: float = 4.0, sqrt: bool = False, **kw: Any) -> None:
        kw.setdefault("half_life", 120.0)
        self.sqrt = bool(sqrt)
        super().__init__(min_change=min_change, **kw)

    def _y(self, x: float) -> float:
        return _ans(x) if self.sqrt else x

    def _x(self, y: float) -> float:
        return max(0.0, (y / 2.0) ** 2 - 0.375) if self.sqrt else y

    def _change_ok(self, d: float) -> bool:
        if self.level is None:
            return False
        return abs(self._x(self.level + d) - self._x(self.level)) >= self.min_change


# The detector the live watcher and the fault bench use for each key series, and why (README).
SERIES_DETECTORS: dict[str, tuple[str, dict[str, Any]]] = {
    "orders_placed_per_min": ("counts", {}),
    "payment_success_ratio": ("ratio", {"bad": "low", "z_alarm": 5.0}),
    "http_error_ratio": ("ratio", {"bad": "high", "prior_share": 0.005}),
    # the profile channel: a slow drift the lagged level follows (tuning seeds: 4/4 drifts caught, no false alarm)
    "http_latency_p95_ms": ("latency", {"profile_window": 240}),
    "payment_latency_p95_ms": ("latency", {"min_ms": 100.0}),
    "db_query_p95_ms": ("latency", {"min_ms": 20.0}),
    "dispatch_backlog": ("gauge", {"min_change": 5.0, "sqrt": True, "min_scale": 1.0}),
    # riders change one at a time: judge the last minute against the minute before
    "riders_on_shift": ("gauge", {"min_change": 3.0, "lag": 12, "half_life": 1.0, "windows": (1, 3, 12), "prior_scale": 1.0,
                                    "stuck_bits": math.inf}),
}
# the series whose per-sample denominator a ratio detector needs, and how to get it from the store
DENOMINATORS: dict[str, str] = {"payment_success_ratio": "payment_attempts_per_min",
                                "http_error_ratio": "http_requests_per_min"}
