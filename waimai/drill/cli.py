"""`waimai drill lunch-rush --fault payment-outage`: rehearse a fault at the lunch peak, with a scorecard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

drill_app = typer.Typer(help="Drills: a lunch rush with an injected fault, timed end to end.", no_args_is_help=True)
console = Console()


@drill_app.command("lunch-rush")
def lunch_rush(
    fault: Annotated[str, typer.Option(help="payment-outage, payment-slow, wechat-outage, alipay-outage, "
                                            "database-slow, sms-down, channel-down, replica-kill, platform-flood, "
                                            "backup-disk-full, database-down, database-outage, database-hang")
                     ] = "payment-outage",
    out: Annotated[Path, typer.Option(help="where the drill's folder is written")] = Path("var/drills"),
    users: Annotated[int, typer.Option(min=1, max=500, help="simulated customers (Locust users)")] = 12,
    pacing: Annotated[float, typer.Option(min=0.2, max=60, help="seconds between one customer's orders")] = 2.0,
    warmup: Annotated[float, typer.Option(min=5, max=600, help="seconds of load before the fault")] = 20.0,
    fault_seconds: Annotated[float, typer.Option("--fault-seconds", min=10, max=1800, help="how long the fault lasts")
                             ] = 60.0,
    recover_timeout: Annotated[float, typer.Option(min=10, max=1800, help="how long to wait for recovery")] = 90.0,
    budget: Annotated[int, typer.Option(min=1, help="compensation budget in yuan")] = 500,
    short: Annotated[bool, typer.Option(help="the ~2-minute version (as in make test)")] = False,
    replicas: Annotated[int, typer.Option(min=1, max=8, help="service processes behind HAProxy (needs postgres)")
                        ] = 1,
    database: Annotated[str | None, typer.Option(
        help="sqlite or postgres (a scratch database on WAIMAI_DRILL_PG); default: what the fault needs")] = None,
    standby: Annotated[bool, typer.Option(help="database-down: a pg_auto_failover formation (primary + standby)")
                       ] = False,
) -> None:
    """Start the service and the stand-ins, ramp the lunch rush, inject the fault, time every step of the
    response, remove it, time the recovery, compensate, write the reports — then print the scorecard."""
    from waimai.drill.faults import FAULTS
    from waimai.drill.runner import Drill, DrillConfig

    if fault.startswith("database-") and fault != "database-slow":
        _database_drill(fault, out=out, standby=standby, short=short, warmup=warmup, fault_seconds=fault_seconds,
                        database=database)

    if fault not in FAULTS:
        console.print(f"[red]Unknown fault {fault!r}.[/red] Known: {', '.join(sorted(FAULTS))}")
        raise typer.Exit(2)
    database = database or ("postgres" if replicas > 1 else FAULTS[fault].database)
    if short:
        warmup, fault_seconds, recover_timeout = 12.0, 35.0, 40.0
    cfg = DrillConfig(fault=fault, out=out, users=users, pacing_s=pacing, warmup_s=warmup, fault_s=fault_seconds,
                      recover_timeout_s=recover_timeout, budget_yuan=budget, replicas=replicas, database=database,
                      progress=lambda m: console.print(f"[dim]{m}[/dim]"))
    if database not in ("sqlite", "postgres"):
        console.print("[red]--database is sqlite or postgres.[/red]")
        raise typer.Exit(2)
    try:
        card = Drill(cfg).run()
    except (RuntimeError, ValueError) as exc:
        console.print(f"[red]The drill could not run:[/red] {escape(str(exc))}")  # e.g. waimai[drill]
        raise typer.Exit(2) from None
    t = Table("step", "result", "at (from injection)", "target", "detail", title=f"Drill {fault}")
    for s in card.steps:
        res = "[green]pass[/green]" if s.ok else "[red]FAIL[/red]" if s.ok is False else "[yellow]not reached[/yellow]"
        t.add_row(s.name, res, "" if s.at_s is None else f"{s.at_s:+.1f} s", s.target, s.detail[:60])
    console.print(t)
    tt = Table("target", "result")
    for k, v in card.targets.items():
        tt.add_row(k, "[green]met[/green]" if v else "[red]MISSED[/red]")
    console.print(tt)
    o = card.orders
    console.print(f"orders: attempted {o.get('attempted')}, acknowledged {o.get('acknowledged')}, found "
                  f"{o.get('found')}, lost {o.get('lost')}, duplicated {o.get('duplicated')}; during the fault "
                  f"{o.get('completed_during_fault')}/{o.get('attempted_during_fault')} completed "
                  f"({o.get('completed_during_fault_pct')}%), {o.get('by_cod_during_fault')} by cash on delivery")
    console.print(f"report: {card.folder}/report.html · incident report: {card.folder}/incident-report.html")
    console.print("[bold green]PASSED[/bold green]" if card.passed else "[bold red]FAILED[/bold red]")
    raise typer.Exit(0 if card.passed else 1)


def _database_drill(fault: str, *, out: Path, standby: bool, short: bool, warmup: float, fault_seconds: float,
                    database: str | None) -> None:
    """The database drills build their own PostgreSQL (never WAIMAI_DRILL_PG: it is stopped or killed)."""
    from waimai.drill.dbdrill import FAULTS, DbDrillConfig, run

    if fault not in FAULTS:
        console.print(f"[red]Unknown fault {fault!r}.[/red] Known database faults: {', '.join(FAULTS)}")
        raise typer.Exit(2)
    if database not in (None, "postgres"):
        console.print("[red]The database drills run on PostgreSQL (their own cluster).[/red]")
        raise typer.Exit(2)
    cfg = DbDrillConfig(fault=fault, out=out, standby=standby, warmup_s=8.0 if short else warmup,
                        fault_s=20.0 if short else fault_seconds, after_s=20.0 if short else 45.0,
                        workers=3 if short else 4, progress=lambda m: console.print(f"[dim]{m}[/dim]"))
    try:
        figures, met, folder = run(cfg)
    except (RuntimeError, ValueError) as exc:
        console.print(f"[red]The drill could not run:[/red] {escape(str(exc))}")  # e.g. waimai[drill]
        raise typer.Exit(2) from None
    t = Table("figure", "value", title=f"Drill {fault}")
    for k, v in figures.items():
        t.add_row(k, str(v))
    console.print(t)
    tt = Table("target", "result")
    for k, ok in met.items():
        tt.add_row(k, "[green]met[/green]" if ok else "[red]MISSED[/red]")
    console.print(tt)
    console.print(f"scorecard: {folder}/scorecard.json")
    passed = all(met.values())
    console.print("[bold green]PASSED[/bold green]" if passed else "[bold red]FAILED[/bold red]")
    raise typer.Exit(0 if passed else 1)
