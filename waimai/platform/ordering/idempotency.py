"""Idempotency keys for order placement, as Stripe and the IETF draft describe them.

The first request with a key claims it in a short transaction of its own (state `running`), so a
concurrent retry can be told 409 at once; the order and the stored response are then written in
ONE transaction, so a key is `done` exactly when its order exists. A request that fails releases
its key: nothing was written, and the client may try again with the same key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from waimai.core.database import Database, utcnow
from waimai.core.errors import AppError, Conflict, Unprocessable
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


def claim(database: Database, *, user_id: int, key: str, fingerprint: str, ttl: dt.timedelta) -> Replay | None:
    """Claim `key` for this request, or return the stored first response; 409/422 as the draft says."""
    now = utcnow()
    for _ in range(3):
        with database.session() as db:
            rec = db.scalar(select(IdempotencyRecord).where(IdempotencyRecord.user_id == user_id,
                                                            IdempotencyRecord.key == key))
            if rec is not None and rec.created_at < now - ttl:
                db.delete(rec)  # expired: the key may be used afresh
                db.flush()
                rec = None
            if rec is None:
                db.add(IdempotencyRecord(user_id=user_id, key=key, request_hash=fingerprint, state="running",
                                         created_at=now))
                try:
                    db.commit()
                    return None
                except IntegrityError:
                    db.rollback()
                    continue  # someone claimed it between our read and write: look again
            if rec.request_hash != fingerprint:
                raise Unprocessable("This Idempotency-Key was already used with a different request body.",
                                    code="idempotency_key_reused")
            if rec.state == "running":
                if rec.created_at < now - RUNNING_LEASE:
                    rec.created_at = now  # the first attempt died: this one takes over
                    db.commit()
                    return None
                raise Conflict("A request with this Idempotency-Key is still being processed; retry shortly.",
                               code="idempotency_in_progress", headers={"Retry-After": "1"})
            return Replay(status=rec.response_status or 200, body=rec.response_body or "{}")
    raise Conflict("Could not claim the Idempotency-Key; retry.", code="idempotency_in_progress")


def complete(db: Session, *, user_id: int, key: str, status: int, body: str, order_id: int | None) -> None:
    """Store the response in the caller's transaction (the one that wrote the order)."""
    db.execute(update(IdempotencyRecord)
               .where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
               .values(state="done", response_status=status, response_body=body, order_id=order_id))


def release(database: Database, *, user_id: int, key: str) -> None:
    with database.session() as db:
        db.execute(delete(IdempotencyRecord).where(IdempotencyRecord.user_id == user_id,
                                                   IdempotencyRecord.key == key,
                                                   IdempotencyRecord.state == "running"))
        db.commit()


def purge_expired(db: Session, *, ttl: dt.timedelta) -> int:
    res = db.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utcnow() - ttl))
    return int(res.rowcount or 0)  # type: ignore[attr-defined]
