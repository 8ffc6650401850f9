"""The lunch-rush path for `POST /api/v1/orders`: the common, well-formed request skips FastAPI's router.

At saturation FastAPI's routing (matching ~200 routes in turn) and dependency solving cost more CPU
than the placement itself. This ASGI middleware sits inside every other one (metrics, request id,
body-size limit, switches and read-only guard) and answers the plain case itself: a signed-in
customer (or ops), a JSON body that validates as `PlaceOrderIn` in one pass from the bytes, an
`Idempotency-Key`. Anything else — no or bad token, another role, malformed JSON, an invalid body
or header — is handed, body and all, to the FastAPI route, which stays the one definition of the
endpoint's errors and its OpenAPI description. Errors the placement raises (`AppError`) are
answered by the app's own handler.
"""

from __future__ import annotations

import datetime as dt

import structlog
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from waimai.core.database import is_connection_error
from waimai.core.deps import optional_principal
from waimai.core.errors import AppError
from waimai.platform.ordering import idempotency
from waimai.platform.ordering.schemas import PlaceOrderIn

log = structlog.get_logger(__name__)
PATH = "/api/v1/orders"
MAX_KEY_HEADER = 300  # the route's Header(max_length=300): longer keys go to the route for its 422


class _RouteLabel:
    """What the metrics middleware reads from `scope["route"]`: the route template."""

    path = PATH


_LABEL = _RouteLabel()


class PlaceOrderFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        key_header = request.headers.get("idempotency-key")
        ctype = request.headers.get("content-type", "")
        p = await optional_principal(request)
        if (p is None or p.role not in ("customer", "ops") or key_header is None or len(key_header) > MAX_KEY_HEADER
                or ctype.split(";", 1)[0].strip().lower() != "application/json"):
            await self.app(scope, receive, send)
            return
        raw = await request.body()
        try:
            body = PlaceOrderIn.model_validate_json(raw)
        except ValidationError:
            await self.app(scope, _replay(raw, receive), send)  # the route gives the validation error its usual shape
            return
        app = scope["app"]
        if not app.state.db.reachable:  # an outage: the route takes the order into this replica's spool
            await self.app(scope, _replay(raw, receive), send)
            return
        scope["route"] = _LABEL
        try:
            key = idempotency.validate_key(key_header)
            fp = idempotency.request_fingerprint(body.model_dump(mode="json"))
            ttl = dt.timedelta(hours=app.state.settings.idempotency_ttl_hours)
            status, payload, replayed = await idempotency.place(app.state.db, p, body, key, fp, ttl)
        except AppError as exc:
            response: Response = await app.exception_handlers[AppError](request, exc)
            await response(scope, receive, send)
            return
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            await self.app(scope, _replay(raw, receive), send)  # the route spools it (same key: never twice)
            return
        if not replayed:
            log.info("order_placed", order_id=payload[1], merchant_id=body.merchant_id,
                     payment_method=body.payment_method)
        headers = {"Idempotent-Replayed": "true"} if replayed else {"Location": f"{PATH}/{payload[1]}"}
        await Response(payload[0], status_code=status, media_type="application/json", headers=headers)(
            scope, receive, send)


def _replay(raw: bytes, receive: Receive) -> Receive:
    """A receive that hands the already-read body to the route once, then is the real one again."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return replay


__all__ = ["PlaceOrderFastPath"]
