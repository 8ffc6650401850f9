"""Wire rider pay into the app: the job that keeps the open periods' drafts current (and closes finished ones
when WAIMAI_PAYROLL_AUTO_CLOSE_HOURS is set). Its shift log is a subscriber in waimai/subscribers.py."""

from __future__ import annotations

from fastapi import FastAPI

from waimai.config import Settings
from waimai.core import uow
from waimai.core.background import Job
from waimai.core.database import Database
from waimai.platform.payroll import service


def run_once(db: Database, *, close_after_h: float | None = None) -> list[service.ComputeResult]:
    with uow.unit_of_work(db) as s:
        out = service.auto_run(s, close_after_h=close_after_h)
    return out


def install(app: FastAPI, settings: Settings) -> list[Job]:
    if settings.payroll_interval_s <= 0:
        return []
    db: Database = app.state.db
    return [Job("payroll", settings.payroll_interval_s,
                lambda: run_once(db, close_after_h=settings.payroll_auto_close_hours), role="worker", singleton=True)]
