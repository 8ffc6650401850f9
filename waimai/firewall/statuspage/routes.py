"""Public status API (no login), the Atom feed, and each user's notices and subscription."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from waimai.core.database import utcnow
from waimai.core.deps import API_PREFIX, IdPath, PrincipalDep, ReadSessionDep, SessionDep
from waimai.core.errors import NotFound
from waimai.core.inbox import Notice
from waimai.firewall.incidents.models import StatusSubscriber
from waimai.firewall.statuspage import service as status
from waimai.firewall.statuspage.lastknown import unreachable
from waimai.firewall.statuspage.notices import inbox, read_all

public = APIRouter(prefix=API_PREFIX + "/status", tags=["status page"])
feed = APIRouter(include_in_schema=False)
notices = APIRouter(prefix=API_PREFIX + "/notices", tags=["notices"])
Lang = Annotated[str, Query(pattern="^(en|zh_CN)$")]


@public.get("")
def summary(request: Request, lang: Lang = "en") -> dict[str, Any]:
    """Components, active public incidents with their updates and progress, scheduled maintenance
    (the shape of Atlassian Statuspage's summary.json). While the database is unreachable: the last summary
    this replica read, marked `stale` with its `as_of` time, and the outage laid over it."""
    state = request.app.state
    lk = state.last_known
    if not lk.outage:
        try:
            def read() -> dict[str, Any]:
                with state.db.read_session() as db:
                    return status.summary(db, state.sop, public_url=state.settings.public_url, locale=lang)

            return lk.remember_summary(lang, lk.within(read))
        except Exception as exc:
            if not unreachable(state.db, exc):
                raise
    return lk.summary(lang, public_url=state.settings.public_url,  # type: ignore[no-any-return]
                      names={c: spec.name.get(lang) for c, spec in state.sop.components.items()})


@public.get("/uptime")
def uptime(request: Request, db: ReadSessionDep, days: Annotated[int, Query(ge=1, le=90)] = 90
           ) -> dict[str, Any]:
    """Per component and Shanghai day: uptime % (a major outage counts fully, a partial one 30%)."""
    bars = status.uptime_bars(db, request.app.state.sop, days=days)
    return {c: {"uptime": status.overall_uptime(b), "days": b} for c, b in bars.items()}


@feed.get("/status/feed.atom")
def atom(request: Request, db: ReadSessionDep, lang: Lang = "zh_CN") -> Response:
    body = status.atom_feed(db, request.app.state.sop, public_url=request.app.state.settings.public_url, locale=lang)
    return Response(body, media_type="application/atom+xml")


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sms: bool = True


@public.put("/subscription")
def subscribe(body: SubscriptionIn, p: PrincipalDep, db: SessionDep) -> dict[str, Any]:
    """Hear about every public incident: in the inbox, and by SMS if `sms`."""
    row = db.get(StatusSubscriber, p.user_id)
    if row is None:
        row = StatusSubscriber(user_id=p.user_id)
        db.add(row)
    row.sms = body.sms
    return {"subscribed": True, "sms": row.sms}


@public.delete("/subscription")
def unsubscribe(p: PrincipalDep, db: SessionDep) -> dict[str, Any]:
    row = db.get(StatusSubscriber, p.user_id)
    if row is not None:
        db.delete(row)
    return {"subscribed": False}


@notices.get("")
def my_notices(p: PrincipalDep, db: ReadSessionDep, limit: Annotated[int, Query(ge=1, le=100)] = 30
               ) -> dict[str, Any]:
    rows = inbox(db, p.user_id, limit)
    return {"unread": sum(1 for n in rows if n.read_at is None),
            "notices": [{"id": n.id, "incident_id": n.incident_id, "title": n.title, "body": n.body,
                         "created_at": n.created_at, "read_at": n.read_at, "sms": n.sms} for n in rows]}


@notices.post("/{notice_id}/read")
def mark_read(notice_id: IdPath, p: PrincipalDep, db: SessionDep) -> dict[str, Any]:
    n = db.get(Notice, notice_id)
    if n is None or n.user_id != p.user_id:  # someone else's notice is simply not there for you
        raise NotFound("No such notice.")
    n.read_at = n.read_at or utcnow()
    return {"id": n.id, "read_at": n.read_at}


@notices.post("/read-all")
def mark_all_read(p: PrincipalDep, db: SessionDep) -> dict[str, int]:
    marked = read_all(db, p.user_id)
    return {"marked": marked}
