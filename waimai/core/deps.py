"""Request-scoped dependencies: settings, database sessions, the signed-in user, role checks."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from sqlalchemy import column, select, table
from sqlalchemy.orm import Session

from waimai.config import Settings
from waimai.core.database import Database, is_connection_error, run_db
from waimai.core.errors import Forbidden, Unauthorized
from waimai.core.security import TokenClaims, read_token
from waimai.core.uow import request_session

TOKEN_COOKIE = "waimai_token"  # noqa: S105 - a cookie name, not a secret


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_database(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


def get_db(request: Request) -> Iterator[Session]:
    """The request's unit of work (waimai.core.uow): committed after the handler, before the response."""
    yield from request_session(request)


def get_read_db(request: Request) -> Iterator[Session]:
    with request.app.state.db.read_session() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[Session, Depends(get_db, scope="function")]
ReadSessionDep = Annotated[Session, Depends(get_read_db)]


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token says who, the database (read through `AuthzCache`) says what they may do."""

    user_id: int
    role: str

    def is_(self, *roles: str) -> bool:
        return self.role in roles


@dataclass(frozen=True)
class UserState:
    role: str
    active: bool
    token_version: int


_USERS = table("users", column("id"), column("role"), column("is_active"), column("token_version"))


class AuthzCache:
    """Each user's role, active flag and token version, read from the database and kept `ttl` seconds.

    A token proves who signed in; what they may do is decided here, per request: a demoted user acts with
    the new role, a deactivated or deleted user and every token older than the user's token version
    (logout, a role change) are refused within `ttl` on every replica, at once on the replica that made
    the change (`invalidate`)."""

    def __init__(self, database: Database, ttl: float) -> None:
        self.database, self.ttl = database, ttl
        self._states: dict[int, tuple[float, UserState | None]] = {}
        self._lock = threading.Lock()

    def peek(self, user_id: int) -> tuple[bool, UserState | None]:
        hit = self._states.get(user_id)
        if hit is not None and hit[0] > time.monotonic():
            return True, hit[1]
        return False, None

    def _without_database(self, user_id: int, claims: TokenClaims | None) -> UserState | None:
        # No database answers (an outage the firewall rides out: status from memory, orders into the
        # spool). What this replica last read, however old, else what the signed token says; revocation
        # and demotion take effect again as soon as the database is back.
        stale = self._states.get(user_id)
        if stale is not None:
            return stale[1]
        return None if claims is None else UserState(role=claims.role, active=True, token_version=claims.version)

    def load(self, user_id: int, claims: TokenClaims | None = None) -> UserState | None:
        if not getattr(self.database, "reachable", True):
            # a known outage (a hung database accepts connections and answers nothing): do not make every
            # request wait for a timeout, as the order route and the status page do not
            return self._without_database(user_id, claims)
        try:
            with self.database.read_session() as db:
                row = db.execute(select(_USERS.c.role, _USERS.c.is_active, _USERS.c.token_version)
                                 .where(_USERS.c.id == user_id)).first()
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            return self._without_database(user_id, claims)
        state = None if row is None else UserState(role=str(row[0]), active=bool(row[1]),
                                                    token_version=int(row[2] or 0))
        if self.ttl > 0:
            with self._lock:
                if len(self._states) >= 65536:
                    self._states.clear()
                self._states[user_id] = (time.monotonic() + self.ttl, state)
        return state

    def invalidate(self, user_id: int) -> None:
        self._states.pop(user_id, None)


def authz_cache(app: Any) -> AuthzCache:
    cache: AuthzCache | None = getattr(app.state, "authz", None)
    if cache is None:
        cache = app.state.authz = AuthzCache(app.state.db, app.state.settings.authz_cache_s)
    return cache


def _token_from(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.cookies.get(TOKEN_COOKIE)


def _claims(request: Request) -> TokenClaims | None:
    token = _token_from(request)
    if not token:
        return None
    return read_token(token, secret=request.app.state.settings.secret_key)


def _principal(claims: TokenClaims, state: UserState | None) -> Principal | None:
    if state is None or not state.active or state.token_version != claims.version:
        return None
    return Principal(user_id=claims.user_id, role=state.role)


def principal_from(request: Request) -> Principal | None:
    """The caller, or None (no token, a bad or revoked one, a user no longer active). Blocking: pages call it
    from their worker thread; the async dependencies below use the cache first and hop off the loop on a miss."""
    claims = _claims(request)
    if claims is None:
        return None
    cache = authz_cache(request.app)
    hit, state = cache.peek(claims.user_id)
    return _principal(claims, state if hit else cache.load(claims.user_id, claims))


async def _principal_async(request: Request) -> Principal | None:
    claims = _claims(request)
    if claims is None:
        return None
    cache = authz_cache(request.app)
    hit, state = cache.peek(claims.user_id)
    if not hit:
        state = await run_db(cache.database, cache.load, claims.user_id, claims)
    return _principal(claims, state)


async def optional_principal(request: Request) -> Principal | None:
    return await _principal_async(request)


async def current_principal(request: Request) -> Principal:
    p = await _principal_async(request)
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
