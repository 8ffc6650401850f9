"""Typer-annotated command functions; the lead wires them into ``waimai bench mdrp`` and ``waimai simulate``.

Example wiring::

    bench_app.command("mdrp")(bench_mdrp_command)
    app.command("simulate")(simulate_command)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table


def bench_mdrp_command(
    instances: Annotated[Path, typer.Option("--instances", help="Folder holding the MDRP instance folders.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the three solution files per instance here.")
    ] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write PNG plots into this folder.")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes.")] = 2,
    limit: Annotated[
        int | None, typer.Option("--limit", help="Only this many instances (evenly spread).")
    ] = None,
    smoke: Annotated[bool, typer.Option("--smoke", help="One instance, no micro-benchmark: checks the bench works.")
                     ] = False,
) -> None:
    """Run our dispatcher and the greedy baseline on the MDRP instances and print the tables."""
    from waimai.core.benchenv import environment, header

    from .mdrp import run_mdrp_bench

    if not instances.is_dir():
        raise typer.BadParameter(f"{instances} is not a folder", param_hint="--instances")
    if smoke:
        limit, workers = 1, 1
    typer.echo(header(environment(extra={"worker processes": workers})))
    res = run_mdrp_bench(instances, out_dir=out, plot_dir=plot, workers=workers, limit=limit, microbench=not smoke)
    bad = sum(r[k]["feasible"] is False for r in res["results"] for k in ("ours", "greedy"))
    if bad:
        raise typer.Exit(code=1)


def simulate_command(
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the synthetic campus day.")] = 0,
    orders: Annotated[int, typer.Option("--orders", min=1, max=100_000, help="Orders in the day.")] = 1500,
    couriers: Annotated[int, typer.Option("--couriers", min=1, max=10_000, help="Riders over the day's shifts.")
                        ] = 80,
    restaurants: Annotated[int, typer.Option("--restaurants", min=1, max=1_000, help="Restaurants on campus.")
                           ] = 25,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, max=60, help="Minutes between dispatch rounds.")
    ] = 1.0,
    ready_noise: Annotated[
        float, typer.Option("--ready-noise", min=0, max=60, help="Std. dev. (min) of kitchen ready-time estimates.")
    ] = 0.0,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the solution files of our dispatcher here.")
    ] = None,
) -> None:
    """Simulate a synthetic campus day with our dispatcher and the greedy baseline; print a summary."""
    from .engine import EngineConfig, GreedyDispatcher, RollingHorizonDispatcher
    from .mdrp import check_records, compute_metrics, lower_bounds, write_solution
    from .simulator import campus_day, noisy_ready, simulate

    console = Console()
    inst = campus_day(seed, orders=orders, restaurants=restaurants, couriers=couriers)
    tt = inst.travel_time()
    lb = lower_bounds(inst)
    # One row per measure and one column per dispatcher, so the table reads at 80 columns.
    rows: dict[str, dict[str, str]] = {}
    for name, disp in (
        ("ours", RollingHorizonDispatcher(tt, EngineConfig(commit_window=interval))),
        ("greedy", GreedyDispatcher(tt)),
    ):
        est = noisy_ready(seed, ready_noise) if ready_noise > 0 else None
        sol = simulate(inst, disp, interval=interval, ready_estimate=est)
        m = compute_metrics(inst, sol)
        chk = check_records(inst, sol)
        if out is not None and name == "ours":
            write_solution(sol, out)
        ctd = m.ctd if len(m.ctd) else np.zeros(1)
        rows[name] = {
            "delivered": f"{100 * m.delivered_share:.1f}%",
            "click-to-door mean (min)": f"{ctd.mean():.1f}",
            "click-to-door p90 (min)": f"{np.percentile(ctd, 90):.0f}",
            "over 40 min": f"{100 * np.mean(ctd > 40):.1f}%",
            "ready → pickup (min)": f"{m.ready_to_pickup.mean() if len(m.ready_to_pickup) else 0:.1f}",
            "orders per rider-hour": f"{m.delivered / m.courier_hours:.2f}" if m.courier_hours else "-",
            "$ per order": f"{m.pay / max(1, m.delivered):.2f}",
            "decision time (ms)": f"{1e3 * m.decision_seconds.mean():.2f}" if len(m.decision_seconds) else "-",
            "feasible": "yes" if chk.ok else f"NO ({len(chk.violations)})",
        }
    lbv = lb if len(lb) else np.zeros(1)
    rows["bound"] = {
        "click-to-door mean (min)": f"{lbv.mean():.1f}",
        "click-to-door p90 (min)": f"{np.percentile(lbv, 90):.0f}",
        "over 40 min": f"{100 * np.mean(lbv > 40):.1f}%",
    }
    table = Table(title=f"{inst.name}: {len(inst.orders)} orders, {len(inst.couriers)} riders, "
                        f"{len(inst.restaurants)} restaurants")
    table.add_column("measure")
    for name in rows:
        table.add_column(name, justify="right")
    for measure in rows["ours"]:
        table.add_row(measure, *(rows[name].get(measure, "") for name in rows))
    console.print(table)
