"""Module kill switches and read-only mode, applied before routing (pure ASGI, a few µs per request).

* `module.<name>.off`: that module's routes (see catalog.MODULE_ROUTES) answer a JSON 503 with
  Retry-After naming the switch; every other route keeps working.
* `system.read_only`: writes answer 503 with Retry-After, except the endpoints ops need to steer
  (sign-in, switches, breakers, ops pages and API, incidents, alert acknowledgements, backups).
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from waimai.firewall.switches import flags
from waimai.firewall.switches.catalog import module_of
from waimai.firewall.switches.fence import Fence

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
READ_ONLY_EXEMPT = ("/api/v1/auth/login", "/login", "/logout", "/api/v1/switches", "/api/v1/breakers",
                    "/api/v1/ops", "/ops", "/api/v1/incidents", "/api/v1/alerts/ack", "/api/v1/chaos",
                    "/api/v1/backups")  # a restore turns read-only on while it runs


def refusal(status: int, code: str, message: str, details: dict[str, object],
            retry_after: int) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    body = json.dumps({"error": {"code": code, "message": message, "details": details}},
                      ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"retry-after", str(retry_after).encode())]
    return body, headers


class SwitchGuard:
    def __init__(self, app: ASGIApp, *, retry_after_s: int = 30, fence: Fence | None = None) -> None:
        self.app = app
        self.retry_after_s = retry_after_s
        self.fence = fence or Fence()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        module = module_of(path)
        if module is not None and flags.enabled(f"module.{module}.off"):
            switch = f"module.{module}.off"
            why = flags.why(switch)
            await self._refuse(send, "module_off",
                               f"The {module} module is switched off by the campus team ({switch})"
                               f"{': ' + why if why else ''}. Everything else keeps working; retry later.",
                               {"module": module, "switch": switch, "reason": why})
            return
        if scope["method"] not in WRITES or path.startswith(READ_ONLY_EXEMPT):
            await self.app(scope, receive, send)
            return
        # A write counts as in flight from before the switch is checked until it has answered, so a restore's
        # fence (fence.py) knows when no write that passed the check can still commit.
        if not self.fence.enter():
            await self._read_only(send)
            return
        try:
            if flags.enabled("system.read_only"):
                await self._read_only(send)
                return
            await self.app(scope, receive, send)
        finally:
            self.fence.leave()

    async def _read_only(self, send: Send) -> None:
        why = flags.why("system.read_only")
        await self._refuse(send, "read_only",
                           "Waimai is read-only for a while (system.read_only)"
                           f"{': ' + why if why else ''}. You can browse; changes are refused until it "
                           "ends — retry later.", {"switch": "system.read_only", "reason": why})

    async def _refuse(self, send: Send, code: str, message: str, details: dict[str, object]) -> None:
        body, headers = refusal(503, code, message, details, self.retry_after_s)
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
