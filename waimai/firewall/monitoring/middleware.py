"""One ASGI middleware for request metrics, request ids and the access log line.

Pure ASGI (no BaseHTTPMiddleware) to keep the per-request cost to a few microseconds: the route
label is the matched template (`/api/v1/orders/{order_id}`), never the raw path, so label
cardinality stays bounded; unmatched paths are labelled `<unmatched>`.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Callable
from typing import Any

import structlog
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from waimai.core.deps import TOKEN_COOKIE
from waimai.core.metrics import HTTP_IN_FLIGHT, HTTP_LATENCY, HTTP_REQUESTS, HTTP_SIGNED_IN
from waimai.core.security import read_token

log = structlog.get_logger(logger_name="waimai.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# Request ids: a random per-process prefix and a counter, 32 hex digits like a uuid4's but without
# a system call and a UUID object per request (uuid4 was ~3% of a saturated order placement).
_RID_PREFIX = os.urandom(8).hex()
_RID_COUNTER = itertools.count(int.from_bytes(os.urandom(4), "big"))


def new_request_id() -> str:
    return f"{_RID_PREFIX}{next(_RID_COUNTER) & 0xFFFFFFFFFFFFFFFF:016x}"


class RequestMonitor:
    SLOW_S = 0.5

    def __init__(self, app: ASGIApp, *, metrics: bool = True, access_log: bool = True,
                 errors_only: bool = False, signed_in: Callable[[Scope], bool] | None = None,
                 on_anonymous_error: Callable[[str], None] | None = None) -> None:
        self.app = app
        # Who saw an error decides what it means: a signed-in user's 5xx is user-facing, an anonymous one is an
        # attack symptom until users see errors too (waimai/firewall/alerting/security.py).
        self.signed_in = signed_in
        self.on_anonymous_error = on_anonymous_error
        self.metrics = metrics
        self.access_log = access_log
        # errors_only: a line for 4xx/5xx and slow requests only. Every line a request causes still
        # carries its id; this drops the routine 200s, the largest share of monitoring's cost.
        self.errors_only = errors_only
        # Labelled children looked up once per (method, route[, status]): `labels()` takes a lock and
        # builds a key on every call.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                cand = value.decode("latin-1")
                rid = cand if _SAFE_ID.match(cand) else None
                break
        rid = rid or new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        structlog.contextvars.bind_contextvars(trace_id=rid)
        status = 500
        start = time.perf_counter()
        rid_header = (b"x-request-id", rid.encode())

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

        if self.metrics:
            HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = _route_of(scope)
            method = scope["method"]
            if self.metrics:
                HTTP_IN_FLIGHT.dec()
                key = (method, route, status)
                counter = self._counters.get(key)
                if counter is None:
                    counter = self._counters[key] = HTTP_REQUESTS.labels(method, route, str(status))
                counter.inc()
                hist = self._histograms.get(key[:2])
                if hist is None:
                    hist = self._histograms[key[:2]] = HTTP_LATENCY.labels(method, route)
                hist.observe(elapsed)
            if self.signed_in is not None:
                if self.signed_in(scope):
                    if self.metrics:
                        HTTP_SIGNED_IN.labels(f"{status // 100}xx").inc()
                elif status >= 500 and self.on_anonymous_error is not None:
                    self.on_anonymous_error((scope.get("client") or ("", 0))[0])
            if self.access_log and (status >= 400 or elapsed > self.SLOW_S or (
                    not self.errors_only and not route.startswith(("/static", "/metrics")))):
                log.info("request", http_method=method, url_path=scope["path"], route=route,
                         status_code=status, duration_ms=round(elapsed * 1000, 2),
                         client=(scope.get("client") or ("", 0))[0])
            structlog.contextvars.unbind_contextvars("trace_id")


def _route_of(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None) or getattr(route, "path_format", None)
    if path:
        return str(path)
    if scope["path"].startswith("/static/"):
        return "/static"
    return "<unmatched>"


def token_signed_in(secret: str) -> Callable[[Scope], bool]:
    """Whether a request carries a valid sign-in token (bearer header or cookie); verification is cached."""

    def check(scope: Scope) -> bool:
        token: str | None = None
        cookies: bytes | None = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                token = value[7:].decode("latin-1").strip()
                break
            if name == b"cookie":
                cookies = value
        if token is None and cookies:
            token = cookie_parser(cookies.decode("latin-1")).get(TOKEN_COOKIE)
        return token is not None and token != "" and read_token(token, secret=secret) is not None

    return check
