"""`waimai fake-push`: a local stand-in for a browser's push service (the part Web Push senders talk to),
over real HTTP, written from RFC 8030 (delivery), RFC 8291 (message encryption) and RFC 8292 (VAPID), not
from our sender's code.

* `POST /_standin/subscriptions` `{"application_server_key": <base64url point>}` is what a browser's
  `pushManager.subscribe()` does: a fresh P-256 key pair and 16-byte auth secret, and the subscription's
  JSON (`endpoint`, `keys.p256dh`, `keys.auth`) to hand to the application, as a page would.
* `POST /push/{id}` is the push resource. It checks, in order: the subscription exists (404) and has not
  expired (410 Gone); `Authorization: vapid t=<JWT>, k=<public key>` is there (401) and valid (403): `k`
  is a P-256 point and the key the subscription was made with, `t` is an ES256 JWT signed by it whose
  `aud` is this service's origin, whose `exp` lies in the next 24 hours and whose `sub` is a mailto: or
  https: contact; a `TTL` header of whole seconds (400); `Content-Encoding: aes128gcm` (415); at most
  4,096 bytes (413); the body decrypts with the subscription's private key and auth secret (400). Then
  it keeps the plaintext in `app.state.standin.accepted` and answers 201 with a `Location`.
* `POST /_standin/subscriptions/{id}/expire`: the browser dropped it, later pushes get 410.
* Failure injection and state like the alerting stand-ins: `fail_next(…)` (e.g. 503 or 429 with
  Retry-After), `GET /_standin/state`, `POST /_standin/fail`, `POST /_standin/reset`.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from waimai.core.standin import Clock, StandinState, failure_response, new_app

MAX_PAYLOAD = 4096
MAX_EXP_S = 24 * 3600
_VAPID = re.compile(r"^vapid\s+(.+)$", re.IGNORECASE)


def _b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Subscription:
    id: str
    key: ec.EllipticCurvePrivateKey = field(repr=False)
    auth: bytes = field(repr=False)
    application_server_key: str | None
    expired: bool = False

    def as_json(self, base: str) -> dict[str, Any]:
        point = self.key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return {"endpoint": f"{base}/push/{self.id}", "expirationTime": None,
                "keys": {"p256dh": _b64u(point), "auth": _b64u(self.auth)}}


class _NewSubscription(BaseModel):
    model_config = ConfigDict(extra="forbid")
    application_server_key: str | None = Field(default=None, max_length=200)


def create_push_standin(*, clock: Clock = time.time) -> FastAPI:
    state = StandinState(clock=clock)
    subs: dict[str, Subscription] = {}
    state.extra["subscriptions"] = subs
    app = new_app("Web Push service stand-in", state)

    def origin(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    @app.post("/_standin/subscriptions", status_code=201)
    async def subscribe(body: _NewSubscription, request: Request) -> dict[str, Any]:
        sub = Subscription(id=secrets.token_urlsafe(16), key=ec.generate_private_key(ec.SECP256R1()),
                           auth=secrets.token_bytes(16), application_server_key=body.application_server_key)
        subs[sub.id] = sub
        return {"id": sub.id, **sub.as_json(origin(request))}

    @app.post("/_standin/subscriptions/{sid}/expire")
    async def expire(sid: str) -> dict[str, bool]:
        if sid in subs:
            subs[sid].expired = True
        return {"expired": sid in subs}

    def refuse(status: int, reason: str, sid: str) -> Response:
        state.reject(reason, subscription=sid, status=status)
        return JSONResponse({"code": status, "errno": 109 if status == 401 else 999, "error": reason,
                             "message": reason}, status_code=status)

    @app.post("/push/{sid}")
    async def push(sid: str, request: Request) -> Response:
        injected = state.hit()
        if injected is not None:
            return failure_response(injected)
        sub = subs.get(sid)
        if sub is None:
            return refuse(404, "no such subscription", sid)
        if sub.expired:
            return refuse(410, "subscription expired", sid)
        m = _VAPID.match(request.headers.get("authorization", "").strip())
        if m is None:
            return refuse(401, "missing vapid authorization", sid)
        params = dict(p.strip().split("=", 1) for p in m.group(1).split(",") if "=" in p)
        token, k = params.get("t", ""), params.get("k", "")
        try:
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _unb64u(k))
        except (ValueError, TypeError):
            return refuse(403, "k is not a P-256 public key", sid)
        if sub.application_server_key is not None and k.rstrip("=") != sub.application_server_key.rstrip("="):
            return refuse(403, "k is not the key this subscription was made with", sid)
        try:
            claims = jwt.decode(token, public, algorithms=["ES256"], audience=origin(request),
                                options={"require": ["aud", "exp", "sub"], "verify_exp": False})
        except jwt.InvalidTokenError as exc:
            return refuse(403, f"vapid token invalid: {type(exc).__name__}", sid)
        now = state.clock()
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or not now < exp <= now + MAX_EXP_S:
            return refuse(403, "exp must lie within the next 24 hours", sid)
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            return refuse(403, "sub must be a mailto: or https: contact", sid)
        ttl = request.headers.get("ttl", "")
        if not ttl.isdigit():
            return refuse(400, "TTL header required (whole seconds)", sid)
        if request.headers.get("content-encoding", "").lower() != "aes128gcm":
            return refuse(415, "Content-Encoding must be aes128gcm", sid)
        body = await request.body()
        if len(body) > MAX_PAYLOAD:
            return refuse(413, "payload too large", sid)
        try:
            plain = http_ece.decrypt(body, private_key=sub.key, auth_secret=sub.auth, version="aes128gcm")
        except Exception as exc:  # noqa: BLE001 - any failure to decrypt is the sender's
            return refuse(400, f"payload does not decrypt: {type(exc).__name__}", sid)
        try:
            payload: Any = json.loads(plain)
        except ValueError:
            payload = plain.decode("utf-8", "replace")
        message_id = secrets.token_urlsafe(12)
        state.accept({"subscription": sid, "payload": payload, "ttl": int(ttl), "sub": claims["sub"],
                      "urgency": request.headers.get("urgency"), "topic": request.headers.get("topic"),
                      "id": message_id})
        return PlainTextResponse("", status_code=201, headers={"location": f"{origin(request)}/m/{message_id}"})

    return app
