"""Live tracking fan-out: order events to Server-Sent-Events subscribers.

Publishers (state changes in worker threads, rider positions) call `publish` from any thread;
each subscriber owns an asyncio queue on the serving loop. Every order keeps its last events in
a ring, so a client that reconnects with `Last-Event-ID` gets what it missed. Event ids are
microseconds since the epoch, strictly increasing per publishing process.

In process by default (SQLite, one process). With several replicas on PostgreSQL a bus
(`bus.PgBus`, LISTEN/NOTIFY) is attached: `publish` hands the event to the bus, and every replica,
this one included, takes it in through `ingest` — so all replicas hold the same rings.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from waimai.core.metrics import SSE_CONNECTIONS

RING = 50
MAX_TOPICS = 20_000  # orders whose ring is kept; idle ones beyond this are forgotten oldest first


class Bus(Protocol):
    def send(self, event_id: int, kind: str, data: dict[str, Any]) -> None: ...


@dataclass
class Event:
    id: int
    kind: str  # status | position | eta
    data: dict[str, Any]

    def encode(self) -> bytes:
        return f"id: {self.id}\nevent: {self.kind}\ndata: {json.dumps(self.data, ensure_ascii=False)}\n\n".encode()


@dataclass
class _Topic:
    ring: deque[Event] = field(default_factory=lambda: deque(maxlen=RING))
    subscribers: set[asyncio.Queue[Event]] = field(default_factory=set)


class Broker:
    def __init__(self, bus: Bus | None = None) -> None:
        self._topics: dict[int, _Topic] = {}
        self._last_id = 0
        self._lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.bus = bus

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def _next_id(self) -> int:
        with self._lock:
            self._last_id = max(time.time_ns() // 1000, self._last_id + 1)
            return self._last_id

    def publish(self, order_id: int, kind: str, data: dict[str, Any]) -> Event:
        """Thread-safe: stamp the event and hand it to the bus, or straight to this process's subscribers."""
        ev = Event(id=self._next_id(), kind=kind, data={"order_id": order_id, **data})
        if self.bus is not None:
            self.bus.send(ev.id, ev.kind, ev.data)
        else:
            self.ingest(ev)
        return ev

    def ingest(self, ev: Event) -> None:
        """Record the event in its order's ring and wake that order's subscribers (any thread)."""
        order_id = int(ev.data["order_id"])
        with self._lock:
            topic = self._topics.get(order_id)
            if topic is None:
                topic = self._topics[order_id] = _Topic()
                if len(self._topics) > MAX_TOPICS:
                    self._forget_idle()
            topic.ring.append(ev)
            subs = list(topic.subscribers)
        if subs and self.loop is not None:
            self.loop.call_soon_threadsafe(_deliver, subs, ev)

    def ingest_remote(self, event_id: int, kind: str, data: dict[str, Any]) -> None:
        self.ingest(Event(id=event_id, kind=kind, data=data))

    def _forget_idle(self) -> None:
        excess = len(self._topics) - MAX_TOPICS
        for oid in [oid for oid, t in self._topics.items() if not t.subscribers][:excess]:
            del self._topics[oid]

    def subscribe(self, order_id: int, last_event_id: int | None = None) -> tuple[asyncio.Queue[Event], list[Event]]:
        q: asyncio.Queue[Event] = asyncio.Queue(maxsize=256)
        with self._lock:
            topic = self._topics.setdefault(order_id, _Topic())
            topic.subscribers.add(q)
            missed = _after(list(topic.ring), last_event_id)
        SSE_CONNECTIONS.inc()
        return q, missed

    def unsubscribe(self, order_id: int, q: asyncio.Queue[Event]) -> None:
        with self._lock:
            topic = self._topics.get(order_id)
            if topic is not None:
                topic.subscribers.discard(q)
                if not topic.subscribers and not topic.ring:
                    del self._topics[order_id]
        SSE_CONNECTIONS.dec()

    def close(self) -> None:
        """Shutting down: end every stream (clients reconnect elsewhere with Last-Event-ID)."""
        with self._lock:
            queues = [q for t in self._topics.values() for q in t.subscribers]
        for q in queues:
            try:
                q.put_nowait(CLOSE)
            except asyncio.QueueFull:
                pass

    def close_threadsafe(self) -> None:
        """`close` from any thread (the drain timer)."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.close)

    def subscribers(self) -> int:
        with self._lock:
            return sum(len(t.subscribers) for t in self._topics.values())


CLOSE = Event(id=0, kind="close", data={})


def _after(ring: list[Event], last_event_id: int | None) -> list[Event]:
    """What a client that last saw `last_event_id` missed: what follows that event in the ring
    (ids come from several replicas' clocks, ring order is the order every replica saw), or, when it
    has left the ring, everything newer."""
    if last_event_id is None:
        return []
    for i, e in enumerate(ring):
        if e.id == last_event_id:
            return ring[i + 1:]
    return [e for e in ring if e.id > last_event_id]


def _deliver(subs: list[asyncio.Queue[Event]], ev: Event) -> None:
    for q in subs:
        try:
            q.put_nowait(ev)
        except asyncio.QueueFull:  # a stalled client: it will resume with Last-Event-ID
            pass
