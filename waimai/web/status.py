"""The public status page (no login, zh-CN/en, works without JavaScript) and each user's inbox."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from waimai.core.deps import IdPath
from waimai.core.deps import principal_from as optional_principal
from waimai.core.errors import NotFound
from waimai.firewall.incidents import service as incidents
from waimai.firewall.incidents.models import Incident, IncidentEvent, StatusSubscriber
from waimai.firewall.statuspage import service as status
from waimai.firewall.statuspage.notices import inbox, read_all
from waimai.web.i18n import current_locale, gettext
from waimai.web.routes import TEMPLATES, _locale, _need, back, render

router = APIRouter(include_in_schema=False)


def _helpers(request: Request) -> dict[str, Any]:
    sop: incidents.Sop = request.app.state.sop

    def names(components: list[str]) -> str:
        return incidents.component_names(sop, list(components), current_locale.get())

    def text_of(ev: IncidentEvent) -> str:
        return status.event_text(ev, current_locale.get())

    def title_of(inc: Incident) -> str:
        return incidents.public_title(sop, inc, current_locale.get())

    return {"components_names": names, "text_of": text_of, "title_of": title_of, "progress": status.progress, "stages": status.STAGES,
            "banners": []}  # the page itself says it all


TEMPLATES.env.globals["progress"] = status.progress


@router.get("/status")
def status_page(request: Request) -> Response:
    sop: incidents.Sop = request.app.state.sop
    p = optional_principal(request)
    loc = _locale(request)
    with request.app.state.db.read_session() as db:
        rows = incidents.component_rows(db, sop)
        bars = status.uptime_bars(db, sop)
        active = [i for i in incidents.open_incidents(db) if i.public]
        updates = status.public_updates(db, [i.id for i in active])
        past = [i for i in status.recent_public_incidents(db) if i.status == "resolved"]
        maint = status.maintenances(db)
        subscribed = p is not None and db.get(StatusSubscriber, p.user_id) is not None
        worst = max((r.status for r in rows.values()), key=lambda s: incidents.RANK[s], default="operational")
        comps = [{"id": c, "name": sop.components[c].name.get(loc), "status": r.status, "bars": bars[c],
                  "uptime": status.overall_uptime(bars[c])} for c, r in rows.items()]
        return render(request, "status.html", {"components": comps, "active": active, "updates": updates,
                                               "past": past, "maintenances": maint, "subscribed": subscribed,
                                               "indicator": status.INDICATOR[worst], **_helpers(request)})


@router.get("/status/incidents/{incident_id}")
def incident_page(request: Request, incident_id: IdPath) -> Response:
    with request.app.state.db.read_session() as db:
        inc = db.get(Incident, incident_id)
        if inc is None or not inc.public:
            raise NotFound("No such incident.")
        updates = status.public_updates(db, [inc.id])[inc.id]
        return render(request, "status_incident.html", {"inc": inc, "updates": updates, **_helpers(request)})


@router.post("/status/subscription")
def subscription(request: Request, action: str = Form("subscribe")) -> Response:
    p = _need(request)
    if isinstance(p, RedirectResponse):
        return p
    with request.app.state.db.session() as db:
        row = db.get(StatusSubscriber, p.user_id)
        if action == "subscribe" and row is None:
            db.add(StatusSubscriber(user_id=p.user_id, sms=True))
        elif action != "subscribe" and row is not None:
            db.delete(row)
        db.commit()
    return back("/status", msg=gettext("Subscribed: incident updates will reach your inbox and phone.")
                if action == "subscribe" else gettext("Unsubscribed."))


@router.get("/notices")
def notices_page(request: Request) -> Response:
    p = _need(request)
    if isinstance(p, RedirectResponse):
        return p
    with request.app.state.db.read_session() as db:
        return render(request, "notices.html", {"notices": inbox(db, p.user_id)})


@router.post("/notices/read-all")
def notices_read(request: Request) -> Response:
    p = _need(request)
    if isinstance(p, RedirectResponse):
        return p
    with request.app.state.db.session() as db:
        read_all(db, p.user_id)
        db.commit()
    return back("/notices")
