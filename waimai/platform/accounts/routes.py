from __future__ import annotations

from fastapi import APIRouter, Request

from waimai.core import audit
from waimai.core.deps import API_PREFIX, OpsDep, PrincipalDep, ReadSessionDep, SessionDep, SettingsDep
from waimai.platform.accounts import service
from waimai.platform.accounts.schemas import LoginIn, TokenOut, UserCreate, UserOut

router = APIRouter(prefix=API_PREFIX, tags=["accounts"])


@router.post("/auth/login", response_model=TokenOut)
def login(body: LoginIn, request: Request, db: SessionDep, settings: SettingsDep) -> TokenOut:
    client = request.client.host if request.client else "unknown"
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
    db.commit()
    return service.user_out(user)
