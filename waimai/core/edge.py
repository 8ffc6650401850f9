"""The web edge: security headers on every response, and NUL bytes refused before any handler sees them.

Security headers (OWASP Secure Headers Project): a Content-Security-Policy that fits our own pages (every
asset from our origin, inline scripts only with the per-request nonce templates read from
`request.scope["csp_nonce"]`, inline styles allowed), no framing (`frame-ancestors 'none'` and
X-Frame-Options for old browsers), nosniff, a same-origin Referrer-Policy, and HSTS when the request came
over https or the instance runs in production (behind a TLS-terminating proxy).

NUL bytes: PostgreSQL text cannot hold U+0000 (the driver raises, a 500), and no person types one. A
NUL in the path, the query string, a url-encoded form, a JSON body (`%00`, `\\u0000`, a raw 0x00) or a
text field of a multipart form is a 400 here, on every database alike; the file parts of a multipart form
(photos) are binary and pass.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Swagger UI and ReDoc load their vendored script and style from us (waimai/web/docs.py) and start with an
# inline script; ReDoc runs its renderer in a blob: worker.
_DOCS_PATHS = ("/docs", "/redoc")
_DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; worker-src 'self' blob:; "
             "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
             "frame-ancestors 'none'; object-src 'none'; base-uri 'none'")
_DOCS_CSP_BYTES = _DOCS_CSP.encode()
_NUL_IN_FORM = re.compile(rb"%00|\x00")
_NUL_IN_JSON = re.compile(rb"\\u0000|\x00", re.IGNORECASE)


def content_security_policy(nonce: str, form_targets: Iterable[str] = ()) -> str:
    """The policy for our pages. `form_targets`: other origins a form may end up at (a form posted to us
    may be redirected to the payment gateway's page, and browsers check form-action on redirects)."""
    forms = " ".join(["'self'", *form_targets])
    return (f"default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
            f"img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; "
            f"object-src 'none'; base-uri 'none'; form-action {forms}; frame-ancestors 'none'")


class SecurityHeaders:
    """Adds the security headers to every HTTP response and a fresh CSP nonce to every request's scope."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False, form_targets: Iterable[str] = ()) -> None:
        self.app = app
        targets = tuple(sorted({f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" for u in form_targets if u}))
        # Everything but the nonce is fixed: built once, so a request pays for a few bytes joins only.
        head, _, tail = content_security_policy("\x00", targets).partition("\x00")
        self._csp = (head.encode(), tail.encode())
        fixed = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                 (b"referrer-policy", b"same-origin"), (b"cross-origin-opener-policy", b"same-origin"),
                 (b"permissions-policy", b"camera=(), microphone=(), payment=(), usb=()")]
        hsts_header = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
        self._fixed = fixed + [hsts_header] if hsts else fixed
        self._fixed_https = fixed + [hsts_header]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = os.urandom(16).hex()
        scope["csp_nonce"] = nonce
        csp = _DOCS_CSP_BYTES if scope["path"].startswith(_DOCS_PATHS) else \
            self._csp[0] + nonce.encode() + self._csp[1]
        extra = [(b"content-security-policy", csp),
                 *(self._fixed_https if scope.get("scheme") == "https" else self._fixed)]

        async def send_with_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                own = msg.get("headers", ())
                if own:  # a route that set one of these (a photo's own CSP) keeps its value
                    have = {k.lower() for k, _v in own}
                    msg["headers"] = [*own, *(h for h in extra if h[0] not in have)]
                else:
                    msg["headers"] = extra
            await send(msg)

        await self.app(scope, receive, send_with_headers)


class RefuseNulBytes:
    """400 for a NUL byte anywhere a text field can come from (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or _NUL_IN_FORM.search(scope.get("query_string", b"")):
            await _refuse(send, scope["path"])
            return
        ctype = b""
        for name, value in scope.get("headers", ()):
            if name == b"content-type":
                ctype = value.split(b";", 1)[0].strip().lower()
        multipart = ctype == b"multipart/form-data"
        if scope["method"] in ("GET", "HEAD", "OPTIONS") or not (
                multipart or ctype == b"application/x-www-form-urlencoded" or ctype.endswith(b"json")):
            await self.app(scope, receive, send)
            return
        # Read the body (BodySizeLimit, outside us, bounds it) and hand the same bytes on.
        chunks: list[bytes] = []
        more = True
        while more:
            msg = await receive()
            if msg["type"] != "http.request":
                await self.app(scope, _replay([msg]), send)
                return
            chunks.append(msg.get("body", b""))
            more = msg.get("more_body", False)
        body = b"".join(chunks)
        if multipart:
            bad = _nul_in_multipart_text(body, _boundary(scope))
        else:
            pattern = _NUL_IN_FORM if ctype == b"application/x-www-form-urlencoded" else _NUL_IN_JSON
            bad = pattern.search(body) is not None
        if bad:
            await _refuse(send, scope["path"])
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)


def _boundary(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            m = re.search(rb'boundary="?([^";]+)"?', value)
            return m.group(1) if m else None
    return None


def _nul_in_multipart_text(body: bytes, boundary: bytes | None) -> bool:
    """Whether a text field (a part without a filename) of a multipart body holds a NUL byte."""
    if not boundary or b"\x00" not in body:
        return False
    for part in body.split(b"--" + boundary):
        head, sep, content = part.partition(b"\r\n\r\n")
        if sep and b"filename=" not in head and b"\x00" in content:
            return True
    return False


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


async def _refuse(send: Send, path: str) -> None:
    body = json.dumps({"error": {"code": "nul_byte", "message":
                                 "A text field holds a NUL byte (U+0000), which no text may contain. "
                                 "文本中不能含有 NUL 字符。", "details": None}}, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", b"application/json; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
