"""The default detector: quantised-transition novelty + record-ratio magnitude + causal NMS.

Kept in its own module because it has two implementations of the same maths: the per-point path
(``score_one``/``learn_one``, pure Python, a few microseconds per point) and a vectorised
``score_series`` for back-testing (numpy, well above 100k points/s). The contract tests assert that
both give the same scores.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
from scipy.signal import lfilter

from waimai.firewall.detect.base import Detector, register


def _ewm(x: np.ndarray, alpha: float, init: float) -> np.ndarray:
    """y_i = (1 - alpha) y_{i-1} + alpha x_i with y_{-1} = init."""
    if len(x) == 0:
        return np.empty(0)
    y, _ = lfilter([alpha], [1.0, -(1.0 - alpha)], x, zi=[(1.0 - alpha) * init])
    return y


def _decaying_max_ratio(v: np.ndarray, m0: float, d: float, active: np.ndarray) -> tuple[np.ndarray, float]:
    """ratio_i = v_i / M_i with M_i = max(M_{i-1} d, v_{i-1}) (record ratio vs a slowly forgotten max)."""
    out = np.zeros(len(v))
    m = m0
    for i in range(len(v)):
        vi = v[i]
        if active[i]:
            out[i] = vi / m if m > 0.0 else (1.0 if vi > 0.0 else 0.0)
        m = m * d
        if vi > m:
            m = vi
    return out, m


@register("novelty")
class NoveltyDetector(Detector):
    """Quantised-transition novelty blended with record-ratio magnitude, with causal NMS.

    What it catches and why:

    * **Never-seen behaviour** (new value ranges, unusual jumps, flat-lines at odd levels): values are
      quantised into ``2**bits - 1`` bins spanning the warm-up range (bins beyond it extend the grid),
      on three grids offset by a third of a bin; a point scores the share of its 1..``order``-grams of
      bins (value transitions) that were never seen before. This is the cheap cousin of NAB's
      Contextual Anomaly Detector / KNN-CAD: context novelty instead of distance thresholds.
    * **Spikes**: ``|x - EWMA_fast|`` and **level shifts**: ``|mean(last k) - EWMA_slow lagged k|``,
      each divided by its own slowly decaying historical maximum, so a score > 1 means "larger than
      anything seen recently" — scale-free, comparable across metrics, no distribution assumption.
    * **Alarm floods** are cut by causal non-maximum suppression: a row keeps its score only if it
      beats every raw score of the previous ``suppress`` rows; otherwise it outputs 0. For any
      threshold this lets a later, stronger event through but silences repeats of the same one.

    Fixed hyper-parameters (chosen on NAB, documented in the bench notes): ``bits=3``, ``order=3``,
    ``weight=0.4`` (magnitude share), ``k=6``, fast EWMA half-life 1 row, slow half-life
    ``warmup / 2`` rows, decaying-max half-life ``2 * max(warmup, 100)`` rows and
    ``suppress = warmup / 5`` rows. ``warmup`` rows are learnt but scored 0 (NAB passes its
    probationary period, ``min(0.15 * rows, 750)``).
    """

    OFFSETS = (0.0, 1.0 / 3.0, 2.0 / 3.0)
    PAD = 16

    def __init__(self, warmup: int = 300, bits: int = 3, order: int = 3, weight: float = 0.4, k: int = 6,
                 suppress: int | None = None) -> None:
        self.warmup = max(int(warmup), 2)
        self.bits = int(bits)
        self.order = int(order)
        self.weight = float(weight)
        self.k = int(k)
        self.suppress = int(self.warmup / 5) if suppress is None else int(suppress)
        self.a_fast = 1.0 - 0.5 ** (1.0 / 1.0)
        self.a_slow = 1.0 - 0.5 ** (1.0 / max(self.warmup / 2.0, 1.0))
        self.decay = 0.5 ** (1.0 / (2.0 * max(self.warmup, 100)))
        self.nb = 2**self.bits - 1
        self.base = self.nb + 2 * self.PAD + 1
        # state
        self.n = 0
        self.buffer: list[float] = []  # warm-up values, to set the quantisation range
        self.lo = 0.0
        self.rng = 1.0
        self.seen: list[list[set[int]]] = [[set() for _ in range(self.order)] for _ in self.OFFSETS]
        self.qhist: list[deque[int]] = [deque([0] * (self.order - 1), maxlen=max(self.order - 1, 1))
                                        for _ in self.OFFSETS]
        self.x0: float | None = None
        self.ew_fast = 0.0
        self.ew_slow_hist: deque[float] = deque(maxlen=self.k + 1)  # EW_slow_{i-k-1} .. EW_slow_{i-1}
        self.win: deque[float] = deque(maxlen=self.k)
        self.win_sum = 0.0
        self.m_a = 0.0
        self.m_b = 0.0
        self.raw_hist: deque[tuple[int, float]] = deque()  # monotonic deque for the trailing max
        self._cache: tuple[float, float, dict[str, Any]] | None = None

    # ------------------------------------------------------------------ per point
    def _quantise(self, x: float, off: float) -> int:
        q = math.floor((x - self.lo) / self.rng * self.nb + off)
        return min(max(q, -self.PAD), self.nb + self.PAD) + self.PAD

    def _codes(self, x: float) -> list[list[int]]:
        out = []
        for j, off in enumerate(self.OFFSETS):
            q = self._quantise(x, off)
            hist = list(self.qhist[j])[-(self.order - 1):] if self.order > 1 else []
            codes = []
            code = 0
            seq = [q] + hist[::-1]  # q_i, q_{i-1}, ...
            for kk in range(self.order):
                code = code * self.base + seq[kk]
                codes.append(code)
            # the batch path builds code_k = code_{k-1} * B + q_{i-k+1}; same order as here
            out.append(codes)
        return out

    def _compute(self, x: float) -> dict[str, Any]:
        """Everything score_one needs; learn_one reuses it to update the state."""
        i = self.n
        x0 = x if self.x0 is None else self.x0
        prev_fast = x0 if i == 0 else self.ew_fast
        a = abs(x - prev_fast)
        win = list(self.win)[-(self.k - 1):] if self.k > 1 else []
        w_sum = sum(win) + x
        short = w_sum / (len(win) + 1)
        lagged = self.ew_slow_hist[0] if len(self.ew_slow_hist) == self.k + 1 else x0
        b = abs(short - lagged)
        res = {"a": a, "b": b, "x0": x0, "i": i}
        if i < self.warmup:
            res["raw"] = 0.0
            res["score"] = 0.0
            return res
        ra = a / self.m_a if self.m_a > 0.0 else (1.0 if a > 0.0 else 0.0)
        rb = b / self.m_b if self.m_b > 0.0 else (1.0 if b > 0.0 else 0.0)
        r = max(ra, rb)
        codes = self._codes(x)
        nov = 0.0
        for j in range(len(self.OFFSETS)):
            nov += sum(1 for kk, c in enumerate(codes[j]) if c not in self.seen[j][kk])
        nov /= self.order * len(self.OFFSETS)
        raw = (1.0 - self.weight) * nov + self.weight * (r / (1.0 + r))
        trail = self.raw_hist[0][1] if self.raw_hist else -math.inf
        res["codes"] = codes
        res["raw"] = raw
        res["score"] = raw if raw > trail else 0.0
        return res

    def score_one(self, t: Any, x: float) -> float:
        x = float(x)
        res = self._compute(x)
        self._cache = (self.n, x, res)
        return float(res["score"])

    def learn_one(self, t: Any, x: float) -> None:
        x = float(x)
        if self._cache is not None and self._cache[0] == self.n and self._cache[1] == x:
            res = self._cache[2]
        else:
            res = self._compute(x)
        self._cache = None
        i = self.n
        if self.x0 is None:
            self.x0 = x
            self.ew_fast = x
            ew_slow_prev = x
        else:
            ew_slow_prev = self.ew_slow_hist[-1] if self.ew_slow_hist else self.x0
            self.ew_fast = (1.0 - self.a_fast) * self.ew_fast + self.a_fast * x
        self.ew_slow_hist.append((1.0 - self.a_slow) * ew_slow_prev + self.a_slow * x)
        self.win.append(x)
        # decaying maxima
        self.m_a *= self.decay
        if res["a"] > self.m_a:
            self.m_a = res["a"]
        self.m_b *= self.decay
        if res["b"] > self.m_b:
            self.m_b = res["b"]
        # quantisation / n-grams
        if i < self.warmup:
            self.buffer.append(x)
            if i == self.warmup - 1:
                self._fit_range()
        else:
            for j in range(len(self.OFFSETS)):
                for kk, c in enumerate(res["codes"][j]):
                    self.seen[j][kk].add(c)
                self.qhist[j].append(self._quantise(x, self.OFFSETS[j]))
        # trailing max of raw scores over the last `suppress` rows
        raw = res["raw"]
        while self.raw_hist and self.raw_hist[-1][1] <= raw:
            self.raw_hist.pop()
        self.raw_hist.append((i, raw))
        while self.raw_hist and self.raw_hist[0][0] <= i - self.suppress:
            self.raw_hist.popleft()
        if self.suppress <= 0:
            self.raw_hist.clear()
        self.n += 1

    def _fit_range(self) -> None:
        buf = np.asarray(self.buffer)
        self.lo = float(buf.min())
        rng = float(buf.max()) - self.lo
        self.rng = rng if rng > 0 else 1.0
        self.buffer = []
        for j, off in enumerate(self.OFFSETS):
            q = [self._quantise(v, off) for v in buf]
            hist = [0] * (self.order - 1)
            for v in q:
                seq = [v] + hist[::-1][: self.order - 1]
                code = 0
                for kk in range(self.order):
                    code = code * self.base + seq[kk]
                    self.seen[j][kk].add(code)
                hist = (hist + [v])[-(self.order - 1):] if self.order > 1 else []
            self.qhist[j].clear()
            self.qhist[j].extend(hist if self.order > 1 else [0])

    # ------------------------------------------------------------------ batch
    def score_series(self, timestamps: Any, values: Any) -> np.ndarray:
        vals = np.asarray(values, dtype=float)
        if self.n != 0 or len(vals) <= self.warmup:
            return super().score_series(timestamps, vals)
        n = len(vals)
        p = self.warmup
        x0 = vals[0]
        # channel A: spike vs fast EWMA of the past
        ewf = _ewm(vals, self.a_fast, x0)
        prev = np.concatenate(([x0], ewf[:-1]))
        a = np.abs(vals - prev)
        # channel B: mean of last k vs slow EWMA lagged k+1 rows
        ews = _ewm(vals, self.a_slow, x0)
        cs = np.concatenate(([0.0], np.cumsum(vals)))
        idx = np.arange(n)
        lo_i = np.maximum(idx - self.k + 1, 0)
        short = (cs[idx + 1] - cs[lo_i]) / (idx + 1 - lo_i)
        lag = idx - self.k - 1
        lagged = np.where(lag >= 0, ews[np.maximum(lag, 0)], x0)
        b = np.abs(short - lagged)
        active = idx >= p
        ra, m_a = _decaying_max_ratio(a, 0.0, self.decay, active)
        rb, m_b = _decaying_max_ratio(b, 0.0, self.decay, active)
        r = np.maximum(ra, rb)
        # novelty of quantised n-grams (first occurrence of each code)
        lo = float(vals[:p].min())
        rng = float(vals[:p].max()) - lo
        rng = rng if rng > 0 else 1.0
        nov = np.zeros(n)
        qs = []
        for off in self.OFFSETS:
            q = np.floor((vals - lo) / rng * self.nb + off).astype(np.int64)
            q = np.clip(q, -self.PAD, self.nb + self.PAD) + self.PAD
            qs.append(q)
            code = np.zeros(n, dtype=np.int64)
            for kk in range(self.order):
                sh = np.concatenate((np.zeros(kk, dtype=np.int64), q[: n - kk])) if kk else q
                code = code * self.base + sh
                _, first = np.unique(code, return_index=True)
                f = np.zeros(n, dtype=bool)
                f[first] = True
                nov += f
        nov /= self.order * len(self.OFFSETS)
        raw = (1.0 - self.weight) * nov + self.weight * (r / (1.0 + r))
        raw[:p] = 0.0
        out = _nms(raw, self.suppress)
        # ---- leave the state as if the loop had run
        self._replay_state(vals, ewf, ews, m_a, m_b, lo, rng, qs, raw)
        return out

    def _replay_state(self, vals, ewf, ews, m_a, m_b, lo, rng, qs, raw) -> None:
        n = len(vals)
        self.x0 = float(vals[0])
        self.ew_fast = float(ewf[-1])
        self.ew_slow_hist = deque([float(v) for v in ews[-(self.k + 1):]], maxlen=self.k + 1)
        self.win = deque([float(v) for v in vals[-self.k:]], maxlen=self.k)
        self.m_a, self.m_b = float(m_a), float(m_b)
        self.lo, self.rng = lo, rng
        self.buffer = []
        for j in range(len(self.OFFSETS)):
            q = qs[j]
            code = np.zeros(n, dtype=np.int64)
            for kk in range(self.order):
                sh = np.concatenate((np.zeros(kk, dtype=np.int64), q[: n - kk])) if kk else q
                code = code * self.base + sh
                self.seen[j][kk] = set(np.unique(code).tolist())
            self.qhist[j].clear()
            self.qhist[j].extend(q[-(self.order - 1):].tolist() if self.order > 1 else [0])
        self.raw_hist = deque()
        start = max(0, n - self.suppress)
        for i in range(start, n):
            v = float(raw[i])
            while self.raw_hist and self.raw_hist[-1][1] <= v:
                self.raw_hist.pop()
            self.raw_hist.append((i, v))
        if self.suppress <= 0:
            self.raw_hist.clear()
        self.n = n
        self._cache = None


def _nms(raw: np.ndarray, r: int) -> np.ndarray:
    """Keep raw[i] only where it is strictly above max(raw[i-r:i]); r <= 0 keeps everything."""
    if r <= 0:
        return raw.copy()
    from scipy.ndimage import maximum_filter1d

    m = maximum_filter1d(raw, size=r, origin=(r - 1) // 2, mode="constant", cval=-np.inf)
    trail = np.concatenate(([-np.inf], m[:-1]))
    return np.where(raw > trail, raw, 0.0)
