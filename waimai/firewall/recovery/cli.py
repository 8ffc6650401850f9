"""`waimai backup create | list | show ID | verify ID | restore ID [--yes] | prune | keygen`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich import box, filesize
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from waimai.core.errors import AppError
from waimai.core.timeutil import LOCAL
from waimai.firewall.recovery.catalog import Manifest

backup_app = typer.Typer(help="Backups of the whole database, verification and rollback.", no_args_is_help=True)
console = Console()
F = TypeVar("F", bound=Callable[..., Any])


def _clean_errors(fn: F) -> F:
    """Bad input and refusals print one red line and exit 2; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AppError as exc:
            console.print(f"[red]{exc.message}[/red]")
            raise typer.Exit(2) from None
        except ValueError as exc:  # settings that do not parse (schedule, key, …)
            console.print(f"[red]Configuration error:[/red] {exc}")
            raise typer.Exit(2) from None
        except OSError as exc:  # the backup directory is not writable, the disk is full, …
            console.print(f"[red]{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}[/red]")
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _setup() -> tuple[Any, Any]:
    from waimai.config import get_settings
    from waimai.core.logging import configure
    from waimai.firewall.recovery.backup import BackupConfig

    settings = get_settings()
    configure(json_lines=False, level="WARNING", file=None)  # the progress bars and tables tell the story
    return settings, BackupConfig.from_settings(settings)


class RichReporter:
    """One progress bar per stage; a stage without a known size shows a pulsing bar."""

    def __init__(self, progress: Progress) -> None:
        self.p = progress
        self.task: Any = None

    def _close(self) -> None:
        if self.task is not None:
            t = next(t for t in self.p.tasks if t.id == self.task)
            total = t.total if t.total is not None else max(t.completed, 1)
            self.p.update(self.task, total=total, completed=total)

    def stage(self, name: str, total: int | None = None) -> Callable[[int], None]:
        self._close()
        task = self.p.add_task(name, total=total, bytes=total is not None)
        self.task = task
        return lambda n: self.p.update(task, completed=n)

    def done(self) -> None:
        self._close()


class _BytesColumn(DownloadColumn):
    """Bytes done / total for stages that move bytes; nothing for steps without a size (no "1/1 bytes")."""

    def render(self, task: Task) -> Text:
        return super().render(task) if task.fields.get("bytes") else Text("")


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description:<34}"), BarColumn(), _BytesColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def _when(m: Manifest) -> str:
    return m.created_at.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M:%S")


def _mb(n: int) -> str:
    return filesize.decimal(n)


def _verified(m: Manifest) -> str:
    return {"passed": "[green]passed[/green]", "failed": "[red]FAILED[/red]",
            "unverified": "[yellow]unverified[/yellow]"}[m.verification.status]


def _targets(m: Manifest) -> str:
    return " ".join(f"{k}{'✓' if s.status == 'stored' else '✗'}" for k, s in m.targets.items())


def _show(m: Manifest) -> None:
    t = Table(title=f"Backup {m.id}", show_header=False)
    t.add_column("", style="bold")
    t.add_column("")
    rows = [("created", f"{_when(m)} (campus time), {m.kind}"), ("database", f"{m.database} ({m.engine})"),
            ("schema version", m.schema_version or "none"), ("artefact", m.artefact),
            ("size", f"{_mb(m.size)} ({_mb(m.raw_size)} before compression, {m.compression})"),
            ("sha256", m.sha256), ("encrypted", f"yes, key {m.key_id}" if m.encrypted else "no"),
            ("targets", _targets(m)), ("status", m.status),
            ("orders", f"{m.tables.get('orders', 0):,}, newest "
                       f"{m.newest_order.number if m.newest_order else 'none'}"),
            ("verification", _verified(m) + (f" at {m.verification.at.astimezone(LOCAL):%Y-%m-%d %H:%M}"
                                             if m.verification.at else ""))]
    for k, v in rows:
        t.add_row(k, v)
    for c in m.verification.checks:
        t.add_row(f"  {'✓' if c.ok else '✗'} {c.name}", c.detail)
    for name, s in m.targets.items():
        if s.error:
            t.add_row(f"  {name} error", f"[red]{s.error}[/red]")
    console.print(t)


@backup_app.command("create")
@_clean_errors
def create_cmd(
    verify: Annotated[bool | None, typer.Option("--verify/--no-verify",
                                                help="restore it into a scratch database and check it "
                                                     "(default: WAIMAI_BACKUP_VERIFY)")] = None,
    note: Annotated[str, typer.Option(help="a note kept in the manifest")] = "",
) -> None:
    """Back up the whole database now, to every configured target."""
    from waimai.firewall.recovery.backup import check_backup, exclusive, make_backup

    settings, cfg = _setup()
    with _progress() as p, exclusive(cfg):
        r = RichReporter(p)
        m = make_backup(cfg, settings.database_url, kind="manual", reporter=r, note=note)
        if (cfg.verify_after if verify is None else verify) and m.status == "complete":
            m = check_backup(cfg, settings.database_url, m.id, reporter=r)
        r.done()
    _show(m)
    if m.status != "complete" or m.verification.status == "failed":
        raise typer.Exit(1)


@backup_app.command("list")
@_clean_errors
def list_cmd(sync: Annotated[bool, typer.Option("--sync", help="first reread the manifests in every target")] = False
             ) -> None:
    """List backups, newest first."""
    _settings, cfg = _setup()
    catalog = cfg.catalog()
    if sync:
        console.print(f"{catalog.sync()} backup(s) added from the targets.")
    items = catalog.all()
    if not items:
        console.print("No backups yet: `waimai backup create`.")
        return
    if console.width >= 120:
        t = Table(title=f"Backups in {cfg.directory}")
        t.add_column("id", no_wrap=True)
        for col in ("created (campus)", "kind", "engine", "schema", "size", "enc", "targets", "status",
                    "verification"):
            t.add_column(col)
        for m in items:
            t.add_row(m.id, _when(m), m.kind, m.engine, m.schema_version or "-", _mb(m.size),
                      "yes" if m.encrypted else "", _targets(m),
                      m.status if m.status == "complete" else f"[red]{m.status}[/red]", _verified(m))
    else:  # a terminal of 80 columns: the columns that decide which backup to restore; `show ID` has the rest
        t = Table(title=f"Backups in {cfg.directory}", box=box.SIMPLE_HEAD, pad_edge=False)
        for col in ("id", "created", "kind", "size", "stored", "verified"):
            t.add_column(col, no_wrap=True)
        for m in items:
            stored = sum(s.status == "stored" for s in m.targets.values())
            t.add_row(m.id, m.created_at.astimezone(LOCAL).strftime("%m-%d %H:%M"), m.kind, _mb(m.size),
                      f"{stored}/{len(m.targets)}" if m.status == "complete" else f"[red]{m.status}[/red]",
                      _verified(m))
    console.print(t)


@backup_app.command("show")
@_clean_errors
def show_cmd(backup_id: Annotated[str, typer.Argument(metavar="ID", help="id, a unique start of one, or latest")]
             ) -> None:
    """Everything about one backup, with its verification checks."""
    _settings, cfg = _setup()
    _show(cfg.catalog().get(backup_id))


@backup_app.command("verify")
@_clean_errors
def verify_cmd(backup_id: Annotated[str, typer.Argument(metavar="ID", help="id, a unique start of one, or latest")]
               ) -> None:
    """Restore a backup into a scratch database and check it; the result is recorded in its manifest."""
    from waimai.firewall.recovery.backup import verify_backup

    settings, cfg = _setup()
    with _progress() as p:
        r = RichReporter(p)
        m = verify_backup(cfg, settings.database_url, backup_id, reporter=r)
        r.done()
    _show(m)
    if m.verification.status != "passed":
        raise typer.Exit(1)


@backup_app.command("restore")
@_clean_errors
def restore_cmd(
    backup_id: Annotated[str, typer.Argument(metavar="ID", help="id, a unique start of one, or latest")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
    force: Annotated[bool, typer.Option(help="restore even a backup that failed verification or is "
                                             "incomplete")] = False,
) -> None:
    """Roll the database back to a backup (safety backup first, read-only meanwhile, later orders exported)."""
    from waimai.core.database import Database
    from waimai.firewall.recovery.restore import restore_backup

    settings, cfg = _setup()
    m = cfg.catalog().get(backup_id)
    _show(m)
    if not yes and not typer.confirm(
            f"Roll the database back to {_when(m)}? Everything written since is exported to a file, "
            "then replaced.", default=False):
        console.print("Nothing restored.")
        raise typer.Exit(1)
    # The restore's outbox event puts it on the incident timeline when the service's worker leader delivers it.
    db = Database(settings.database_url)
    try:
        with _progress() as p:
            r = RichReporter(p)
            result = restore_backup(cfg, db, m.id, actor_role="ops-cli", force=force, reporter=r)
            r.done()
    finally:
        db.dispose()
    console.print(f"[green]Restored backup {result.backup_id}[/green] (restore {result.id}); safety backup "
                  f"of the database as it was: [bold]{result.safety_backup_id}[/bold].")
    if result.migrated:
        console.print(f"Migrated the schema {result.schema_restored} → {result.schema_after}.")
    for w in result.warnings:
        console.print(f"[yellow]{w}[/yellow]")
    console.print(f"{result.orders_new} order(s) written after the backup and {result.orders_changed} changed "
                  f"after it are listed in\n  {result.export_csv}\n  {result.export_json}")
    if result.orders_after_backup:
        t = Table(title="Orders after the backup (re-enter the new ones)")
        for col in ("kind", "id", "number", "created (campus)", "status", "total"):
            t.add_column(col)
        for o in result.orders_after_backup[:20]:
            t.add_row(o.kind, str(o.id), o.number,
                      o.created_at.astimezone(LOCAL).strftime("%m-%d %H:%M") if o.created_at else "",
                      o.status, f"¥{o.total_fen / 100:.2f}")
        console.print(t)
        if len(result.orders_after_backup) > 20 or not result.orders_listed_all:
            console.print("… more in the export files.")


@backup_app.command("prune")
@_clean_errors
def prune_cmd(dry_run: Annotated[bool, typer.Option("--dry-run", help="only say what would go")] = False) -> None:
    """Delete the backups the retention policy no longer keeps, from every target."""
    from waimai.firewall.recovery.backup import prune

    _settings, cfg = _setup()
    res = prune(cfg, dry_run=dry_run)
    pol = cfg.retention
    console.print(f"Policy: {pol.hourly} hourly, {pol.daily} daily, {pol.weekly} weekly. "
                  f"Kept {len(res.kept)}, {'would delete' if dry_run else 'deleted'} {len(res.deleted)}.")
    for bid in res.deleted:
        console.print(f"  {'would delete' if dry_run else 'deleted'} {bid}")
    for e in res.errors:
        console.print(f"[red]{e}[/red]")
    if res.errors:
        raise typer.Exit(1)


@backup_app.command("keygen")
def keygen_cmd() -> None:
    """Print a new random encryption key for WAIMAI_BACKUP_ENCRYPTION_KEY (keep a copy somewhere safe:
    without it the encrypted backups cannot be restored)."""
    from waimai.firewall.recovery.artefact import new_key

    typer.echo(new_key())
