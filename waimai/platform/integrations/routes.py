from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from waimai.core import audit
from waimai.core.deps import API_PREFIX, IdPath, OpsDep, ReadSessionDep, SessionDep
from waimai.core.errors import NotFound
from waimai.platform.integrations import service
from waimai.platform.integrations.http import to_inbound, to_response
from waimai.platform.integrations.mapping import CampusFrame
from waimai.platform.integrations.models import PlatformCallback

router = APIRouter(prefix=API_PREFIX + "/intake", tags=["intake"])


@router.api_route("/{platform}/orders", methods=["GET", "POST"], include_in_schema=False)
async def push(platform: str, request: Request) -> Response:
    """A platform's order push: authenticated by the platform's own signature, answered in its format."""
    adapter = request.app.state.platform_adapters.get(platform)
    if adapter is None:
        raise NotFound(f"No intake configured for {platform!r}.")
    inbound = await to_inbound(request)
    s = request.app.state.settings
    frame = CampusFrame(origin_lat=s.campus_origin_lat, origin_lng=s.campus_origin_lng)
    events = getattr(request.app.state, "security_events", None)
    client = request.client.host if request.client else None

    def rejected(reason: str) -> None:
        if events is not None:
            events.note("signature_failure", client, f"{platform}: {reason}")

    out = await run_in_threadpool(service.receive, request.app.state.db, adapter, inbound, frame,
                                  getattr(request.app.state, "resilience", None), on_rejected=rejected)
    return to_response(out)


@router.get("/reconciliation")
def reconciliation(_p: OpsDep, db: ReadSessionDep, day: dt.date | None = None) -> dict[str, dict[str, Any]]:
    """Per platform for a local day (default today): received, delivered, cancelled, callbacks
    acknowledged, and mismatches to chase."""
    from zoneinfo import ZoneInfo

    return service.reconcile(db, day or dt.datetime.now(ZoneInfo("Asia/Shanghai")).date())


@router.get("/dead-letters")
def dead_letters(_p: OpsDep, db: ReadSessionDep) -> list[dict[str, Any]]:
    """Status callbacks the platforms never accepted after every retry."""
    return service.dead_letters(db)


@router.post("/callbacks/{callback_id}/retry")
def retry(callback_id: IdPath, p: OpsDep, db: SessionDep) -> dict[str, Any]:
    cb = db.get(PlatformCallback, callback_id)
    if cb is None:
        raise NotFound("No such callback.")
    cb.state, cb.attempts = "pending", 0
    audit.record(db, actor_id=p.user_id, actor_role=p.role, action="intake.callback_retry",
                 target=f"callback:{callback_id}")
    return {"id": cb.id, "state": cb.state}
