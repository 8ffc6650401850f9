"""The order spool: orders accepted while no database accepts writes, kept on this replica's local disk.

When placement cannot reach the database (or the database watch already knows it is unreachable), a
cash-on-delivery order is written to a SQLite file beside the process — never the main database —
with `synchronous=FULL`, so the row is on disk before the customer gets `202` and a reference. Its
honest state is 待确认 ("received, confirming"). When the database answers again, every replica replays
its own spool through the ordinary placement path (`idempotency.place_once`, the same key and body the
customer sent): the key makes a replay that already happened — or a request that was still running
when the database went away and committed after all — come back as the first order, never a second
one; stock, opening hours and capacity are checked then, as for any order. Each spooled order ends
`confirmed` (with its order id) or `refused` (with the reason), and the customer gets a notice either
way. A replica killed with a full spool replays it after its restart: the file is the queue.

The spool is a separate path from placement (and from any batching writer in front of it): it calls
the placement service at replay, like any client would.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from waimai.core import uow
from waimai.core.database import Database, is_connection_error
from waimai.core.deps import Principal
from waimai.core.errors import AppError, Unprocessable

log = structlog.get_logger(__name__)

PENDING, CONFIRMED, REFUSED = "pending", "confirmed", "refused"
# An order's reference while it waits: short enough to read out to support, unguessable enough.
REF_PREFIX = "S-"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spooled_orders (
    ref TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL,
    role TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    order_id INTEGER,
    order_number TEXT,
    reason_code TEXT,
    reason TEXT,
    settled_at REAL,
    notified INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    UNIQUE (user_id, idem_key)
)
"""


@dataclass(frozen=True)
class Spooled:
    ref: str
    user_id: int
    role: str
    key: str
    fingerprint: str
    body: dict[str, Any]
    received_at: float
    state: str
    order_id: int | None
    order_number: str | None
    reason_code: str | None
    reason: str | None
    settled_at: float | None
    notified: bool

    def public(self) -> dict[str, Any]:
        """What the customer (and the 202 answer) sees."""
        return {"reference": self.ref, "status": "pending_confirmation" if self.state == PENDING else self.state,
                "order_id": self.order_id, "order_number": self.order_number, "reason": self.reason,
                "reason_code": self.reason_code,
                "settled_at": dt.datetime.fromtimestamp(self.settled_at, dt.UTC).isoformat() if self.settled_at else None,
                "received_at": dt.datetime.fromtimestamp(self.received_at, dt.UTC).isoformat(),
                "merchant_id": self.body.get("merchant_id"), "payment_method": self.body.get("payment_method"),
                "items": self.body.get("items", [])}


# Every statement is a literal (no SQL is built from values); these select the columns `_row` reads.
_BY_REF = ("SELECT ref, user_id, role, idem_key, fingerprint, body, received_at, state, order_id, order_number, "
           "reason_code, reason, settled_at, notified FROM spooled_orders WHERE ref = ?")
_BY_KEY = ("SELECT ref, user_id, role, idem_key, fingerprint, body, received_at, state, order_id, order_number, "
           "reason_code, reason, settled_at, notified FROM spooled_orders WHERE user_id = ? AND idem_key = ?")
_FOR_USER = ("SELECT ref, user_id, role, idem_key, fingerprint, body, received_at, state, order_id, order_number, "
             "reason_code, reason, settled_at, notified FROM spooled_orders WHERE user_id = ? "
             "ORDER BY received_at DESC LIMIT ?")
_PENDING = ("SELECT ref, user_id, role, idem_key, fingerprint, body, received_at, state, order_id, order_number, "
            "reason_code, reason, settled_at, notified FROM spooled_orders WHERE state = 'pending' "
            "ORDER BY received_at LIMIT ?")
_UNNOTIFIED = ("SELECT ref, user_id, role, idem_key, fingerprint, body, received_at, state, order_id, order_number, "
               "reason_code, reason, settled_at, notified FROM spooled_orders WHERE state != 'pending' "
               "AND notified = 0 ORDER BY settled_at LIMIT ?")


def _row(r: tuple[Any, ...]) -> Spooled:
    return Spooled(ref=r[0], user_id=r[1], role=r[2], key=r[3], fingerprint=r[4], body=json.loads(r[5]),
                   received_at=r[6], state=r[7], order_id=r[8], order_number=r[9], reason_code=r[10], reason=r[11],
                   settled_at=r[12], notified=bool(r[13]))


class OrderSpool:
    """The durable local queue of one replica (one SQLite file, fsynced on every accepted order)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=10)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")  # the WAL is fsynced at every commit: a 202 is on disk
        self._conn.execute(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _one(self, sql: str, params: tuple[Any, ...]) -> Spooled | None:
        with self._lock:
            r = self._conn.execute(sql, params).fetchone()
        return _row(r) if r else None

    def _many(self, sql: str, params: tuple[Any, ...]) -> list[Spooled]:
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [_row(r) for r in rows]

    def add(self, *, customer: Principal, key: str, fingerprint: str, body: dict[str, Any]) -> tuple[Spooled, bool]:
        """Spool an order; (row, replayed). The same key again returns the first row; another body with
        the same key is refused like placement refuses it."""
        ref = REF_PREFIX + secrets.token_hex(5).upper()
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO spooled_orders (ref, user_id, role, idem_key, fingerprint, body, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, idem_key) DO NOTHING",
                (ref, customer.user_id, customer.role, key, fingerprint, json.dumps(body, ensure_ascii=False),
                 time.time()))
            created = cur.rowcount == 1
        row = self.by_key(customer.user_id, key)
        assert row is not None
        if not created and row.fingerprint != fingerprint:
            raise Unprocessable("This Idempotency-Key was already used with a different request body.",
                                code="idempotency_key_reused")
        return row, not created

    def get(self, ref: str) -> Spooled | None:
        return self._one(_BY_REF, (ref,))

    def by_key(self, user_id: int, key: str) -> Spooled | None:
        return self._one(_BY_KEY, (user_id, key))

    def for_user(self, user_id: int, limit: int = 20) -> list[Spooled]:
        return self._many(_FOR_USER, (user_id, limit))

    def pending(self, limit: int = 200) -> list[Spooled]:
        return self._many(_PENDING, (limit,))

    def unnotified(self, limit: int = 200) -> list[Spooled]:
        return self._many(_UNNOTIFIED, (limit,))

    def settle(self, ref: str, *, state: str, order_id: int | None = None, order_number: str | None = None,
               reason_code: str | None = None, reason: str | None = None) -> None:
        self.settle_many([(ref, state, order_id, order_number, reason_code, reason)])

    def settle_many(self, rows: list[tuple[str, str, int | None, str | None, str | None, str | None]]) -> None:
        """Record outcomes in one transaction (one fsync for the batch: losing it in a crash only means the
        replay runs again, and the key brings back the same order)."""
        if not rows:
            return
        now = time.time()
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(
                    "UPDATE spooled_orders SET state = ?, order_id = ?, order_number = ?, reason_code = ?, "
                    "reason = ?, settled_at = ?, attempts = attempts + 1 WHERE ref = ? AND state = 'pending'",
                    [(st, oid, num, code, why, now, ref) for ref, st, oid, num, code, why in rows])
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def mark_notified(self, refs: list[str]) -> None:
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany("UPDATE spooled_orders SET notified = 1 WHERE ref = ?", [(r,) for r in refs])
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def counts(self) -> dict[str, Any]:
        with self._lock:
            rows = self._conn.execute("SELECT state, COUNT(*), MIN(received_at) FROM spooled_orders "
                                      "GROUP BY state").fetchall()
        out: dict[str, Any] = {PENDING: 0, CONFIRMED: 0, REFUSED: 0, "oldest_pending_s": None}
        for state, n, oldest in rows:
            out[state] = n
            if state == PENDING and oldest is not None:
                out["oldest_pending_s"] = round(time.time() - oldest, 1)
        return out


def take(app_state: Any, *, customer: Principal, body: Any, key: str, fingerprint: str) -> tuple[Spooled, bool]:
    """No database accepts writes: keep a cash-on-delivery order in this replica's spool (the API and /simple).
    Anything else is refused with 503 and what the customer can do."""
    spool: OrderSpool | None = getattr(app_state, "order_spool", None)
    if spool is None or body.payment_method != "cod":
        raise AppError("Orders cannot be confirmed right now (our database is unavailable). Cash-on-delivery orders "
                       "are still accepted and confirmed as soon as it is back; try again, choosing cash on delivery.",
                       status=503, code="database_unavailable", headers={"Retry-After": "10"})
    row, replayed = spool.add(customer=customer, key=key, fingerprint=fingerprint, body=body.model_dump(mode="json"))
    if not replayed:
        log.warning("order_spooled", ref=row.ref, merchant_id=body.merchant_id)
    return row, replayed


# --- replay ------------------------------------------------------------------------------------------------

NOTICE_TEXT = {
    CONFIRMED: ({"zh": "订单已确认", "en": "Your order is confirmed"},
                {"zh": "数据库故障期间收到的订单 {ref} 已确认，订单号 {number}，货到付款。",
                 "en": "The order {ref} we received during the outage is confirmed as {number} (cash on delivery)."}),
    REFUSED: ({"zh": "抱歉，订单未能确认", "en": "Sorry, we could not confirm your order"},
              {"zh": "非常抱歉：数据库故障期间收到的订单 {ref} 未能确认（{reason}），不会向您收费，请重新下单。",
               "en": "We are sorry: the order {ref} we received during the outage could not be confirmed "
                     "({reason}). You will not be charged; please order again."}),
}


# Why a spooled order was refused, in the customer's words (the service's message is for developers).
REASONS = {"out_of_stock": {"zh": "菜品已售罄", "en": "an item sold out meanwhile"},
           "merchant_closed": {"zh": "商家已打烊", "en": "the shop has closed"},
           "merchant_busy": {"zh": "商家订单已满", "en": "the shop is at capacity"},
           "coupons_paused": {"zh": "优惠券暂停使用", "en": "coupons are paused"}}
OTHER_REASON = {"zh": "订单无法下达", "en": "it could not be placed"}


def _notify(database: Database, rows: list[Spooled]) -> None:
    """One notice per settled order, in its customer's language, written in one transaction."""
    from sqlalchemy import select

    from waimai.core.inbox import Notice
    from waimai.platform.accounts.models import User

    with uow.unit_of_work(database) as s:
        ids = {r.user_id for r in rows}
        locales = dict(s.execute(select(User.id, User.locale).where(User.id.in_(ids))).tuples().all())
        for row in rows:
            lang = "en" if (locales.get(row.user_id) or "").startswith("en") else "zh"
            title, body = NOTICE_TEXT[row.state]
            s.add(Notice(user_id=row.user_id, title=title[lang],
                         body=body[lang].format(ref=row.ref, number=row.order_number or "",
                                                reason=REASONS.get(row.reason_code or "", OTHER_REASON)[lang])))


def _chains(rows: list[Spooled]) -> list[list[int]]:
    """Indexes of `rows` in chains, each in spool order: orders sharing a menu item share a chain, so the one
    taken first gets the last portion (first come, first served), while unrelated orders are placed at once."""
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[Any, int] = {}
    for i, row in enumerate(rows):
        for item in (row.body or {}).get("items", []):
            key = item.get("item_id") if isinstance(item, dict) else None
            if key is None:
                continue
            if key in owner:
                parent[find(i)] = find(owner[key])
            else:
                owner[key] = i
    chains: dict[int, list[int]] = {}
    for i in range(len(rows)):
        chains.setdefault(find(i), []).append(i)
    return sorted(chains.values(), key=lambda c: c[0])


def _run_chain(attempt: Any, rows: list[Spooled], chain: list[int]) -> list[tuple[int, Any]]:
    """Attempt a chain's rows in order; once the database is gone the rest of the chain waits too."""
    out: list[tuple[int, Any]] = []
    for n, i in enumerate(chain):
        r = attempt(rows[i])
        out.append((i, r))
        if r == "gone":
            out.extend((j, "gone") for j in chain[n + 1:])
            break
    return out


def replay(database: Database, spool: OrderSpool, *, ttl: dt.timedelta, workers: int = 4) -> dict[str, int]:
    """Place every pending spooled order through the ordinary placement path, then tell each customer.

    Orders are placed oldest first by a few threads at once (a long outage leaves a thousand orders, and
    customers wait for each); orders that share a menu item are placed one after another in spool order, so
    a scarce item goes to whoever ordered it first; outcomes are recorded one batch at a time — a crash between placing and
    recording only repeats placements, which the key turns into replays of the same orders. Stops at the
    first connection error (the database went away again; the rest waits for next time).
    """
    from concurrent.futures import ThreadPoolExecutor

    from waimai.platform.ordering import idempotency
    from waimai.platform.ordering.schemas import PlaceOrderIn

    def attempt(row: Spooled) -> tuple[str, str, int | None, str | None, str | None, str | None] | str:
        body = PlaceOrderIn.model_validate(row.body)
        try:
            status, (payload, _oid), _replayed = idempotency.place_once(
                database, Principal(user_id=row.user_id, role=row.role), body, row.key, row.fingerprint, ttl)
        except AppError as exc:
            if exc.code == "idempotency_in_progress":  # the customer's own request is still running: later
                return "later"
            log.warning("spooled_order_refused", ref=row.ref, code=exc.code)
            return (row.ref, REFUSED, None, None, exc.code, exc.message)
        except Exception as exc:
            if is_connection_error(exc):
                return "gone"
            raise
        out = json.loads(payload)
        if status >= 300 or "id" not in out:  # a stored refusal from an earlier attempt with this key
            err = out.get("error", {})
            return (row.ref, REFUSED, None, None, str(err.get("code", status)), str(err.get("message", "")))
        return (row.ref, CONFIRMED, int(out["id"]), str(out.get("number", "")), None, None)

    done = {CONFIRMED: 0, REFUSED: 0, "notified": 0}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="spool-replay") as pool:
        while True:
            rows = spool.pending(100)
            if not rows:
                break
            results: list[Any] = [None] * len(rows)
            for chain_out in pool.map(functools.partial(_run_chain, attempt, rows), _chains(rows)):
                for i, r in chain_out:
                    results[i] = r
            settled = [r for r in results if isinstance(r, tuple)]
            spool.settle_many(settled)
            for r in settled:
                done[r[1]] += 1
            if "gone" in results or not settled:
                break
    while True:
        rows = spool.unnotified()
        if not rows:
            break
        try:
            _notify(database, rows)
        except Exception as exc:
            if is_connection_error(exc):
                break
            raise
        spool.mark_notified([r.ref for r in rows])
        done["notified"] += len(rows)
    return done


def install(app: Any, settings: Any) -> list[Any]:
    """Open this replica's spool and return the replay job (every process replays its own file)."""
    from waimai.core.background import Job, ttl
    from waimai.core.roles import EVERY_PROCESS

    spool = OrderSpool(settings.spool_path)
    app.state.order_spool = spool
    database: Database = app.state.db
    keep = ttl(settings.idempotency_ttl_hours)
    waiting: list[bool] = [bool(spool.pending(1) or spool.unnotified(1))]  # a restart with a full spool

    def run() -> None:
        if not database.reachable or not (waiting[0] or spool.pending(1) or spool.unnotified(1)):
            return
        done = replay(database, spool, ttl=keep)
        waiting[0] = bool(spool.pending(1) or spool.unnotified(1))
        if any(done.values()):
            log.warning("spool_replayed", **done, left=spool.counts()[PENDING])

    return [Job("order_spool_replay", 1.0, run, role=EVERY_PROCESS)]
