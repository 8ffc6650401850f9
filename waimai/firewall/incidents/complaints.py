"""Complaint tickets as the firewall sees them: series the alert rules watch, tickets linked to the incident
that caused them, and the port support reaches incidents through (the report section and the orders compensation skips,
support's own functions, are composed in waimai/subscribers.py).

Wired from the firewall's side (create_app calls `install`): support knows nothing of the metric store, the
report or compensation, and reaches incidents only through its port (waimai/platform/support/incidents.py),
which `TicketIncidents` fills over the incident tables; this module reads tickets through support's service.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from fastapi import FastAPI
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from waimai.config import Settings
from waimai.core import uow
from waimai.core.background import Job
from waimai.core.database import Database
from waimai.firewall.incidents import service as incidents
from waimai.firewall.incidents.models import Incident
from waimai.firewall.incidents.service import open_incidents
from waimai.firewall.monitoring.store import MetricStore
from waimai.platform.support import incidents as support_port
from waimai.platform.support import service as tickets
from waimai.platform.support.incidents import IncidentRef


def _ref(inc: Incident) -> IncidentRef:
    return IncidentRef(id=inc.id, title=inc.title, severity=inc.severity, components=tuple(inc.components or ()),
                       onset_at=inc.onset_at, resolved_at=inc.resolved_at)


class TicketIncidents:
    """Support's incident port over the incident tables (support.incidents.Incidents)."""

    def overlapping(self, db: Session, *, since: dt.datetime, until: dt.datetime) -> list[IncidentRef]:
        return [_ref(i) for i in db.scalars(select(Incident).where(Incident.onset_at <= until, or_(
            Incident.resolved_at.is_(None), Incident.resolved_at >= since)).order_by(Incident.onset_at, Incident.id))]

    def open(self, db: Session) -> list[IncidentRef]:
        return [_ref(i) for i in open_incidents(db)]

    def find(self, db: Session, incident_id: int) -> IncidentRef | None:
        inc = db.get(Incident, incident_id)
        return _ref(inc) if inc is not None else None

    def record(self, db: Session, incident_id: int, text: str, *, actor: str, details: dict[str, Any],
               at: dt.datetime | None = None) -> None:
        inc = db.get(Incident, incident_id)
        if inc is not None:
            incidents.record(db, inc, "ticket", text, actor=actor, details=details, at=at)


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


def install(app: FastAPI, settings: Settings) -> list[Job]:
    support_port.install(TicketIncidents())  # the report section and compensation's skip list: waimai.subscribers
    db, store = app.state.db, app.state.metric_store
    return [Job("complaint_signals", max(settings.sample_interval_s, 10.0), lambda: publish_signals(db, store),
                role="worker", singleton=True)]
