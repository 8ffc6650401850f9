"""How the watchdog delivers its alarm: through the alerting channels (a Standard Webhooks-signed
webhook by default), and always as a log line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from waimai.firewall.alerting.channels.base import AlertMessage, build_channel

log = structlog.get_logger(__name__)


def webhook_sender(url: str | None, secret: str | None) -> Callable[[dict[str, Any]], None]:
    channel = build_channel("webhook", {"name": "watchdog", "url": url, "secret": secret}) if url and secret \
        else None
    if url and not secret:
        log.warning("watchdog_webhook_unsigned_refused", hint="set WAIMAI_WATCH_WEBHOOK_SECRET (whsec_…)")

    def send(message: dict[str, Any]) -> None:
        log.error("ALARM", **{k: str(v) for k, v in message.items()})
        if channel is None:
            return
        checks = ", ".join(f"{k}: {v}" for k, v in message.get("checks", {}).items())
        receipt = channel.send(AlertMessage(
            title=str(message["summary"]), body_markdown=f"Target {message['target']}\n\n{checks}",
            severity=message.get("severity", "P1"), status=message["status"], dedup_key=message["dedup_key"],
            labels={"source": "waimai-watchdog", "target": str(message["target"])}))
        if not receipt.ok:
            log.error("watchdog_alarm_not_delivered", error=receipt.error)

    return send
