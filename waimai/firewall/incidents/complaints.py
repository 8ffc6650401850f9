"""Complaint tickets as the firewall sees them: series the alert rules watch, tickets linked to the incident
that caused them, a section of the root-cause report, and orders compensation skips because a ticket made
them good already.

Wired from the firewall's side (create_app calls `install`): support knows nothing of the metric store, the
report or compensation; this module reads tickets through support's service.
"""

from __future__ import annotations

import time

from fastapi import FastAPI

from waimai.config import Settings
from waimai.core.background import Job
from waimai.core.database import Database
from waimai.firewall.incidents.service import open_incidents
from waimai.firewall.monitoring.store import MetricStore
from waimai.platform.support import service as tickets


def publish_signals(db: Database, store: MetricStore, now: float | None = None) -> dict[str, float]:
    """complaints_per_10min.<category> (and the total, and tickets_sla_breached) into the metric store, for
    the rules in default_rules.yml group `complaints`; then link tickets that came in before their incident
    opened to it."""
    with db.read_session() as s:
        values = tickets.complaint_counts(s)
    store.write(time.time() if now is None else now, values)
    with db.read_session() as s:  # most rounds have no open incident: look before taking the write lock
        if not open_incidents(s):
            return values
    with db.session() as s:
        if tickets.link_recent(s):
            s.commit()
    return values


def register_hooks() -> None:
    """Complaints in the root-cause report; orders a ticket already made good are skipped by compensation."""
    from waimai.firewall import compensation
    from waimai.firewall.incidents import report

    if tickets.report_section not in report.EXTRA_SECTIONS:
        report.EXTRA_SECTIONS.append(tickets.report_section)
    if tickets.compensated_orders not in compensation.ALREADY_COMPENSATED:
        compensation.ALREADY_COMPENSATED.append(tickets.compensated_orders)


def install(app: FastAPI, settings: Settings) -> list[Job]:
    register_hooks()
    db, store = app.state.db, app.state.metric_store
    return [Job("complaint_signals", max(settings.sample_interval_s, 10.0), lambda: publish_signals(db, store),
                role="worker", singleton=True)]
