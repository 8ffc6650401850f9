"""The incidents support links complaint tickets to, as support sees them: a port the firewall fills.

Support links a ticket to the incident that caused it and puts a line on that incident's timeline, in the
ticket's own transaction; incidents are the firewall's, a layer above the platform (the layers contract in
pyproject.toml). So support asks this port, and the firewall installs its implementation over the incident
tables when the app is composed (waimai/firewall/incidents/complaints.py). Without it (the platform on its
own) there are no incidents: nothing is linked and no timeline is written.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class IncidentRef:
    """What support reads of an incident."""

    id: int
    title: str
    severity: str
    components: tuple[str, ...]
    onset_at: dt.datetime
    resolved_at: dt.datetime | None


class Incidents(Protocol):
    def overlapping(self, db: Session, *, since: dt.datetime, until: dt.datetime) -> list[IncidentRef]:
        """Incidents that began by `until` and were not resolved before `since`, oldest onset first."""
        ...

    def open(self, db: Session) -> list[IncidentRef]:
        """Incidents not resolved yet."""
        ...

    def find(self, db: Session, incident_id: int) -> IncidentRef | None: ...

    def record(self, db: Session, incident_id: int, text: str, *, actor: str, details: dict[str, Any],
               at: dt.datetime | None = None) -> None:
        """A line on the incident's timeline, in the caller's transaction (nothing if there is no such incident)."""
        ...


class NoIncidents:
    """The platform on its own: no incident ever matches."""

    def overlapping(self, db: Session, *, since: dt.datetime, until: dt.datetime) -> list[IncidentRef]:
        return []

    def open(self, db: Session) -> list[IncidentRef]:
        return []

    def find(self, db: Session, incident_id: int) -> IncidentRef | None:
        return None

    def record(self, db: Session, incident_id: int, text: str, *, actor: str, details: dict[str, Any],
               at: dt.datetime | None = None) -> None:
        return None


_incidents: Incidents = NoIncidents()


def install(incidents: Incidents) -> None:
    """Use `incidents` from now on (the firewall's, at app start)."""
    global _incidents
    _incidents = incidents


def incidents() -> Incidents:
    return _incidents
