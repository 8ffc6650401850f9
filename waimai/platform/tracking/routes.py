from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from waimai.core.deps import API_PREFIX, IdPath, PrincipalDep
from waimai.core.errors import AppError
from waimai.platform.ordering import service as ordering
from waimai.platform.tracking.broker import CLOSE

router = APIRouter(prefix=API_PREFIX, tags=["tracking"])
KEEPALIVE_S = 15.0


class TooManyStreams(AppError):
    status, code = 429, "too_many_streams"


class StreamSlots:
    """Open event streams per user in this process: each holds a connection and a queue here, so the cap
    protects this process's resources (a user's streams on other replicas hold theirs)."""

    def __init__(self, per_user: int) -> None:
        self.per_user = per_user
        self.open: dict[int, int] = {}

    def take(self, user_id: int) -> None:
        n = self.open.get(user_id, 0)
        if n >= self.per_user:
            raise TooManyStreams(f"At most {self.per_user} live order streams per user; close one first.",
                                 headers={"Retry-After": "10"})
        self.open[user_id] = n + 1

    def give_back(self, user_id: int) -> None:
        n = self.open.get(user_id, 0) - 1
        if n > 0:
            self.open[user_id] = n
        else:
            self.open.pop(user_id, None)


def _slots(request: Request) -> StreamSlots:
    slots = getattr(request.app.state, "stream_slots", None)
    if slots is None:
        slots = request.app.state.stream_slots = StreamSlots(request.app.state.settings.sse_streams_per_user)
    return slots  # type: ignore[no-any-return]


def _check(request: Request, p, order_id: int) -> dict:  # type: ignore[no-untyped-def, type-arg]
    with request.app.state.db.read_session() as db:
        order = ordering.load_order(db, order_id)
        ordering.check_can_view(db, p, order)
        return {"status": order.status, "rider_id": order.rider_id}


@router.get("/orders/{order_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def events(order_id: IdPath, request: Request, p: PrincipalDep,
                 last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
    """Live status, rider position and ETA of an order (Server-Sent Events; resumes with Last-Event-ID)."""
    state = await run_in_threadpool(_check, request, p, order_id)
    broker = request.app.state.broker
    broker.bind(asyncio.get_running_loop())
    try:
        last = int(last_event_id) if last_event_id else None
    except ValueError:
        last = None
    slots = _slots(request)
    slots.take(p.user_id)  # on the event loop: no other request runs between the check and the count
    queue, missed = broker.subscribe(order_id, last)

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 3000\n\n"
            if last is None:  # a fresh client starts from the current state
                yield f"event: status\ndata: {{\"order_id\": {order_id}, \"status\": \"{state['status']}\"}}\n\n".encode()
            for ev in missed:
                yield ev.encode()
            while True:
                try:
                    ev = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_S)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield b": keep-alive\n\n"
                    continue
                if ev is CLOSE:
                    return
                yield ev.encode()
        finally:
            broker.unsubscribe(order_id, queue)
            slots.give_back(p.user_id)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def eta_minutes(rx: float, ry: float, px: float, py: float, speed_m_per_min: float = 250.0) -> int:
    return max(1, math.ceil(math.hypot(px - rx, py - ry) / speed_m_per_min))
