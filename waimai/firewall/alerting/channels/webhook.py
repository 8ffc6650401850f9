"""Generic signed webhook following the Standard Webhooks spec v1.0.0
(github.com/standard-webhooks/standard-webhooks, spec/standard-webhooks.md).

Headers: `webhook-id` (unique per message, the SAME on every retry: receivers use it as an idempotency
key), `webhook-timestamp` (integer Unix seconds of this attempt), `webhook-signature` (space-separated
list of `v1,<base64 HMAC-SHA256(key, f"{id}.{timestamp}.{body}")>`, the key being the base64-decoded part
of a `whsec_…` secret). Receivers reject timestamps more than 5 minutes off. Payload (recommended shape):
`{"type": "alert.firing", "timestamp": ISO-8601, "data": {...}}`. 2xx is success; 410 Gone means "stop
sending" (we disable the channel); 429, 502, 503, 504 and other 5xx are retried, honouring Retry-After.
Known-answer vector (from the spec's reference libraries) is in the tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import SecretStr, field_validator

from waimai.firewall.alerting.channels.base import AlertMessage, Clock, DeliveryLog, RateLimit, register
from waimai.firewall.alerting.channels.delivery import (
    ChannelConfig,
    Delivery,
    HttpChannel,
    PermanentError,
    Sent,
)


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret."""
    if not secret.startswith("whsec_"):
        raise ValueError("a Standard Webhooks secret starts with 'whsec_'")
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """The `webhook-signature` entry `v1,<base64>` for this message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret_key(secret), signed, hashlib.sha256).digest()).decode()


class WebhookConfig(ChannelConfig):
    url: str  # full endpoint URL
    secret: SecretStr  # whsec_<base64 of 24..64 random bytes>

    @field_validator("secret")
    @classmethod
    def _check_secret(cls, v: SecretStr) -> SecretStr:
        key = secret_key(v.get_secret_value())
        if not 24 <= len(key) <= 64:
            raise ValueError("the decoded signing key must have 24..64 bytes")
        return v


@register("webhook")
class WebhookChannel(HttpChannel):
    Config: ClassVar[type[ChannelConfig]] = WebhookConfig
    default_rate_limit: ClassVar[RateLimit] = RateLimit(60, 60.0)

    def __init__(self, config: WebhookConfig, *, clock: Clock | None = None, log: DeliveryLog | None = None) -> None:
        parts = urlsplit(config.url)
        super().__init__(config, base_url=f"{parts.scheme}://{parts.netloc}", clock=clock, log=log)
        self.cfg = config
        self._path = parts.path or "/"
        self._query = parts.query
        self.disabled = False

    @staticmethod
    def payload(m: AlertMessage, recipients: tuple[str, ...] | None = None) -> dict[str, Any]:
        return {"type": f"alert.{m.status}", "timestamp": m.created_at.isoformat(),
                "data": {"title": m.title, "severity": m.severity, "status": m.status, "dedup_key": m.dedup_key,
                         "labels": dict(m.labels), "body_markdown": m.body_markdown,
                         "links": {"ack_url": m.ack_url, "runbook_url": m.runbook_url,
                                   "incident_url": m.incident_url},
                         "merged_from": list(m.merged_from), "recipients": list(recipients or ())}}

    def _attempt(self, delivery: Delivery, attempt: int) -> Sent:
        if self.disabled:
            raise PermanentError("endpoint disabled after 410 Gone")
        msg_id = f"msg_{delivery.id}"
        body = self.dumps(self.payload(delivery.message, delivery.recipients))
        ts = int(self.clock())
        headers = {"webhook-id": msg_id, "webhook-timestamp": str(ts),
                   "webhook-signature": sign(self.cfg.secret.get_secret_value(), msg_id, ts, body)}
        url = self._path + (f"?{self._query}" if self._query else "")
        resp = self._request("POST", url, body=body, headers=headers)
        if 200 <= resp.status_code < 300:
            return Sent(resp.status_code, provider_id=msg_id)
        if resp.status_code == 410:
            self.disabled = True
        raise PermanentError(f"HTTP {resp.status_code}: {resp.text[:120]}", resp.status_code)
