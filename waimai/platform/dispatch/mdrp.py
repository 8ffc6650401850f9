"""Meal Delivery Routing Problem (Grubhub MDRP instances): loader, solution files,
independent feasibility checker, metrics, lower bound and the benchmark driver.

The checker only reads the three solution files and the instance; it does not trust any
simulator state.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .model import (
    AssignmentRecord,
    Courier,
    Instance,
    MoveRecord,
    Order,
    OrderRecord,
    Params,
    Solution,
    travel_minutes,
)

ASSIGNMENTS_FILE = "solution_info_assignments.txt"
ORDERS_FILE = "solution_info_orders.txt"
COURIERS_FILE = "solution_info_couriers.txt"
NAME_RE = re.compile(
    r"^(?P<seed>\d+)(?P<size>o100|o50|r50)(?P<travel>t100|t75)(?P<schedule>s1|s2)(?P<prep>p100|p125)$"
)
_EPS = 1e-6


# --------------------------------------------------------------------------- loading


def _rows(path: Path) -> list[list[str]]:
    lines = path.read_text().splitlines()
    return [ln.split() for ln in lines[1:] if ln.strip()]


def load_instance(folder: Path | str) -> Instance:
    folder = Path(folder)
    orders = [
        Order(r[0], float(r[1]), float(r[2]), float(r[3]), r[4], float(r[5]))
        for r in _rows(folder / "orders.txt")
    ]
    restaurants = {r[0]: (float(r[1]), float(r[2])) for r in _rows(folder / "restaurants.txt")}
    couriers = [
        Courier(r[0], float(r[1]), float(r[2]), float(r[3]), float(r[4]), capacity=4)
        for r in _rows(folder / "couriers.txt")
    ]
    # header has spaces inside column names, so split the value line on tabs/white space
    vals = [float(v) for v in (folder / "instance_parameters.txt").read_text().splitlines()[1].split()]
    params = Params(*vals[:7])
    return Instance(folder.name, orders, restaurants, couriers, params)


def instance_dirs(root: Path | str) -> list[Path]:
    root = Path(root)
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "orders.txt").exists())


# --------------------------------------------------------------------------- solution files


def _fmt(x: float) -> str:
    x = float(x)
    return str(int(x)) if x.is_integer() else f"{x:.6g}"


def write_solution(sol: Solution, folder: Path | str) -> None:
    """Write the three MDRP solution files (header line first, white-space separated)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["assignment_time pickup_time courier orders"]
    for a in sol.assignments:
        lines.append(" ".join([_fmt(a.assignment_time), _fmt(a.pickup_time), a.courier, *a.orders]))
    (folder / ASSIGNMENTS_FILE).write_text("\n".join(lines) + "\n")
    lines = ["order placement_time ready_time pickup_time dropoff_time courier"]
    for o in sol.orders:
        lines.append(
            " ".join(
                [
                    o.order,
                    _fmt(o.placement_time),
                    _fmt(o.ready_time),
                    _fmt(o.pickup_time),
                    _fmt(o.dropoff_time),
                    o.courier,
                ]
            )
        )
    (folder / ORDERS_FILE).write_text("\n".join(lines) + "\n")
    lines = ["courier departure_time origin destination"]
    # Grubhub's evaluator reads a courier's moves as one contiguous block (a courier seen again starts
    # a new block that replaces the first), so the lines are grouped per courier, in time order.
    for mv in sorted(sol.moves, key=lambda m: m.courier):
        lines.append(f"{mv.courier} {_fmt(mv.departure_time)} {mv.origin} {mv.destination}")
    (folder / COURIERS_FILE).write_text("\n".join(lines) + "\n")


def read_solution(folder: Path | str) -> Solution:
    folder = Path(folder)
    sol = Solution()
    for r in _rows(folder / ASSIGNMENTS_FILE):
        sol.assignments.append(AssignmentRecord(float(r[0]), float(r[1]), r[2], tuple(r[3:])))
    for r in _rows(folder / ORDERS_FILE):
        sol.orders.append(OrderRecord(r[0], float(r[1]), float(r[2]), float(r[3]), float(r[4]), r[5]))
    sol.moves = _read_moves(folder / COURIERS_FILE)
    return sol


def _read_moves(path: Path) -> list[MoveRecord]:
    """Courier moves read the way Grubhub's official evaluator reads them.

    Its parser (``MDRP_code/compute_performance_summary.py``) walks the file keeping one block of
    consecutive lines per courier; when a courier's lines resume after another courier's, the new
    block replaces the earlier one. Reading the same way means a file the official evaluator would
    reject is rejected here too, instead of being silently re-grouped.
    """
    blocks: dict[str, list[MoveRecord]] = {}
    current: str | None = None
    for r in _rows(path):
        if r[0] != current:
            current = r[0]
            blocks[current] = []
        blocks[current].append(MoveRecord(r[0], float(r[1]), r[2], r[3]))
    return [mv for block in blocks.values() for mv in block]


# --------------------------------------------------------------------------- feasibility


@dataclass
class CheckResult:
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, msg: str) -> None:
        self.violations.append(msg)


def check_solution(instance: Instance, folder: Path | str, max_report: int = 50) -> CheckResult:
    """Check every MDRP rule from the solution files in ``folder`` against ``instance``."""
    try:
        sol = read_solution(folder)
    except (OSError, IndexError, ValueError) as exc:
        res = CheckResult()
        res.add(f"unreadable solution files: {exc}")
        return res
    return check_records(instance, sol, max_report)


def check_records(instance: Instance, sol: Solution, max_report: int = 50) -> CheckResult:
    res = CheckResult()
    p = instance.params
    hp, hd = p.pickup_service / 2.0, p.dropoff_service / 2.0
    orders = {o.id: o for o in instance.orders}
    rests = instance.restaurants
    couriers = {c.id: c for c in instance.couriers}

    def tt(a: tuple[float, float], b: tuple[float, float]) -> int:
        return travel_minutes(a[0], a[1], b[0], b[1], p.meters_per_minute)

    # ---- assignments
    assigned: dict[str, AssignmentRecord] = {}
    per_courier: dict[str, list[AssignmentRecord]] = defaultdict(list)
    for a in sol.assignments:
        if a.courier not in couriers:
            res.add(f"assignment to unknown courier {a.courier}")
            continue
        if not a.orders:
            res.add(f"empty assignment for {a.courier} at {a.assignment_time}")
            continue
        unknown = [o for o in a.orders if o not in orders]
        if unknown:
            res.add(f"unknown orders {unknown} in assignment of {a.courier}")
            continue
        rs = {orders[o].restaurant for o in a.orders}
        if len(rs) != 1:
            res.add(f"bundle {a.orders} of {a.courier} spans restaurants {sorted(rs)}")
        for oid in a.orders:
            if oid in assigned:
                res.add(f"order {oid} assigned twice")
            assigned[oid] = a
            if a.assignment_time < orders[oid].placed - _EPS:
                res.add(f"order {oid} assigned at {a.assignment_time} before placement {orders[oid].placed}")
            if a.pickup_time < orders[oid].ready - _EPS:
                res.add(f"order {oid} picked up at {a.pickup_time} before ready {orders[oid].ready}")
        if a.pickup_time > couriers[a.courier].off_time + _EPS:
            res.add(
                f"courier {a.courier} picks up at {a.pickup_time} after off_time {couriers[a.courier].off_time}"
            )
        per_courier[a.courier].append(a)

    # ---- order lines
    order_line: dict[str, OrderRecord] = {}
    for r in sol.orders:
        if r.order in order_line:
            res.add(f"order {r.order} listed twice in orders file")
        order_line[r.order] = r
        if r.order not in orders:
            res.add(f"unknown order {r.order} in orders file")
            continue
        inst_order = orders[r.order]
        asg = assigned.get(r.order)
        if asg is None:
            res.add(f"order {r.order} delivered but never assigned")
            continue
        if r.courier != asg.courier:
            res.add(f"order {r.order} courier {r.courier} differs from assignment {asg.courier}")
        if abs(r.placement_time - inst_order.placed) > _EPS or abs(r.ready_time - inst_order.ready) > _EPS:
            res.add(f"order {r.order} placement/ready times differ from the instance")
        if abs(r.pickup_time - asg.pickup_time) > _EPS:
            res.add(f"order {r.order} pickup {r.pickup_time} differs from assignment pickup {asg.pickup_time}")
        if r.pickup_time < inst_order.ready - _EPS:
            res.add(f"order {r.order} picked up at {r.pickup_time} before ready {inst_order.ready}")
    for oid in assigned:
        if oid not in order_line:
            res.add(f"assigned order {oid} missing from orders file")

    # ---- courier moves, replayed against the assignments (in pickup order)
    moves: dict[str, list[MoveRecord]] = defaultdict(list)
    for mv in sol.moves:
        if mv.courier not in couriers:
            res.add(f"move of unknown courier {mv.courier}")
            continue
        moves[mv.courier].append(mv)
    for cid in set(moves) | set(per_courier):
        c = couriers[cid]
        trips = sorted(per_courier.get(cid, []), key=lambda a: (a.pickup_time, a.assignment_time))
        mvs = moves.get(cid, [])
        expected = sum(1 + len(a.orders) for a in trips)
        if len(mvs) != expected:
            res.add(f"courier {cid}: {len(mvs)} moves, expected {expected} for its assignments")
            continue
        pos: tuple[float, float] = (c.x, c.y)
        loc = "0"
        free = c.on_time
        k = 0
        for a in trips:
            mv = mvs[k]
            k += 1
            rid = orders[a.orders[0]].restaurant
            if mv.origin != loc or mv.destination != rid:
                res.add(f"courier {cid}: move {mv.origin}->{mv.destination}, expected {loc}->{rid}")
                break
            if mv.departure_time < free - _EPS:
                res.add(
                    f"courier {cid}: departs at {mv.departure_time} before it is free at {free} (overlap)"
                )
            if mv.departure_time < a.assignment_time - _EPS:
                res.add(
                    f"courier {cid}: departs at {mv.departure_time} before assignment at {a.assignment_time}"
                )
            arrive = mv.departure_time + tt(pos, rests[rid])
            if a.pickup_time < arrive + hp - _EPS:
                res.add(f"courier {cid}: pickup {a.pickup_time} before arrival {arrive} + service at {rid}")
            pos, loc = rests[rid], rid
            leave = a.pickup_time + hp
            for oid in a.orders:
                mv = mvs[k]
                k += 1
                if mv.origin != loc or mv.destination != oid:
                    res.add(f"courier {cid}: move {mv.origin}->{mv.destination}, expected {loc}->{oid}")
                    break
                if mv.departure_time < leave - _EPS:
                    res.add(f"courier {cid}: leaves {loc} at {mv.departure_time} before {leave}")
                dest = orders[oid]
                arrive = mv.departure_time + tt(pos, (dest.x, dest.y))
                line = order_line.get(oid)
                if line is not None and abs(line.dropoff_time - (arrive + hd)) > _EPS:
                    res.add(f"order {oid}: drop-off {line.dropoff_time} != arrival {arrive} + {hd}")
                drop = arrive + hd
                leave = drop + hd
                pos, loc = (dest.x, dest.y), oid
            else:
                free = leave
                continue
            break
    if len(res.violations) > max_report:
        extra = len(res.violations) - max_report
        res.violations = res.violations[:max_report] + [f"... and {extra} more"]
    return res


# --------------------------------------------------------------------------- metrics


def lower_bounds(instance: Instance) -> np.ndarray:
    """Per-order click-to-door lower bound (minutes), in ``instance.orders`` order.

    A courier already waiting at the restaurant picks up at ``max(ready, placement + half the
    pickup service)``, leaves half a service later, rides straight to the customer and drops
    off half a drop-off service after arriving.
    """
    p = instance.params
    hp, hd = p.pickup_service / 2.0, p.dropoff_service / 2.0
    out = np.empty(len(instance.orders))
    for i, o in enumerate(instance.orders):
        rx, ry = instance.restaurants[o.restaurant]
        pick = max(o.ready, o.placed + hp)
        out[i] = pick + hp + travel_minutes(rx, ry, o.x, o.y, p.meters_per_minute) + hd - o.placed
    return out


@dataclass
class RunMetrics:
    orders: int
    delivered: int
    ctd: np.ndarray  # click-to-door of delivered orders
    ready_to_pickup: np.ndarray
    courier_hours: float
    pay: float
    busy_minutes: float
    decision_seconds: np.ndarray

    @property
    def delivered_share(self) -> float:
        return self.delivered / self.orders if self.orders else 1.0


def compute_metrics(instance: Instance, sol: Solution) -> RunMetrics:
    p = instance.params
    hd = p.dropoff_service / 2.0
    ctd = np.array([r.dropoff_time - r.placement_time for r in sol.orders], float)
    r2p = np.array([r.pickup_time - r.ready_time for r in sol.orders], float)
    per_courier: dict[str, int] = defaultdict(int)
    for r in sol.orders:
        per_courier[r.courier] += 1
    hours = 0.0
    pay = 0.0
    for c in instance.couriers:
        h = (c.off_time - c.on_time) / 60.0
        hours += h
        pay += max(p.pay_per_order * per_courier.get(c.id, 0), p.pay_per_hour * h)
    # busy time: from departure to the restaurant until the end of the last drop-off of the trip
    drop_end: dict[tuple[str, str], float] = {(r.courier, r.order): r.dropoff_time + hd for r in sol.orders}
    busy = 0.0
    trips: dict[str, list[MoveRecord]] = defaultdict(list)
    for mv in sol.moves:
        trips[mv.courier].append(mv)
    for cid, mvs in trips.items():
        start = None
        last = None
        for mv in mvs:
            if mv.destination in instance.restaurants:
                if start is not None and last is not None:
                    busy += last - start
                start = mv.departure_time
            else:
                last = drop_end.get((cid, mv.destination), last)
        if start is not None and last is not None:
            busy += last - start
    return RunMetrics(
        orders=len(instance.orders),
        delivered=len(sol.orders),
        ctd=ctd,
        ready_to_pickup=r2p,
        courier_hours=hours,
        pay=pay,
        busy_minutes=busy,
        decision_seconds=np.array(sol.decision_seconds, float),
    )


# --------------------------------------------------------------------------- benchmark

FACTORS = ("size", "schedule", "travel", "prep")


def name_fields(name: str) -> dict[str, str]:
    m = NAME_RE.match(name)
    if not m:
        return {"seed": "?", "size": "?", "travel": "?", "schedule": "?", "prep": "?"}
    return m.groupdict()


def _dispatchers(instance: Instance, config=None):
    from .engine import GreedyDispatcher, RollingHorizonDispatcher

    tt = instance.travel_time()
    return {"ours": RollingHorizonDispatcher(tt, config), "greedy": GreedyDispatcher(tt)}


def run_instance(
    folder: Path | str,
    out_dir: Path | str | None = None,
    config=None,
    interval: float = 1.0,
    which: tuple[str, ...] = ("ours", "greedy"),
) -> dict:
    """Simulate both dispatchers on one instance, write + check their solutions, return metrics."""
    from .simulator import simulate

    folder = Path(folder)
    inst = load_instance(folder)
    result: dict = {"name": inst.name, "lb": lower_bounds(inst)}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(out_dir) if out_dir is not None else Path(tmp)
        for key, disp in _dispatchers(inst, config).items():
            if key not in which:
                continue
            t0 = time.perf_counter()
            sol = simulate(inst, disp, interval=interval)
            wall = time.perf_counter() - t0
            sol_dir = base / key / inst.name
            write_solution(sol, sol_dir)
            chk = check_solution(inst, sol_dir)
            result[key] = {
                "metrics": compute_metrics(inst, sol),
                "feasible": chk.ok,
                "violations": chk.violations[:5],
                "rejected": sol.rejected,
                "wall": wall,
            }
    return result


def _bench_worker(args) -> dict:
    folder, out_dir, config = args
    return run_instance(folder, out_dir, config)


def _pick(dirs: list[Path], limit: int | None) -> list[Path]:
    if limit is None or limit >= len(dirs):
        return dirs
    idx = np.unique(np.linspace(0, len(dirs) - 1, max(1, limit)).round().astype(int))
    return [dirs[i] for i in idx]


def _agg(results: list[dict], key: str) -> dict:
    """Pooled (all orders together) and per-instance-mean figures for one dispatcher."""
    ms: list[RunMetrics] = [r[key]["metrics"] for r in results]
    ctd = np.concatenate([m.ctd for m in ms]) if ms else np.zeros(0)
    r2p = np.concatenate([m.ready_to_pickup for m in ms]) if ms else np.zeros(0)
    ds = np.concatenate([m.decision_seconds for m in ms]) if ms else np.zeros(0)
    orders = sum(m.orders for m in ms)
    delivered = sum(m.delivered for m in ms)
    hours = sum(m.courier_hours for m in ms)
    pay = sum(m.pay for m in ms)

    def q(a, f, default=float("nan")):
        return float(f(a)) if len(a) else default

    return {
        "instances": len(ms),
        "orders": orders,
        "delivered": delivered / orders if orders else float("nan"),
        "ctd_mean": q(ctd, np.mean),
        "ctd_p90": q(ctd, lambda a: np.percentile(a, 90)),
        "over_target": q(ctd, lambda a: np.mean(a > 40.0)),
        "over_max": q(ctd, lambda a: np.mean(a > 90.0)),
        "ready_to_pickup": q(r2p, np.mean),
        "orders_per_courier_hour": delivered / hours if hours else float("nan"),
        "cost_per_order": pay / delivered if delivered else float("nan"),
        "utilisation": sum(m.busy_minutes for m in ms) / (60.0 * hours) if hours else float("nan"),
        "decision_mean_s": q(ds, np.mean, 0.0),
        "decision_max_s": q(ds, np.max, 0.0),
        "feasible": sum(bool(r[key]["feasible"]) for r in results),
        "rejected": sum(int(r[key]["rejected"]) for r in results),
        # per-instance means (the convention of the README's greedy baseline figures)
        "inst_delivered": q(np.array([m.delivered_share for m in ms]), np.mean),
        "inst_ctd_mean": q(np.array([m.ctd.mean() for m in ms if len(m.ctd)]), np.mean),
        "inst_ctd_p90": q(np.array([np.percentile(m.ctd, 90) for m in ms if len(m.ctd)]), np.mean),
        "inst_over_target": q(np.array([np.mean(m.ctd > 40.0) for m in ms if len(m.ctd)]), np.mean),
        "inst_orders_per_courier_hour": q(np.array([m.delivered / m.courier_hours for m in ms]), np.mean),
        "inst_cost_per_order": q(np.array([m.pay / max(1, m.delivered) for m in ms]), np.mean),
    }


def _agg_lb(results: list[dict]) -> dict:
    lb = np.concatenate([r["lb"] for r in results]) if results else np.zeros(0)
    if not len(lb):
        return {
            "ctd_mean": float("nan"),
            "ctd_p90": float("nan"),
            "over_target": float("nan"),
            "inst_ctd_mean": float("nan"),
        }
    return {
        "ctd_mean": float(lb.mean()),
        "ctd_p90": float(np.percentile(lb, 90)),
        "over_target": float(np.mean(lb > 40.0)),
        "inst_ctd_mean": float(np.mean([r["lb"].mean() for r in results])),
        "inst_over_target": float(np.mean([np.mean(r["lb"] > 40.0) for r in results])),
    }


def summarise(results: list[dict]) -> dict:
    """Group results overall and by each factor of the instance names."""
    groups: dict[str, list[dict]] = {"all": list(results)}
    for factor in FACTORS:
        for r in results:
            groups.setdefault(f"{factor}={name_fields(r['name'])[factor]}", []).append(r)
    out = {}
    for g, rs in groups.items():
        out[g] = {"ours": _agg(rs, "ours"), "greedy": _agg(rs, "greedy"), "bound": _agg_lb(rs)}
    return out


def decision_microbench(
    orders: int = 500, riders: int = 150, seed: int = 0, repeats: int = 3, config=None
) -> float:
    """Seconds for one dispatch round with ``orders`` open orders and ``riders`` couriers (median)."""
    from .engine import RollingHorizonDispatcher
    from .model import CourierState, OpenOrder, Snapshot, euclid_ceil

    rng = np.random.default_rng(seed)
    now = 600.0
    n_rest = max(1, orders // 4)
    rest = {f"r{i}": (float(rng.uniform(0, 10000)), float(rng.uniform(0, 10000))) for i in range(n_rest)}
    rids = list(rest)
    ods = []
    for i in range(orders):
        placed = now - float(rng.integers(0, 30))
        ods.append(
            OpenOrder(
                f"o{i}",
                rids[int(rng.integers(0, n_rest))],
                float(rng.uniform(0, 10000)),
                float(rng.uniform(0, 10000)),
                placed,
                placed + float(rng.integers(5, 40)),
            )
        )
    cs = [
        CourierState(
            f"c{i}",
            float(rng.uniform(0, 10000)),
            float(rng.uniform(0, 10000)),
            now + float(rng.integers(-10, 30)),
            now - 60.0,
            now + 240.0,
            4,
        )
        for i in range(riders)
    ]
    snap = Snapshot(now, ods, cs, rest, 4.0, 4.0)
    disp = RollingHorizonDispatcher(euclid_ceil(320.0), config)
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        disp.dispatch(snap)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _pct(x: float) -> str:
    return "-" if x != x else f"{100 * x:.1f}"


def _num(x: float, nd: int = 1) -> str:
    return "-" if x != x else f"{x:.{nd}f}"


def render_tables(summary: dict, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title="MDRP benchmark — ours / greedy (bound), all orders pooled", show_lines=False)
    for col in (
        "group",
        "inst",
        "orders",
        "delivered %",
        "CtD mean",
        "ours/LB",
        "ours/greedy",
        "CtD p90",
        ">40 min %",
        "ready→pickup",
        "orders/c-h",
        "$/order",
        "decision ms mean/max",
        "feasible",
    ):
        table.add_column(col, justify="right" if col != "group" else "left")
    order = ["all"] + sorted(k for k in summary if k != "all")
    for g in order:
        o, gr, lb = summary[g]["ours"], summary[g]["greedy"], summary[g]["bound"]
        table.add_row(
            g,
            str(o["instances"]),
            str(o["orders"]),
            f"{_pct(o['delivered'])} / {_pct(gr['delivered'])}",
            f"{_num(o['ctd_mean'])} / {_num(gr['ctd_mean'])} ({_num(lb['ctd_mean'])})",
            _num(o["ctd_mean"] / lb["ctd_mean"], 3),
            _num(o["ctd_mean"] / gr["ctd_mean"], 3),
            f"{_num(o['ctd_p90'], 0)} / {_num(gr['ctd_p90'], 0)} ({_num(lb['ctd_p90'], 0)})",
            f"{_pct(o['over_target'])} / {_pct(gr['over_target'])} ({_pct(lb['over_target'])})",
            f"{_num(o['ready_to_pickup'])} / {_num(gr['ready_to_pickup'])}",
            f"{_num(o['orders_per_courier_hour'], 2)} / {_num(gr['orders_per_courier_hour'], 2)}",
            f"{_num(o['cost_per_order'], 2)} / {_num(gr['cost_per_order'], 2)}",
            f"{_num(1e3 * o['decision_mean_s'], 2)} / {_num(1e3 * o['decision_max_s'], 0)}",
            f"{o['feasible']}/{o['instances']} · {gr['feasible']}/{gr['instances']}",
        )
    console.print(table)
    o, gr, lb = summary["all"]["ours"], summary["all"]["greedy"], summary["all"]["bound"]
    t2 = Table(title="Overall, per-instance means (convention of the README's greedy baseline figures)")
    for col in ("dispatcher", "delivered %", "CtD mean", "CtD p90", ">40 min %", "orders/c-h", "$/order"):
        t2.add_column(col, justify="right" if col != "dispatcher" else "left")
    for name, a in (("ours", o), ("greedy", gr)):
        t2.add_row(
            name,
            _pct(a["inst_delivered"]),
            _num(a["inst_ctd_mean"]),
            _num(a["inst_ctd_p90"]),
            _pct(a["inst_over_target"]),
            _num(a["inst_orders_per_courier_hour"], 2),
            _num(a["inst_cost_per_order"], 2),
        )
    t2.add_row(
        "bound", "", _num(lb["inst_ctd_mean"]), "", _pct(lb.get("inst_over_target", float("nan"))), "", ""
    )
    t2.add_row("README greedy", "96.8", "43.6", "68.1", "39.6", "1.89", "10.66")
    console.print(t2)


def write_plots(results: list[dict], summary: dict, plot_dir: Path | str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot_dir = Path(plot_dir)
    plot_dir.mkdir(parents=True, exist_ok=True)
    ours = np.concatenate([r["ours"]["metrics"].ctd for r in results])
    greedy = np.concatenate([r["greedy"]["metrics"].ctd for r in results])
    lb = np.concatenate([r["lb"] for r in results])
    paths = []
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bins = [float(b) for b in range(0, 121, 2)]
    for data, label in ((lb, "lower bound"), (ours, "ours"), (greedy, "greedy")):
        ax.hist(
            np.clip(data, 0, 120),
            bins=bins,
            histtype="step",
            density=True,
            label=f"{label} (mean {data.mean():.1f})",
        )
    ax.axvline(40, color="grey", ls="--", lw=1)
    ax.set_xlabel("click-to-door (min, clipped at 120)")
    ax.set_ylabel("share of orders")
    ax.legend()
    ax.set_title("MDRP click-to-door distribution")
    paths.append(plot_dir / "ctd_hist.png")
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for data, label in ((lb, "lower bound"), (ours, "ours"), (greedy, "greedy")):
        xs = np.sort(data)
        ax.plot(xs, np.arange(1, len(xs) + 1) / len(xs), label=label)
    ax.axvline(40, color="grey", ls="--", lw=1)
    ax.set_xlim(0, 120)
    ax.set_xlabel("click-to-door (min)")
    ax.set_ylabel("cumulative share of delivered orders")
    ax.legend()
    paths.append(plot_dir / "ctd_cdf.png")
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    groups = [g for g in summary if g != "all"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    xs = np.arange(len(groups))
    ax.bar(
        xs - 0.2,
        [summary[g]["ours"]["ctd_mean"] / summary[g]["bound"]["ctd_mean"] for g in groups],
        0.4,
        label="ours / bound",
    )
    ax.bar(
        xs + 0.2,
        [summary[g]["greedy"]["ctd_mean"] / summary[g]["bound"]["ctd_mean"] for g in groups],
        0.4,
        label="greedy / bound",
    )
    ax.axhline(1.10, color="grey", ls="--", lw=1)
    ax.set_xticks(xs, groups, rotation=30, ha="right")
    ax.set_ylabel("mean click-to-door / lower bound")
    ax.legend()
    paths.append(plot_dir / "ratio_by_family.png")
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    ds = np.concatenate([r["ours"]["metrics"].decision_seconds for r in results]) * 1e3
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.hist(ds, bins=60, log=True)
    ax.set_xlabel("decision time per round (ms), ours")
    paths.append(plot_dir / "decision_time.png")
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def run_mdrp_bench(
    instances_dir: Path | str,
    out_dir: Path | str | None = None,
    plot_dir: Path | str | None = None,
    workers: int = 2,
    limit: int | None = None,
    config=None,
    console=None,
    microbench: bool = True,
) -> dict:
    """Run ours and the greedy baseline on every instance, check feasibility, print tables.

    Returns ``{"summary": ..., "results": ..., "microbench_s": ..., "wall_s": ...}``.
    """
    import multiprocessing as mp

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or Console()
    dirs = _pick(instance_dirs(instances_dir), limit)
    if not dirs:
        raise FileNotFoundError(f"no MDRP instances under {instances_dir}")
    t0 = time.perf_counter()
    args = [(d, out_dir, config) for d in dirs]
    results: list[dict] = []
    with Progress(
        TextColumn("[bold]MDRP"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("", total=len(args))
        if workers > 1:
            ctx = mp.get_context()
            with ctx.Pool(workers) as pool:
                for r in pool.imap_unordered(_bench_worker, args):
                    results.append(r)
                    progress.update(task, advance=1, description=r["name"])
        else:
            for a in args:
                r = _bench_worker(a)
                results.append(r)
                progress.update(task, advance=1, description=r["name"])
    results.sort(key=lambda r: r["name"])
    wall = time.perf_counter() - t0
    summary = summarise(results)
    render_tables(summary, console)
    bad = [
        (r["name"], k, r[k]["violations"])
        for r in results
        for k in ("ours", "greedy")
        if not r[k]["feasible"]
    ]
    for name, key, v in bad[:10]:
        console.print(f"[red]infeasible[/red] {key} {name}: {v}")
    micro = None
    if microbench:
        micro = decision_microbench(config=config)
        console.print(f"decision round, 500 open orders x 150 riders: {micro:.3f} s (median of 3)")
    console.print(f"{len(results)} instances in {wall:.0f} s with {workers} worker(s)")
    if plot_dir is not None:
        for p in write_plots(results, summary, plot_dir):
            console.print(f"wrote {p}")
    return {"summary": summary, "results": results, "microbench_s": micro, "wall_s": wall}
