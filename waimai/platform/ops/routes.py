from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from waimai.core.audit import AuditEntry
from waimai.core.deps import API_PREFIX, OpsDep, ReadSessionDep

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
