from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import select

from waimai.core import events, uow
from waimai.core.audit import AuditEntry
from waimai.core.deps import API_PREFIX, IdPath, OpsDep, ReadSessionDep, SessionDep

router = APIRouter(prefix=API_PREFIX, tags=["ops"])


class AuditOut(BaseModel):
    id: int
    at: dt.datetime
    actor_id: int | None
    actor_role: str
    action: str
    target: str
    details: dict[str, Any]


@router.get("/ops/audit", response_model=list[AuditOut])
def audit_log(_p: OpsDep, db: ReadSessionDep, action: Annotated[str | None, Query(max_length=80)] = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[AuditOut]:
    q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action:
        q = q.where(AuditEntry.action == action)
    return [AuditOut(id=e.id, at=e.at, actor_id=e.actor_id, actor_role=e.actor_role, action=e.action,
                     target=e.target, details=e.details) for e in db.scalars(q)]


# --- the event path: dead letters, retry and purge (waimai/core/events.py) ----------------------------------

class DeadLetterOut(BaseModel):
    id: int
    topic: str
    key: str
    payload: dict[str, Any]
    created_at: dt.datetime
    attempts: int
    dead_at: dt.datetime | None
    last_error: str | None
    failed_subscribers: list[str]


class EventsOut(BaseModel):
    pending: int
    dead: int
    delivered: int
    dispatcher: dict[str, Any]
    dead_letters: list[DeadLetterOut]


@router.get("/ops/events", response_model=EventsOut)
def event_path(_p: OpsDep, db: ReadSessionDep, request: Request,
               limit: Annotated[int, Query(ge=1, le=500)] = 100) -> EventsOut:
    """The outbox as the dispatcher sees it: how many events wait, are dead or delivered; its subscribers; the
    dead letters with the subscribers that failed them."""
    return EventsOut(**events.counts(db), dispatcher=request.app.state.events.status(),
                     dead_letters=[DeadLetterOut(**d) for d in events.dead_letters(db, limit)])


@router.post("/ops/events/{event_id}/retry", response_model=DeadLetterOut)
def retry_event(event_id: IdPath, p: OpsDep, db: SessionDep, request: Request) -> DeadLetterOut:
    """Give a dead letter its attempts back: the subscribers that failed it get it again (the others had it)."""
    row = events.retry(db, event_id, actor_id=p.user_id, actor_role=p.role)
    out = DeadLetterOut(id=row.id, topic=row.topic, key=row.key, payload=row.payload, created_at=row.created_at,
                        attempts=row.attempts, dead_at=row.dead_at, last_error=row.last_error, failed_subscribers=[])
    uow.after_commit(db, request.app.state.events.wake)  # the dispatcher looks again once this is stored
    return out


@router.post("/ops/events/{event_id}/purge", status_code=204)
def purge_event(event_id: IdPath, p: OpsDep, db: SessionDep) -> None:
    """Drop a dead letter: ops decided the reactions it still owes are not owed any more."""
    events.discard(db, event_id, actor_id=p.user_id, actor_role=p.role)
