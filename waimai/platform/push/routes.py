"""/api/v1/push: the VAPID public key, subscribe and unsubscribe this browser, list one's own browsers.

Any signed-in user (bearer token or the page's cookie; cookie requests pass the cross-site guard first,
waimai/core/csrf.py). A subscription is only ever seen or removed by the user who made it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from waimai.core.deps import API_PREFIX, PrincipalDep, ReadSessionDep, SessionDep
from waimai.core.errors import ServiceUnavailable
from waimai.platform.push import service

router = APIRouter(prefix=API_PREFIX + "/push", tags=["push"])
B64 = Annotated[str, Field(min_length=16, max_length=100, pattern=r"^[A-Za-z0-9_-]+={0,2}$")]


class KeysIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    p256dh: B64
    auth: Annotated[str, Field(min_length=16, max_length=40, pattern=r"^[A-Za-z0-9_-]+={0,2}$")]


class SubscribeIn(BaseModel):
    """The browser's `PushSubscription.toJSON()` plus the page's language (`expirationTime` is ignored)."""

    model_config = ConfigDict(extra="ignore")
    endpoint: Annotated[str, Field(min_length=10, max_length=800)]
    keys: KeysIn
    locale: Annotated[str, Field(max_length=16)] = "zh_CN"


class UnsubscribeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint: Annotated[str, Field(min_length=1, max_length=800)]


@router.get("/public-key")
def public_key(request: Request, p: PrincipalDep) -> dict[str, str]:
    """The application server key a browser subscribes with (`applicationServerKey`)."""
    keys = getattr(request.app.state, "push_keys", None)
    if keys is None:
        raise ServiceUnavailable("Push notifications are not available right now.", code="push_unavailable")
    return {"public_key": keys().public_key}


@router.post("/subscribe", status_code=201)
def subscribe(request: Request, body: SubscribeIn, p: PrincipalDep, db: SessionDep) -> dict[str, Any]:
    settings = request.app.state.settings
    row = service.subscribe(db, p.user_id, service.SubscriptionIn(endpoint=body.endpoint, p256dh=body.keys.p256dh,
                                                                  auth=body.keys.auth, locale=body.locale),
                            cap=settings.push_subscriptions_per_user, allow_loopback=settings.env != "production")
    db.flush()  # its id, for the answer (the request's unit of work commits)
    return {"id": row.id, "subscribed": True, "locale": row.locale}


@router.post("/unsubscribe")
def unsubscribe(body: UnsubscribeIn, p: PrincipalDep, db: SessionDep) -> dict[str, Any]:
    service.unsubscribe(db, p.user_id, body.endpoint)
    return {"subscribed": False}


@router.get("/subscriptions")
def my_subscriptions(p: PrincipalDep, db: ReadSessionDep) -> dict[str, Any]:
    """Your browsers (the push service's host only: endpoints are capabilities, keys are secrets)."""
    from urllib.parse import urlsplit

    return {"subscriptions": [{"id": s.id, "service": urlsplit(s.endpoint).hostname, "locale": s.locale,
                               "created_at": s.created_at, "last_sent_at": s.last_sent_at}
                              for s in service.subscriptions(db, p.user_id)]}
