"""Contract tests run against every registered detector."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from waimai.firewall.detect import DEFAULT_DETECTOR, DETECTORS, Detector, get_detector

N, WARMUP, SPIKE, SHIFT = 600, 150, 430, 500


def synthetic(seed: int = 3, kind: str = "both") -> tuple[np.ndarray, np.ndarray]:
    """30-minute series with a daily cycle and noise; a spike at SPIKE and/or a level shift at SHIFT."""
    rng = np.random.default_rng(seed)
    ts = np.datetime64("2024-01-01T00:00") + np.arange(N) * np.timedelta64(30, "m")
    i = np.arange(N)
    x = 10 + 3 * np.sin(2 * np.pi * i / 48) + rng.normal(0, 0.4, N)
    if kind in ("both", "spike"):
        x[SPIKE] += 9.0
    if kind in ("both", "shift"):
        x[SHIFT:] += 6.0
    return ts, x


def make(name: str) -> Detector:
    return get_detector(name, warmup=WARMUP)


NAMES = sorted(DETECTORS)


def test_registry_has_the_required_detectors():
    for name in (
        "novelty",
        "robust_seasonal",
        "holt_winters",
        "iforest",
        "cusum",
        "windowed_gaussian",
        "ensemble",
        "sklearn_iforest_raw",
        "river_hst",
    ):
        assert name in DETECTORS
    assert DEFAULT_DETECTOR in DETECTORS
    with pytest.raises(KeyError):
        get_detector("no-such-detector")


@pytest.mark.parametrize("name", NAMES)
def test_interface_and_range(name):
    ts, x = synthetic()
    det = make(name)
    assert isinstance(det, Detector)
    s = det.score_series(ts, x)
    assert s.shape == (N,)
    assert np.isfinite(s).all()
    assert (s >= 0).all() and (s <= 1).all()
    one = det.score_one(ts[-1] + np.timedelta64(30, "m"), 11.0)
    assert isinstance(one, float) and 0.0 <= one <= 1.0
    det.learn_one(ts[-1] + np.timedelta64(30, "m"), 11.0)


@pytest.mark.parametrize("name", NAMES)
def test_deterministic(name):
    ts, x = synthetic()
    np.testing.assert_array_equal(make(name).score_series(ts, x), make(name).score_series(ts, x))


@pytest.mark.parametrize("name", NAMES)
def test_batch_equals_streaming(name):
    """score_series is causal and identical to the score_one/learn_one loop."""
    ts, x = synthetic()
    n = 320
    batch = make(name).score_series(ts[:n], x[:n])
    det = make(name)
    loop = np.empty(n)
    for i in range(n):
        loop[i] = det.score_one(ts[i], x[i])
        det.learn_one(ts[i], x[i])
    np.testing.assert_allclose(batch, loop, rtol=1e-9, atol=1e-9)
    # causality: changing the future does not change past scores
    x2 = x[:n].copy()
    x2[250:] += 100
    np.testing.assert_allclose(make(name).score_series(ts[:n], x2)[:250], batch[:250], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_state_save_restore(name):
    ts, x = synthetic()
    det = make(name)
    det.score_series(ts[:300], x[:300])
    state = det.get_state()
    blob = pickle.dumps(det)
    first = det.score_series(ts[300:], x[300:])
    det.set_state(state)
    np.testing.assert_allclose(det.score_series(ts[300:], x[300:]), first, rtol=1e-9, atol=1e-9)
    restored = pickle.loads(blob)  # noqa: S301 - our own bytes, produced two lines above
    np.testing.assert_allclose(restored.score_series(ts[300:], x[300:]), first, rtol=1e-9, atol=1e-9)


# Known to miss these synthetic anomalies (documented, visible in the NAB bench): the two
# off-the-shelf baselines (HalfSpaceTrees on one scaled value; IsolationForest on raw windows of a
# daily sine) and the calibrated IsolationForest, whose suppression keeps an earlier false alarm
# of the forest (a normal row 14 rows before the spike) and drops the spike.
QUALITY_EXEMPT = {"river_hst", "sklearn_iforest_raw", "iforest_cal"}
# The live watcher's per-series detectors read a particular kind of series (counts per 5 s sample against a
# weekday profile, success ratios with their call counts, latencies on a log scale), not this generic sine of
# floats; their floor is measured on the series they are built for (tests/firewall/detect/test_faults.py and
# `waimai bench faults`).
PER_SERIES = {"counts", "ratio", "latency"}


@pytest.mark.parametrize("name", NAMES)
def test_quality_floor(name):
    """Injected spike and level shift score above the normal region."""
    if name in QUALITY_EXEMPT:
        pytest.skip("weak baseline, shown in the bench for comparison")
    if name in PER_SERIES:
        pytest.skip("a per-series detector: its floor is test_faults.py on the series it reads")
    for kind, start, width in (("spike", SPIKE, 3), ("shift", SHIFT, 20)):
        ts, x = synthetic(kind=kind)
        s = make(name).score_series(ts, x)
        ref = np.quantile(s[WARMUP : start - 5], 0.98)
        assert s[start : start + width].max() > ref, f"{kind} not above the normal region"


def test_default_detector_is_fast_enough():
    """Vectorised path of the default detector (~300k points/s measured; loose floor for CI)."""
    import time

    rng = np.random.default_rng(0)
    n = 200_000
    ts = np.datetime64("2024-01-01") + np.arange(n) * np.timedelta64(5, "m")
    x = np.cumsum(rng.normal(size=n)) * 0.1 + np.sin(np.arange(n) / 40)
    det = get_detector(DEFAULT_DETECTOR, warmup=750)
    t0 = time.process_time()  # CPU time: robust to other load on a shared machine
    det.score_series(ts, x)
    assert n / (time.process_time() - t0) > 50_000


@pytest.mark.parametrize("name", NAMES)
def test_non_finite_values_are_rejected(name):
    ts, x = synthetic()
    x = x.copy()
    x[200] = np.nan
    with pytest.raises(ValueError):
        make(name).score_series(ts, x)


def test_iforest_is_multi_metric():
    """Two correlated metrics; a stretch where they decouple (each within its own range) stands out."""
    rng = np.random.default_rng(11)
    n = 600
    ts = np.datetime64("2024-01-01T00:00") + np.arange(n) * np.timedelta64(30, "m")
    base = 3 * np.sin(2 * np.pi * np.arange(n) / 48)
    cpu = 10 + base + rng.normal(0, 0.3, n)
    latency = 20 + 2 * base + rng.normal(0, 0.3, n)
    latency[450:470] = 20 - 2 * base[450:470]  # anti-phase: normal marginal range, abnormal jointly
    s = get_detector("iforest", warmup=WARMUP).score_series(ts, np.column_stack([cpu, latency]))
    assert s.shape == (n,)
    assert s[450:470].max() > np.quantile(s[WARMUP:440], 0.99)
    # the per-point path takes one vector per row and agrees with the batch path
    det = get_detector("iforest", warmup=WARMUP)
    loop = []
    for i in range(300):
        loop.append(det.score_one(ts[i], [cpu[i], latency[i]]))
        det.learn_one(ts[i], [cpu[i], latency[i]])
    np.testing.assert_allclose(loop, s[:300], rtol=1e-9, atol=1e-9)


def test_novelty_log_scale_for_heavy_tailed_counts():
    """A skewed non-negative metric is scored on log1p(x), chosen from the warm-up rows only; the
    batch path, the per-point path and a state saved mid-warm-up agree."""
    rng = np.random.default_rng(5)
    n = 400
    ts = np.datetime64("2024-01-01T00:00") + np.arange(n) * np.timedelta64(5, "m")
    x = rng.poisson(rng.gamma(0.5, 8.0, n)).astype(float)  # bursty counts
    x[300] = 400.0
    batch_det = make("novelty")
    batch = batch_det.score_series(ts, x)
    assert batch_det.log  # type: ignore[attr-defined]
    det = make("novelty")
    loop = np.empty(n)
    for i in range(n):
        if i == WARMUP // 2:  # save/restore in the middle of the warm-up
            det = pickle.loads(pickle.dumps(det))  # noqa: S301 - our own bytes
        loop[i] = det.score_one(ts[i], x[i])
        det.learn_one(ts[i], x[i])
    np.testing.assert_allclose(batch, loop, rtol=1e-9, atol=1e-9)
    assert batch[300] > np.quantile(batch[WARMUP:300], 0.98)
    # symmetric, normally distributed data stays on the raw scale
    det2 = make("novelty")
    det2.score_series(*synthetic())
    assert not det2.log  # type: ignore[attr-defined]
