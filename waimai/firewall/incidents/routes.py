"""Incident API for the console and for tools (ops role; every change audited and on the timeline)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from waimai.core import audit, uow
from waimai.core.database import utcnow
from waimai.core.deps import API_PREFIX, IdPath, OpsDep, Principal, ReadSessionDep, SessionDep
from waimai.core.timeutil import as_utc
from waimai.firewall.incidents import service as incidents
from waimai.firewall.incidents.models import Incident, IncidentEvent, Maintenance

router = APIRouter(prefix=API_PREFIX + "/incidents", tags=["incidents"])
Status = Literal["investigating", "identified", "monitoring", "resolved"]
Sev = Literal["P1", "P2", "P3", "P4"]
Impact = Literal["operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage"]


def actor(p: Principal) -> str:
    return f"{p.role}:{p.user_id}"


def sop(request: Request) -> incidents.Sop:
    return request.app.state.sop  # type: ignore[no-any-return]


def touched(request: Request) -> None:
    cache = getattr(request.app.state, "status_cache", None)
    if cache is not None:
        cache.invalidate()


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


class IncidentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=3, max_length=200)
    severity: Sev
    components: list[str] = Field(default=[], max_length=10)
    public: bool = True
    summary: str = Field(default="", max_length=2000)
    workaround: str = Field(default="", max_length=300)
    onset_at: dt.datetime | None = None
    text_zh: str = Field(default="", max_length=1000)
    text_en: str = Field(default="", max_length=1000)


class IncidentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, min_length=3, max_length=200)
    severity: Sev | None = None
    components: list[str] | None = Field(default=None, max_length=10)
    public: bool | None = None
    summary: str | None = Field(default=None, max_length=2000)
    onset_at: dt.datetime | None = None
    roles: dict[str, str] | None = None


class UpdateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Status | None = None
    text_zh: str = Field(default="", max_length=1000)
    text_en: str = Field(default="", max_length=1000)
    public: bool | None = None
    eta: dt.datetime | None = None
    eta_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    workaround: str | None = Field(default=None, max_length=300)
    impact: Impact | None = None


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=1000)


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    done: bool = True


def _text(zh: str, en: str) -> dict[str, str] | None:
    if not zh and not en:
        return None
    return {"zh": zh or en, "en": en or zh}


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    return None if t is None else as_utc(t)


@router.get("")
def list_incidents(_p: OpsDep, db: ReadSessionDep,
                   state: Annotated[Literal["open", "all"], Query()] = "open",
                   limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[dict[str, Any]]:
    q = select(Incident).order_by(Incident.id.desc()).limit(limit)
    if state == "open":
        q = q.where(Incident.status.in_(incidents.OPEN))
    return [incident_out(db, i) for i in db.scalars(q)]


@router.post("", status_code=201)
def create(body: IncidentIn, p: OpsDep, db: SessionDep, request: Request) -> dict[str, Any]:
    inc = incidents.open_incident(db, sop(request), title=body.title, severity=body.severity,
                                  components=body.components, actor=actor(p), public=body.public,
                                  summary=body.summary, workaround=body.workaround, onset_at=_aware(body.onset_at),
                                  text=_text(body.text_zh, body.text_en))
    incidents.acknowledge(db, inc, actor=actor(p), now=inc.detected_at)  # opened by a person: taken at once
    audit.record(db, actor_id=p.user_id, actor_role=p.role, action="incident.open", target=str(inc.id),
                 details={"severity": body.severity, "components": body.components})
    uow.after_commit(db, lambda: touched(request))  # the status page reads the stored change
    return incident_out(db, inc, with_timeline=True, sop_=sop(request))


@router.get("/{incident_id}")
def show(incident_id: IdPath, _p: OpsDep, db: ReadSessionDep, request: Request) -> dict[str, Any]:
    return incident_out(db, incidents.get(db, incident_id), with_timeline=True, sop_=sop(request))


@router.patch("/{incident_id}")
def patch(incident_id: IdPath, body: IncidentPatch, p: OpsDep, db: SessionDep, request: Request) -> dict[str, Any]:
    inc = incidents.get(db, incident_id)
    incidents.change(db, sop(request), inc, actor=actor(p), severity=body.severity, components=body.components,
                     title=body.title, summary=body.summary, onset_at=_aware(body.onset_at), public=body.public)
    if body.roles is not None:
        incidents.set_roles(db, inc, body.roles, actor=actor(p))
    audit.record(db, actor_id=p.user_id, actor_role=p.role, action="incident.change", target=str(inc.id),
                 details=body.model_dump(mode="json", exclude_none=True))
    uow.after_commit(db, lambda: touched(request))  # the status page reads the stored change
    return incident_out(db, inc, with_timeline=True, sop_=sop(request))


@router.post("/{incident_id}/updates", status_code=201)
def update(incident_id: IdPath, body: UpdateIn, p: OpsDep, db: SessionDep, request: Request) -> dict[str, Any]:
    inc = incidents.get(db, incident_id)
    eta = _aware(body.eta)
    if body.eta_minutes is not None:
        eta = utcnow() + dt.timedelta(minutes=body.eta_minutes)
    ev = incidents.post_update(db, sop(request), inc, actor=actor(p), status=body.status,
                               text=_text(body.text_zh, body.text_en), public=body.public, eta=eta,
                               workaround=body.workaround, impact=body.impact)
    if inc.acknowledged_at is None:
        incidents.acknowledge(db, inc, actor=actor(p))
    audit.record(db, actor_id=p.user_id, actor_role=p.role, action="incident.update", target=str(inc.id),
                 details={"status": inc.status, "public": ev.public})
    uow.after_commit(db, lambda: touched(request))  # the status page reads the stored change
    return event_out(ev)


@router.post("/{incident_id}/ack")
def ack(incident_id: IdPath, p: OpsDep, db: SessionDep) -> dict[str, Any]:
    inc = incidents.get(db, incident_id)
    incidents.acknowledge(db, inc, actor=actor(p))
    audit.record(db, actor_id=p.user_id, actor_role=p.role, action="incident.ack", target=str(inc.id))
    return {"id": inc.id, "acknowledged_at": inc.acknowledged_at, **incidents.metrics(inc)}


@router.post("/{incident_id}/notes", status_code=201)
def note(incident_id: IdPath, body: NoteIn, p: OpsDep, db: SessionDep) -> dict[str, Any]:
    inc = incidents.get(db, incident_id)
    ev = incidents.record(db, inc, "note", body.text, actor=actor(p))
    audit.record(db, actor_id=p.user_id, actor_role=p.role, action="incident.note", target=str(inc.id))
    return event_out(ev)


@router.put("/{incident_id}/checklist/{item}")
def check(incident_id: IdPath, item: Annotated[str, Field(max_length=40)], body: CheckIn, p: OpsDep,
          db: SessionDep, request: Request) -> dict[str, Any]:
    inc = incidents.get(db, incident_id)
    incidents.tick_checklist(db, sop(request), inc, item, done=body.done, actor=actor(p))
    audit.record(db, actor_id=p.user_id, actor_role=p.role, action="incident.checklist", target=str(inc.id),
                 details={"item": item, "done": body.done})
    return {"id": inc.id, "checklist": inc.checklist}


# --- component overrides and maintenance (under /api/v1/status, ops only) ---------------------------------

ops_status = APIRouter(prefix=API_PREFIX + "/status", tags=["status page"])


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Impact | None = Field(description="null clears the override: the status follows incidents again")
    reason: str = Field(default="", max_length=200)


class MaintenanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=3, max_length=200)
    description: str = Field(default="", max_length=1000)
    components: list[str] = Field(min_length=1, max_length=10)
    starts_at: dt.datetime
    ends_at: dt.datetime


@ops_status.put("/components/{name}")
def override(name: Annotated[str, Field(max_length=40)], body: OverrideIn, p: OpsDep, db: SessionDep,
             request: Request) -> dict[str, Any]:
    incidents.set_override(db, sop(request), name, body.status, actor=actor(p), reason=body.reason)
    audit.record(db, actor_id=p.user_id, actor_role=p.role, action="status.override", target=name,
                 details={"status": body.status, "reason": body.reason})
    uow.after_commit(db, lambda: touched(request))  # the status page reads the stored change
    row = incidents.component_rows(db, sop(request))[name]
    return {"name": name, "status": row.status, "override": row.override}


@ops_status.post("/maintenances", status_code=201)
def add_maintenance(body: MaintenanceIn, p: OpsDep, db: SessionDep, request: Request) -> dict[str, Any]:
    from waimai.core.errors import Unprocessable

    start, end = _aware(body.starts_at), _aware(body.ends_at)
    assert start is not None and end is not None
    if end <= start:
        raise Unprocessable("The maintenance must end after it starts.", code="maintenance_invalid")
    comps = incidents.check_components(sop(request), body.components)
    m = Maintenance(title=body.title, description=body.description, components=comps, starts_at=start, ends_at=end,
                    created_by=actor(p))
    db.add(m)
    audit.record(db, actor_id=p.user_id, actor_role=p.role, action="status.maintenance", target=body.title[:120])
    incidents.recompute_components(db, sop(request))
    uow.after_commit(db, lambda: touched(request))  # the status page reads the stored change
    return {"id": m.id, "title": m.title, "components": m.components, "starts_at": m.starts_at, "ends_at": m.ends_at}


# --- compensation (ops only): preview, issue, report ---------------------------------------------------

class CompensationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    budget_fen: int = Field(gt=0, le=10_000_000)
    confirm: bool = Field(description="must be true: coupons cannot be taken back")


@router.get("/{incident_id}/compensation")
def compensation_preview(incident_id: IdPath, _p: OpsDep, db: ReadSessionDep,
                         budget_fen: Annotated[int, Query(gt=0, le=10_000_000)]) -> dict[str, Any]:
    """Who would get what, within `budget_fen` — nothing is issued."""
    from waimai.firewall import compensation

    return compensation.plan(db, incidents.get(db, incident_id), budget_fen=budget_fen).as_dict()


@router.post("/{incident_id}/compensation")
def compensation_issue(incident_id: IdPath, body: CompensationIn, p: OpsDep, db: SessionDep,
                       request: Request) -> dict[str, Any]:
    from waimai.core.errors import Unprocessable
    from waimai.firewall import compensation

    if not body.confirm:
        raise Unprocessable("Confirm to issue: coupons cannot be taken back.", code="confirmation_required")
    inc = incidents.get(db, incident_id)
    plan = compensation.plan(db, inc, budget_fen=body.budget_fen)
    result = compensation.issue(db, sop(request), inc, plan, actor=actor(p), actor_id=p.user_id)
    audit.record(db, actor_id=p.user_id, actor_role=p.role, action="incident.compensate", target=str(inc.id),
                 details={"budget_fen": body.budget_fen, **result})
    return {**result, "plan": plan.as_dict()}


@router.get("/{incident_id}/compensation/report")
def compensation_report(incident_id: IdPath, _p: OpsDep, db: ReadSessionDep) -> dict[str, Any]:
    from waimai.firewall import compensation

    incidents.get(db, incident_id)
    return compensation.report(db, incident_id)


# --- root-cause report, review and action items ------------------------------------------------------------

def build_report(request: Request, db: Session, incident_id: int, *, with_charts: bool = True) -> Any:
    from pathlib import Path

    from waimai.firewall.incidents import report

    settings = request.app.state.settings
    return report.build(db, incidents.get(db, incident_id), store=getattr(request.app.state, "metric_store", None),
                        log_file=Path(settings.log_file) if settings.log_file else None, with_charts=with_charts)


@router.get("/{incident_id}/report")
def report_json(incident_id: IdPath, _p: OpsDep, db: ReadSessionDep, request: Request) -> dict[str, Any]:
    """The report's facts as JSON (the charts are in the .html and .md forms)."""
    from dataclasses import asdict

    data = asdict(build_report(request, db, incident_id, with_charts=False))
    data.pop("charts")
    return data


@router.get("/{incident_id}/report.md")
def report_markdown(incident_id: IdPath, _p: OpsDep, db: ReadSessionDep, request: Request) -> Response:
    from waimai.firewall.incidents import report

    return Response(report.markdown(build_report(request, db, incident_id), image_dir=None),
                    media_type="text/markdown; charset=utf-8")


@router.get("/{incident_id}/report.html")
def report_html(incident_id: IdPath, _p: OpsDep, db: ReadSessionDep, request: Request) -> Response:
    from waimai.firewall.incidents import report

    return Response(report.html(build_report(request, db, incident_id)), media_type="text/html; charset=utf-8")


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    whys: list[Annotated[str, Field(max_length=500)]] = Field(default=[], max_length=10)
    root_cause: str = Field(default="", max_length=2000)
    notes: str = Field(default="", max_length=5000)


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=3, max_length=300)
    owner: str = Field(min_length=1, max_length=60)
    due_at: dt.datetime | None = None


class ActionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["open", "done"]


@router.put("/{incident_id}/review")
def put_review(incident_id: IdPath, body: ReviewIn, p: OpsDep, db: SessionDep) -> dict[str, Any]:
    from waimai.firewall.incidents.models import IncidentReview

    inc = incidents.get(db, incident_id)
    row = db.get(IncidentReview, inc.id) or IncidentReview(incident_id=inc.id)
    row.whys, row.root_cause, row.notes = [w.strip() for w in body.whys], body.root_cause, body.notes
    row.updated_by, row.updated_at = actor(p), utcnow()
    db.add(row)
    incidents.record(db, inc, "review", "five whys / root cause updated", actor=actor(p))
    audit.record(db, actor_id=p.user_id, actor_role=p.role, action="incident.review", target=str(inc.id))
    return {"whys": row.whys, "root_cause": row.root_cause, "notes": row.notes}


@router.post("/{incident_id}/actions", status_code=201)
def add_action(incident_id: IdPath, body: ActionIn, p: OpsDep, db: SessionDep) -> dict[str, Any]:
    from waimai.firewall.incidents.models import IncidentAction

    inc = incidents.get(db, incident_id)
    a = IncidentAction(incident_id=inc.id, text=body.text, owner=body.owner, due_at=_aware(body.due_at),
                       created_by=actor(p))
    db.add(a)
    db.flush()
    incidents.record(db, inc, "action", f"action item #{a.id} for {a.owner}: {a.text}", actor=actor(p))
    audit.record(db, actor_id=p.user_id, actor_role=p.role, action="incident.action", target=str(inc.id),
                 details={"action": a.id, "owner": a.owner})
    return {"id": a.id, "text": a.text, "owner": a.owner, "due_at": a.due_at, "status": a.status}


@router.patch("/{incident_id}/actions/{action_id}")
def patch_action(incident_id: IdPath, action_id: IdPath, body: ActionPatch, p: OpsDep, db: SessionDep
                 ) -> dict[str, Any]:
    from waimai.core.errors import NotFound
    from waimai.firewall.incidents.models import IncidentAction

    inc = incidents.get(db, incident_id)
    a = db.get(IncidentAction, action_id)
    if a is None or a.incident_id != inc.id:
        raise NotFound("No such action item on this incident.")
    a.status = body.status
    a.closed_at, a.closed_by = (utcnow(), actor(p)) if body.status == "done" else (None, None)
    incidents.record(db, inc, "action", f"action item #{a.id} {'closed' if body.status == 'done' else 'reopened'}",
                     actor=actor(p))
    audit.record(db, actor_id=p.user_id, actor_role=p.role, action="incident.action", target=str(inc.id),
                 details={"action": a.id, "status": body.status})
    return {"id": a.id, "status": a.status, "closed_at": a.closed_at, "closed_by": a.closed_by}
