"""Wire customer service into the app: the re-delivery payment provider, the larger body limit for photo
uploads, and the job that turns tickets into series the alert rules watch."""

from __future__ import annotations

import re
import time

from fastapi import FastAPI

from waimai.config import Settings
from waimai.core import uow
from waimai.core.background import Job
from waimai.core.database import Database
from waimai.firewall.incidents.service import open_incidents
from waimai.firewall.monitoring.store import MetricStore
from waimai.platform.support import photos
from waimai.platform.support import service as tickets
from waimai.platform.support.resolutions import REDELIVERY, MakeGood

# Paths that take a photo upload (API and the report form): the photo plus the form's few fields.
UPLOADS = ((re.compile(r"^/(api/v1/tickets/\d+/photos|orders/\d+/problem|tickets/\d+/photos)$"),
            photos.MAX_BYTES + 64 * 1024),)


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
    with uow.unit_of_work(db) as s:
        tickets.link_recent(s)
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
    app.state.payment_providers.setdefault(REDELIVERY, MakeGood())
    register_hooks()
    db, store = app.state.db, app.state.metric_store
    return [Job("complaint_signals", max(settings.sample_interval_s, 10.0), lambda: publish_signals(db, store),
                role="worker", singleton=True)]
