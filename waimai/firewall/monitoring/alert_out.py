"""How the watchdog delivers its alarm: a Standard Webhooks-signed POST, and always a log line."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import stamina
import structlog

log = structlog.get_logger(__name__)


def sign(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def webhook_sender(url: str | None, secret: str | None) -> Callable[[dict[str, Any]], None]:
    def send(message: dict[str, Any]) -> None:
        log.error("ALARM", **{k: str(v) for k, v in message.items()})
        if not url:
            return
        body = json.dumps(message, separators=(",", ":")).encode()
        msg_id = f"msg_{secrets.token_hex(12)}"

        @stamina.retry(on=httpx.HTTPError, attempts=4, wait_initial=0.2, wait_max=2.0, wait_jitter=0.2, timeout=10)
        def post() -> None:
            ts = str(int(time.time()))
            headers = {"content-type": "application/json", "webhook-id": msg_id, "webhook-timestamp": ts}
            if secret:
                headers["webhook-signature"] = sign(secret, msg_id, ts, body)
            httpx.post(url, content=body, headers=headers, timeout=3.0).raise_for_status()

        post()

    return send
