"""The simulator shows only placed orders and refuses assignments that break the rules."""

from waimai.platform.dispatch.mdrp import check_records
from waimai.platform.dispatch.model import Assignment
from waimai.platform.dispatch.simulator import simulate


class Spy:
    def __init__(self, plan=None):
        self.seen = []
        self.plan = plan or {}

    def dispatch(self, snap):
        self.seen.append((snap.now, [o.id for o in snap.orders], [o.placed for o in snap.orders]))
        return self.plan.pop(snap.now, [])


def test_dispatcher_sees_only_placed_orders(tiny):
    spy = Spy()
    simulate(tiny, spy)
    assert spy.seen[0][0] == 10  # first round at the first placement
    for now, _, placed in spy.seen:
        assert all(p <= now for p in placed)
    assert {oid for _, ids, _ in spy.seen for oid in ids} == {"o1", "o2", "o3"}


def test_executes_mdrp_timing_and_rejects_broken_assignments(tiny):
    plan = {
        12: [
            Assignment("c1", ("o1", "o2"), "r1", 22),
            Assignment("c2", ("o3",), "r2", 0),  # o3 not placed yet (15): refused
        ],
        15: [Assignment("c2", ("o3", "o1"), "r2", 0)],  # two restaurants (and o1 taken): refused
        16: [Assignment("c2", ("o3",), "r2", 25)],
    }
    sol = simulate(tiny, Spy(plan))
    assert sol.rejected == 2
    drop = {r.order: (r.pickup_time, r.dropoff_time) for r in sol.orders}
    assert drop == {"o1": (22, 36), "o2": (22, 45), "o3": (25, 39)}
    assert check_records(tiny, sol).ok
