"""Console: incidents list and the commander's page (timeline, SOP checklist, roles, post update).

The forms call the same actions as the JSON API (/api/v1/incidents): firewall/incidents/flows.py, so both audit
and record alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from waimai.core import uow
from waimai.core.deps import IdPath, Principal
from waimai.core.errors import AppError
from waimai.firewall.incidents import flows, schemas
from waimai.firewall.incidents import service as incidents
from waimai.firewall.incidents.models import Incident
from waimai.firewall.statuspage import service as status
from waimai.web.i18n import current_locale, gettext, say, words
from waimai.web.routes import _need, back, render

router = APIRouter(include_in_schema=False)


def _act(request: Request, url: str, fn: Callable[[Principal, Any], object], ok: str) -> Response:
    """Run one API call for a console form: redirect back with its message or its error."""
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    try:
        with uow.unit_of_work(request.app.state.db) as db:
            fn(p, db)
    except AppError as exc:
        return back(url, err=say(exc))
    except ValidationError as exc:
        return back(url, err="; ".join(str(e["msg"]) for e in exc.errors()))
    return back(url, msg=ok)


@router.get("/ops/incidents")
def incidents_page(request: Request) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    sop: incidents.Sop = request.app.state.sop
    with request.app.state.db.read_session() as db:
        rows = list(db.scalars(select(Incident).order_by(Incident.id.desc()).limit(50)))
        comps = incidents.component_rows(db, sop)
        return render(request, "ops_incidents.html", {
            "open": [i for i in rows if i.status != "resolved"], "closed": [i for i in rows if i.status == "resolved"],
            "metrics": {i.id: incidents.metrics(i) for i in rows}, "sop": sop,
            "names": {i.id: incidents.component_names(sop, list(i.components), current_locale.get()) for i in rows},
            "components": [(c, sop.components[c].name.get(current_locale.get()), r.status, r.override)
                           for c, r in comps.items()], "statuses": incidents.COMPONENT_STATUSES})


@router.post("/ops/incidents")
def open_incident(request: Request, title: str = Form(""), severity: str = Form("P2"),
                  components: list[str] = Form([]), public: str = Form("")) -> Response:
    created: dict[str, Any] = {}

    def go(p: Principal, db: Any) -> None:
        created.update(flows.create(db, flows.console(request.app.state), p, schemas.IncidentIn.model_validate(
            {"title": title, "severity": severity, "components": components, "public": bool(public)})))
    resp = _act(request, "/ops/incidents", go, gettext("Incident opened."))
    if created:
        return back(f"/ops/incidents/{created['id']}", msg=gettext("Incident opened."))
    return resp


@router.get("/ops/incidents/{incident_id}")
def incident_page(request: Request, incident_id: IdPath) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    sop: incidents.Sop = request.app.state.sop
    with request.app.state.db.read_session() as db:
        inc = incidents.get(db, incident_id)
        data = flows.incident_out(db, inc, with_timeline=True, sop_=sop)
        return render(request, "ops_incident.html", {
            "inc": inc, "d": data, "sop": sop, "roles": incidents.ROLES, "stages": status.STAGES,
            "impacts": incidents.COMPONENT_STATUSES,
            "names": incidents.component_names(sop, list(inc.components), current_locale.get())})


@router.post("/ops/incidents/{incident_id}/update")
def post_update(request: Request, incident_id: IdPath, status_: str = Form("", alias="status"),
                text_zh: str = Form(""), text_en: str = Form(""), eta_minutes: str = Form(""),
                workaround: str = Form(""), public: str = Form(""), impact: str = Form("")) -> Response:
    def go(p: Principal, db: Any) -> None:
        body = schemas.UpdateIn.model_validate({
            "status": status_ or None, "text_zh": text_zh, "text_en": text_en, "workaround": workaround or None,
            "eta_minutes": int(eta_minutes) if eta_minutes.strip().isdigit() else None, "public": bool(public),
            "impact": impact or None})
        flows.post_update(db, flows.console(request.app.state), p, incident_id, body)
    return _act(request, f"/ops/incidents/{incident_id}", go, gettext("Update posted."))


@router.post("/ops/incidents/{incident_id}/ack")
def ack(request: Request, incident_id: IdPath) -> Response:
    return _act(request, f"/ops/incidents/{incident_id}", lambda p, db: flows.ack(db, p, incident_id),
                gettext("Acknowledged."))


@router.post("/ops/incidents/{incident_id}/roles")
def roles(request: Request, incident_id: IdPath, commander: str = Form(""), communications: str = Form(""),
          operations: str = Form(""), scribe: str = Form("")) -> Response:
    body = schemas.IncidentPatch(roles={"commander": commander, "communications": communications,
                                    "operations": operations, "scribe": scribe})
    return _act(request, f"/ops/incidents/{incident_id}", lambda p, db: flows.change(db, flows.console(request.app.state), p, incident_id, body),
                gettext("Roles saved."))


@router.post("/ops/incidents/{incident_id}/note")
def note(request: Request, incident_id: IdPath, text: str = Form("")) -> Response:
    return _act(request, f"/ops/incidents/{incident_id}",
                lambda p, db: flows.note(db, p, incident_id, schemas.NoteIn(text=text)), gettext("Note added."))


@router.post("/ops/incidents/{incident_id}/check/{item}")
def check(request: Request, incident_id: IdPath, item: str, done: str = Form("")) -> Response:
    return _act(request, f"/ops/incidents/{incident_id}",
                lambda p, db: flows.check(db, flows.console(request.app.state), p, incident_id, item[:40],
                                          schemas.CheckIn(done=bool(done))),
                gettext("Checklist updated."))


@router.post("/ops/status/{name}")
def override(request: Request, name: str, status_: str = Form("", alias="status"), reason: str = Form("")
             ) -> Response:
    def go(p: Principal, db: Any) -> None:
        flows.override(db, flows.console(request.app.state), p, name[:40],
                       schemas.OverrideIn.model_validate({"status": status_ or None, "reason": reason}))
    return _act(request, "/ops/incidents", go, gettext("Component status saved."))


@router.get("/ops/incidents/{incident_id}/report")
def report_page(request: Request, incident_id: IdPath, budget: str = "") -> Response:
    """The root-cause report with the review, action items and compensation forms."""
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    from markdown_it import MarkdownIt
    from markupsafe import Markup

    from waimai.firewall import compensation
    from waimai.firewall.incidents import report

    with request.app.state.db.read_session() as db:
        r = flows.build_report(flows.console(request.app.state), db, incident_id)
        inc = incidents.get(db, incident_id)
        preview = None
        if budget.strip().isdigit() and int(budget) > 0:
            preview = compensation.plan(db, inc, budget_fen=int(budget) * 100,  # whole yuan
                                        already_compensated=request.app.state.incident_plugins.already_compensated)
        body = MarkdownIt("commonmark", {"html": False}).enable("table").render(
            report.markdown(r, image_dir=None, tr=gettext, words=words))
        return render(request, "ops_report.html", {"inc": inc, "r": r, "body": Markup(body),  # noqa: S704  # nosec B704 - markdown-it escapes (html off)
                                                   "preview": preview, "budget": budget})


@router.post("/ops/incidents/{incident_id}/review")
def review(request: Request, incident_id: IdPath, whys: list[str] = Form([]), root_cause: str = Form(""),
           notes: str = Form("")) -> Response:
    body = schemas.ReviewIn(whys=[w for w in whys if w.strip()], root_cause=root_cause, notes=notes)
    return _act(request, f"/ops/incidents/{incident_id}/report",
                lambda p, db: flows.review(db, p, incident_id, body), gettext("Review saved."))


@router.post("/ops/incidents/{incident_id}/actions")
def add_action(request: Request, incident_id: IdPath, text: str = Form(""), owner: str = Form("")) -> Response:
    def go(p: Principal, db: Any) -> None:
        flows.add_action(db, p, incident_id, schemas.ActionIn.model_validate({"text": text, "owner": owner}))
    return _act(request, f"/ops/incidents/{incident_id}/report", go, gettext("Action item added."))


@router.post("/ops/incidents/{incident_id}/actions/{action_id}")
def close_action(request: Request, incident_id: IdPath, action_id: IdPath, status_: str = Form("done", alias="status")
                 ) -> Response:
    def go(p: Principal, db: Any) -> None:
        flows.change_action(db, p, incident_id, action_id, schemas.ActionPatch.model_validate({"status": status_}))
    return _act(request, f"/ops/incidents/{incident_id}/report", go, gettext("Action item updated."))


@router.post("/ops/incidents/{incident_id}/compensate")
def compensate(request: Request, incident_id: IdPath, budget_yuan: str = Form(""), confirm: str = Form("")
               ) -> Response:
    def go(p: Principal, db: Any) -> None:
        fen = int(budget_yuan) * 100 if budget_yuan.strip().isdigit() else 0
        flows.compensate(db, flows.console(request.app.state), p, incident_id, schemas.CompensationIn.model_validate(
            {"budget_fen": fen, "confirm": bool(confirm)}))
    return _act(request, f"/ops/incidents/{incident_id}/report", go, gettext("Coupons issued."))
