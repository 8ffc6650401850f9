"""PagerDuty Events API v2 (developer.pagerduty.com, "Send an Alert Event" and "Events API v2 Overview").

`POST {base}/v2/enqueue` JSON: `routing_key` (the integration key, 32 characters), `event_action`
`trigger` | `acknowledge` | `resolve`, `dedup_key` (<= 255; a later acknowledge/resolve with the same key
and routing key acts on the open alert), and for a trigger `payload` {summary (<= 1024), source, severity
critical|error|warning|info, timestamp, component, group, class, custom_details}, plus `links`
[{href, text}], `client`, `client_url`. Reply 202 `{"status": "success", "message": "Event processed",
"dedup_key": ...}`; 400 `{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}`
(do not retry); 429 and 5xx: retry with backoff. Rate limit about 120 events/minute per integration key.
No signature: the routing key is the secret.

Severity map: P1 critical, P2 error, P3 warning, P4 info. Status map: firing -> trigger,
acknowledged -> acknowledge, resolved -> resolve.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import SecretStr

from waimai.firewall.alerting.channels.base import AlertMessage, Clock, DeliveryLog, RateLimit, register
from waimai.firewall.alerting.channels.delivery import (
    ChannelConfig,
    Delivery,
    HttpChannel,
    PermanentError,
    Sent,
)

PD_SEVERITY = {"P1": "critical", "P2": "error", "P3": "warning", "P4": "info"}
PD_ACTION = {"firing": "trigger", "acknowledged": "acknowledge", "resolved": "resolve"}


class PagerDutyConfig(ChannelConfig):
    base_url: str = "https://events.pagerduty.com"
    routing_key: SecretStr
    source: str = "waimai-fault-firewall"
    client: str = "Waimai fault firewall"


@register("pagerduty")
class PagerDutyChannel(HttpChannel):
    Config: ClassVar[type[ChannelConfig]] = PagerDutyConfig
    default_rate_limit: ClassVar[RateLimit] = RateLimit(120, 60.0)

    def __init__(self, config: PagerDutyConfig, *, clock: Clock | None = None, log: DeliveryLog | None = None) -> None:
        super().__init__(config, base_url=config.base_url, clock=clock, log=log)
        self.cfg = config

    def event(self, m: AlertMessage) -> dict[str, Any]:
        ev: dict[str, Any] = {"routing_key": self.cfg.routing_key.get_secret_value(),
                              "event_action": PD_ACTION[m.status], "dedup_key": m.dedup_key}
        if m.status != "firing":
            return ev
        labels = dict(m.labels)
        payload: dict[str, Any] = {
            "summary": f"[{m.severity}] {m.title}"[:1024], "source": labels.pop("source", self.cfg.source),
            "severity": PD_SEVERITY[m.severity], "timestamp": m.created_at.isoformat(),
            "custom_details": {"body": m.body_markdown, **labels,
                               **({"merged_from": list(m.merged_from)} if m.merged_from else {})}}
        for key in ("component", "group", "class"):
            if key in labels:
                payload[key] = labels[key]
        ev["payload"] = payload
        ev["client"] = self.cfg.client
        if m.incident_url:
            ev["client_url"] = m.incident_url
        if m.links():
            ev["links"] = [{"href": url, "text": label} for label, url in m.links()]
        return ev

    def _attempt(self, delivery: Delivery, attempt: int) -> Sent:
        resp = self._request("POST", "/v2/enqueue", body=self.dumps(self.event(delivery.message)))
        if resp.status_code == 202:
            data = self.json_of(resp)
            return Sent(202, provider_id=str(data.get("dedup_key") or delivery.message.dedup_key))
        detail = resp.text[:200]
        raise PermanentError(f"HTTP {resp.status_code}: {detail}", resp.status_code)
