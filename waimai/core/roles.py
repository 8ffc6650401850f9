"""Process roles: which parts of Waimai one process runs.

    api         serves the pages and the API (without it a process answers only /livez, /readyz, /metrics)
    worker      housekeeping: refund retries, key expiry, metrics sampling and roll-ups, anomaly watch, forecast
    dispatcher  the dispatcher round
    notifier    alert evaluation and notifications, platform status callbacks, Zabbix push

All four in one process by default (`waimai serve`); `waimai serve --role api` and
`waimai serve --role worker,dispatcher,notifier` split them so that a crash or an overload in
notifications or intake cannot take ordering down. Every background job names its role; singleton
jobs also need this process to lead the role (waimai/core/leader.py).
"""

from __future__ import annotations

import json
from typing import Any

from waimai.config import ROLES, ordered, parse_roles

__all__ = ["EVERY_PROCESS", "HEALTH_PATHS", "ROLES", "BackgroundOnly", "ordered", "parse_roles"]
EVERY_PROCESS = "process"  # pseudo-role of jobs every process runs for itself (probes, heartbeat, WAL checkpoint)

HEALTH_PATHS = ("/livez", "/readyz", "/metrics")


class BackgroundOnly:
    """ASGI guard for a process without the api role: health and /metrics answer, everything else is a 404
    that says where the API lives (so a misrouted load balancer is obvious)."""

    def __init__(self, app: Any, roles: str) -> None:
        self.app = app
        self.body = json.dumps({"error": {"code": "not_served", "message": f"this process runs {roles}; "
                                          "the API and pages are served by processes with the api role",
                                          "details": {}}}).encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in HEALTH_PATHS:
            await self.app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(self.body)).encode())]})
        await send({"type": "http.response.body", "body": self.body})
