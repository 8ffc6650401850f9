"""The scheduled backup job for app.py's housekeeping list (off in the test environment unless
WAIMAI_BACKUP_SCHEDULED=true)."""

from __future__ import annotations

from fastapi import FastAPI

from waimai.core.background import Job
from waimai.firewall.recovery.backup import BackupConfig, BackupScheduler


def backup_jobs(app: FastAPI) -> list[Job]:
    settings = app.state.settings
    cfg = BackupConfig.from_settings(settings)  # a bad key or schedule stops start-up with its message
    app.state.backup_config = cfg
    enabled = settings.backup_scheduled if settings.backup_scheduled is not None else settings.env != "test"
    if not enabled:
        return []
    scheduler = BackupScheduler(cfg, settings.database_url)
    app.state.backup_scheduler = scheduler
    # Ticks are cheap (is the next cron slot due?); the backup itself runs in a thread of its own.
    return [Job("backup", 30.0, scheduler.tick, role="worker", singleton=True)]
