"""The shared parts of every provider stand-in (chat robots, SMS, push services, payment rails):
a FastAPI app with `/_standin/state|fail|reset`, the record of what was accepted or refused, and
injected failures. Stand-ins are real HTTP servers that check the provider's published formats and
signatures; they live in the product so `waimai fake-*` and the tests start the same thing."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field

Clock = Callable[[], float]


@dataclass(frozen=True)
class Failure:
    status: int
    retry_after: str | None = None


@dataclass
class StandinState:
    clock: Clock = time.time
    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    request_times: list[float] = field(default_factory=list)
    failures: deque[Failure] = field(default_factory=deque)
    extra: dict[str, Any] = field(default_factory=dict)  # provider-specific state, e.g. PagerDuty alerts
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, times: int = 1, status: int = 503, retry_after: float | str | None = None) -> None:
        with self.lock:
            for _ in range(times):
                self.failures.append(Failure(status, None if retry_after is None else str(retry_after)))

    def hit(self) -> Failure | None:
        """Note a request; the injected failure to answer with, if any."""
        with self.lock:
            self.request_times.append(self.clock())
            return self.failures.popleft() if self.failures else None

    def requests_between(self, start: float, end: float) -> int:
        return sum(1 for t in self.request_times if start <= t < end)

    def accepted_within(self, window_s: float, key: Callable[[dict[str, Any]], bool] | None = None) -> int:
        now = self.clock()
        return sum(1 for a in self.accepted if a["at"] > now - window_s and (key is None or key(a)))

    def accept(self, record: dict[str, Any]) -> None:
        record.setdefault("at", self.clock())
        with self.lock:
            self.accepted.append(record)

    def reject(self, reason: str, **extra: Any) -> None:
        with self.lock:
            self.rejected.append({"reason": reason, "at": self.clock(), **extra})

    def reset(self) -> None:
        with self.lock:
            self.accepted.clear()
            self.rejected.clear()
            self.request_times.clear()
            self.failures.clear()
            for value in self.extra.values():
                if hasattr(value, "clear"):
                    value.clear()


class _FailRequest(BaseModel):
    times: int = Field(default=1, ge=1, le=1000)
    status: int = Field(default=503, ge=400, le=599)
    retry_after: float | None = None


def new_app(title: str, state: StandinState) -> FastAPI:
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.standin = state

    @app.get("/_standin/state")
    async def get_state() -> dict[str, Any]:
        return {"accepted": state.accepted, "rejected": state.rejected, "requests": len(state.request_times),
                "pending_failures": len(state.failures), "extra": state.extra}

    @app.post("/_standin/fail")
    async def fail(req: _FailRequest) -> dict[str, int]:
        state.fail_next(req.times, req.status, req.retry_after)
        return {"pending_failures": len(state.failures)}

    @app.post("/_standin/reset")
    async def reset() -> dict[str, bool]:
        state.reset()
        return {"reset": True}

    return app


def failure_response(f: Failure, body: str = "injected failure") -> Response:
    headers = {"retry-after": f.retry_after} if f.retry_after is not None else {}
    return PlainTextResponse(body, status_code=f.status, headers=headers)
