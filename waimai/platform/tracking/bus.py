"""Live-tracking events across replicas through PostgreSQL LISTEN/NOTIFY.

Every replica's broker publishes into the bus instead of its own subscribers: a sender thread
turns events into `pg_notify('waimai_tracking', json)` (batched, one transaction per batch, on a
connection of its own), and a listener thread on every serving replica `LISTEN`s and hands each
event to its broker, which keeps the per-order ring and wakes the subscribers. The publishing
replica hears its own events the same way, so every replica's rings hold the same events in the
same (commit) order and a client can resume on any replica with Last-Event-ID.

Delivery is at most once: events published while a replica's listener is reconnecting are not
replayed to it (its clients still get the current state on reconnect). Notifications are scoped
to the database, so replicas of different databases never hear each other.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from typing import Any

import structlog

from waimai.core.leader import libpq_url

log = structlog.get_logger(__name__)
CHANNEL = "waimai_tracking"
MAX_PAYLOAD = 7900  # PostgreSQL refuses notification payloads of 8000 bytes and more
BATCH = 500


class PgBus:
    def __init__(self, database_url: str, deliver: Callable[[int, str, dict[str, Any]], None], *,
                 listen: bool = True) -> None:
        self.url = libpq_url(database_url)
        self.deliver = deliver  # (event id, kind, data) → the local broker
        self.listen = listen
        self._out: queue.SimpleQueue[tuple[int, str, dict[str, Any]] | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listen_conn: Any = None
        self.listening = threading.Event()
        self.sent = 0
        self.received = 0
        self.dropped = 0

    def _connect(self, role: str) -> Any:
        import psycopg

        return psycopg.connect(self.url, autocommit=True, connect_timeout=3,
                               application_name=f"waimai-tracking-{role}")

    def start(self) -> None:
        self._threads.append(threading.Thread(target=self._send_loop, name="tracking-bus-send", daemon=True))
        if self.listen:
            self._threads.append(threading.Thread(target=self._listen_loop, name="tracking-bus-listen", daemon=True))
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        self._out.put(None)
        conn = self._listen_conn
        if conn is not None:
            try:
                conn.close()  # wakes the listener at once
            except Exception:  # noqa: BLE001, S110 - already broken
                pass
        for t in self._threads:
            t.join(timeout=3)

    def send(self, event_id: int, kind: str, data: dict[str, Any]) -> None:
        """Thread-safe and non-blocking: the sender thread notifies."""
        self._out.put((event_id, kind, data))

    # -- sending ------------------------------------------------------------------------------------
    def _send_loop(self) -> None:
        conn: Any = None
        while not self._stop.is_set():
            first = self._out.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < BATCH:
                try:
                    nxt = self._out.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._stop.set()
                    break
                batch.append(nxt)
            payloads = []
            for eid, kind, data in batch:
                p = json.dumps({"id": eid, "kind": kind, "data": data}, ensure_ascii=False, separators=(",", ":"))
                if len(p.encode()) > MAX_PAYLOAD:
                    self.dropped += 1
                    log.warning("tracking_event_too_large", kind=kind, bytes=len(p.encode()))
                    continue
                payloads.append((CHANNEL, p))
            for attempt in (1, 2):
                try:
                    if conn is None or conn.closed:
                        conn = self._connect("send")
                    with conn.transaction(), conn.cursor() as cur:
                        cur.executemany("SELECT pg_notify(%s, %s)", payloads)
                    self.sent += len(payloads)
                    break
                except Exception as exc:  # noqa: BLE001 - reconnect once, then drop the batch
                    conn = _close(conn)
                    if attempt == 2:
                        self.dropped += len(payloads)
                        log.warning("tracking_notify_failed", events=len(payloads), error=exc.__class__.__name__)
        _close(conn)

    # -- listening ----------------------------------------------------------------------------------
    def _listen_loop(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                conn = self._connect("listen")
                self._listen_conn = conn
                conn.execute(f"LISTEN {CHANNEL}")
                self.listening.set()
                backoff = 0.2
                while not self._stop.is_set():
                    for n in conn.notifies(timeout=1.0):
                        self._ingest(n.payload)
            except Exception as exc:  # noqa: BLE001 - database gone or closing: reconnect
                self.listening.clear()
                self._listen_conn = _close(self._listen_conn)
                if self._stop.is_set():
                    return
                log.warning("tracking_listen_reconnect", error=exc.__class__.__name__, backoff_s=backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        self._listen_conn = _close(self._listen_conn)

    def _ingest(self, payload: str) -> None:
        try:
            msg = json.loads(payload)
            self.deliver(int(msg["id"]), str(msg["kind"]), dict(msg["data"]))
            self.received += 1
        except Exception:  # noqa: BLE001 - a malformed notification must not stop the listener
            log.exception("tracking_notification_bad")


def _close(conn: Any) -> Any:
    if conn is not None:
        try:
            conn.close()
        except Exception:  # noqa: BLE001, S110 - closing a broken connection
            pass
    return None  # so callers can write `conn = _close(conn)`
