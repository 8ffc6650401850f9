from __future__ import annotations

import datetime as dt
import re

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from waimai.core.deps import API_PREFIX, OpsDep, ReadSessionDep, SessionDep
from waimai.firewall.switches import service
from waimai.firewall.switches.catalog import CATALOG

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


class KnownSwitch(BaseModel):
    name: str
    effect: str
    automatic: str
    on: list[str]  # the names matching it that are on now (a pattern may match several)


@router.get("/catalog", response_model=list[KnownSwitch])
def catalog(_p: OpsDep, db: ReadSessionDep) -> list[KnownSwitch]:
    """Every switch Waimai knows, what it does, what flips it by itself, and which are on now
    (for the ops console and the status page)."""
    on = [s.name for s in service.all_switches(db) if s.enabled]
    out = []
    for info in CATALOG:
        rx = re.compile("^" + re.sub(r"<[a-z]+>", "[a-z0-9_]+", re.escape(info.name)) + "$")
        out.append(KnownSwitch(name=info.name, effect=info.effect, automatic=info.automatic,
                               on=[n for n in on if rx.match(n)]))
    return out


@router.put("/{name}", response_model=SwitchOut)
def put_switch(name: str, body: SwitchIn, p: OpsDep, db: SessionDep) -> SwitchOut:
    row = service.set_switch(db, name, enabled=body.enabled, actor_id=p.user_id, actor_role=p.role,
                             reason=body.reason)
    return SwitchOut.model_validate(row)
