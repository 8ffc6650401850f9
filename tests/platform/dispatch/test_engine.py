"""Unit tests of the rolling-horizon dispatcher and the greedy baseline on hand-made snapshots."""

from waimai.platform.dispatch.engine import GreedyDispatcher, RollingHorizonDispatcher
from waimai.platform.dispatch.model import CourierState, OpenOrder, Snapshot, euclid_ceil

TT = euclid_ceil(100.0)  # 100 m per minute
RESTS = {"r1": (0.0, 0.0), "r2": (3000.0, 0.0)}


def snap(now, orders, couriers):
    return Snapshot(now, orders, couriers, RESTS, 4.0, 4.0)


def order(oid, rest="r1", ready=105.0, placed=90.0, x=0.0, y=800.0):
    return OpenOrder(oid, rest, x, y, placed, ready)


def courier(cid, x=0.0, y=500.0, free_at=0.0, off=300.0, cap=4):
    return CourierState(cid, x, y, free_at, 0.0, off, cap)


def test_bundles_orders_of_the_same_restaurant():
    # one courier 5 min from r1, two orders of r1 ready when it gets there: one trip, both orders
    out = RollingHorizonDispatcher(TT).dispatch(
        snap(100.0, [order("a"), order("b", y=900.0)], [courier("c1")])
    )
    assert len(out) == 1
    assert sorted(out[0].orders) == ["a", "b"]
    assert out[0].restaurant == "r1"
    assert out[0].planned_pickup == 107.0  # arrives 105, + half the pickup service


def test_never_bundles_across_restaurants():
    orders = [order("a"), order("b"), order("c", rest="r2", x=3000.0)]
    couriers = [courier("c1"), courier("c2", x=3000.0)]
    out = RollingHorizonDispatcher(TT).dispatch(snap(100.0, orders, couriers))
    rest_of = {o.id: o.restaurant for o in orders}
    assert out
    for a in out:
        assert {rest_of[o] for o in a.orders} == {a.restaurant}


def test_capacity_respected():
    out = RollingHorizonDispatcher(TT).dispatch(
        snap(100.0, [order("a"), order("b"), order("c")], [courier("c1", cap=1), courier("c2", cap=2)])
    )
    sizes = {a.courier: len(a.orders) for a in out}
    assert sizes.get("c1", 0) <= 1 and sizes.get("c2", 0) <= 2
    assert sum(sizes.values()) == 3
    assert len({o for a in out for o in a.orders}) == 3


def test_shift_end_respected():
    # c1 is next door but its shift ends before it could pick up; c2 is further away
    near = courier("c1", off=103.0)
    far = courier("c2", y=900.0)
    out = RollingHorizonDispatcher(TT).dispatch(snap(100.0, [order("a", ready=100.0)], [near, far]))
    assert [a.courier for a in out] == ["c2"]
    assert out[0].planned_pickup <= 300.0
    # nobody can make it: nothing is assigned
    assert RollingHorizonDispatcher(TT).dispatch(snap(100.0, [order("a", ready=100.0)], [near])) == []


def test_holds_until_the_courier_must_leave():
    disp = RollingHorizonDispatcher(TT)
    o = order("a", ready=130.0)  # courier is 5 min away, pickup service 2 min
    assert disp.dispatch(snap(100.0, [o], [courier("c1")])) == []
    assert disp.dispatch(snap(122.0, [o], [courier("c1")])) == []
    out = disp.dispatch(snap(123.0, [o], [courier("c1")]))
    assert [(a.courier, a.orders) for a in out] == [("c1", ("a",))]


def test_looks_ahead_to_a_courier_about_to_be_free():
    # c_busy becomes free at the restaurant in 2 min; c_far is idle but 20 min away
    busy = courier("c_busy", y=0.0, free_at=102.0)
    far = courier("c_far", y=2000.0)
    disp = RollingHorizonDispatcher(TT)
    o = order("a", ready=106.0)
    assert disp.dispatch(snap(100.0, [o], [busy, far])) == []
    assert disp.dispatch(snap(102.5, [o], [busy, far])) == []  # free, but food not ready yet
    out = disp.dispatch(snap(103.5, [o], [busy, far]))
    assert [a.courier for a in out] == ["c_busy"]


def test_greedy_one_order_per_trip_and_holding():
    g = GreedyDispatcher(TT)
    orders = [order("a"), order("b"), order("late", ready=200.0)]
    out = g.dispatch(snap(100.0, orders, [courier("c1"), courier("c2", y=600.0), courier("c3", y=700.0)]))
    assert all(len(a.orders) == 1 for a in out)
    assert {a.orders[0] for a in out} == {"a", "b"}  # "late" is held
    assert {a.courier for a in out} == {"c1", "c2"}  # nearest couriers first
