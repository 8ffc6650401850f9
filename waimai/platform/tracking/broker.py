"""Live tracking fan-out: order events to Server-Sent-Events subscribers, in process.

Publishers (state changes in worker threads, rider positions) call `publish` from any thread;
each subscriber owns an asyncio queue on the serving loop. Every order keeps its last events in
a ring with increasing ids, so a client that reconnects with `Last-Event-ID` gets what it missed.
Several server processes need a shared bus (PostgreSQL LISTEN/NOTIFY or Redis) in front of this:
not built yet; one process serves one address today.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from waimai.firewall.monitoring.instruments import SSE_CONNECTIONS

RING = 50


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
    def __init__(self) -> None:
        self._topics: dict[int, _Topic] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def publish(self, order_id: int, kind: str, data: dict[str, Any]) -> Event:
        """Thread-safe: record the event and hand it to the loop for the subscribers."""
        with self._lock:
            ev = Event(id=next(self._ids), kind=kind, data={"order_id": order_id, **data})
            topic = self._topics.setdefault(order_id, _Topic())
            topic.ring.append(ev)
            subs = list(topic.subscribers)
        if subs and self.loop is not None:
            self.loop.call_soon_threadsafe(_deliver, subs, ev)
        return ev

    def subscribe(self, order_id: int, last_event_id: int | None = None) -> tuple[asyncio.Queue[Event], list[Event]]:
        q: asyncio.Queue[Event] = asyncio.Queue(maxsize=256)
        with self._lock:
            topic = self._topics.setdefault(order_id, _Topic())
            topic.subscribers.add(q)
            missed = [e for e in topic.ring if last_event_id is not None and e.id > last_event_id]
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

    def subscribers(self) -> int:
        with self._lock:
            return sum(len(t.subscribers) for t in self._topics.values())


CLOSE = Event(id=0, kind="close", data={})


def _deliver(subs: list[asyncio.Queue[Event]], ev: Event) -> None:
    for q in subs:
        try:
            q.put_nowait(ev)
        except asyncio.QueueFull:  # a stalled client: it will resume with Last-Event-ID
            pass
