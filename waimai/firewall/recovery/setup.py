"""The scheduled backup job for app.py's housekeeping list (off in the test environment unless
WAIMAI_BACKUP_SCHEDULED=true)."""

from __future__ import annotations

from fastapi import FastAPI

from waimai.core.background import Job
from waimai.firewall.recovery.backup import BackupConfig, BackupScheduler


def disk_watch(app: FastAPI, cfg: BackupConfig) -> Job:
    """Every 10 s: is there room for the next backup? An alert (BackupDiskNearlyFull, P2) fires while not,
    before a backup fails on it."""
    import datetime as dt

    from waimai.firewall.alerting.rules import Alert
    from waimai.firewall.recovery.backup import disk_check

    state: dict[str, dt.datetime | None] = {"since": None}

    def check() -> None:
        alerting = getattr(app.state, "alerting", None)
        if alerting is None:
            return
        short = disk_check(cfg, app.state.settings.database_url)
        now = dt.datetime.now(dt.UTC)
        labels = {"alertname": "BackupDiskNearlyFull", "severity": "P2", "component": "backups"}
        if short:
            d, free, need = short[0]
            since = state["since"] = state["since"] or now
            alerting.ingest([Alert(labels=labels, status="firing", starts_at=since, annotations={
                "summary": f"Backup disk nearly full: {free // 2**20} MB free in {d}, the next backup needs about "
                           f"{need // 2**20} MB", "kind": "threshold", "onset_at": since.isoformat(),
                "runbook_url": "docs/operations.md#backups-and-rollback"})])
        elif (began := state["since"]) is not None:
            alerting.ingest([Alert(labels=labels, status="resolved", starts_at=began, ends_at=now,
                                   annotations={"summary": "Backup disk has room again"})])
            state["since"] = None

    return Job("backup_disk_watch", 10.0 if app.state.settings.env != "test" else 2.0, check, role="notifier",
               singleton=True)


def backup_jobs(app: FastAPI) -> list[Job]:
    settings = app.state.settings
    cfg = BackupConfig.from_settings(settings)  # a bad key or schedule stops start-up with its message
    app.state.backup_config = cfg
    watch = disk_watch(app, cfg)
    enabled = settings.backup_scheduled if settings.backup_scheduled is not None else settings.env != "test"
    if not enabled:
        return [watch]
    scheduler = BackupScheduler(cfg, settings.database_url)
    app.state.backup_scheduler = scheduler
    # Ticks are cheap (is the next cron slot due?); the backup itself runs in a thread of its own.
    return [Job("backup", 30.0, scheduler.tick, role="worker", singleton=True), watch]
