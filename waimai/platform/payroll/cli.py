"""`waimai payroll …`: compute, close, reconcile and export pay periods from the command line (audited as `cli`)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from waimai.core import uow

payroll_app = typer.Typer(help="Rider pay: pay periods, payslips and payout batches.", no_args_is_help=True)
console = Console()


class Period(StrEnum):
    day = "day"
    week = "week"


PeriodOpt = Annotated[Period, typer.Option("--period", help="day, or the ISO week (Monday first)")]
DateOpt = Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD, any day in the period (default: today, "
                                                             "campus time)")]
CampusOpt = Annotated[str | None, typer.Option("--campus", help="campus code (default: every campus)")]


def _db():  # type: ignore[no-untyped-def]
    """The database, with every table loaded already (waimai/cli.py does it before any payroll command)."""
    from waimai.config import get_settings
    from waimai.core.database import Database

    return Database(get_settings().database_url)


def _day(text: str | None) -> dt.date:
    from waimai.platform.payroll.service import local_today

    if not text:
        return local_today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not YYYY-MM-DD", param_hint="--date") from None


def _campuses(s: Any, code: str | None) -> list[Any]:
    from sqlalchemy import select

    from waimai.platform.catalog.models import Campus

    q = select(Campus).order_by(Campus.id)
    if code:
        q = q.where(Campus.code == code)
    found = list(s.scalars(q))
    if not found:
        console.print(f"[red]no campus {code!r}[/red]" if code else "[red]no campus yet: run `waimai seed`[/red]")
        raise typer.Exit(2)
    return found


def _fail(exc: Any) -> None:
    console.print(f"[red]{exc.message}[/red]")
    if exc.details:
        console.print(exc.details)
    raise typer.Exit(1)


@payroll_app.command("compute")
def compute_command(period: PeriodOpt = Period.day, date: DateOpt = None, campus: CampusOpt = None,
                    close: Annotated[bool, typer.Option("--close", help="then close it (it must have ended)")] = False
                    ) -> None:
    """Compute the pay period's payslips (idempotent: a second run changes nothing), show the reconciliation."""
    from waimai.core.errors import AppError
    from waimai.platform.payroll import service
    from waimai.platform.payroll.export import yuan_plain

    day = _day(date)
    db = _db()
    t = Table("period", "status", "written", "same", "removed", "orders", "lines", "ok", "total ¥")
    bad = False
    try:
        for c in _campuses_of(db, campus):
            try:
                with uow.unit_of_work(db) as s:
                    r = service.compute(s, campus_id=c, kind=period.value, day=day, actor_role="cli")
                    if close:
                        service.close(s, r.period_id, actor_role="cli")
            except AppError as exc:
                _fail(exc)
            with db.read_session() as s:
                p = service.find_period(s, c, period.value, day)
                assert p is not None
                rec = service.reconcile(s, p)
                total = sum(x.total_fen for x in service.payslips(s, period_id=p.id, limit=100_000))
                bad |= not rec.ok
                t.add_row(f"c{c} {p.kind} {p.start_date}", p.status, str(r.written), str(r.unchanged),
                          str(r.removed), str(rec.orders), str(rec.lines), "yes" if rec.ok else "NO",
                          yuan_plain(total))
    finally:
        db.dispose()
    console.print(t)
    if bad:
        raise typer.Exit(1)


def _campuses_of(db: Any, code: str | None) -> list[int]:
    with db.read_session() as s:
        return [c.id for c in _campuses(s, code)]


@payroll_app.command("close")
def close_command(period: PeriodOpt = Period.day, date: DateOpt = None, campus: CampusOpt = None) -> None:
    """Close a finished period (last recompute, reconciliation, then frozen)."""
    compute_command(period=period, date=date, campus=campus, close=True)


@payroll_app.command("export")
def export_command(period: PeriodOpt = Period.week, date: DateOpt = None, campus: CampusOpt = None,
                   out: Annotated[Path, typer.Option("--out", help="payout CSV to write, or a folder")] = Path(
                       "var/payroll"),
                   reveal: Annotated[bool, typer.Option("--reveal", help="full account numbers (audited)")] = False,
                   payslips: Annotated[bool, typer.Option("--payslips", help="also each rider's payslip CSV")] = False
                   ) -> None:
    """Write the payout batch CSV of a closed, payable period (and optionally every payslip CSV)."""
    from waimai.core import audit
    from waimai.core.errors import AppError
    from waimai.platform.payroll import export, service

    day = _day(date)
    db = _db()
    try:
        for c in _campuses_of(db, campus):
            with uow.unit_of_work(db) as s:
                p = service.find_period(s, c, period.value, day)
                if p is None:
                    console.print(f"[red]campus {c}: no {period.value} period for {day}; compute and close it first[/red]")
                    raise typer.Exit(1)
                try:
                    body, rows = export.payout_csv(s, p, reveal=reveal)
                except AppError as exc:
                    _fail(exc)
                folder = out if out.suffix != ".csv" else out.parent
                folder.mkdir(parents=True, exist_ok=True)
                target = out if out.suffix == ".csv" else folder / f"payout-c{c}-{p.kind}-{p.start_date}.csv"
                target.write_text(body, encoding="utf-8")
                audit.record(s, actor_id=None, actor_role="cli", action="payroll.payout_export",
                             target=f"pay_period:{p.id}", details={"rows": len(rows), "reveal": reveal,
                                                                   "total_fen": sum(r.amount_fen for r in rows)})
                if payslips:
                    for slip in service.payslips(s, period_id=p.id, limit=100_000):
                        (folder / f"payslip-{slip.reference}.csv").write_text(export.payslip_csv(s, slip),
                                                                              encoding="utf-8")
                console.print(f"{target}: {len(rows)} rider(s), ¥{export.yuan_plain(sum(r.amount_fen for r in rows))}")
    finally:
        db.dispose()


@payroll_app.command("reconcile")
def reconcile_command(period: PeriodOpt = Period.day, date: DateOpt = None, campus: CampusOpt = None) -> None:
    """Check a period's order lines against the delivered orders, rider by rider (exit 1 on a mismatch)."""
    from waimai.platform.payroll import service

    day = _day(date)
    db = _db()
    bad = False
    try:
        with db.read_session() as s:
            for c in _campuses(s, campus):
                p = service.find_period(s, c.id, period.value, day)
                if p is None:
                    console.print(f"{c.code}: no {period.value} period for {day}")
                    bad = True
                    continue
                rec = service.reconcile(s, p)
                bad |= not rec.ok
                console.print(f"{c.code} {p.kind} {p.start_date} ({p.status}): {rec.lines} order lines, "
                              f"{rec.orders} delivered orders — {'reconciled' if rec.ok else 'MISMATCH'}")
                if not rec.ok:
                    console.print(rec.as_dict())
    finally:
        db.dispose()
    if bad:
        raise typer.Exit(1)


@payroll_app.command("simulate-day")
def simulate_day_command(date: Annotated[str, typer.Option("--date", help="YYYY-MM-DD, a campus day that is over")],
                         orders: Annotated[int, typer.Option("--orders", min=1, max=20_000)] = 300,
                         seed: Annotated[int, typer.Option("--seed")] = 0,
                         campus: Annotated[str, typer.Option("--campus", help="campus code")] = "demo") -> None:
    """Simulate a day on the campus through the dispatcher and write its orders and shifts (source `sim`), to
    compute and reconcile pay on: `waimai payroll compute --period day --date …` next."""
    from waimai.core.errors import AppError
    from waimai.platform.payroll import simday

    day = _day(date)
    db = _db()
    try:
        try:
            with uow.unit_of_work(db) as s:
                c = _campuses(s, campus)[0]
                r = simday.simulate_day(s, campus_id=c.id, day=day, orders=orders, seed=seed)
        except AppError as exc:
            _fail(exc)
    finally:
        db.dispose()
    console.print(f"{day} on {campus}: {r.orders} orders, {r.delivered} delivered, {r.cancelled} cancelled (no rider "
                  f"in time), {r.riders} riders; click-to-door mean {r.ctd_mean_min:.1f} min, p90 {r.ctd_p90_min:.0f}; "
                  f"{r.late} after the promised time")
