"""The product-fault bench runs in seconds and reads at 80 columns; the per-series detectors judge
counts and ratios by their volume, and their bands are never negative."""

from __future__ import annotations

import datetime as dt

from typer.testing import CliRunner

from waimai.cli import app
from waimai.core.numbers import readable
from waimai.firewall.detect import faults
from waimai.firewall.detect.base import get_detector

T0 = dt.datetime(2026, 3, 2, 0, 0, tzinfo=dt.UTC).timestamp()  # 08:00 in Shanghai, a Monday


def test_smoke_bench_prints_a_table_that_fits_80_columns() -> None:
    res = CliRunner().invoke(app, ["bench", "faults", "--smoke"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert any(line.startswith("waimai (per series)") for line in lines)
    assert any(line.startswith("static rules") for line in lines)
    assert "false alarms/day" in res.output


def test_generated_series_look_like_the_sampler() -> None:
    camp = faults.generate(5, days=2, warm_days=1, fault_share=1.0)
    orders = camp.values["orders_placed_per_min"]
    assert ((orders % 12) == 0).all()  # whole orders per 5 s, times 12
    assert len(camp.faults) == len(faults.SERIES)  # a fault day faults every series
    assert (camp.values["dispatch_backlog"] >= 0).all()


def test_openings_follow_the_watchers_hysteresis() -> None:
    import numpy as np

    scores = np.array([0.1, 0.9, 0.7, 0.9, 0.5, 0.85, 0.2])
    assert faults.openings(scores, 0.8).tolist() == [1, 5]  # 0.7 keeps it open; 0.5 closes it


def test_three_failed_calls_at_night_are_no_outage_but_twenty_of_forty_are() -> None:
    det = get_detector("ratio", bad="low", z_alarm=5.0)
    t = T0
    for _ in range(400):  # a normal hour: 2 calls per sample, all fine
        det.learn_one(t, (1.0, 2.0))
        t += 5
    assert det.score_one(t, (0.0, 3.0)) < 0.8
    det2 = get_detector("ratio", bad="low", z_alarm=5.0)
    t = T0
    for _ in range(400):
        det2.learn_one(t, (1.0, 2.0))
        t += 5
    worst = 0.0
    for _ in range(6):  # 20 failures in 40 calls over half a minute
        x = (1 / 3, 6.0)
        worst = max(worst, det2.score_one(t, x))
        det2.learn_one(t, x)
        t += 5
    assert worst >= 0.8


def test_counts_at_night_carry_no_evidence_and_bands_are_never_negative() -> None:
    det = get_detector("counts")
    t = T0 + 16 * 3600  # midnight in Shanghai
    for i in range(720):  # an hour of a few night orders
        x = 12.0 if i % 97 == 0 else 0.0
        assert det.score_one(t, x) < 0.8 or i < 12
        det.learn_one(t, x)
        t += 5
    assert det.score_one(t, 24.0) < 0.8  # two orders in one sample at night: nothing
    lo, hi = det.expected()
    assert lo >= 0.0 and hi >= lo
    lat = get_detector("latency")
    for i in range(200):
        lat.learn_one(T0 + 5 * i, 40.0 + (i % 7))
    assert lat.expected()[0] >= 0.0


def test_numbers_print_readably() -> None:
    assert readable(10000.0) == "10,000"
    assert readable(0.985) == "0.985"
    assert readable(11.9) == "11.9"
    assert "e+" not in readable(1.2e7)


def test_a_slow_latency_drift_is_caught_by_the_profile_channel_and_a_normal_day_is_quiet() -> None:
    """p95 latency with a lunch rhythm: three normal days teach the profile; on the fourth the p95 drifts
    from its usual level to 3x over 90 minutes. The lagged level follows such a drift; the profile does not."""
    import numpy as np

    rng = np.random.default_rng(3)
    t0 = faults.START.timestamp()
    step = faults.STEP_S
    n = 4 * faults.PER_DAY
    hours = (np.arange(n) % faults.PER_DAY) * step / 3600.0
    base = 90.0 * (1.0 + 0.5 * np.exp(-((hours - 12.0) ** 2) / 2.0))  # slower at lunch
    drift_from = 3 * faults.PER_DAY + 14 * 3600 // step
    drift_len = 90 * 60 // step
    mult = np.ones(n)
    mult[drift_from:drift_from + drift_len] = np.linspace(1.0, 3.0, drift_len)
    values = base * mult * np.exp(rng.normal(0.0, 0.15, n))

    def alarms(**params: float) -> np.ndarray:
        det = get_detector("latency", **params)
        scores = np.empty(n)
        for i in range(n):
            t = t0 + i * step
            scores[i] = det.score_one(t, float(values[i]))
            det.learn_one(t, float(values[i]))
        return faults.openings(scores, 0.8)

    with_profile, without = alarms(profile_window=240), alarms()
    during = (with_profile >= drift_from) & (with_profile < drift_from + drift_len)
    assert during.any(), "the profile channel missed a 3x drift"
    assert not ((without >= drift_from) & (without < drift_from + drift_len)).any()  # why the channel exists
    day3 = 3 * faults.PER_DAY
    assert not ((with_profile >= faults.PER_DAY) & (with_profile < day3)).any(), "false alarm on a normal day"
    assert not ((with_profile >= day3) & (with_profile < drift_from)).any()
