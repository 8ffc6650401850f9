"""Ops API for the breakers (shared state, reset and trip by hand) and the test-only fault injection."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from waimai.core import audit, uow
from waimai.core.deps import API_PREFIX, OpsDep
from waimai.core.errors import NotFound
from waimai.core.outbound.policy import Resilience

router = APIRouter(prefix=API_PREFIX, tags=["resilience"])


class BreakerOut(BaseModel):
    dependency: str
    state: str
    failure_count: int
    threshold: int
    open_s: float
    opened_at: dt.datetime | None
    reopens_at: dt.datetime | None
    changed_at: dt.datetime
    store: str


class BreakerAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: Literal["closed", "opened"]
    reason: str = Field(default="", max_length=200)


class DelayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delay_ms: int = Field(ge=0, le=10_000)


def _ts(t: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(t, dt.UTC) if t is not None else None


def _resilience(request: Request) -> Resilience:
    return request.app.state.resilience  # type: ignore[no-any-return]


@router.get("/breakers", response_model=list[BreakerOut])
def breakers(request: Request, _p: OpsDep) -> list[BreakerOut]:
    """Every dependency's breaker as all replicas see it (the shared store)."""
    res = _resilience(request)
    return [BreakerOut(dependency=r.name, state=r.state, failure_count=r.failure_count, threshold=r.threshold,
                       open_s=r.ttl_s, opened_at=_ts(r.opened_at), reopens_at=_ts(r.reopens_at),
                       changed_at=r.changed_at, store=res.store.kind) for r in res.records()]


@router.put("/breakers/{name}", response_model=BreakerOut)
def set_breaker(name: str, body: BreakerAction, request: Request, p: OpsDep) -> BreakerOut:
    """Close a breaker by hand (the dependency is known to be back) or trip it open (a drill)."""
    res = _resilience(request)
    if res.store.record(name) is None:
        raise NotFound(f"No breaker named {name!r}.", details={"known": [r.name for r in res.records()]})
    res.force(name, body.state, actor=f"{p.role}:{p.user_id}")
    with uow.unit_of_work(request.app.state.db) as db:
        audit.record(db, actor_id=p.user_id, actor_role=p.role, action="breaker.set", target=name,
                     details={"state": body.state, "reason": body.reason})
    return next(b for b in breakers(request, p) if b.dependency == name)


@router.put("/chaos/db", include_in_schema=False)
def db_delay(body: DelayIn, request: Request, p: OpsDep) -> dict[str, int]:
    """Slow every database statement by `delay_ms` (only with WAIMAI_CHAOS=true, never in production)."""
    delay = getattr(request.app.state, "db_delay", None)
    if delay is None:
        raise NotFound("Fault injection is off (WAIMAI_CHAOS).")
    delay.delay_s = body.delay_ms / 1000
    return {"delay_ms": body.delay_ms}
