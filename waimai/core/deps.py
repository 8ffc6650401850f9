"""Request-scoped dependencies: settings, database sessions, the signed-in user, role checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from waimai.config import Settings
from waimai.core.database import Database
from waimai.core.errors import Forbidden, Unauthorized
from waimai.core.security import read_token

TOKEN_COOKIE = "waimai_token"  # noqa: S105 - a cookie name, not a secret


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_database(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


def get_db(request: Request) -> Iterator[Session]:
    with request.app.state.db.session() as session:
        yield session


def get_read_db(request: Request) -> Iterator[Session]:
    with request.app.state.db.read_session() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[Session, Depends(get_db)]
ReadSessionDep = Annotated[Session, Depends(get_read_db)]


@dataclass(frozen=True)
class Principal:
    """Who is calling: enough to authorise without a database read on every request."""

    user_id: int
    role: str

    def is_(self, *roles: str) -> bool:
        return self.role in roles


def _token_from(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.cookies.get(TOKEN_COOKIE)


def principal_from(request: Request) -> Principal | None:
    token = _token_from(request)
    if not token:
        return None
    claims = read_token(token, secret=request.app.state.settings.secret_key)
    if claims is None:
        return None
    return Principal(user_id=claims.user_id, role=claims.role)


# Async on purpose: FastAPI runs sync dependencies in the thread pool, a needless hop for pure CPU work.
async def optional_principal(request: Request) -> Principal | None:
    return principal_from(request)


async def current_principal(request: Request) -> Principal:
    p = principal_from(request)
    if p is None:
        raise Unauthorized("Sign in first: send a bearer token from /api/v1/auth/login.",
                           headers={"WWW-Authenticate": "Bearer"})
    return p


PrincipalDep = Annotated[Principal, Depends(current_principal)]
OptionalPrincipalDep = Annotated[Principal | None, Depends(optional_principal)]


def require_roles(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets only the given roles through (ops may always act)."""
    allowed = set(roles) | {"ops"}

    async def _check(p: PrincipalDep) -> Principal:
        if p.role not in allowed:
            raise Forbidden(f"This action needs one of the roles: {', '.join(sorted(allowed))}.")
        return p

    return _check


CustomerDep = Annotated[Principal, Depends(require_roles("customer"))]
MerchantDep = Annotated[Principal, Depends(require_roles("merchant"))]
RiderDep = Annotated[Principal, Depends(require_roles("rider"))]
SupportDep = Annotated[Principal, Depends(require_roles("support"))]
OpsDep = Annotated[Principal, Depends(require_roles())]

# Path ids: positive and within a 32-bit key, so absurd ids are a clean 422, never a driver overflow.
IdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]

API_PREFIX = "/api/v1"
