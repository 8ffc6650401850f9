"""PNG plots (matplotlib, Agg backend): a series with its labelled windows, scores and alarms."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_detection(
    path: Path,
    timestamps: np.ndarray,
    values: np.ndarray,
    scores: np.ndarray,
    threshold: float | None = None,
    windows: Sequence[tuple[int, int]] = (),
    title: str = "",
    probation: int = 0,
) -> Path:
    """Two panels: values with labelled windows (shaded) and alarms (red marks); scores below."""
    plt = _plt()
    ts = np.asarray(timestamps, dtype="datetime64[ns]")
    fig, (ax1, ax2) = plt.subplots(
        2, 1, figsize=(14, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1.4]}
    )
    ax1.plot(ts, values, lw=0.7, color="#1f4e79", label="value")
    for k, (a, b) in enumerate(windows):
        ax1.axvspan(
            ts[a], ts[b], color="#f4b183", alpha=0.45, lw=0, label="labelled window" if k == 0 else None
        )
        ax2.axvspan(ts[a], ts[b], color="#f4b183", alpha=0.45, lw=0)
    if probation:
        ax1.axvspan(ts[0], ts[min(probation, len(ts) - 1)], color="#d9d9d9", alpha=0.5, lw=0, label="warm-up")
    ax2.plot(ts, scores, lw=0.7, color="#7f6000", label="anomaly score")
    if threshold is not None and np.isfinite(threshold):
        alarms = np.flatnonzero(np.asarray(scores) >= threshold)
        ax1.scatter(
            ts[alarms],
            np.asarray(values)[alarms],
            color="red",
            s=28,
            zorder=5,
            marker="v",
            label=f"alarm (score >= {threshold:.3g})",
        )
        ax2.axhline(threshold, color="red", lw=0.8, ls="--", label="threshold")
    ax1.set_title(title, fontsize=11)
    ax1.legend(loc="upper left", fontsize=8)
    ax2.legend(loc="upper left", fontsize=8)
    ax2.set_ylim(-0.02, 1.02)
    ax2.set_ylabel("score")
    ax1.set_ylabel("value")
    fig.autofmt_xdate()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_forecast(
    path: Path,
    timestamps: np.ndarray,
    actual: np.ndarray,
    mean: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    title: str = "",
) -> Path:
    """Forecast vs actual with the prediction band."""
    plt = _plt()
    ts = np.asarray(timestamps, dtype="datetime64[ns]")
    fig, ax = plt.subplots(figsize=(14, 4.5))
    ax.fill_between(ts, lower, upper, color="#9dc3e6", alpha=0.5, lw=0, label="prediction band")
    ax.plot(ts, actual, lw=0.9, color="black", label="actual")
    ax.plot(ts, mean, lw=0.9, color="#c00000", label="forecast")
    ax.set_title(title, fontsize=11)
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
