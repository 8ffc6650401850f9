"""Incident tables: the incident, its timeline, component status (with history for uptime bars), scheduled
maintenance and status subscribers. The notices users receive are in waimai/core/inbox.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from waimai.core.database import Base, utcnow


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(4))  # P1..P4
    status: Mapped[str] = mapped_column(String(16), index=True)  # investigating → identified → monitoring → resolved
    public: Mapped[bool] = mapped_column(default=True)
    components: Mapped[list[Any]] = mapped_column(default=list)  # public components affected
    impact: Mapped[str] = mapped_column(String(24))  # the component status while the incident is active
    fault_key: Mapped[str] = mapped_column(String(120), default="", index=True)  # what groups alerts into it
    source: Mapped[str] = mapped_column(String(16), default="manual")  # alert | manual
    summary: Mapped[str] = mapped_column(Text, default="")  # the public cause, in plain words
    workaround: Mapped[str] = mapped_column(String(300), default="")
    eta: Mapped[dt.datetime | None] = mapped_column(default=None)  # expected recovery
    roles: Mapped[dict[str, Any]] = mapped_column(default=dict)  # commander, communications, operations, scribe
    checklist: Mapped[dict[str, Any]] = mapped_column(default=dict)  # item id -> {"by", "at"}
    alerts: Mapped[dict[str, Any]] = mapped_column(default=dict)  # fingerprint -> {"name", "status"}
    opened_by: Mapped[str] = mapped_column(String(40), default="system")
    onset_at: Mapped[dt.datetime] = mapped_column(default=utcnow)  # the fault began
    detected_at: Mapped[dt.datetime] = mapped_column(default=utcnow)  # we knew
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(default=None)  # a person took it
    resolved_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_public_update_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_reminder_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    quiet_since: Mapped[dt.datetime | None] = mapped_column(default=None)  # every alert resolved since
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class IncidentEvent(Base):
    """One line of an incident's timeline. Public ones are the updates users see and are notified of."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(24))
    text: Mapped[str] = mapped_column(String(1000), default="")
    actor: Mapped[str] = mapped_column(String(40), default="system")
    public: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default="")  # the incident's status at this line
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    notified_at: Mapped[dt.datetime | None] = mapped_column(default=None, index=True)


class ComponentStatus(Base):
    __tablename__ = "component_status"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(24), default="operational")
    override: Mapped[str | None] = mapped_column(String(24), default=None)  # set by hand, wins until cleared
    override_reason: Mapped[str] = mapped_column(String(200), default="")
    updated_by: Mapped[str] = mapped_column(String(40), default="system")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ComponentStatusChange(Base):
    """Every change of a component's status: the 90-day uptime bars are computed from these."""

    __tablename__ = "component_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    component: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(24))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    incident_id: Mapped[int | None] = mapped_column(default=None)


class Maintenance(Base):
    __tablename__ = "maintenances"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(1000), default="")
    components: Mapped[list[Any]] = mapped_column(default=list)
    starts_at: Mapped[dt.datetime] = mapped_column(index=True)
    ends_at: Mapped[dt.datetime] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(40), default="system")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class StatusSubscriber(Base):
    """A user who asked to hear about every public incident (in the inbox, and by SMS if `sms`)."""

    __tablename__ = "status_subscribers"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    sms: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class IncidentAction(Base):
    """An action item from the root-cause review, with an owner, tracked to closure."""

    __tablename__ = "incident_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    text: Mapped[str] = mapped_column(String(300))
    owner: Mapped[str] = mapped_column(String(60))
    due_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(12), default="open")  # open | done
    created_by: Mapped[str] = mapped_column(String(40), default="system")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    closed_by: Mapped[str | None] = mapped_column(String(40), default=None)


class IncidentReview(Base):
    """The team's part of the root-cause report: five whys and free notes."""

    __tablename__ = "incident_reviews"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    whys: Mapped[list[Any]] = mapped_column(default=list)
    root_cause: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    updated_by: Mapped[str] = mapped_column(String(40), default="system")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
