"""Pay arithmetic in integer fen: base, distance, peak multiplier, hourly guarantee, late penalty, rounding."""

from __future__ import annotations

import datetime as dt

import pytest

from waimai.core.timeutil import LOCAL
from waimai.platform.payroll.rules import DEFAULT, Rules, distance_m, half_up, parse_window


def test_half_up_rounds_half_away_from_zero_in_integers() -> None:
    assert [half_up(n, 10) for n in (4, 5, 6, 15, -4, -5, -15)] == [0, 1, 1, 2, 0, -1, -2]
    assert half_up(33150, 1000) == 33 and half_up(33500, 1000) == 34


def test_base_distance_and_peak() -> None:
    r = Rules(base_fen=400, per_km_fen=150, free_m=500, peak_pct=150)
    assert distance_m(700, 800, 300, 1400) == 721  # merchant 1 → 北1栋 on the demo campus
    assert r.distance_fen(721) == 33  # 150 fen/km × 0.221 km = 33.15
    assert r.distance_fen(400) == 0  # inside the included metres
    assert r.order_pay(721, peak=False) == (400, 33, 0)
    assert r.order_pay(721, peak=True) == (400, 33, 217)  # (400 + 33) × 0.5 = 216.5 → 217
    assert sum(r.order_pay(2500, peak=True)) == 1050  # (400 + 300) × 1.5


def test_peak_windows_are_local_and_end_exclusive() -> None:
    r = Rules(peak_windows=("11:00-13:00", "17:00-19:00"))

    def at(h: int, m: int) -> dt.datetime:
        return dt.datetime(2026, 3, 4, h, m, tzinfo=LOCAL)

    assert [r.is_peak(at(*t)) for t in ((10, 59), (11, 0), (12, 59), (13, 0), (17, 30), (19, 0))] == [
        False, True, True, False, True, False]
    assert not Rules(peak_windows=()).is_peak(at(12, 0))
    assert parse_window("00:00-24:00") == (0, 1440)
    for bad in ("13:00-11:00", "25:00-26:00", "11-13", "11:00-11:00"):
        with pytest.raises(ValueError):
            parse_window(bad)


def test_hourly_guarantee_is_max_of_order_pay_and_hours() -> None:
    r = Rules(hourly_min_fen=2000)
    assert r.guaranteed(4 * 3600) == 8000
    assert r.guaranteed(5400) == 3000  # 1.5 h
    assert r.guaranteed(1) == 1  # 0.56 fen rounds up, half away from zero
    assert r.top_up(1083, 4 * 3600) == 6917  # max(1083, 8000) - 1083
    assert r.top_up(9000, 4 * 3600) == 0
    assert r.top_up(0, 0) == 0


def test_late_penalty_after_the_grace() -> None:
    r = Rules(late_grace_min=5, late_penalty_fen=200)
    promised = dt.datetime(2026, 3, 4, 4, 0, tzinfo=dt.UTC)
    assert r.late_penalty(promised + dt.timedelta(minutes=5), promised) == 0
    assert r.late_penalty(promised + dt.timedelta(minutes=5, seconds=1), promised) == -200
    assert r.late_penalty(promised + dt.timedelta(hours=1), None) == 0
    assert Rules(late_penalty_fen=0).late_penalty(promised + dt.timedelta(hours=1), promised) == 0


def test_rules_validate_and_round_trip() -> None:
    assert Rules.from_dict(DEFAULT.as_dict()) == DEFAULT
    for bad in ({"peak_pct": 90}, {"pay_cycle": "month"}, {"base_fen": -1}, {"peak_windows": ("noon",)}):
        with pytest.raises(ValueError):
            Rules.from_dict({**DEFAULT.as_dict(), **bad})
