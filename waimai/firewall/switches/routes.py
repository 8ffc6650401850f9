from __future__ import annotations

import datetime as dt

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from waimai.core.deps import API_PREFIX, OpsDep, ReadSessionDep, SessionDep
from waimai.firewall.switches import service

router = APIRouter(prefix=API_PREFIX + "/switches", tags=["switches"])


class SwitchOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    enabled: bool
    reason: str
    updated_by: str
    updated_at: dt.datetime


class SwitchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool
    reason: str = Field(default="", max_length=200)


@router.get("", response_model=list[SwitchOut])
def list_switches(_p: OpsDep, db: ReadSessionDep) -> list[SwitchOut]:
    return [SwitchOut.model_validate(s) for s in service.all_switches(db)]


@router.put("/{name}", response_model=SwitchOut)
def put_switch(name: str, body: SwitchIn, p: OpsDep, db: SessionDep) -> SwitchOut:
    row = service.set_switch(db, name, enabled=body.enabled, actor_id=p.user_id, actor_role=p.role,
                             reason=body.reason)
    db.commit()
    return SwitchOut.model_validate(row)
