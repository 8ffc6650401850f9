"""NAB v1.1 scorer on hand-built cases (expected values computed by hand from the README rules)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from waimai.firewall.detect import nab

STD = nab.PROFILES["standard"]
LOW_FP = nab.PROFILES["reward_low_FP_rate"]
LOW_FN = nab.PROFILES["reward_low_FN_rate"]
N = 100  # probation = floor(0.15 * 100) = 15 rows
WIN = [(40, 49)]  # width 10, last row r = 49


def S(y: float) -> float:
    return -1.0 if y >= 3 else 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def score(detect_rows, windows=WIN, profile=STD, n=N) -> float:
    s = np.zeros(n)
    s[list(detect_rows)] = 1.0
    fw = nab.file_weights(n, windows, profile)
    return nab.score_file(s, fw, profile, 0.5)["raw"]


def test_probation_rule():
    assert nab.probation_rows(100) == 15
    assert nab.probation_rows(4032) == 604
    assert nab.probation_rows(22695) == 750  # capped at 0.15 * 5000


def test_scaled_sigmoid_values():
    assert S(-1.0) == pytest.approx(0.9866142981514305)  # 2/(1+e^-5) - 1
    assert nab.scaled_sigmoid(-1.0) == pytest.approx(0.9866142981514305)
    assert nab.scaled_sigmoid(0.0) == pytest.approx(0.0)
    assert nab.scaled_sigmoid(3.0) == -1.0


def test_true_positive_early_vs_late():
    # first row of the window: y = -(49 - 40 + 1) / 10 = -1 -> worth exactly A_TP
    assert score([40]) == pytest.approx(1.0)
    # last row: y = -(49 - 49 + 1) / 10 = -0.1 -> S(-0.1) / S(-1) = 0.244919 / 0.986614 = 0.248242
    assert score([49]) == pytest.approx(0.24824153, abs=1e-7)
    # middle (row 45): y = -0.5 -> 0.848284 / 0.986614 = 0.859794
    assert score([45]) == pytest.approx(0.85979, abs=1e-5)
    # only the best (earliest) detection of a window counts; later ones add nothing
    assert score([45, 46, 49]) == pytest.approx(score([45]))


def test_false_negative_and_profiles():
    assert score([]) == -1.0
    assert score([], profile=LOW_FN) == -2.0


def test_false_positive_before_and_after_window():
    # before any window: -A_FP
    assert score([20, 40]) == pytest.approx(1.0 - 0.11)
    assert score([20, 40], profile=LOW_FP) == pytest.approx(1.0 - 0.22)
    # 10 rows after the window end: 0.11 * S(|49 - 59| / (10 - 1)) = 0.11 * S(1.111) = -0.109153
    assert score([40, 59]) == pytest.approx(1.0 + 0.11 * S(10 / 9), abs=1e-12)
    assert 0.11 * S(10 / 9) == pytest.approx(-0.109153, abs=1e-6)
    # right after the window the penalty is small: 1 row -> 0.11 * S(1/9) = 0.11 * -0.270848 = -0.029793
    assert score([40, 50]) == pytest.approx(1.0 - 0.029793, abs=1e-6)
    # far away (>= 3 widths) -> full -A_FP
    assert score([40, 80]) == pytest.approx(1.0 - 0.11)


def test_probation_rows_are_ignored():
    assert score([5]) == -1.0  # a detection in probation is neither FP nor TP
    # a window lying inside probation does not count at all (no FN)
    assert score([], windows=[(2, 8)]) == 0.0
    # a window straddling the probation end only scores its post-probation rows
    assert score([12, 16], windows=[(10, 19)]) == pytest.approx(S(-(19 - 16 + 1) / 10) / S(-1))


def _toy_corpus(seed: int = 0):
    rng = np.random.default_rng(seed)
    files, scores = [], []
    for k in range(6):
        n = 400
        ts = np.datetime64("2024-01-01") + np.arange(n) * np.timedelta64(5, "m")
        f = nab.NabFile(f"cat{k % 3}/f{k}.csv", ts, rng.normal(size=n), [(100 + 30 * k, 130 + 30 * k)])
        files.append(f)
        scores.append(np.round(rng.random(n) ** 6, 2))
    return files, scores


def test_null_and_perfect_normalise_to_0_and_100():
    files, _ = _toy_corpus()
    null = [np.zeros(f.n) for f in files]
    perfect = []
    for f in files:
        s = np.zeros(f.n)
        for a, _ in f.windows:
            s[a] = 1.0
        perfect.append(s)
    for pname in nab.PROFILES:
        assert nab.evaluate(files, null)[pname].score == pytest.approx(0.0)
        assert nab.evaluate(files, perfect)[pname].score == pytest.approx(100.0)


def test_threshold_sweep_matches_brute_force():
    files, scores = _toy_corpus()
    res = nab.evaluate(files, scores)
    for pname, prof in nab.PROFILES.items():
        fws = [nab.file_weights(f.n, f.windows, prof) for f in files]
        best = max(
            sum(nab.score_file(s, fw, prof, t)["raw"] for s, fw in zip(scores, fws, strict=True))
            for t in [*np.unique(np.concatenate(scores)), np.inf]
        )
        assert res[pname].raw == pytest.approx(best)
        # (b) uses thresholds chosen without the scored category, so it cannot beat (a)
        assert res[pname].loco_score <= res[pname].score + 1e-9


NAB_DIR = Path(__file__).parents[3] / ".." / "shared" / "data" / "nab"


@pytest.mark.skipif(
    not (NAB_DIR / "labels" / "combined_windows.json").is_file(), reason="NAB data not available"
)
def test_corpus_loads_with_116_windows():
    files = nab.load_corpus(NAB_DIR)
    assert len(files) == 58
    assert sum(len(f.windows) for f in files) == 116
    assert sum(f.n for f in files) == 365_558
