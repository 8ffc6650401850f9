"""CSRF protection for cookie-authenticated requests: a strict Fetch Metadata / Origin check at the edge.

A browser attaches our cookies to a request another site makes it send, so every unsafe request
(anything but GET, HEAD, OPTIONS) that a browser sends must come from our own pages:

- `Sec-Fetch-Site` (sent by every current browser) must be `same-origin` or `none` (typed in, bookmark);
  `same-site` and `cross-site` are refused;
- without it, an `Origin` header (older browsers send it on every POST) must name our own origin —
  the request's Host or the configured public URL; `Origin: null` (sandboxed frames, some redirects)
  is refused;
- with neither header the request does not come from a browser page (a platform webhook, curl, the
  CLI): it carries no ambient authority a third site could borrow, so it passes.

A request that authenticates with `Authorization: Bearer …` is not a cookie request and passes: a page on
another site cannot set that header without a CORS preflight, and we grant none. OWASP's CSRF cheat sheet
lists this check as a complete defence on its own ("Fetch Metadata" and "Verifying Origin With Standard
Headers"); Go 1.25's `http.CrossOriginProtection` is the same algorithm.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ALLOWED_SITES = frozenset({b"same-origin", b"none"})


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def cross_site_reason(method: str, headers: Iterable[tuple[bytes, bytes]], trusted: frozenset[str]) -> str | None:
    """Why this request must be refused as cross-site, or None when it may pass."""
    if method in SAFE_METHODS:
        return None
    site = origin = host = None
    for name, value in headers:
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return None
        if name == b"sec-fetch-site":
            site = value
        elif name == b"origin":
            origin = value.decode("latin-1").strip().lower()
        elif name == b"host":
            host = value.decode("latin-1").strip().lower()
    if site is not None:
        return None if site in ALLOWED_SITES else f"Sec-Fetch-Site: {site.decode('latin-1')}"
    if origin is None:
        return None  # not a browser page's request: no cookie a third site could borrow
    if origin in trusted or (host and urlsplit(origin).netloc == host):
        return None
    return f"Origin: {origin}"


class CrossSiteRequestGuard:
    """403 for unsafe requests a browser sends on another site's behalf (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, trusted_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.trusted = frozenset(_origin_of(o) for o in trusted_origins if o)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            reason = cross_site_reason(scope["method"], scope.get("headers", ()), self.trusted)
            if reason is not None:
                events = getattr(getattr(scope.get("app"), "state", None), "security_events", None)
                if events is not None:  # counted per source address (waimai/firewall/alerting/security.py)
                    events.note("cross_site_request", (scope.get("client") or ("", 0))[0], reason)
                await _refuse(send, reason)
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send, reason: str) -> None:
    body = json.dumps({"error": {"code": "cross_site_request", "message":
                                 "Refused: this request came from another site's page (跨站请求已拒绝).",
                                 "details": {"reason": reason[:120]}}}, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"application/json; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), (b"vary", b"Origin, Sec-Fetch-Site")]})
    await send({"type": "http.response.body", "body": body})
