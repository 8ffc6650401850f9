"""NAB v1.1 corpus loader, scorer and benchmark runner.

The scorer reproduces ``nab/sweeper.py`` of numenta/NAB v1.1 (the code path used for the published
leaderboard):

* probation: the first ``min(floor(0.15 * rows), 750)`` rows of a file are not scored (neither as
  true nor as false positives; a window made only of probation rows does not count at all);
* a detection at row ``i`` inside a window of width ``w`` whose last row is ``r`` is worth
  ``A_TP * S(-(r - i + 1) / w) / S(-1)``; only the best (earliest) detection of a window counts and a
  window without detection costs ``-A_FN``;
* a detection outside windows is worth ``-A_FP`` when no window precedes it, otherwise
  ``A_FP * S(|i - r_prev| / (w_prev - 1))`` (``S(x) = -1`` for ``x >= 3``);
* ``S(y) = 2 / (1 + exp(5 y)) - 1``; a row is a detection when ``anomaly_score >= T``;
* the corpus raw score is the sum over files at one threshold per profile; normalised score is
  ``100 * (raw - raw_null) / (raw_perfect - raw_null)`` with ``raw_perfect = A_TP * windows`` and
  ``raw_null = -A_FN * windows`` (116 windows in v1.1).

Threshold optimisation is an exact sweep over every distinct anomaly score (as NAB's sweeper does),
done with sorted cumulative sums so that it costs O(n log n) for the whole corpus.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

PROFILES: dict[str, tuple[float, float, float]] = {
    "standard": (1.0, 0.11, 1.0),
    "reward_low_FP_rate": (1.0, 0.22, 1.0),
    "reward_low_FN_rate": (1.0, 0.11, 2.0),
}
PROBATION_PERCENT = 0.15


def scaled_sigmoid(x: np.ndarray | float) -> np.ndarray:
    """NAB's scaled sigmoid ``2 / (1 + e^(5x)) - 1``, forced to -1 for ``x >= 3`` (sweeper.py)."""
    x = np.asarray(x, dtype=float)
    with np.errstate(over="ignore"):
        out = 2.0 / (1.0 + np.exp(5.0 * x)) - 1.0
    return np.where(x >= 3.0, -1.0, out)


def probation_rows(n: int, percent: float = PROBATION_PERCENT) -> int:
    """Number of leading rows NAB ignores: ``min(floor(0.15 n), 0.15 * 5000)``."""
    return int(min(math.floor(percent * n), percent * 5000))


# --------------------------------------------------------------------------------------------- corpus
@dataclass
class NabFile:
    """One data file of the corpus with its label windows as row-index ranges (inclusive)."""

    key: str  # "category/file.csv"
    timestamps: np.ndarray  # datetime64[ns]
    values: np.ndarray  # float64
    windows: list[tuple[int, int]] = field(default_factory=list)

    @property
    def category(self) -> str:
        return self.key.split("/")[0]

    @property
    def name(self) -> str:
        return self.key.split("/")[1]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def probation(self) -> int:
        return probation_rows(self.n)

    def labels(self) -> np.ndarray:
        lab = np.zeros(self.n, dtype=np.int8)
        for a, b in self.windows:
            lab[a : b + 1] = 1
        return lab


def windows_to_rows(timestamps: np.ndarray, limits: Iterable[Sequence[str]]) -> list[tuple[int, int]]:
    """Convert ``[start, end]`` timestamp strings into inclusive row ranges."""
    ts = np.asarray(timestamps, dtype="datetime64[ns]")
    rows = []
    for start, end in limits:
        a = int(np.searchsorted(ts, np.datetime64(pd.Timestamp(start)), side="left"))
        b = int(np.searchsorted(ts, np.datetime64(pd.Timestamp(end)), side="right")) - 1
        if b >= a:
            rows.append((a, b))
    return rows


def load_corpus(data_dir: Path) -> list[NabFile]:
    """Load NAB (``data_dir`` holds ``data/`` and ``labels/combined_windows.json``)."""
    data_dir = Path(data_dir)
    labels_path = data_dir / "labels" / "combined_windows.json"
    if not labels_path.is_file():
        raise FileNotFoundError(f"{labels_path} not found: is {data_dir} a NAB checkout?")
    labels = json.loads(labels_path.read_text())
    files = []
    for key in sorted(labels):
        df = pd.read_csv(data_dir / "data" / key)
        ts = pd.to_datetime(df["timestamp"]).to_numpy(dtype="datetime64[ns]")
        files.append(NabFile(key, ts, df["value"].to_numpy(dtype=float), windows_to_rows(ts, labels[key])))
    return files


# --------------------------------------------------------------------------------------------- scoring
@dataclass
class FileWeights:
    """Per-row NAB weights of one file for one profile (pre-computed once, reused for any threshold)."""

    weight: np.ndarray  # sweep score of a detection at each row
    window_id: np.ndarray  # -1 outside windows (or in probation), else window number
    scored: np.ndarray  # bool: row is past probation
    n_windows: int  # windows with at least one scored row


def file_weights(
    n: int, windows: Sequence[tuple[int, int]], profile: tuple[float, float, float]
) -> FileWeights:
    a_tp, a_fp, _ = profile
    idx = np.arange(n)
    weight = np.full(n, -a_fp)
    window_id = np.full(n, -1, dtype=np.int64)
    max_tp = float(scaled_sigmoid(-1.0))
    prob = probation_rows(n)
    for k, (a, b) in enumerate(windows):
        w = b - a + 1
        rows = idx[a : b + 1]
        weight[a : b + 1] = scaled_sigmoid(-(b - rows + 1) / w) * a_tp / max_tp
        window_id[a : b + 1] = k
        nxt = windows[k + 1][0] if k + 1 < len(windows) else n
        after = idx[b + 1 : nxt]
        if len(after):
            if w > 1:
                weight[b + 1 : nxt] = scaled_sigmoid(np.abs(b - after) / (w - 1)) * a_fp
            else:  # NAB would divide by zero; treat as far away
                weight[b + 1 : nxt] = -a_fp
    scored = idx >= prob
    window_id[~scored] = -1
    ids = np.unique(window_id[window_id >= 0])
    # renumber so that ids are 0..n_windows-1
    remap = {int(old): new for new, old in enumerate(ids)}
    window_id = np.array([remap.get(int(v), -1) for v in window_id]) if len(ids) else window_id
    return FileWeights(weight, window_id, scored, len(ids))


def score_file(
    scores: np.ndarray, fw: FileWeights, profile: tuple[float, float, float], threshold: float
) -> dict:
    """Raw NAB score of one file at one threshold, with TP/FP/FN window counts."""
    det = (np.asarray(scores) >= threshold) & fw.scored
    fp_rows = det & (fw.window_id < 0)
    raw = float(fw.weight[fp_rows].sum())
    tp = 0
    for k in range(fw.n_windows):
        hit = det & (fw.window_id == k)
        if hit.any():
            raw += float(fw.weight[hit].max())
            tp += 1
        else:
            raw -= profile[2]
    return {"raw": raw, "tp": tp, "fn": fw.n_windows - tp, "fp": int(fp_rows.sum())}


def threshold_events(scores: np.ndarray, fw: FileWeights, profile: tuple[float, float, float]):
    """Events (score, delta) such that raw(T) = -A_FN * windows + sum(delta for score >= T)."""
    scores = np.asarray(scores, dtype=float)
    fp = fw.scored & (fw.window_id < 0)
    ev_s = [scores[fp]]
    ev_d = [fw.weight[fp]]
    for k in range(fw.n_windows):
        rows = np.flatnonzero(fw.window_id == k)
        s, w = scores[rows], fw.weight[rows]
        order = np.argsort(-s, kind="stable")
        cm = np.maximum.accumulate(w[order])
        delta = np.diff(np.concatenate(([-profile[2]], cm)))
        keep = delta != 0
        ev_s.append(s[order][keep])
        ev_d.append(delta[keep])
    return np.concatenate(ev_s), np.concatenate(ev_d)


def sweep(event_scores: np.ndarray, event_deltas: np.ndarray, base: float) -> tuple[np.ndarray, np.ndarray]:
    """Raw score at every distinct threshold (descending), including 'nothing detected' (inf)."""
    order = np.argsort(-event_scores, kind="stable")
    s = event_scores[order]
    c = np.cumsum(event_deltas[order])
    last = np.ones(len(s), dtype=bool)
    if len(s) > 1:
        last[:-1] = s[:-1] != s[1:]
    thr = np.concatenate(([np.inf], s[last]))
    raw = np.concatenate(([base], base + c[last]))
    return thr, raw


def normalise(raw: float, n_windows: int, profile: tuple[float, float, float]) -> float:
    perfect = profile[0] * n_windows
    null = -profile[2] * n_windows
    return 100.0 * (raw - null) / (perfect - null)


@dataclass
class ProfileResult:
    profile: str
    threshold: float  # corpus-wide optimum (a)
    raw: float
    score: float  # normalised, (a)
    loco_score: float  # normalised, (b) leave-one-category-out thresholds
    loco_thresholds: dict[str, float]
    tp: int
    fp: int
    fn: int


def evaluate(files: Sequence[NabFile], scores: Sequence[np.ndarray]) -> dict[str, ProfileResult]:
    """Score a detector's outputs on the corpus under the three profiles, (a) and (b)."""
    results = {}
    total_windows = sum(len(f.windows) for f in files)
    cats = sorted({f.category for f in files})
    for pname, prof in PROFILES.items():
        fws = [file_weights(f.n, f.windows, prof) for f in files]
        evs = [threshold_events(s, fw, prof) for s, fw in zip(scores, fws, strict=True)]
        nw = [fw.n_windows for fw in fws]

        def best(mask, evs=evs, nw=nw, prof=prof):
            es = np.concatenate([e[0] for e, m in zip(evs, mask, strict=True) if m] or [np.empty(0)])
            ed = np.concatenate([e[1] for e, m in zip(evs, mask, strict=True) if m] or [np.empty(0)])
            base = -prof[2] * sum(n for n, m in zip(nw, mask, strict=True) if m)
            thr, raw = sweep(es, ed, base)
            k = int(np.argmax(raw))
            return float(thr[k]), float(raw[k])

        t_all, _ = best([True] * len(files))
        parts = [score_file(s, fw, prof, t_all) for s, fw in zip(scores, fws, strict=True)]
        raw_a = sum(p["raw"] for p in parts)
        loco_raw = 0.0
        loco_thr = {}
        for c in cats:
            t_c, _ = best([f.category != c for f in files])
            loco_thr[c] = t_c
            loco_raw += sum(
                score_file(s, fw, prof, t_c)["raw"]
                for f, s, fw in zip(files, scores, fws, strict=True)
                if f.category == c
            )
        results[pname] = ProfileResult(
            pname,
            t_all,
            raw_a,
            normalise(raw_a, total_windows, prof),
            normalise(loco_raw, total_windows, prof),
            loco_thr,
            sum(p["tp"] for p in parts),
            sum(p["fp"] for p in parts),
            sum(p["fn"] for p in parts),
        )
    return results


# --------------------------------------------------------------------------------------------- running
ScoreFn = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def write_results(out_dir: Path, detector: str, f: NabFile, scores: np.ndarray) -> Path:
    """Write ``OUT/<detector>/<category>/<detector>_<file>.csv`` (timestamp,value,anomaly_score,label)."""
    path = Path(out_dir) / detector / f.category / f"{detector}_{f.name}"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "timestamp": pd.to_datetime(f.timestamps).strftime("%Y-%m-%d %H:%M:%S"),
            "value": f.values,
            "anomaly_score": scores,
            "label": f.labels(),
        }
    ).to_csv(path, index=False)
    return path


def run_scores(files: Sequence[NabFile], fn: ScoreFn) -> tuple[list[np.ndarray], float]:
    """Run ``fn(timestamps, values, probation)`` on every file; returns scores and seconds spent."""
    out = []
    spent = 0.0
    for f in files:
        t0 = time.perf_counter()
        s = np.asarray(fn(f.timestamps, f.values, f.probation), dtype=float)
        spent += time.perf_counter() - t0
        out.append(s)
    return out, spent


# --------------------------------------------------------------------------------------------- bench
BASELINES = ("windowed_gaussian", "sklearn_iforest_raw", "river_hst")
OFF_THE_SHELF = ("sklearn_iforest_raw", "river_hst")


def default_bench_detectors() -> list[str]:
    from waimai.firewall.detect.base import DEFAULT_DETECTOR

    own = [
        DEFAULT_DETECTOR,
        "ensemble",
        "robust_seasonal",
        "holt_winters",
        "cusum",
        "iforest",
        "robust_seasonal_cal",
        "holt_winters_cal",
        "cusum_cal",
        "iforest_cal",
    ]
    return list(dict.fromkeys(own + list(BASELINES)))


def _detect_file(job: tuple[str, NabFile]) -> tuple[str, str, np.ndarray, float]:
    """Worker: run one detector over one file on one core. Returns CPU seconds."""
    from waimai.firewall.detect.base import get_detector

    try:  # scikit-learn's dependency; only used to keep BLAS on one thread
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        from contextlib import nullcontext as threadpool_limits  # type: ignore[assignment]

    name, f = job
    det = get_detector(name, warmup=f.probation)
    # one core: BLAS pools limited to one thread; CPU time of this process, so that other load on
    # the machine does not distort points/s
    with threadpool_limits(limits=1):
        t0 = time.process_time()
        scores = np.clip(np.asarray(det.score_series(f.timestamps, f.values), dtype=float), 0.0, 1.0)
        spent = time.process_time() - t0
    return name, f.key, scores, spent


def run_detectors(
    files: Sequence[NabFile], detectors: Sequence[str], workers: int = 2, progress: bool = True
) -> tuple[dict[str, list[np.ndarray]], dict[str, float]]:
    """Run every detector over every file (in ``workers`` processes); scores and seconds per detector."""
    from concurrent.futures import ProcessPoolExecutor

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    jobs = [(d, f) for d in detectors for f in files]
    # largest files first so the two workers finish together
    order = sorted(range(len(jobs)), key=lambda j: -jobs[j][1].n)
    got: dict[tuple[str, str], np.ndarray] = {}
    secs = dict.fromkeys(detectors, 0.0)
    with Progress(
        TextColumn("[bold]NAB detect"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not progress,
    ) as bar:
        task = bar.add_task("detect", total=len(jobs))
        if workers > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for name, key, s, sec in pool.map(_detect_file, [jobs[j] for j in order]):
                    got[(name, key)] = s
                    secs[name] += sec
                    bar.advance(task)
        else:
            for j in order:
                name, key, s, sec = _detect_file(jobs[j])
                got[(name, key)] = s
                secs[name] += sec
                bar.advance(task)
    return {d: [got[(d, f.key)] for f in files] for d in detectors}, secs


def run_nab_bench(
    data_dir: Path,
    out_dir: Path,
    plot_dir: Path | None = None,
    detectors: Sequence[str] | None = None,
    workers: int = 2,
    console=None,
    limit: int | None = None,
) -> dict:
    """Run, score and compare detectors on NAB v1.1; prints a Rich table and returns the figures.

    ``limit`` keeps that many files spread over the corpus (a smoke run).

    Writes ``out_dir/<detector>/<category>/<detector>_<file>.csv`` (timestamp,value,anomaly_score,
    label), ``out_dir/<detector>/<detector>_<profile>_scores.csv`` (per-file raw scores at the
    corpus threshold) and ``out_dir/summary.json``. With ``plot_dir``, one PNG per file for the first
    detector (series, labelled windows, scores, alarms at the standard-profile threshold).
    """
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if not console.is_terminal:  # piped/logged: do not squeeze the table into 80 columns
        console = Console(width=200)
    detectors = list(detectors or default_bench_detectors())
    files = load_corpus(Path(data_dir))
    if limit:
        files = files[:: max(1, len(files) // limit)][:limit]
    total_rows = sum(f.n for f in files)
    console.print(
        f"NAB corpus: {len(files)} files, {total_rows:,} rows, "
        f"{sum(len(f.windows) for f in files)} windows; detectors: {', '.join(detectors)}"
    )
    all_scores, secs = run_detectors(files, detectors, workers=workers)
    out_dir = Path(out_dir)
    summary: dict[str, dict] = {}
    for d in detectors:
        scores = all_scores[d]
        for f, s in zip(files, scores, strict=True):
            write_results(out_dir, d, f, s)
        res = evaluate(files, scores)
        for pname, r in res.items():
            prof = PROFILES[pname]
            rows = []
            for f, s in zip(files, scores, strict=True):
                part = score_file(s, file_weights(f.n, f.windows, prof), prof, r.threshold)
                rows.append(
                    {
                        "Detector": d,
                        "Profile": pname,
                        "File": f.key,
                        "Threshold": r.threshold,
                        "Score": part["raw"],
                        "TP": part["tp"],
                        "FP": part["fp"],
                        "FN": part["fn"],
                    }
                )
            pd.DataFrame(rows).to_csv(out_dir / d / f"{d}_{pname}_scores.csv", index=False)
        summary[d] = {
            "points_per_s": total_rows / secs[d] if secs[d] > 0 else float("inf"),
            "seconds": secs[d],
            **{
                pname: {
                    "score": r.score,
                    "threshold": r.threshold,
                    "loco_score": r.loco_score,
                    "loco_thresholds": r.loco_thresholds,
                    "raw": r.raw,
                    "tp": r.tp,
                    "fp": r.fp,
                    "fn": r.fn,
                }
                for pname, r in res.items()
            },
        }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    _print_table(console, summary, Table)
    if plot_dir is not None:
        from rich.progress import track

        from waimai.firewall.detect.plots import plot_detection

        d = detectors[0]
        thr = summary[d]["standard"]["threshold"]
        for f, s in track(
            list(zip(files, all_scores[d], strict=True)), description=f"plots ({d})", console=console
        ):
            plot_detection(
                Path(plot_dir) / f.category / f"{d}_{f.name[:-4]}.png",
                f.timestamps,
                f.values,
                s,
                thr,
                f.windows,
                title=f"{f.key} — {d} (standard threshold {thr:.4g})",
                probation=f.probation,
            )
        console.print(f"plots written to {plot_dir}")
    return summary


def _print_table(console, summary: dict, table_cls) -> None:
    t = table_cls(
        title="NAB v1.1 — normalised scores: (a) corpus threshold tuned on labels | "
        "(b) leave-one-category-out threshold"
    )
    t.add_column("detector")
    for p in ("standard", "low FP", "low FN"):
        t.add_column(f"{p} (a)", justify="right")
    for p in ("standard", "low FP", "low FN"):
        t.add_column(f"{p} (b)", justify="right")
    t.add_column("points/s", justify="right")
    t.add_column("x windowedGaussian", justify="right")
    t.add_column("x best off-the-shelf", justify="right")
    wg = summary.get("windowed_gaussian", {}).get("standard", {}).get("score")
    ots = [summary[d]["standard"]["score"] for d in OFF_THE_SHELF if d in summary]
    best_ots = max(ots) if ots else None
    for d, s in summary.items():

        def ratio(ref, s=s):
            return f"{s['standard']['score'] / ref:.2f}" if ref and ref > 0 else "-"

        t.add_row(
            d,
            *(f"{s[p]['score']:.1f}" for p in PROFILES),
            *(f"{s[p]['loco_score']:.1f}" for p in PROFILES),
            f"{s['points_per_s']:,.0f}",
            ratio(wg),
            ratio(best_ots),
        )
    console.print(t)
    console.print(
        "published NAB v1.1 leaders (a): ARTime 74.9/65.1/80.4, Numenta HTM 70.5/62.6/75.2, "
        "CAD OSE 69.9/67.0/73.2, windowedGaussian 39.6/20.9/47.4"
    )
