"""`waimai incident …`: list incidents and write root-cause reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

incident_app = typer.Typer(help="Incidents and their root-cause reports.", no_args_is_help=True)
console = Console()


def _db():  # type: ignore[no-untyped-def]
    from waimai.config import get_settings
    from waimai.core.database import Database

    s = get_settings()
    return s, Database(s.database_url)


@incident_app.command("list")
def list_incidents(limit: Annotated[int, typer.Option(min=1, max=500)] = 20) -> None:
    """The latest incidents with their times."""
    from sqlalchemy import select

    from waimai.firewall.incidents import service
    from waimai.firewall.incidents.models import Incident

    _s, db = _db()
    t = Table("id", "sev", "status", "title", "components", "MTTD s", "MTTA s", "MTTR s")
    with db.read_session() as s:
        for i in s.scalars(select(Incident).order_by(Incident.id.desc()).limit(limit)):
            m = service.metrics(i)
            t.add_row(str(i.id), i.severity, i.status, i.title[:50], ",".join(i.components),
                      *(str(m[k]) if m[k] is not None else "–" for k in ("mttd_s", "mtta_s", "mttr_s")))
    console.print(t)
    db.dispose()


@incident_app.command("report")
def report_command(ctx: typer.Context, incident_id: Annotated[int, typer.Argument(help="incident id", min=1)],
                   out: Annotated[Path, typer.Option(help="folder for report.md, report.html and charts/")] = Path(
                       "var/reports"),
                   charts: Annotated[bool, typer.Option(help="draw the key series around the incident")] = True
                   ) -> None:
    """Write the root-cause report (Markdown + HTML with charts) of one incident."""
    from waimai.core.errors import NotFound
    from waimai.firewall.incidents import report, service
    from waimai.firewall.monitoring.store import MetricStore
    settings, db = _db()
    # the report's plug-in sections (complaints…), composed at the top (waimai/cli.py from waimai.subscribers)
    sections = getattr(ctx.obj, "report_sections", ())
    store = MetricStore(settings.metrics_url) if charts else None
    try:
        with db.read_session() as s, console.status("building the report…"):
            try:
                inc = service.get(s, incident_id)
            except NotFound:
                console.print(f"[red]No incident {incident_id}.[/red] `waimai incident list` shows them.")
                raise typer.Exit(2) from None
            r = report.build(s, inc, store=store, log_file=Path(settings.log_file) if settings.log_file else None,
                             with_charts=charts, sections=sections)
        paths = report.write(r, out / f"incident-{incident_id}")
    finally:
        if store is not None:
            store.dispose()
        db.dispose()
    console.print(f"[green]report written:[/green] {paths['html']} · {paths['markdown']} "
                  f"({len(r.charts)} charts in {paths['charts']})")
