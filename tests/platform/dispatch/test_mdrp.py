"""Lower bound, loader and an end-to-end run on a small real MDRP instance."""

import numpy as np
import pytest

from waimai.platform.dispatch.engine import RollingHorizonDispatcher
from waimai.platform.dispatch.mdrp import (
    check_records,
    decision_microbench,
    load_instance,
    lower_bounds,
    run_instance,
    summarise,
)
from waimai.platform.dispatch.model import Order
from waimai.platform.dispatch.simulator import campus_day, simulate


def test_lower_bound_hand_computed(tiny):
    tiny.orders.append(Order("o4", 0, 1050, 30, "r1", 31))
    lb = lower_bounds(tiny)
    # o1: max(20, 10 + 2) + 2 + ceil(1000 / 100) + 2 - 10 = 24
    # o2: max(22, 12 + 2) + 2 + 15 + 2 - 12 = 29
    # o3: max(25, 15 + 2) + 2 + 10 + 2 - 15 = 24
    # o4: max(31, 30 + 2) + 2 + ceil(10.5) + 2 - 30 = 17
    assert lb.tolist() == [24, 29, 24, 17]


def test_small_instance_end_to_end(mdrp_dir, tmp_path):
    folder = mdrp_dir / "0r50t100s1p100"
    if not folder.is_dir():
        pytest.skip("instance 0r50t100s1p100 missing")
    inst = load_instance(folder)
    assert len(inst.orders) == 242 and inst.params.meters_per_minute > 0
    res = run_instance(folder, tmp_path)
    ours, greedy = res["ours"], res["greedy"]
    assert ours["feasible"], ours["violations"]
    assert greedy["feasible"], greedy["violations"]
    assert ours["rejected"] == 0
    assert ours["metrics"].delivered >= greedy["metrics"].delivered
    assert ours["metrics"].ctd.mean() <= greedy["metrics"].ctd.mean()
    assert (tmp_path / "ours" / inst.name / "solution_info_couriers.txt").is_file()
    s = summarise([res])
    assert s["all"]["ours"]["feasible"] == 1 and "size=r50" in s


def test_campus_day_is_feasible_and_served():
    inst = campus_day(1, orders=300, couriers=30)
    sol = simulate(inst, RollingHorizonDispatcher(inst.travel_time()))
    assert check_records(inst, sol).ok
    assert len(sol.orders) >= 0.98 * len(inst.orders)
    assert np.all(np.array([r.dropoff_time - r.placement_time for r in sol.orders]) > 0)


def test_decision_round_500_orders_150_riders_under_a_second():
    assert decision_microbench(500, 150, seed=0, repeats=1) < 1.0
