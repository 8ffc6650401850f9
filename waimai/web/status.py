"""The public status page (no login, zh-CN/en, works without JavaScript) and each user's inbox."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import escape as _escape

from waimai.core import uow
from waimai.core.deps import IdPath
from waimai.core.deps import principal_from as optional_principal
from waimai.core.errors import NotFound
from waimai.core.timeutil import hhmm
from waimai.firewall.incidents import service as incidents
from waimai.firewall.incidents.models import Incident, IncidentEvent, StatusSubscriber
from waimai.firewall.statuspage import service as status
from waimai.firewall.statuspage.lastknown import TEXT, unreachable
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


def escape(text: str) -> str:
    return str(_escape(text))  # a plain str: Markup would escape the page it is joined to


def _stale_page(request: Request, loc: str) -> Response:
    """The database is gone: the last status page this replica rendered, with the outage notice on top."""
    lk = request.app.state.last_known
    kept = lk.page(loc)
    since = lk.outage_since()
    zh = loc.startswith("zh")
    lang = "zh" if zh else "en"
    as_of = hhmm(kept[0]) if kept else None
    note = (f'<section class="card banner banner-partial_outage" id="last-known" data-stale="true" '
            f'data-banner="ordering"><strong>{escape(TEXT["title"][lang])}</strong>'
            f'<p>{escape(TEXT["body"][lang])}</p><p class="muted">'
            + escape((f"以下为 {as_of} 的最近已知状态" if zh else f"Below: the last known state, as of {as_of}")
                     if as_of else ("暂无更早的状态记录" if zh else "No earlier state is known"))
            + (escape(f"（自 {hhmm(since)} 起）" if zh else f" (since {hhmm(since)})")
               if since else "") + "</p></section>")
    if kept is None:
        body = (f'<!doctype html><html lang="{"zh-CN" if zh else "en"}"><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>'
                f'{"服务状态" if zh else "System status"}</title><main>{note}</main></html>')
        return HTMLResponse(body, headers={"Cache-Control": "no-store"})
    html = kept[1].decode("utf-8")
    at = html.find("<main")
    at = html.find(">", at) + 1 if at >= 0 else html.find("<body") + 1
    if at <= 0:
        html = note + html
    else:
        html = html[:at] + note + html[at:]
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get("/status")
def status_page(request: Request) -> Response:
    loc = _locale(request)
    lk = request.app.state.last_known
    if lk.outage:
        return _stale_page(request, loc)
    try:
        resp = lk.within(lambda: _status_page(request, loc))
    except Exception as exc:
        if not unreachable(request.app.state.db, exc):
            raise
        return _stale_page(request, loc)
    if optional_principal(request) is None:  # the copy everyone may see: nobody's subscription or name in it
        lk.remember_page(loc, bytes(resp.body))
    return resp


def _status_page(request: Request, loc: str) -> Response:
    sop: incidents.Sop = request.app.state.sop
    p = optional_principal(request)
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
    with uow.unit_of_work(request.app.state.db) as db:
        row = db.get(StatusSubscriber, p.user_id)
        if action == "subscribe" and row is None:
            db.add(StatusSubscriber(user_id=p.user_id, sms=True))
        elif action != "subscribe" and row is not None:
            db.delete(row)
    return back("/status", msg=gettext("Subscribed: incident updates will reach your inbox and phone.")
                if action == "subscribe" else gettext("Unsubscribed."))


@router.get("/notices")
def notices_page(request: Request) -> Response:
    p = _need(request)
    if isinstance(p, RedirectResponse):
        return p
    lk = request.app.state.last_known
    if not lk.outage:
        try:
            with request.app.state.db.read_session() as db:
                return render(request, "notices.html", {"notices": lk.remember_inbox(p.user_id, inbox(db, p.user_id))})
        except Exception as exc:
            if not unreachable(request.app.state.db, exc):
                raise
    as_of, kept = lk.inbox(p.user_id)
    return render(request, "notices.html", {"notices": kept, "stale": True, "as_of": as_of})


@router.post("/notices/read-all")
def notices_read(request: Request) -> Response:
    p = _need(request)
    if isinstance(p, RedirectResponse):
        return p
    with uow.unit_of_work(request.app.state.db) as db:
        read_all(db, p.user_id)
    return back("/notices")
