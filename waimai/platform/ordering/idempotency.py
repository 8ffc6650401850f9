"""Idempotency keys for order placement, as Stripe and the IETF draft describe them.

The key is claimed, the order written and the response stored in ONE unit of work (its own
savepoint inside the group writer's transaction, waimai.core.writer), so a key is `done` exactly
when its order exists, and a request that fails leaves nothing behind: the client
may retry with the same key. Same key + same body replays the stored response; same key + another
body is 422; a retry while the first request still runs is 409.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from waimai.core.audit import AuditEntry
from waimai.core.database import Database, table_of, utcnow
from waimai.core.errors import AppError, Conflict, Unprocessable
from waimai.core.metrics import ORDERS_PLACED
from waimai.core.prepared import Prepared
from waimai.platform.ordering import service
from waimai.platform.ordering.models import IdempotencyRecord

# A claim whose request never finished (its process died) may be taken over after this long.
RUNNING_LEASE = dt.timedelta(seconds=30)
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Replay:
    status: int
    body: str


def request_fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def validate_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise AppError("Send an Idempotency-Key header (a fresh UUID per order) so retries are safe.",
                       code="idempotency_key_missing", status=400)
    key = key.strip()
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise AppError(f"Idempotency-Key must be printable and at most {MAX_KEY_LENGTH} characters.",
                       code="idempotency_key_invalid", status=400)
    return key


_T = table_of(IdempotencyRecord)
_SEL = (select(_T.c.request_hash, _T.c.state, _T.c.response_status, _T.c.response_body, _T.c.created_at)
        .where(_T.c.user_id == bindparam("uid"), _T.c.key == bindparam("k")))
_EXPIRE = delete(_T).where(_T.c.user_id == bindparam("uid"), _T.c.key == bindparam("k"),
                           _T.c.created_at < bindparam("before"))
_TAKE_OVER = (update(_T).where(_T.c.user_id == bindparam("uid"), _T.c.key == bindparam("k"),
                               _T.c.state == "running", _T.c.created_at < bindparam("before"))
              .values(created_at=bindparam("now")))
# The statements every placement runs go straight to the driver (waimai.core.prepared).
_COMPLETE = Prepared(update(_T).where(_T.c.user_id == bindparam("uid"), _T.c.key == bindparam("k"))
                     .values(state="done", response_status=bindparam("status"), response_body=bindparam("body"),
                             order_id=bindparam("oid")))
_TRY_LOCK = Prepared(select(func.pg_try_advisory_xact_lock(bindparam("id"))))
_INSERT_IF_NEW = {
    "sqlite": Prepared(sqlite_insert(_T).on_conflict_do_nothing(index_elements=["user_id", "key"])
                       .returning(_T.c.id)),
    "postgresql": Prepared(pg_insert(_T).on_conflict_do_nothing(index_elements=["user_id", "key"])
                           .returning(_T.c.id)),
}


def begin(conn: Connection, *, user_id: int, key: str, fingerprint: str, ttl: dt.timedelta) -> Replay | None:
    """Inside the placement transaction: claim `key`, or return the stored first response.

    Raises 422 when the key was used with another body and 409 while another request holds it.
    On PostgreSQL a transaction-scoped advisory lock on the key tells a concurrent retry at once
    (409) instead of letting it wait on the unique index; on SQLite writers are serialised, so a
    retry starts only after the first request committed or rolled back, and is replayed or re-run.
    """
    now = utcnow()
    params = {"uid": user_id, "k": key}
    if conn.dialect.name == "postgresql":
        lock_id = int.from_bytes(hashlib.sha256(f"{user_id}:{key}".encode()).digest()[:8], "big", signed=True)
        if not _TRY_LOCK.first_value(conn, {"id": lock_id}):
            raise _in_progress()
    row = {"user_id": user_id, "key": key, "request_hash": fingerprint, "state": "running",
           "response_status": None, "response_body": None, "order_id": None, "created_at": now}
    if _INSERT_IF_NEW[conn.dialect.name].first_value(conn, row) is not None:
        return None  # the common case: a fresh key, decided in one statement
    if conn.execute(_EXPIRE, {**params, "before": now - ttl}).rowcount:  # an expired key may be used afresh
        _INSERT_IF_NEW[conn.dialect.name].first_value(conn, row)
        return None
    rec = conn.execute(_SEL, params).first()
    if rec is None:  # pragma: no cover - removed between the two statements by the expiry job
        raise _in_progress()
    if rec.request_hash != fingerprint:
        raise Unprocessable("This Idempotency-Key was already used with a different request body.",
                            code="idempotency_key_reused")
    if rec.state == "running":
        # A claim left by a request that never finished: after the lease, this one takes over.
        if conn.execute(_TAKE_OVER, {**params, "before": now - RUNNING_LEASE, "now": now}).rowcount == 1:
            return None
        raise _in_progress()
    return Replay(status=rec.response_status or 200, body=rec.response_body or "{}")


def _in_progress() -> Conflict:
    return Conflict("A request with this Idempotency-Key is still being processed; retry shortly.",
                    code="idempotency_in_progress", headers={"Retry-After": "1"})


def claim(database: Database, *, user_id: int, key: str, fingerprint: str, ttl: dt.timedelta) -> Replay | None:
    """Claim a key in a transaction of its own (a request that will finish elsewhere, and tests)."""
    with database.engine.begin() as conn:
        return begin(conn, user_id=user_id, key=key, fingerprint=fingerprint, ttl=ttl)


def complete(db: Session | Connection, *, user_id: int, key: str, status: int, body: str,
             order_id: int | None) -> None:
    """Store the response in the caller's transaction (the one that wrote the order)."""
    _COMPLETE.execute(db if isinstance(db, Connection) else db.connection(),
                      {"uid": user_id, "k": key, "status": status, "body": body, "oid": order_id})


def purge_expired(db: Session, *, ttl: dt.timedelta) -> int:
    res = db.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utcnow() - ttl))
    return int(res.rowcount or 0)  # type: ignore[attr-defined]


def place_in(conn: Connection, customer: Any, body: Any, key: str, fingerprint: str, ttl: dt.timedelta,
             source: str = "app", actor: Any = None) -> tuple[int, tuple[str, int | None], bool]:
    """Claim the key, write the order and store the response in the caller's transaction (a unit of the
    database's group writer: its savepoint makes it all or nothing). Database writes only: what must
    happen after the commit (metrics, logs) is `_placed`'s."""
    replay = begin(conn, user_id=customer.user_id, key=key, fingerprint=fingerprint, ttl=ttl)
    if replay is not None:
        return replay.status, (replay.body, None), True
    out = service.place_order(conn, customer=customer, body=body, source=source, actor=actor)
    payload = out.model_dump_json()
    complete(conn, user_id=customer.user_id, key=key, status=201, body=payload, order_id=out.id)
    if actor is not None:
        conn.execute(_INS_AUDIT, {
            "at": utcnow(), "actor_id": actor.user_id, "actor_role": actor.role, "action": f"order.{source}",
            "target": f"order:{out.id}", "details": {"customer_id": customer.user_id,
                                                     "payment_method": body.payment_method}})
    return 201, (payload, out.id), False


_INS_AUDIT = insert(table_of(AuditEntry))


def _placed(result: tuple[int, tuple[str, int | None], bool], body: Any,
            source: str) -> tuple[int, tuple[str, int | None], bool]:
    if not result[2]:
        ORDERS_PLACED.labels(body.payment_method, source).inc()
    return result


def place_once(database: Database, customer: Any, body: Any, key: str, fingerprint: str,
               ttl: dt.timedelta, *, source: str = "app",
               actor: Any = None) -> tuple[int, tuple[str, int | None], bool]:
    """Claim the key, write the order and store the response: one unit of work, all or nothing.

    Returns (status, (response body, order id), replayed) once the order is committed. The checkout
    page and the support console (`source="assisted"`, `actor` = the staff member, audited in the same
    transaction) place through here from worker threads; the API's async route through `place`.
    Both queue on the database's group writer (waimai.core.writer), which commits many orders per
    transaction; a plain Core connection, not an ORM session: the hot path needs no unit of work.
    """
    return _placed(database.writer.call(place_in, customer, body, key, fingerprint, ttl, source, actor),
                   body, source)


async def place(database: Database, customer: Any, body: Any, key: str, fingerprint: str,
                ttl: dt.timedelta, *, source: str = "app") -> tuple[int, tuple[str, int | None], bool]:
    """`place_once` for the event loop: waits for the group commit without holding the loop."""
    return _placed(await database.writer.submit(place_in, customer, body, key, fingerprint, ttl, source),
                   body, source)
