"""Leader election for singleton jobs: one lock per role, held for as long as this process leads.

PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) per role, all held on one
dedicated connection outside the pool. The lock lives exactly as long as that connection: when the
leader dies (even `kill -9`) the server sees the socket close and releases it, and a follower,
trying every `retry_s`, takes over. The leader checks its connection on the same beat and stops
leading the moment it fails (TCP keepalives bound how long a silent network partition can go
unnoticed; for that window two leaders are possible, so singleton jobs keep their writes guarded).

SQLite: an `flock` on a file beside the database (`<db>.leader-<role>`), which the kernel drops
when the process dies — the same semantics for several processes on one machine. An in-memory
database has one process by definition: it always leads.

A process whose role loop is stalled resigns (and does not campaign) so that a live follower
can lead instead; see `healthy` in `LeaderElector`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import structlog
from sqlalchemy.engine import make_url

from waimai.core.metrics import LEADER, LEADER_CHANGES

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

log = structlog.get_logger(__name__)


def libpq_url(sqlalchemy_url: str) -> str:
    """`postgresql+psycopg://u@h/db` → `postgresql://u@h/db` for a plain psycopg connection; SQLAlchemy's
    multi-host form (`?host=a:1&host=b:2`) becomes libpq's (`//u@a:1,b:2/db`), so the leader lock and
    the tracking bus follow a failover like the engine does."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    hosts = url.query.get("host")
    if isinstance(hosts, tuple) and not url.host:
        from urllib.parse import quote

        rest = {k: v for k, v in url.query.items() if k != "host"}
        auth = quote(url.username or "", safe="") + (":" + quote(url.password, safe="") if url.password else "")
        qs = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in rest.items())
        return f"postgresql://{auth}{'@' if auth else ''}{','.join(hosts)}/{url.database or ''}" + \
            (f"?{qs}" if qs else "")
    return url.render_as_string(hide_password=False)


def lock_key(role: str) -> int:
    """A stable signed 64-bit advisory-lock key per role (advisory locks are per database)."""
    return int.from_bytes(hashlib.sha256(f"waimai:leader:{role}".encode()).digest()[:8], "big", signed=True)


def identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class _Locks(Protocol):
    def acquire(self, role: str) -> bool: ...
    def release(self, role: str) -> None: ...
    def alive(self) -> bool: ...
    def close(self) -> None: ...


class _PgLocks:
    def __init__(self, url: str, name: str) -> None:
        self.url = libpq_url(url)
        self.name = name
        self.conn: Any = None

    def _connect(self) -> Any:
        import psycopg

        if self.conn is None or self.conn.closed:
            # Keepalives: a leader cut off by the network notices (and its server drops the lock)
            # in ~10 s instead of the kernel default of two hours.
            self.conn = psycopg.connect(self.url, autocommit=True, connect_timeout=3,
                                        application_name=f"waimai-leader {self.name}"[:63],
                                        keepalives=1, keepalives_idle=5, keepalives_interval=2,
                                        keepalives_count=3)
        return self.conn

    def acquire(self, role: str) -> bool:
        row = self._connect().execute("SELECT pg_try_advisory_lock(%s)", (lock_key(role),)).fetchone()
        return bool(row and row[0])

    def release(self, role: str) -> None:
        if self.conn is not None and not self.conn.closed:
            self.conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(role),))

    def alive(self) -> bool:
        try:
            self._connect().execute("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 - any failure: the session (and its locks) may be gone
            self.close()
            return False

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001, S110 - closing a broken connection
                pass
        self.conn = None


class _FileLocks:
    def __init__(self, base: str) -> None:
        self.base = base
        self.fds: dict[str, int] = {}

    def acquire(self, role: str) -> bool:
        fd = os.open(f"{self.base}.leader-{role}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fds[role] = fd
        return True

    def release(self, role: str) -> None:
        fd = self.fds.pop(role, None)
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the flock

    def alive(self) -> bool:
        return True

    def close(self) -> None:
        for role in list(self.fds):
            self.release(role)


class _Solo:
    def acquire(self, role: str) -> bool:
        return True

    def release(self, role: str) -> None:
        return None

    def alive(self) -> bool:
        return True

    def close(self) -> None:
        return None


def locks_for(database_url: str, name: str) -> _Locks:
    if database_url.startswith("postgresql"):
        return _PgLocks(database_url, name)
    raw = database_url.split("///", 1)[-1].split("?", 1)[0]
    if database_url.startswith("sqlite") and raw not in ("", ":memory:") and fcntl is not None:
        return _FileLocks(raw)
    return _Solo()


class LeaderElector:
    """Campaigns for each role in `roles` every `retry_s` on a thread of its own.

    `healthy(role)` says whether this process could run the role's jobs now (its loop is beating);
    an unhealthy leader resigns, an unhealthy follower waits.
    """

    def __init__(self, database_url: str, roles: Iterable[str], *, retry_s: float = 1.0,
                 healthy: Callable[[str], bool] | None = None, name: str | None = None) -> None:
        self.roles = list(roles)
        self.retry_s = retry_s
        self.healthy = healthy or (lambda _role: True)
        self.name = name or identity()
        self._locks = locks_for(database_url, self.name)
        self._since: dict[str, dt.datetime] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mutex = threading.Lock()
        self.last_error: str | None = None

    # -- what the job loops and /readyz ask -------------------------------------------------------
    def is_leader(self, role: str) -> bool:
        return role in self._since

    def status(self) -> dict[str, dict[str, Any]]:
        since = dict(self._since)
        return {r: {"leader": r in since, "since": since[r].isoformat() if r in since else None}
                for r in self.roles}

    # -- the campaign -----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="waimai-leader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Step down at once (a clean shutdown hands leadership over without waiting for a timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._mutex:
            for role in list(self._since):
                self._lose(role, "resigned")
            self._locks.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.step()
            self._stop.wait(self.retry_s)

    def step(self) -> None:
        """One beat: check the lock connection, then campaign or resign per role."""
        with self._mutex:
            if self._stop.is_set():
                return
            try:
                if self._since and not self._locks.alive():
                    for role in list(self._since):
                        self._lose(role, "lost")
                    return  # campaign again next beat, giving the followers their turn
                for role in self.roles:
                    healthy = self.healthy(role)
                    if role in self._since and not healthy:
                        self._locks.release(role)
                        self._lose(role, "resigned")
                    elif role not in self._since and healthy and self._locks.acquire(role):
                        self._since[role] = dt.datetime.now(dt.UTC)
                        LEADER.labels(role).set(1)
                        LEADER_CHANGES.labels(role, "acquired").inc()
                        log.info("leadership_acquired", role=role, process=self.name)
                self.last_error = None
            except Exception as exc:  # noqa: BLE001 - database unreachable: lead nothing, retry next beat
                if self.last_error is None:
                    log.warning("leader_election_failed", error=f"{exc.__class__.__name__}: {exc}"[:300])
                self.last_error = exc.__class__.__name__
                for role in list(self._since):
                    self._lose(role, "lost")
                self._locks.close()

    def _lose(self, role: str, change: str) -> None:
        self._since.pop(role, None)
        LEADER.labels(role).set(0)
        LEADER_CHANGES.labels(role, change).inc()
        log.warning("leadership_" + change, role=role, process=self.name)
