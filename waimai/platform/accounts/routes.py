from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from waimai.core import audit, security_alerts, uow
from waimai.core.deps import (
    API_PREFIX,
    IdPath,
    OpsDep,
    PrincipalDep,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    authz_cache,
)
from waimai.core.errors import Conflict
from waimai.platform.accounts import service
from waimai.platform.accounts.schemas import LoginIn, TokenOut, UserChange, UserCreate, UserOut

router = APIRouter(prefix=API_PREFIX, tags=["accounts"])


@router.post("/auth/login", response_model=TokenOut)
def login(body: LoginIn, request: Request, db: SessionDep, settings: SettingsDep) -> TokenOut:
    client = request.client.host if request.client else "unknown"  # the real client: core.proxies
    return service.login(db, settings=settings, phone=body.phone, password=body.password, client=client)


@router.get("/me", response_model=UserOut)
def me(p: PrincipalDep, db: ReadSessionDep) -> UserOut:
    return service.user_out(service.get_user(db, p.user_id))


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(body: UserCreate, p: OpsDep, db: SessionDep) -> UserOut:
    user = service.create_user(db, phone=body.phone, name=body.name, role=body.role,
                               password=body.password, merchant_id=body.merchant_id)
    audit.record(db, actor_id=p.user_id, actor_role=p.role, action="user.create", target=f"user:{user.id}",
                 details={"role": user.role})
    return service.user_out(user)


@router.post("/auth/logout", status_code=204)
def logout(p: PrincipalDep, request: Request, db: SessionDep) -> Response:
    """Revoke the caller's tokens: this one and every other issued before it (every device signs out)."""
    service.revoke_tokens(db, p.user_id)
    uow.after_commit(db, lambda: authz_cache(request.app).invalidate(p.user_id))
    return Response(status_code=204)


@router.patch("/users/{user_id}", response_model=UserOut)
def change_user(user_id: IdPath, body: UserChange, p: OpsDep, request: Request, db: SessionDep) -> UserOut:
    """Ops change a role or switch an account off; the user's tokens stop working at once."""
    if user_id == p.user_id:  # no one locks themselves out, or ends their own sessions here (that is logout)
        raise Conflict("Change your own account through another ops user.", code="user_self_change")
    user = service.get_user(db, user_id)
    before = {"role": user.role, "is_active": user.is_active}
    service.change_user(db, user, role=body.role, is_active=body.is_active)
    audit.record(db, actor_id=p.user_id, actor_role=p.role, action="user.change", target=f"user:{user.id}",
                 details={"before": before, "after": {"role": user.role, "is_active": user.is_active}})
    uow.after_commit(db, lambda: authz_cache(request.app).invalidate(user_id))
    return service.user_out(user)


@router.get("/security/alerts")
def list_security_alerts(p: OpsDep, db: ReadSessionDep,
                         limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict[str, Any]]:
    """Internal security alerts (proof-code and sign-in lockouts), newest first: for ops, never public."""
    return [{"id": a.id, "kind": a.kind, "subject": a.subject, "source": a.source, "details": a.details,
             "created_at": a.created_at.isoformat()} for a in security_alerts.recent(db, limit=limit)]
