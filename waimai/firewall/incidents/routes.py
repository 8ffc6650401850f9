"""Incident API for the console and for tools (ops role; every change audited and on the timeline).

Thin: each route parses, authorises and calls the action in `flows.py`, which the console pages call too.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import Field
from sqlalchemy import select

from waimai.core.deps import API_PREFIX, IdPath, OpsDep, ReadSessionDep, SessionDep
from waimai.firewall.incidents import flows
from waimai.firewall.incidents import service as incidents
from waimai.firewall.incidents.models import Incident
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

router = APIRouter(prefix=API_PREFIX + "/incidents", tags=["incidents"])


def _c(request: Request) -> flows.Console:
    return flows.console(request.app.state)


@router.get("")
def list_incidents(_p: OpsDep, db: ReadSessionDep,
                   state: Annotated[Literal["open", "all"], Query()] = "open",
                   limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[dict[str, Any]]:
    q = select(Incident).order_by(Incident.id.desc()).limit(limit)
    if state == "open":
        q = q.where(Incident.status.in_(incidents.OPEN))
    return [flows.incident_out(db, i) for i in db.scalars(q)]


@router.post("", status_code=201)
def create(body: IncidentIn, p: OpsDep, db: SessionDep, request: Request) -> dict[str, Any]:
    return flows.create(db, _c(request), p, body)


@router.get("/{incident_id}")
def show(incident_id: IdPath, _p: OpsDep, db: ReadSessionDep, request: Request) -> dict[str, Any]:
    return flows.incident_out(db, incidents.get(db, incident_id), with_timeline=True, sop_=_c(request).sop)


@router.patch("/{incident_id}")
def patch(incident_id: IdPath, body: IncidentPatch, p: OpsDep, db: SessionDep, request: Request) -> dict[str, Any]:
    return flows.change(db, _c(request), p, incident_id, body)


@router.post("/{incident_id}/updates", status_code=201)
def update(incident_id: IdPath, body: UpdateIn, p: OpsDep, db: SessionDep, request: Request) -> dict[str, Any]:
    return flows.post_update(db, _c(request), p, incident_id, body)


@router.post("/{incident_id}/ack")
def ack(incident_id: IdPath, p: OpsDep, db: SessionDep) -> dict[str, Any]:
    return flows.ack(db, p, incident_id)


@router.post("/{incident_id}/notes", status_code=201)
def note(incident_id: IdPath, body: NoteIn, p: OpsDep, db: SessionDep) -> dict[str, Any]:
    return flows.note(db, p, incident_id, body)


@router.put("/{incident_id}/checklist/{item}")
def check(incident_id: IdPath, item: Annotated[str, Field(max_length=40)], body: CheckIn, p: OpsDep,
          db: SessionDep, request: Request) -> dict[str, Any]:
    return flows.check(db, _c(request), p, incident_id, item, body)


# --- component overrides and maintenance (under /api/v1/status, ops only) ---------------------------------

ops_status = APIRouter(prefix=API_PREFIX + "/status", tags=["status page"])


@ops_status.put("/components/{name}")
def override(name: Annotated[str, Field(max_length=40)], body: OverrideIn, p: OpsDep, db: SessionDep,
             request: Request) -> dict[str, Any]:
    return flows.override(db, _c(request), p, name, body)


@ops_status.post("/maintenances", status_code=201)
def add_maintenance(body: MaintenanceIn, p: OpsDep, db: SessionDep, request: Request) -> dict[str, Any]:
    return flows.add_maintenance(db, _c(request), p, body)


@router.get("/{incident_id}/compensation")
def compensation_preview(incident_id: IdPath, _p: OpsDep, db: ReadSessionDep, request: Request,
                         budget_fen: Annotated[int, Query(gt=0, le=10_000_000)]) -> dict[str, Any]:
    """Who would get what, within `budget_fen` — nothing is issued."""
    from waimai.firewall import compensation

    return compensation.plan(db, incidents.get(db, incident_id), budget_fen=budget_fen,
                             already_compensated=_c(request).already_compensated).as_dict()


@router.post("/{incident_id}/compensation")
def compensation_issue(incident_id: IdPath, body: CompensationIn, p: OpsDep, db: SessionDep,
                       request: Request) -> dict[str, Any]:
    return flows.compensate(db, _c(request), p, incident_id, body)


@router.get("/{incident_id}/compensation/report")
def compensation_report(incident_id: IdPath, _p: OpsDep, db: ReadSessionDep) -> dict[str, Any]:
    from waimai.firewall import compensation

    incidents.get(db, incident_id)
    return compensation.report(db, incident_id)


# --- root-cause report, review and action items ------------------------------------------------------------

@router.get("/{incident_id}/report")
def report_json(incident_id: IdPath, _p: OpsDep, db: ReadSessionDep, request: Request) -> dict[str, Any]:
    """The report's facts as JSON (the charts are in the .html and .md forms)."""
    from dataclasses import asdict

    data = asdict(flows.build_report(_c(request), db, incident_id, with_charts=False))
    data.pop("charts")
    return data


@router.get("/{incident_id}/report.md")
def report_markdown(incident_id: IdPath, _p: OpsDep, db: ReadSessionDep, request: Request) -> Response:
    from waimai.firewall.incidents import report

    return Response(report.markdown(flows.build_report(_c(request), db, incident_id), image_dir=None),
                    media_type="text/markdown; charset=utf-8")


@router.get("/{incident_id}/report.html")
def report_html(incident_id: IdPath, _p: OpsDep, db: ReadSessionDep, request: Request) -> Response:
    from waimai.firewall.incidents import report

    return Response(report.html(flows.build_report(_c(request), db, incident_id)),
                    media_type="text/html; charset=utf-8")


@router.put("/{incident_id}/review")
def put_review(incident_id: IdPath, body: ReviewIn, p: OpsDep, db: SessionDep) -> dict[str, Any]:
    return flows.review(db, p, incident_id, body)


@router.post("/{incident_id}/actions", status_code=201)
def add_action(incident_id: IdPath, body: ActionIn, p: OpsDep, db: SessionDep) -> dict[str, Any]:
    return flows.add_action(db, p, incident_id, body)


@router.patch("/{incident_id}/actions/{action_id}")
def patch_action(incident_id: IdPath, action_id: IdPath, body: ActionPatch, p: OpsDep, db: SessionDep
                 ) -> dict[str, Any]:
    return flows.change_action(db, p, incident_id, action_id, body)
