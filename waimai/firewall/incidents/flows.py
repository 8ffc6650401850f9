"""What an ops user does to incidents, audited and on the timeline: one function per action, called by the JSON
API (routes.py) and by the console forms (web/ops_incidents.py) alike, in the caller's unit of work.

Changes the public status page shows invalidate its cache once they are committed (`uow.after_commit`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from waimai.core import audit, uow
from waimai.core.database import utcnow
from waimai.core.deps import Principal
from waimai.core.errors import NotFound, Unprocessable
from waimai.core.messages import msg
from waimai.core.timeutil import as_utc
from waimai.firewall.incidents import service as incidents
from waimai.firewall.incidents.models import (
    Incident,
    IncidentAction,
    IncidentEvent,
    IncidentReview,
    Maintenance,
)
from waimai.firewall.incidents.schemas import (
    ActionIn,
    ActionPatch,
    CheckIn,
    CompensationIn,
    IncidentIn,
    IncidentPatch,
    MaintenanceIn,
    NoteIn,
    OverrideIn,
    ReviewIn,
    UpdateIn,
)


@dataclass(frozen=True)
class Console:
    """What the actions need from the running app: the SOP, the status page's cache, the report's sources."""

    sop: incidents.Sop
    status_cache: Any | None = None
    metric_store: Any | None = None
    log_file: Path | None = None
    plugins: Any | None = None  # waimai.subscribers.IncidentPlugins: report sections, orders made good elsewhere

    @property
    def report_sections(self) -> tuple[Any, ...]:
        return tuple(getattr(self.plugins, "report_sections", ()))

    @property
    def already_compensated(self) -> tuple[Any, ...]:
        return tuple(getattr(self.plugins, "already_compensated", ()))

    def touched(self, db: Session) -> None:
        """The status page shows this change once it is stored."""
        if self.status_cache is not None:
            uow.after_commit(db, self.status_cache.invalidate)


def console(app_state: Any) -> Console:
    settings = app_state.settings
    return Console(sop=app_state.sop, status_cache=getattr(app_state, "status_cache", None),
                   metric_store=getattr(app_state, "metric_store", None),
                   log_file=Path(settings.log_file) if settings.log_file else None,
                   plugins=getattr(app_state, "incident_plugins", None))


def actor(p: Principal) -> str:
    return f"{p.role}:{p.user_id}"


def _text(zh: str, en: str) -> dict[str, str] | None:
    if not zh and not en:
        return None
    return {"zh": zh or en, "en": en or zh}


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    return None if t is None else as_utc(t)


def _audit(db: Session, p: Principal, action: str, target: str, details: dict[str, Any] | None = None) -> None:
    audit.record(db, actor_id=p.user_id, actor_role=p.role, action=action, target=target, details=details)


# --- what the API answers and the pages show ----------------------------------------------------------------

def incident_out(db: Session, inc: Incident, *, with_timeline: bool = False, sop_: incidents.Sop | None = None
                 ) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": inc.id, "title": inc.title, "severity": inc.severity, "status": inc.status, "public": inc.public,
        "components": inc.components, "impact": inc.impact, "source": inc.source, "summary": inc.summary,
        "workaround": inc.workaround, "eta": inc.eta, "roles": inc.roles, "checklist": inc.checklist,
        "alerts": list(inc.alerts.values()), "onset_at": inc.onset_at, "detected_at": inc.detected_at,
        "acknowledged_at": inc.acknowledged_at, "resolved_at": inc.resolved_at, "created_at": inc.created_at,
        "last_public_update_at": inc.last_public_update_at, **incidents.metrics(inc)}
    if with_timeline:
        out["timeline"] = [event_out(ev) for ev in incidents.timeline(db, inc.id)]
        if sop_ is not None:
            out["sop"] = [{"id": i.id, "en": i.en, "zh": i.zh, "done": i.id in inc.checklist}
                          for i in sop_.checklists.get(inc.severity, [])]
    return out


def event_out(ev: IncidentEvent) -> dict[str, Any]:
    return {"id": ev.id, "at": ev.at, "kind": ev.kind, "text": ev.text, "actor": ev.actor, "public": ev.public,
            "status": ev.status, "details": ev.details, "notified_at": ev.notified_at}


def build_report(c: Console, db: Session, incident_id: int, *, with_charts: bool = True) -> Any:
    from waimai.firewall.incidents import report

    return report.build(db, incidents.get(db, incident_id), store=c.metric_store, log_file=c.log_file,
                        with_charts=with_charts, sections=c.report_sections, sop=c.sop)


# --- the actions ----------------------------------------------------------------------------------------------

def create(db: Session, c: Console, p: Principal, body: IncidentIn) -> dict[str, Any]:
    inc = incidents.open_incident(db, c.sop, title=body.title, severity=body.severity,
                                  components=body.components, actor=actor(p), public=body.public,
                                  summary=body.summary, workaround=body.workaround, onset_at=_aware(body.onset_at),
                                  text=_text(body.text_zh, body.text_en))
    incidents.acknowledge(db, inc, actor=actor(p), now=inc.detected_at)  # opened by a person: taken at once
    _audit(db, p, "incident.open", str(inc.id), {"severity": body.severity, "components": body.components})
    c.touched(db)
    return incident_out(db, inc, with_timeline=True, sop_=c.sop)


def change(db: Session, c: Console, p: Principal, incident_id: int, body: IncidentPatch) -> dict[str, Any]:
    inc = incidents.get(db, incident_id)
    incidents.change(db, c.sop, inc, actor=actor(p), severity=body.severity, components=body.components,
                     title=body.title, summary=body.summary, onset_at=_aware(body.onset_at), public=body.public)
    if body.roles is not None:
        incidents.set_roles(db, inc, body.roles, actor=actor(p))
    _audit(db, p, "incident.change", str(inc.id), body.model_dump(mode="json", exclude_none=True))
    c.touched(db)
    return incident_out(db, inc, with_timeline=True, sop_=c.sop)


def post_update(db: Session, c: Console, p: Principal, incident_id: int, body: UpdateIn) -> dict[str, Any]:
    inc = incidents.get(db, incident_id)
    eta = _aware(body.eta)
    if body.eta_minutes is not None:
        eta = utcnow() + dt.timedelta(minutes=body.eta_minutes)
    ev = incidents.post_update(db, c.sop, inc, actor=actor(p), status=body.status,
                               text=_text(body.text_zh, body.text_en), public=body.public, eta=eta,
                               workaround=body.workaround, impact=body.impact)
    if inc.acknowledged_at is None:
        incidents.acknowledge(db, inc, actor=actor(p))
    _audit(db, p, "incident.update", str(inc.id), {"status": inc.status, "public": ev.public})
    c.touched(db)
    db.flush()  # the event's id, in the answer
    return event_out(ev)


def ack(db: Session, p: Principal, incident_id: int) -> dict[str, Any]:
    inc = incidents.get(db, incident_id)
    incidents.acknowledge(db, inc, actor=actor(p))
    _audit(db, p, "incident.ack", str(inc.id))
    return {"id": inc.id, "acknowledged_at": inc.acknowledged_at, **incidents.metrics(inc)}


def note(db: Session, p: Principal, incident_id: int, body: NoteIn) -> dict[str, Any]:
    inc = incidents.get(db, incident_id)
    ev = incidents.record(db, inc, "note", body.text, actor=actor(p))
    _audit(db, p, "incident.note", str(inc.id))
    db.flush()  # the event's id, in the answer
    return event_out(ev)


def check(db: Session, c: Console, p: Principal, incident_id: int, item: str, body: CheckIn) -> dict[str, Any]:
    inc = incidents.get(db, incident_id)
    incidents.tick_checklist(db, c.sop, inc, item, done=body.done, actor=actor(p))
    _audit(db, p, "incident.checklist", str(inc.id), {"item": item, "done": body.done})
    return {"id": inc.id, "checklist": inc.checklist}


def override(db: Session, c: Console, p: Principal, name: str, body: OverrideIn) -> dict[str, Any]:
    incidents.set_override(db, c.sop, name, body.status, actor=actor(p), reason=body.reason)
    _audit(db, p, "status.override", name, {"status": body.status, "reason": body.reason})
    c.touched(db)
    row = incidents.component_rows(db, c.sop)[name]
    return {"name": name, "status": row.status, "override": row.override}


def add_maintenance(db: Session, c: Console, p: Principal, body: MaintenanceIn) -> dict[str, Any]:
    start, end = _aware(body.starts_at), _aware(body.ends_at)
    assert start is not None and end is not None
    if end <= start:
        raise Unprocessable("The maintenance must end after it starts.", code="maintenance_invalid")
    comps = incidents.check_components(c.sop, body.components)
    m = Maintenance(title=body.title, description=body.description, components=comps, starts_at=start, ends_at=end,
                    created_by=actor(p))
    db.add(m)
    _audit(db, p, "status.maintenance", body.title[:120])
    incidents.recompute_components(db, c.sop)
    db.flush()
    c.touched(db)
    return {"id": m.id, "title": m.title, "components": m.components, "starts_at": m.starts_at, "ends_at": m.ends_at}


def compensate(db: Session, c: Console, p: Principal, incident_id: int, body: CompensationIn) -> dict[str, Any]:
    from waimai.firewall import compensation

    if not body.confirm:
        raise Unprocessable("Confirm to issue: coupons cannot be taken back.", code="confirmation_required")
    inc = incidents.get(db, incident_id)
    plan = compensation.plan(db, inc, budget_fen=body.budget_fen, already_compensated=c.already_compensated)
    result = compensation.issue(db, c.sop, inc, plan, actor=actor(p), actor_id=p.user_id)
    _audit(db, p, "incident.compensate", str(inc.id), {"budget_fen": body.budget_fen, **result})
    return {**result, "plan": plan.as_dict()}


def review(db: Session, p: Principal, incident_id: int, body: ReviewIn) -> dict[str, Any]:
    inc = incidents.get(db, incident_id)
    row = db.get(IncidentReview, inc.id) or IncidentReview(incident_id=inc.id)
    row.whys, row.root_cause, row.notes = [w.strip() for w in body.whys], body.root_cause, body.notes
    row.updated_by, row.updated_at = actor(p), utcnow()
    db.add(row)
    incidents.record(db, inc, "review", msg("five whys / root cause updated"), actor=actor(p))
    _audit(db, p, "incident.review", str(inc.id))
    return {"whys": row.whys, "root_cause": row.root_cause, "notes": row.notes}


def add_action(db: Session, p: Principal, incident_id: int, body: ActionIn) -> dict[str, Any]:
    inc = incidents.get(db, incident_id)
    a = IncidentAction(incident_id=inc.id, text=body.text, owner=body.owner, due_at=_aware(body.due_at),
                       created_by=actor(p))
    db.add(a)
    db.flush()
    incidents.record(db, inc, "action", msg("action item #%(id)s for %(owner)s: %(text)s", id=a.id, owner=a.owner,
                                            text=a.text), actor=actor(p))
    _audit(db, p, "incident.action", str(inc.id), {"action": a.id, "owner": a.owner})
    return {"id": a.id, "text": a.text, "owner": a.owner, "due_at": a.due_at, "status": a.status}


def change_action(db: Session, p: Principal, incident_id: int, action_id: int, body: ActionPatch) -> dict[str, Any]:
    inc = incidents.get(db, incident_id)
    a = db.get(IncidentAction, action_id)
    if a is None or a.incident_id != inc.id:
        raise NotFound("No such action item on this incident.")
    a.status = body.status
    a.closed_at, a.closed_by = (utcnow(), actor(p)) if body.status == "done" else (None, None)
    incidents.record(db, inc, "action", msg("action item #%(id)s closed", id=a.id) if body.status == "done"
                     else msg("action item #%(id)s reopened", id=a.id), actor=actor(p))
    _audit(db, p, "incident.action", str(inc.id), {"action": a.id, "status": body.status})
    return {"id": a.id, "status": a.status, "closed_at": a.closed_at, "closed_by": a.closed_by}
