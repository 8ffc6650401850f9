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
    orders: Annotated[int, typer.Option("--orders", help="Orders in the day.")] = 1500,
    couriers: Annotated[int, typer.Option("--couriers", help="Riders over the day's shifts.")] = 80,
    restaurants: Annotated[int, typer.Option("--restaurants", help="Restaurants on campus.")] = 25,
    interval: Annotated[float, typer.Option("--interval", help="Minutes between dispatch rounds.")] = 1.0,
    ready_noise: Annotated[
        float, typer.Option("--ready-noise", help="Std. dev. (min) of kitchen ready-time estimates.")
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
    table = Table(
        title=f"{inst.name}: {len(inst.orders)} orders, {len(inst.couriers)} riders, {len(inst.restaurants)} restaurants"
    )
    for col in (
        "dispatcher",
        "delivered %",
        "CtD mean",
        "CtD p90",
        ">40 min %",
        "ready→pickup",
        "orders/rider-h",
        "$/order",
        "decision ms",
        "feasible",
    ):
        table.add_column(col, justify="left" if col == "dispatcher" else "right")
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
        table.add_row(
            name,
            f"{100 * m.delivered_share:.1f}",
            f"{ctd.mean():.1f}",
            f"{np.percentile(ctd, 90):.0f}",
            f"{100 * np.mean(ctd > 40):.1f}",
            f"{m.ready_to_pickup.mean() if len(m.ready_to_pickup) else 0:.1f}",
            f"{m.delivered / m.courier_hours:.2f}",
            f"{m.pay / max(1, m.delivered):.2f}",
            f"{1e3 * m.decision_seconds.mean():.2f}",
            "yes" if chk.ok else f"NO ({len(chk.violations)})",
        )
    table.add_row(
        "bound",
        "",
        f"{lb.mean():.1f}",
        f"{np.percentile(lb, 90):.0f}",
        f"{100 * np.mean(lb > 40):.1f}",
        "",
        "",
        "",
        "",
        "",
    )
    console.print(table)
