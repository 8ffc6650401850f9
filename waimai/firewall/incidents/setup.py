"""Wire incidents, the status page and user notices into the app; returns their periodic jobs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from waimai.config import Settings
from waimai.core import uow
from waimai.core.background import Job
from waimai.firewall.alerting.channels.base import AlertMessage
from waimai.firewall.incidents import service as incidents
from waimai.firewall.incidents.manager import IncidentManager
from waimai.firewall.incidents.models import Incident
from waimai.firewall.monitoring.anomaly import stored_signals
from waimai.firewall.statuspage.notices import Notifier
from waimai.firewall.statuspage.service import SnapshotCache
from waimai.firewall.switches.models import Switch
from waimai.firewall.switches.service import SWITCH_HOOKS

log = structlog.get_logger(__name__)


def switch_on_timeline(db: Session, sw: Switch, previous: bool, actor: str) -> None:
    """Every switch flipped while incidents are open is a line on their timelines."""
    if bool(sw.enabled) == previous:
        return
    state = "ON" if sw.enabled else "OFF"
    incidents.record_on_open(db, "switch", f"switch {sw.name} {state}" + (f": {sw.reason}" if sw.reason else ""),
                             actor=actor, details={"switch": sw.name, "enabled": bool(sw.enabled)})


def install_restore_hook(db: Any, sop: incidents.Sop) -> None:
    """A restore is a line on every open incident's timeline; with none open it opens an internal one,
    so a rollback is never off the record. (The newest app in a process owns the hook.)"""
    from waimai.firewall.recovery.restore import RESTORE_HOOKS

    def restore_on_timeline(result: Any) -> None:
        lost = len(result.orders_after_backup)
        text = (f"database restore {result.status}: back to backup {result.backup_id} "
                f"({result.backup_created_at:%Y-%m-%d %H:%M} UTC); {lost} orders written after it exported for "
                f"re-entry; safety backup {result.safety_backup_id or '–'}")
        if result.error:
            text += f"; error: {result.error}"
        if getattr(result, "next_step", None):
            text += f"; next: {result.next_step}"
        details = {"restore_id": result.id, "backup_id": result.backup_id, "orders_after_backup": lost,
                   "status": result.status, "next_step": getattr(result, "next_step", None)}
        with uow.unit_of_work(db) as s:
            if not incidents.record_on_open(s, "restore", text, actor=result.actor, details=details):
                inc = incidents.open_incident(s, sop, title=f"Database restored from backup {result.backup_id}",
                                              severity="P3", components=[], actor=result.actor, public=False)
                incidents.record(s, inc, "restore", text, actor=result.actor, details=details)

    restore_on_timeline.waimai_incidents = True  # type: ignore[attr-defined]
    RESTORE_HOOKS[:] = [h for h in RESTORE_HOOKS if not getattr(h, "waimai_incidents", False)]
    RESTORE_HOOKS.append(restore_on_timeline)


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
    if switch_on_timeline not in SWITCH_HOOKS:
        SWITCH_HOOKS.append(switch_on_timeline)
    install_restore_hook(db, sop)

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
