"""The default detector: transition novelty + record-ratio magnitude + discords + causal NMS.

Kept in its own module because it has two implementations of the same maths: the per-point path
(``score_one``/``learn_one``, pure Python, tens of microseconds per point) and a vectorised
``score_series`` for back-testing (numpy, several hundred thousand points/s). The contract tests
assert that both give the same scores.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from waimai.firewall.detect.base import Detector, check_values, register, series_to_epoch_seconds

RESOLUTIONS = ((3, 0.5), (2, 0.3), (4, 0.2))  # (bits, weight) of the quantisation grids
OFFSETS = (0.0, 1.0 / 3.0, 2.0 / 3.0)  # grid offsets, in bins
TOD_BITS, TOD_BLOCKS, TOD_WEIGHT = 3, 4, 0.3  # time-of-day context (seasonal metrics only)
PAD = 16  # bins beyond the warm-up range before clipping
DISCORD_M, DISCORD_BLOCKS_PER_WARMUP, DISCORD_HISTORY = 8, 75, 1500
SUPPRESS_DIV = 3  # NMS radius = warmup / SUPPRESS_DIV rows
LOG_SKEW = 2.0  # warm-up skewness above which a non-negative metric is scored on log1p(x)


def _skewness(x: np.ndarray) -> float:
    """Sample skewness (0 for a constant series)."""
    x = np.asarray(x, dtype=float)
    if len(x) < 3:
        return 0.0
    d = x - x.mean()
    v = float((d * d).mean())
    if v <= 1e-300:
        return 0.0
    return float((d**3).mean() / v**1.5)


def _use_log(x: np.ndarray, log_skew: float | None) -> bool:
    """Heavy-tailed non-negative metric (counts, bytes, latencies): warm-up min >= 0 and skewness
    above ``log_skew``."""
    return log_skew is not None and len(x) > 0 and float(np.min(x)) >= 0.0 and _skewness(x) > log_skew


def _symlog(x: Any) -> Any:
    """log1p on the magnitude, sign kept (monotone; equals log1p for non-negative values)."""
    return np.sign(x) * np.log1p(np.abs(x))


def _ewm(x: np.ndarray, alpha: float, init: float) -> np.ndarray:
    """y_i = (1 - alpha) y_{i-1} + alpha x_i with y_{-1} = init."""
    if len(x) == 0:
        return np.empty(0)
    from scipy.signal import lfilter  # lazy: scipy.signal takes ~1 s to import

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


def _nms(raw: np.ndarray, r: int) -> np.ndarray:
    """Keep raw[i] only where it is strictly above max(raw[i-r:i]); r <= 0 keeps everything."""
    if r <= 0:
        return raw.copy()
    from scipy.ndimage import maximum_filter1d

    m = maximum_filter1d(raw, size=r, origin=(r - 1) // 2, mode="constant", cval=-np.inf)
    trail = np.concatenate(([-np.inf], m[:-1]))
    return np.where(raw > trail, raw, 0.0)


def _sq_dist(ncur, ncand, dot):
    """Squared distances from norms and dot products; relative round-off below 1e-9 counts as 0."""
    d2 = ncur + ncand - 2.0 * dot
    return np.where(d2 <= 1e-9 * (ncur + ncand), 0.0, d2)


def _discord_batch(blocks: np.ndarray, m: int, history: int) -> np.ndarray:
    """d[j] = distance from subsequence j (blocks j..j+m-1) to its nearest non-overlapping earlier one
    among the last ``history`` (blocks are centred on the first block so norms stay small)."""
    if len(blocks) < m:
        return np.zeros(0)
    w = np.lib.stride_tricks.sliding_window_view(blocks - blocks[0], m)
    nrm = (w * w).sum(axis=1)
    d = np.zeros(len(w))
    chunk = 512
    for j0 in range(m, len(w), chunk):
        js = np.arange(j0, min(j0 + chunk, len(w)))
        k_lo, k_hi = max(0, js[0] - history), js[-1] - m + 1
        d2 = _sq_dist(nrm[js][:, None], nrm[None, k_lo:k_hi], w[js] @ w[k_lo:k_hi].T)
        k = np.arange(k_lo, k_hi)[None, :]
        valid = (k <= js[:, None] - m) & (k >= js[:, None] - history)
        d[js] = np.sqrt(np.where(valid, d2, np.inf).min(axis=1))
    return d


def _season_period(ts: np.ndarray, x: np.ndarray) -> int:
    """Daily or weekly period in rows when the warm-up data repeats itself (lag correlation > 0.6)."""
    p = len(x)
    if p < 8:
        return 0
    dt = float(np.median(np.diff(ts)))
    if dt <= 0:
        return 0
    best, best_p = 0.0, 0
    for per in (86400.0, 7 * 86400.0):
        lag = int(round(per / dt))
        if lag < 4 or 2 * lag > p:
            continue
        a, b = x[lag:], x[: p - lag]
        if a.std() == 0 or b.std() == 0:
            continue
        c = float(np.corrcoef(a, b)[0, 1])
        if c > best:
            best, best_p = c, lag
    return best_p if best > 0.6 else 0


def _block(sec: float) -> int:
    return int((math.floor(sec) % 86400) // (86400 // TOD_BLOCKS))


@register("novelty")
class NoveltyDetector(Detector):
    """Multi-resolution value-transition novelty + record-ratio magnitude + subsequence discords,
    with causal non-maximum suppression. The default detector.

    What it catches and why:

    * **Never-seen behaviour** (new value ranges, unusual jumps, flat-lines at odd levels): values are
      quantised on grids spanning the warm-up range (3, 2 and 4 bits, each on three grids offset by
      a third of a bin; bins beyond the range extend the grid); a point scores the share of its 1-,
      2- and 3-grams of bins (value transitions) never seen before. Coarse grids only fire on big
      departures, fine grids on subtle ones, so the blend ranks events by size. This is the cheap
      cousin of NAB's Contextual Anomaly Detector / KNN-CAD: context novelty instead of distances.
      On daily/weekly-seasonal metrics (lag correlation > 0.6 in warm-up) a (value bin, quarter of
      the day) novelty adds "unusual for this time of day".
    * **Spikes**: ``|x - EWMA_fast|`` and **level shifts**: ``|mean(last k) - EWMA_slow lagged k|``,
      each divided by its own slowly decaying historical maximum — a ratio > 1 means "larger than
      anything seen recently": scale-free, comparable across metrics, no distribution assumption.
    * **Broken shapes** inside the normal range (a missing lunch peak, a daily cycle that goes flat):
      the series is averaged into blocks of ``warmup / 75`` rows; each new subsequence of
      ``discord_m`` blocks is compared with every earlier non-overlapping one (Euclidean, the last
      2500 blocks) and its nearest-neighbour distance — the causal "left matrix profile" discord
      — goes through the same record ratio. Its score is ``max``-ed with the rest.
    * **Alarm floods** are cut by causal non-maximum suppression: a row keeps its score only if it
      beats every raw score of the previous ``suppress`` rows, else it outputs 0. For any threshold
      this lets a later, stronger event through but silences repeats of the same one (only the first
      detection of an incident is useful; each repeat is a false positive for NAB and for on-call).

    * **Heavy tails**: a metric whose warm-up rows are non-negative with skewness > ``log_skew``
      (tweet counts, bytes, request counts) is scored on ``log1p(x)`` (decided once, at the end of
      the warm-up, from the warm-up rows only), so that its routine bursts — new records on the raw
      scale — stop looking like anomalies while a burst far above the usual ones still does.

    ``raw = max((1 - weight) * novelty + weight * r / (1 + r), rd / (1 + rd))`` with ``r`` the larger
    magnitude ratio and ``rd`` the discord ratio. Fixed hyper-parameters (chosen on NAB; see the
    bench notes): grids above, ``order=3``, ``weight=0.4``, ``k=6``, fast EWMA half-life 1 row, slow
    half-life ``warmup / 2``, decaying-max half-life ``2 * max(warmup, 100)`` rows, discord blocks
    ``warmup / 75`` rows and ``discord_m=8``, ``suppress = warmup / 3`` rows, ``log_skew=2``. The first
    ``warmup`` rows are learnt but scored 0 (NAB passes its probationary period,
    ``min(0.15 * rows, 750)``); the quantisation range and the log-scale choice come from the
    warm-up rows. Nothing looks ahead and no label is used.
    """

    def __init__(
        self,
        warmup: int = 300,
        order: int = 3,
        weight: float = 0.4,
        k: int = 6,
        suppress: int | None = None,
        time_of_day: bool = True,
        discord_m: int = DISCORD_M,
        discord_blocks: int = DISCORD_BLOCKS_PER_WARMUP,
        log_skew: float | None = LOG_SKEW,
    ) -> None:
        self.warmup = max(int(warmup), 2)
        self.order = max(int(order), 1)
        self.weight = float(weight)
        self.k = max(int(k), 1)
        self.suppress = int(self.warmup / SUPPRESS_DIV) if suppress is None else int(suppress)
        self.time_of_day = bool(time_of_day)
        self.log_skew = None if log_skew is None else float(log_skew)
        self.log = False  # decided at the end of the warm-up
        self.pending: list[tuple[float, float]] = []  # raw warm-up rows (per-point path)
        self.a_fast = 0.5  # half-life 1 row
        self.a_slow = 1.0 - 0.5 ** (1.0 / max(self.warmup / 2.0, 1.0))
        self.decay = 0.5 ** (1.0 / (2.0 * max(self.warmup, 100)))
        # grids: (bits, offset, time-of-day?)
        self.grids = [(b, off, False) for b, _ in RESOLUTIONS for off in OFFSETS]
        # ---- state
        self.n = 0
        self.buf_x: list[float] = []
        self.buf_t: list[float] = []
        self.lo = 0.0
        self.rng = 1.0
        self.seasonal = False
        self.seen: list[list[set[int]]] = []
        self.qhist: list[list[int]] = []
        self.x0: float | None = None
        self.ew_fast = 0.0
        self.ew_slow_hist: deque[float] = deque(maxlen=self.k + 1)
        self.win: deque[float] = deque(maxlen=self.k)
        self.m_a = 0.0
        self.m_b = 0.0
        self.raw_hist: deque[tuple[int, float]] = deque()
        self._cache: tuple[int, float, dict[str, Any]] | None = None
        # discord channel: block means of f rows, subsequences of DISCORD_M blocks
        self.dm = max(int(discord_m), 1)
        self.f = max(1, int(round(self.warmup / max(int(discord_blocks), 1))))
        self.block_vals: list[float] = []
        self.blocks: list[float] = []  # the most recent block means
        self.nblocks = 0  # blocks completed so far (global index of the next block)
        self.block0 = 0.0  # first block mean (centring constant)
        self.m_d = 0.0

    # ------------------------------------------------------------------ helpers shared by both paths
    def _all_grids(self) -> list[tuple[int, float, bool]]:
        return self.grids + ([(TOD_BITS, off, True) for off in OFFSETS] if self.seasonal else [])

    def _orders(self, grid: tuple[int, float, bool]) -> int:
        return 1 if grid[2] else self.order

    @staticmethod
    def _base(bits: int) -> int:
        return 2**bits - 1 + 2 * PAD + 1

    def _quantise(self, x: float, bits: int, off: float) -> int:
        nb = 2**bits - 1
        q = math.floor((x - self.lo) / self.rng * nb + off)
        return min(max(q, -PAD), nb + PAD) + PAD

    def _quantise_arr(self, x: np.ndarray, bits: int, off: float) -> np.ndarray:
        nb = 2**bits - 1
        q = np.floor((x - self.lo) / self.rng * nb + off).astype(np.int64)
        return np.clip(q, -PAD, nb + PAD) + PAD

    def _combine_novelty(self, counts: dict[Any, Any]) -> Any:
        """counts[bits] = novel codes summed over offsets and orders; counts['tod'] likewise."""
        per = self.order * len(OFFSETS)
        total = 0.0
        for bits, w in RESOLUTIONS:
            total = total + w * (counts[bits] / per)
        if self.seasonal:
            total = (1.0 - TOD_WEIGHT) * total + TOD_WEIGHT * (counts["tod"] / len(OFFSETS))
        return total

    def _codes(self, g: int, q: int, sec: float) -> list[int]:
        grid = self._all_grids()[g]
        if grid[2]:
            return [q * TOD_BLOCKS + _block(sec)]
        base = self._base(grid[0])
        seq = [q, *self.qhist[g][::-1]]  # q_i, q_{i-1}, ...
        codes, code = [], 0
        for kk in range(self.order):
            code = code * base + seq[kk]
            codes.append(code)
        return codes

    # ------------------------------------------------------------------ per point
    def _compute(self, sec: float, x: float) -> dict[str, Any]:
        i = self.n
        x0 = x if self.x0 is None else self.x0
        a = abs(x - (x0 if i == 0 else self.ew_fast))
        win = list(self.win)[1:] if len(self.win) == self.k else list(self.win)
        short = (sum(win) + x) / (len(win) + 1)
        lagged = self.ew_slow_hist[0] if len(self.ew_slow_hist) == self.k + 1 else x0
        b = abs(short - lagged)
        res: dict[str, Any] = {"a": a, "b": b, "raw": 0.0, "score": 0.0, "disc": self._discord(x)}
        if i < self.warmup:
            return res
        ra = a / self.m_a if self.m_a > 0.0 else (1.0 if a > 0.0 else 0.0)
        rb = b / self.m_b if self.m_b > 0.0 else (1.0 if b > 0.0 else 0.0)
        r = max(ra, rb)
        counts: dict[Any, Any] = {bits: 0 for bits, _ in RESOLUTIONS}
        counts["tod"] = 0
        all_codes = []
        for g, grid in enumerate(self._all_grids()):
            q = self._quantise(x, grid[0], grid[1])
            codes = self._codes(g, q, sec)
            novel = sum(1 for kk, c in enumerate(codes) if c not in self.seen[g][kk])
            counts["tod" if grid[2] else grid[0]] += novel
            all_codes.append((q, codes))
        raw = (1.0 - self.weight) * self._combine_novelty(counts) + self.weight * (r / (1.0 + r))
        dv = res["disc"]
        rd = dv / self.m_d if self.m_d > 0.0 else (1.0 if dv > 0.0 else 0.0)
        raw = max(raw, rd / (1.0 + rd))
        trail = self.raw_hist[0][1] if self.raw_hist else -math.inf
        res.update(codes=all_codes, raw=raw, score=raw if raw > trail else 0.0)
        return res

    def _discord(self, x: float) -> float:
        """Distance of the subsequence completed by this row to its nearest earlier one (0 if none)."""
        if len(self.block_vals) + 1 < self.f:
            return 0.0
        m = self.dm
        bmean = float(np.asarray([*self.block_vals, x]).sum() / self.f)
        j = self.nblocks - m + 1  # start block of the new subsequence
        if j < m:
            return 0.0
        off = self.nblocks - len(self.blocks)  # global index of self.blocks[0]
        arr = np.asarray([*self.blocks, bmean]) - self.block0
        k_lo = max(0, j - DISCORD_HISTORY)
        if (j - m + 1) - k_lo <= 0:
            return 0.0
        w = np.lib.stride_tricks.sliding_window_view(arr[k_lo - off : j - off], m)  # subsequences k_lo..j-m
        cur = arr[j - off :]
        d2 = _sq_dist((cur * cur).sum(), (w * w).sum(axis=1), w @ cur)
        return float(np.sqrt(d2.min()))

    def _tf(self, x: float) -> float:
        return float(_symlog(x)) if self.log else x

    def score_one(self, t: Any, x: float) -> float:
        sec = float(series_to_epoch_seconds([t])[0])
        x = float(x)
        if not math.isfinite(x):
            raise ValueError("value is NaN or infinite")
        if self.n + len(self.pending) < self.warmup:
            return 0.0  # warm-up rows are learnt, not scored
        x = self._tf(x)
        res = self._compute(sec, x)
        self._cache = (self.n, x, res)
        return float(res["score"])

    def learn_one(self, t: Any, x: float) -> None:
        sec = float(series_to_epoch_seconds([t])[0])
        x = float(x)
        if not math.isfinite(x):
            raise ValueError("value is NaN or infinite")
        if self.n + len(self.pending) < self.warmup:
            # buffer the warm-up; once complete, choose the scale and learn it (scores stay 0)
            self.pending.append((sec, x))
            if len(self.pending) == self.warmup:
                rows, self.pending = self.pending, []
                self.log = _use_log(np.asarray([v for _, v in rows]), self.log_skew)
                for s_, v in rows:
                    self._learn(s_, self._tf(v))
            return
        self._learn(sec, self._tf(x))

    def _learn(self, sec: float, x: float) -> None:
        if self._cache is not None and self._cache[0] == self.n and self._cache[1] == x:
            res = self._cache[2]
        else:
            res = self._compute(sec, x)
        self._cache = None
        i = self.n
        if self.x0 is None:
            self.x0 = x
            self.ew_fast = x
            ew_slow_prev = x
        else:
            ew_slow_prev = self.ew_slow_hist[-1]
            self.ew_fast = (1.0 - self.a_fast) * self.ew_fast + self.a_fast * x
        self.ew_slow_hist.append((1.0 - self.a_slow) * ew_slow_prev + self.a_slow * x)
        self.win.append(x)
        self.m_a *= self.decay
        if res["a"] > self.m_a:
            self.m_a = res["a"]
        self.m_b *= self.decay
        if res["b"] > self.m_b:
            self.m_b = res["b"]
        self.m_d *= self.decay
        if res["disc"] > self.m_d:
            self.m_d = res["disc"]
        self.block_vals.append(x)
        if len(self.block_vals) == self.f:
            self.blocks.append(float(np.asarray(self.block_vals).sum() / self.f))
            if self.nblocks == 0:
                self.block0 = self.blocks[0]
            self.block_vals = []
            self.nblocks += 1
            if len(self.blocks) > DISCORD_HISTORY + 2 * self.dm:
                del self.blocks[0]
        if i < self.warmup:
            self.buf_x.append(x)
            self.buf_t.append(sec)
            if i == self.warmup - 1:
                self._fit_warmup()
        else:
            for g, (q, codes) in enumerate(res["codes"]):
                for kk, c in enumerate(codes):
                    self.seen[g][kk].add(c)
                if not self._all_grids()[g][2] and self.order > 1:
                    self.qhist[g] = [*self.qhist[g][1:], q]
        raw = res["raw"]
        while self.raw_hist and self.raw_hist[-1][1] <= raw:
            self.raw_hist.pop()
        self.raw_hist.append((i, raw))
        while self.raw_hist and (self.raw_hist[0][0] <= i - self.suppress or self.suppress <= 0):
            self.raw_hist.popleft()
        self.n += 1

    def _fit_warmup(self) -> None:
        x = np.asarray(self.buf_x)
        ts = np.asarray(self.buf_t)
        self._init_grids(x, ts)
        self.buf_x, self.buf_t = [], []

    def _init_grids(self, x: np.ndarray, ts: np.ndarray) -> list[np.ndarray]:
        """Set the range/seasonality from the warm-up rows and mark every code in ``x`` as seen."""
        p = min(self.warmup, len(x))
        self.lo = float(x[:p].min())
        rng = float(x[:p].max()) - self.lo
        self.rng = rng if rng > 0 else 1.0
        self.seasonal = self.time_of_day and _season_period(ts[:p], x[:p]) > 0
        self.seen, self.qhist, qs = [], [], []
        for grid in self._all_grids():
            q = self._quantise_arr(x, grid[0], grid[1])
            qs.append(q)
            sets = []
            for code in self._code_arrays(grid, q, ts):
                sets.append(set(np.unique(code).tolist()))
            self.seen.append(sets)
            if grid[2] or self.order == 1:
                self.qhist.append([])
            else:
                tail = q[-(self.order - 1) :].tolist()
                self.qhist.append([0] * (self.order - 1 - len(tail)) + tail)
        return qs

    def _code_arrays(self, grid: tuple[int, float, bool], q: np.ndarray, ts: np.ndarray) -> list[np.ndarray]:
        if grid[2]:
            blk = ((np.floor(ts).astype(np.int64) % 86400) // (86400 // TOD_BLOCKS)).astype(np.int64)
            return [q * TOD_BLOCKS + blk]
        n = len(q)
        base = self._base(grid[0])
        out, code = [], np.zeros(n, dtype=np.int64)
        for kk in range(self.order):
            sh = np.concatenate((np.zeros(kk, dtype=np.int64), q[: n - kk])) if kk else q
            code = code * base + sh
            out.append(code)
        return out

    # ------------------------------------------------------------------ batch
    def score_series(self, timestamps: Any, values: Any) -> np.ndarray:
        ts = series_to_epoch_seconds(timestamps)
        vals = check_values(values, len(ts))
        if self.n != 0 or self.pending or len(vals) <= self.warmup:
            return super().score_series(ts, vals)
        n, p = len(vals), self.warmup
        self.log = _use_log(vals[:p], self.log_skew)
        if self.log:
            vals = _symlog(vals)
        x0 = float(vals[0])
        ewf = _ewm(vals, self.a_fast, x0)
        a = np.abs(vals - np.concatenate(([x0], ewf[:-1])))
        ews = _ewm(vals, self.a_slow, x0)
        cs = np.concatenate(([0.0], np.cumsum(vals)))
        idx = np.arange(n)
        lo_i = np.maximum(idx - self.k + 1, 0)
        short = (cs[idx + 1] - cs[lo_i]) / (idx + 1 - lo_i)
        lag = idx - self.k - 1
        b = np.abs(short - np.where(lag >= 0, ews[np.maximum(lag, 0)], x0))
        active = idx >= p
        ra, m_a = _decaying_max_ratio(a, 0.0, self.decay, active)
        rb, m_b = _decaying_max_ratio(b, 0.0, self.decay, active)
        r = np.maximum(ra, rb)
        # novelty: codes first seen at row i (warm-up rows are seen before any scored row)
        grids_q = self._init_grids(vals[:p], ts[:p])  # sets range/seasonality from warm-up only
        counts: dict[Any, Any] = {bits: np.zeros(n, dtype=np.int64) for bits, _ in RESOLUTIONS}
        counts["tod"] = np.zeros(n, dtype=np.int64)
        final_q = []
        for g, grid in enumerate(self._all_grids()):
            q = self._quantise_arr(vals, grid[0], grid[1])
            final_q.append(q)
            for kk, code in enumerate(self._code_arrays(grid, q, ts)):
                _, first = np.unique(code, return_index=True)
                is_first = np.zeros(n, dtype=np.int64)
                is_first[first] = 1
                counts["tod" if grid[2] else grid[0]] += is_first
                self.seen[g][kk] = set(np.unique(code).tolist())
            if not grid[2] and self.order > 1:
                self.qhist[g] = q[-(self.order - 1) :].tolist()
        del grids_q
        raw = (1.0 - self.weight) * self._combine_novelty(counts) + self.weight * (r / (1.0 + r))
        # discord channel
        f, m = self.f, self.dm
        nb = n // f
        blocks = vals[: nb * f].reshape(nb, f).sum(axis=1) / f
        d = _discord_batch(blocks, m, DISCORD_HISTORY)
        disc = np.zeros(n)
        disc[(np.arange(len(d)) + m) * f - 1] = d
        rd, m_d = _decaying_max_ratio(disc, 0.0, self.decay, active)
        raw = np.maximum(raw, rd / (1.0 + rd))
        raw[:p] = 0.0
        out = _nms(raw, self.suppress)
        # ---- leave the state exactly as the per-point loop would
        self.x0 = x0
        self.ew_fast = float(ewf[-1])
        self.ew_slow_hist = deque(ews[-(self.k + 1) :].tolist(), maxlen=self.k + 1)
        self.win = deque(vals[-self.k :].tolist(), maxlen=self.k)
        self.m_a, self.m_b, self.m_d = float(m_a), float(m_b), float(m_d)
        self.block_vals = vals[nb * f :].tolist()
        self.blocks = blocks[-(DISCORD_HISTORY + 2 * self.dm) :].tolist()
        self.nblocks = nb
        self.block0 = float(blocks[0]) if nb else 0.0
        self.buf_x, self.buf_t = [], []
        self.raw_hist = deque()
        for i in range(max(0, n - self.suppress), n):
            v = float(raw[i])
            while self.raw_hist and self.raw_hist[-1][1] <= v:
                self.raw_hist.pop()
            self.raw_hist.append((i, v))
        if self.suppress <= 0:
            self.raw_hist.clear()
        self.n = n
        self._cache = None
        return out
