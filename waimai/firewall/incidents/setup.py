"""Wire incidents, the status page and user notices into the app; returns their periodic jobs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from waimai.config import Settings
from waimai.core.background import Job
from waimai.core.events import Event
from waimai.core.messages import msg
from waimai.firewall.alerting.channels.base import AlertMessage
from waimai.firewall.incidents import service as incidents
from waimai.firewall.incidents.manager import IncidentManager
from waimai.firewall.incidents.models import Incident
from waimai.firewall.monitoring.anomaly import stored_signals
from waimai.firewall.statuspage.notices import Notifier
from waimai.firewall.statuspage.service import SnapshotCache

log = structlog.get_logger(__name__)


def switch_on_timeline(db: Session, ev: Event) -> None:
    """Subscriber of `switch.changed`: every switch flipped while incidents are open is a line on their
    timelines, at the time of the flip."""
    p = ev.payload
    if bool(p.get("enabled")) == bool(p.get("previous")):
        return
    name, reason, on = p["name"], p.get("reason") or "", bool(p.get("enabled"))
    if reason:
        text = (msg("switch %(switch)s ON: %(reason)s", switch=name, reason=reason) if on
                else msg("switch %(switch)s OFF: %(reason)s", switch=name, reason=reason))
    else:
        text = msg("switch %(switch)s ON", switch=name) if on else msg("switch %(switch)s OFF", switch=name)
    incidents.record_on_open(db, "switch", text, actor=str(p.get("actor") or "system"),
                             details={"switch": name, "enabled": on}, at=ev.created_at)


def restore_recorder(sop: incidents.Sop) -> Callable[[Session, Event], None]:
    """Subscriber of `backup.restored` / `backup.restore_failed`: a restore is a line on every open incident's
    timeline; with none open it opens an internal one, so a rollback is never off the record."""

    def restore_on_timeline(db: Session, ev: Event) -> None:
        p = ev.payload
        lost = int(p.get("orders_after_backup") or 0)
        created = p.get("backup_created_at")
        when = dt.datetime.fromisoformat(created).strftime("%Y-%m-%d %H:%M") if created else "?"
        backup_id = p.get("backup") or ev.key
        actor = str(p.get("actor") or "system")
        text = [msg("database restore %(status)s: back to backup %(backup)s (%(at)s UTC)",
                    status=msg(f"restore_status.{p.get('status')}"), backup=backup_id, at=when),
                msg("%(n)s orders written after it exported for re-entry", n=lost),
                msg("safety backup %(backup)s", backup=p.get("safety_backup") or "–")]
        if p.get("error"):
            text.append(msg("error: %(error)s", error=p["error"]))
        if p.get("next_step"):
            text.append(msg("next: %(step)s", step=p["next_step"]))
        details = {"restore_id": p.get("restore_id"), "backup_id": backup_id, "orders_after_backup": lost,
                   "status": p.get("status"), "next_step": p.get("next_step")}
        if not incidents.record_on_open(db, "restore", text, actor=actor, details=details, at=ev.created_at):
            inc = incidents.open_incident(db, sop, title=f"Database restored from backup {backup_id}",
                                          severity="P3", components=[], actor=actor, public=False)
            incidents.record(db, inc, "restore", text, actor=actor, details=details)

    return restore_on_timeline


def build_sms(settings: Settings) -> dict[str, Any]:
    if not settings.notice_sms_url:
        return {}
    from waimai.firewall.alerting.channels.sms import AliyunSmsProvider

    return {loc: AliyunSmsProvider(base_url=settings.notice_sms_url, access_key_id=settings.notice_sms_key_id,
                                   access_key_secret=settings.notice_sms_key_secret,
                                   sign_name=settings.notice_sms_sign_name, template_code=code)
            for loc, code in settings.notice_sms_templates.items()}


def install(app: FastAPI, settings: Settings) -> list[Job]:
    db = app.state.db
    sop = incidents.load_sop(settings.incident_sop_file)
    app.state.sop = sop
    from waimai.firewall.statuspage.lastknown import LastKnown

    app.state.last_known = LastKnown(db)  # what the public pages serve while the database is gone
    app.state.status_cache = SnapshotCache(db, sop, last_known=app.state.last_known)
    from waimai.firewall.incidents import dboutage

    dboutage.install(app, sop)  # the outage's incident, written when the database is back
    sms = build_sms(settings)
    app.state.notifier = Notifier(db, sop, sms=sms, sms_per_hour=settings.notice_sms_per_hour)
    alerting = getattr(app.state, "alerting", None)

    def remind(inc: Incident, who: str) -> None:
        if alerting is None:
            raise RuntimeError("alerting is not running")
        msg = AlertMessage(title=f"Incident #{inc.id}: post a public update ({who})",
                           body_markdown=f"**{inc.title}** has had no public update for "
                                         f"{sop.update_cadence_minutes:.0f} minutes. Status: {inc.status}. "
                                         f"{settings.public_url}/ops/incidents/{inc.id}",
                           severity=inc.severity, dedup_key=f"incident-{inc.id}-reminder", status="firing",  # type: ignore[arg-type]
                           labels={"incident": str(inc.id), "commander": who})
        receipts = alerting.send_direct(msg)
        if receipts and not any(r.ok for r in receipts):
            raise RuntimeError("no channel took the reminder")

    clock = alerting.clock if alerting is not None else (lambda: dt.datetime.now(dt.UTC))
    manager = IncidentManager(db, sop, clock=clock, auto_open=settings.incident_auto_open, remind=remind)
    app.state.incidents = manager
    try:
        manager.refresh_components()  # each component's history starts with the first run
    except SQLAlchemyError:  # not migrated yet (/readyz says so); the periodic job retries
        log.warning("component_status_unavailable")
    if alerting is not None:
        alerting.listeners.append(manager)

    def tick() -> None:
        # The notifier leader may not be the worker leader whose watcher opened them: read the shared store.
        watching = getattr(app.state, "anomalies", None) is not None
        manager.tick(stored_signals(app.state.metric_store) if watching else [])

    def close() -> None:
        for p in sms.values():
            p.close()

    app.state.notices_close = close
    from waimai.firewall.runbooks import Remediator

    remediation = Remediator.from_file(app.state, Path(settings.remediation_file) if settings.remediation_file
                                       else None)
    app.state.remediation = remediation
    if alerting is not None:
        alerting.listeners.append(remediation)
    # Singletons: one process resolves, reminds and fans out notices (the unique (user, update) key would
    # refuse a second copy anyway, but not before it had been tried).
    return [Job("incident_tick", 2.0, tick, role="notifier", singleton=True),
            Job("incident_notices", 2.0, app.state.notifier.run_once, role="notifier", singleton=True),
            Job("component_status", 10.0, manager.refresh_components, role="worker", singleton=True),
            Job("remediation_verify", 5.0, remediation.tick, role="notifier", singleton=True)]
