"""The independent feasibility checker must catch every kind of rule violation."""

import copy
import dataclasses

import pytest

from waimai.platform.dispatch.mdrp import check_solution, write_solution
from waimai.platform.dispatch.model import AssignmentRecord, MoveRecord, OrderRecord, Solution


def valid_solution() -> Solution:
    # c1: leaves 12, r1 at 17, pickup max(22, 19) = 22, leaves 24; o1 at 34 -> drop 36, leaves 38;
    #     o2 at 38 + 5 = 43 -> drop 45.   c2: leaves 15, r2 at 20, pickup 25, leaves 27, o3 at 37 -> 39.
    return Solution(
        assignments=[
            AssignmentRecord(12, 22, "c1", ("o1", "o2")),
            AssignmentRecord(15, 25, "c2", ("o3",)),
        ],
        orders=[
            OrderRecord("o1", 10, 20, 22, 36, "c1"),
            OrderRecord("o2", 12, 22, 22, 45, "c1"),
            OrderRecord("o3", 15, 25, 25, 39, "c2"),
        ],
        moves=[
            MoveRecord("c1", 12, "0", "r1"),
            MoveRecord("c1", 24, "r1", "o1"),
            MoveRecord("c1", 38, "o1", "o2"),
            MoveRecord("c2", 15, "0", "r2"),
            MoveRecord("c2", 27, "r2", "o3"),
        ],
    )


def check(inst, sol, tmp_path):
    write_solution(sol, tmp_path / "sol")
    return check_solution(inst, tmp_path / "sol")


def test_valid_solution_passes(tiny, tmp_path):
    res = check(tiny, valid_solution(), tmp_path)
    assert res.ok, res.violations


def test_pickup_before_ready(tiny, tmp_path):
    sol = valid_solution()
    sol.assignments[1].pickup_time = 24
    sol.orders[2].pickup_time = 24
    sol.moves[4].departure_time = 26
    sol.orders[2].dropoff_time = 38
    res = check(tiny, sol, tmp_path)
    assert not res.ok
    assert any("before ready" in v for v in res.violations)


def test_assignment_before_placement(tiny, tmp_path):
    sol = valid_solution()
    sol.assignments[1].assignment_time = 14
    sol.moves[3].departure_time = 14
    res = check(tiny, sol, tmp_path)
    assert any("before placement" in v for v in res.violations)


def test_bundle_from_two_restaurants(tiny, tmp_path):
    # c1 takes o1 (r1) and o3 (r2) in one trip
    sol = Solution(
        assignments=[AssignmentRecord(15, 25, "c1", ("o1", "o3"))],
        orders=[OrderRecord("o1", 10, 20, 25, 39, "c1"), OrderRecord("o3", 15, 25, 25, 53, "c1")],
        moves=[
            MoveRecord("c1", 15, "0", "r1"),
            MoveRecord("c1", 27, "r1", "o1"),
            MoveRecord("c1", 41, "o1", "o3"),
        ],
    )
    res = check(tiny, sol, tmp_path)
    assert any("spans restaurants" in v for v in res.violations)


def test_pickup_after_off_time(tiny, tmp_path):
    inst = copy.deepcopy(tiny)
    inst.couriers[1] = dataclasses.replace(inst.couriers[1], off_time=24)
    res = check(inst, valid_solution(), tmp_path)
    assert any("after off_time" in v for v in res.violations)


def test_overlapping_moves(tiny, tmp_path):
    # c1 also takes o3 but leaves o2 at 40, before its drop-off there is finished (47)
    sol = valid_solution()
    del sol.assignments[1], sol.orders[2], sol.moves[3:]
    # o2 (0,1500) -> r2 (1000,0): 1802.8 m -> 19 min; arrive 59, pickup 61, leave 63, o3 at 73 -> 75
    sol.assignments.append(AssignmentRecord(15, 61, "c1", ("o3",)))
    sol.orders.append(OrderRecord("o3", 15, 25, 61, 75, "c1"))
    sol.moves += [MoveRecord("c1", 40, "o2", "r2"), MoveRecord("c1", 63, "r2", "o3")]
    res = check(tiny, sol, tmp_path)
    assert any("overlap" in v for v in res.violations)
    # the same trip leaving at 47 is fine (arrive 66, pickup 68, leave 70, o3 at 80 -> 82)
    sol.assignments[-1].pickup_time = 68
    sol.orders[-1].pickup_time, sol.orders[-1].dropoff_time = 68, 82
    sol.moves[-2].departure_time, sol.moves[-1].departure_time = 47, 70
    assert check(tiny, sol, tmp_path).ok


def test_wrong_travel_time(tiny, tmp_path):
    sol = valid_solution()
    sol.orders[0].dropoff_time = 35  # r1 -> o1 is 10 min, so drop-off is 24 + 10 + 2 = 36
    res = check(tiny, sol, tmp_path)
    assert any("drop-off" in v for v in res.violations)


def test_pickup_before_arrival(tiny, tmp_path):
    sol = valid_solution()
    sol.moves[0].departure_time = 20  # arrives 25, cannot pick up at 22
    res = check(tiny, sol, tmp_path)
    assert any("before arrival" in v for v in res.violations)


@pytest.mark.parametrize("what", ["double", "missing_move", "wrong_origin"])
def test_bookkeeping_errors(tiny, tmp_path, what):
    sol = valid_solution()
    if what == "double":
        sol.assignments.append(AssignmentRecord(15, 25, "c2", ("o1",)))
    elif what == "missing_move":
        del sol.moves[2]
    else:
        sol.moves[1].origin = "0"
    assert not check(tiny, sol, tmp_path).ok


def test_moves_are_written_per_courier_and_read_like_the_official_evaluator(tiny, tmp_path):
    """Grubhub's evaluator keeps one contiguous block of lines per courier: interleaved files fail there."""
    sol = valid_solution()
    sol.moves = [sol.moves[0], sol.moves[3], sol.moves[1], sol.moves[4], sol.moves[2]]  # c1 c2 c1 c2 c1
    write_solution(sol, tmp_path / "sol")
    couriers = [ln.split()[0] for ln in (tmp_path / "sol" / "solution_info_couriers.txt").read_text().splitlines()[1:]]
    assert couriers == ["c1", "c1", "c1", "c2", "c2"]
    assert check_solution(tiny, tmp_path / "sol").ok

    lines = (tmp_path / "sol" / "solution_info_couriers.txt").read_text().splitlines()
    interleaved = [lines[0], lines[1], lines[4], lines[2], lines[5], lines[3]]
    (tmp_path / "sol" / "solution_info_couriers.txt").write_text("\n".join(interleaved) + "\n")
    res = check_solution(tiny, tmp_path / "sol")
    assert not res.ok
    assert any("moves, expected" in v for v in res.violations)
