"""Order intake from the delivery platforms: signed pushes become orders (once), and status changes
go back to the platform through a callback outbox delivered in order, with retries and backoff."""

from __future__ import annotations

import datetime as dt
import random
import secrets
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import structlog
from prometheus_client import Counter, Gauge
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from waimai.core import flags, uow
from waimai.core.database import Database, utcnow
from waimai.core.deps import Principal
from waimai.core.errors import AppError
from waimai.core.events import Event
from waimai.core.outbound.policy import DependencyUnavailable, Policy, Resilience
from waimai.core.security import hash_password
from waimai.platform.accounts.models import User
from waimai.platform.catalog.models import DeliveryPoint, MenuItem
from waimai.platform.integrations.base import (
    ExternalOrder,
    InboundRequest,
    OutboundResponse,
    PayloadInvalid,
    PlatformAdapter,
    SignatureRejected,
    StatusUpdate,
)
from waimai.platform.integrations.mapping import (
    CampusFrame,
    CampusPoint,
    MappingFailure,
    MappingTables,
    normalise,
)
from waimai.platform.integrations.models import ExternalOrderLink, PlatformCallback, PlatformShop
from waimai.platform.ordering import service as ordering
from waimai.platform.ordering.models import Order
from waimai.platform.ordering.state import Status

log = structlog.get_logger(__name__)
PLATFORMS = ("meituan", "eleme", "jd")
# Without the service's shared breakers (scripts, tests), each process guards its own calls.
PLATFORM_POLICY = Policy(timeout_s=5.0, attempts=1, max_concurrent=4, open_s=30.0)
_LOCAL = Resilience(policies={"platform.*": PLATFORM_POLICY})
CALLBACK_STATUSES = {Status.accepted: "accepted", Status.picked_up: "picked_up", Status.delivered: "delivered",
                     Status.cancelled: "cancelled", Status.rejected: "cancelled"}
MAX_ATTEMPTS = 12

INTAKE = Counter("waimai_intake_pushes_total", "Order pushes from platforms, by outcome.", ["platform", "outcome"])
CALLBACK_BACKLOG = Gauge("waimai_intake_callback_backlog", "Status callbacks not yet acknowledged by the platform.",
                         ["platform"], multiprocess_mode="mostrecent")


def _intake_user(db: Session, platform: str) -> User:
    """Orders from a platform belong to one system customer per platform (the real buyer is theirs)."""
    phone = f"{platform}-intake"[:20]
    user = db.scalar(select(User).where(User.phone == phone))
    if user is None:
        user = User(phone=phone, name=f"{platform} intake", role="customer",
                    password_hash=hash_password(secrets.token_urlsafe(32)))
        db.add(user)
        db.flush()
    return user


def mapping_tables(db: Session, frame: CampusFrame) -> MappingTables:
    merchants = {(s.platform, s.external_shop_id): s.merchant_id for s in db.scalars(select(PlatformShop))}
    mids = set(merchants.values())
    names = {(i.merchant_id, i.name): i.id for i in db.scalars(select(MenuItem).where(MenuItem.merchant_id.in_(mids)))}
    points = [CampusPoint(id=p.id, name=p.name, x=p.x, y=p.y, active=p.active)
              for p in db.scalars(select(DeliveryPoint))]
    return MappingTables(merchants=merchants, skus={}, names=names, points=points, frame=frame)


def receive(database: Database, adapter: PlatformAdapter, inbound: InboundRequest, frame: CampusFrame,
            resilience: Resilience | None = None, *,
            on_rejected: Callable[[str], None] | None = None) -> OutboundResponse:
    """Verify, parse, deduplicate, map and place; always answer in the platform's own shape. `on_rejected`
    hears each signature failure's reason (the edge counts them per source address as a security event)."""
    name = adapter.name
    res = resilience or _LOCAL
    try:
        adapter.verify(inbound)
        ext = _parse(adapter, inbound, res)
    except SignatureRejected as exc:
        if exc.reason == "replayed" and _already_have(database, adapter, inbound, res):
            # A byte-identical redelivery of an order we hold: harmless, and the platform wants its ack.
            INTAKE.labels(name, "duplicate").inc()
            return adapter.ack(True, "ok")
        INTAKE.labels(name, f"rejected_{exc.reason}").inc()
        log.warning("intake_rejected", platform=name, reason=exc.reason)
        if on_rejected is not None:
            on_rejected(exc.reason)
        return adapter.ack(False, f"signature {exc.reason}")
    except PayloadInvalid as exc:
        INTAKE.labels(name, "invalid").inc()
        log.warning("intake_invalid", platform=name, error=str(exc))
        return adapter.ack(False, str(exc))
    with uow.unit_of_work(database) as db:
        if flags.enabled(f"intake.{name}.paused"):
            INTAKE.labels(name, "paused").inc()
            return adapter.ack(False, "intake paused by the campus team; retry later")
        link = db.scalar(select(ExternalOrderLink).where(ExternalOrderLink.platform == name,
                                                         ExternalOrderLink.external_id == ext.external_id))
        if link is not None:  # a redelivered push: the order exists already
            INTAKE.labels(name, "duplicate").inc()
            return adapter.ack(True, "ok")
        mapped = normalise(ext, mapping_tables(db, frame))
        if isinstance(mapped, MappingFailure):
            INTAKE.labels(name, f"unmapped_{mapped.code}").inc()
            log.warning("intake_unmapped", platform=name, external_id=ext.external_id, code=mapped.code,
                        message=mapped.message)
            return adapter.ack(False, mapped.message)
        user = _intake_user(db, name)
        body = mapped.to_place_order("cod").model_copy(
            update={"payment_method": "platform" if ext.paid_online else "cod"})
        try:
            with db.begin_nested():  # the order and its link, or neither (the intake user stays)
                out = ordering.place_order(db, customer=Principal(user_id=user.id, role="customer"), body=body,
                                           source=name, contact=mapped.contact_phone_masked[:20])
                db.add(ExternalOrderLink(platform=name, external_id=ext.external_id, order_id=out.id))
        except IntegrityError:  # the same push raced in twice: the other one won
            INTAKE.labels(name, "duplicate").inc()
            return adapter.ack(True, "ok")
        except AppError as exc:
            INTAKE.labels(name, "refused").inc()
            log.warning("intake_refused", platform=name, external_id=ext.external_id, error=exc.message)
            return adapter.ack(False, exc.message)
    INTAKE.labels(name, "accepted").inc()
    log.info("intake_order", platform=name, external_id=ext.external_id, order_id=out.id)
    return adapter.ack(True, "ok")


def _parse(adapter: PlatformAdapter, inbound: InboundRequest, resilience: Resilience) -> ExternalOrder:
    """Parse a push; JD's real new-order message names only the bill, so fetch the order first."""
    from waimai.platform.integrations.jd import OrderDetailRequired

    try:
        return adapter.parse(inbound)
    except OrderDetailRequired as need:
        query = adapter.build_order_query(need.bill_id)  # type: ignore[attr-defined]
        dep = resilience.dependency(f"platform.{adapter.name}")
        try:
            r = dep.call(lambda: httpx.request(query.method, query.url, headers=dict(query.headers),
                                               content=query.body, timeout=dep.policy.timeout_s),
                         retry_on=httpx.HTTPError)
        except (httpx.HTTPError, DependencyUnavailable) as exc:
            raise PayloadInvalid(f"order query failed: {exc.__class__.__name__}") from exc
        return adapter.parse_order_query_response(r.status_code, r.content)  # type: ignore[attr-defined, no-any-return]


def _already_have(database: Database, adapter: PlatformAdapter, inbound: InboundRequest,
                  resilience: Resilience) -> bool:
    try:
        ext = _parse(adapter, inbound, resilience)
    except PayloadInvalid:
        return False
    with database.read_session() as db:
        return db.scalar(select(ExternalOrderLink.id).where(ExternalOrderLink.platform == adapter.name,
                                                            ExternalOrderLink.external_id == ext.external_id)
                         ) is not None


def queue_callback(db: Session, ev: Event) -> None:
    """Subscriber of `order.*`: owe the platform a status callback for an order it sent us. Runs in the
    dispatcher's transaction with its delivery record, so each state change is owed once."""
    status = ev.payload.get("status")
    if status is None or Status(status) not in CALLBACK_STATUSES:
        return
    order = db.get(Order, int(ev.payload["order_id"]))
    if order is None or order.source not in PLATFORMS:
        return
    ext = db.scalar(select(ExternalOrderLink.external_id).where(ExternalOrderLink.order_id == order.id))
    if ext is None:
        return
    db.add(PlatformCallback(platform=order.source, order_id=order.id, external_id=ext,
                            status=CALLBACK_STATUSES[Status(status)], reason=(ev.payload.get("reason") or "")[:200]))


class _PlatformDown(Exception):
    pass




class CallbackSender:
    """Delivers owed callbacks oldest first per order; a failure holds that order's later callbacks.

    The outbox is the retry: a failed callback waits 2, 4, 8 … 300 s (with full jitter) before its
    next attempt. Each call goes through the platform's Dependency (`platform.<name>`: bulkhead and
    circuit breaker); while a platform's breaker is open its callbacks wait without spending attempts.
    """

    def __init__(self, database: Database, adapters: Mapping[str, PlatformAdapter], *, timeout_s: float = 5.0,
                 resilience: Resilience | None = None) -> None:
        self.database = database
        self.adapters = adapters
        self.client = httpx.Client(timeout=timeout_s)
        self.resilience = resilience or Resilience(policies={"platform.*": PLATFORM_POLICY})  # until the app's

    def run_once(self, now: dt.datetime | None = None) -> dict[str, int]:
        now = now or utcnow()
        sent = failed = 0
        with self.database.read_session() as db:
            pending = list(db.scalars(select(PlatformCallback).where(PlatformCallback.state == "pending")
                                      .order_by(PlatformCallback.order_id, PlatformCallback.id)))
        blocked: set[int] = set()
        for cb in pending:
            if cb.order_id in blocked:
                continue
            if cb.next_attempt_at > now:
                blocked.add(cb.order_id)  # in order: nothing after a callback that waits
                continue
            adapter = self.adapters.get(cb.platform)
            if adapter is None:
                blocked.add(cb.order_id)
                continue
            try:
                ok, error = self._send(adapter, cb, now)
            except DependencyUnavailable:  # the platform is failing: wait, without spending an attempt
                blocked.add(cb.order_id)
                continue
            with uow.unit_of_work(self.database) as db:
                row = db.get(PlatformCallback, cb.id)
                if row is None:
                    continue
                row.attempts += 1
                if ok:
                    row.state, row.sent_at, row.last_error = "sent", now, None
                    sent += 1
                else:
                    failed += 1
                    row.last_error = error[:300]
                    if row.attempts >= MAX_ATTEMPTS:
                        row.state = "dead"  # the dead-letter view; later callbacks go on
                        log.error("intake_callback_dead", platform=cb.platform, order_id=cb.order_id,
                                  status=cb.status, error=error)
                    else:
                        backoff = min(300, 2 ** row.attempts) * random.uniform(0.5, 1.0)  # noqa: S311
                        row.next_attempt_at = now + dt.timedelta(seconds=backoff)
                        blocked.add(cb.order_id)
        self._backlog()
        return {"sent": sent, "failed": failed}

    def _send(self, adapter: PlatformAdapter, cb: PlatformCallback, now: dt.datetime) -> tuple[bool, str]:
        out = adapter.build_status_callback(StatusUpdate(external_id=cb.external_id, status=cb.status,  # type: ignore[arg-type]
                                                         occurred_at=cb.created_at, reason=cb.reason,
                                                         rider_phone="13800000003"))
        def call() -> httpx.Response:
            r = self.client.request(out.method, out.url, headers=dict(out.headers), content=out.body)
            if r.status_code >= 500:
                raise _PlatformDown(f"HTTP {r.status_code}: {r.text[:200]}")
            return r

        try:
            r = self.resilience.dependency(f"platform.{cb.platform}").call(call, retry_on=(httpx.HTTPError, _PlatformDown))
        except httpx.HTTPError as exc:
            return False, exc.__class__.__name__
        except _PlatformDown as exc:
            return False, str(exc)
        if adapter.parse_callback_response(r.status_code, r.content):
            return True, ""
        return False, f"HTTP {r.status_code}: {r.text[:200]}"

    def _backlog(self) -> None:
        with self.database.read_session() as db:
            counts = dict(db.execute(select(PlatformCallback.platform, func.count()).where(
                PlatformCallback.state == "pending").group_by(PlatformCallback.platform)).all())
        for p in PLATFORMS:
            CALLBACK_BACKLOG.labels(p).set(counts.get(p, 0))

    def close(self) -> None:
        self.client.close()


def dead_letters(db: Session) -> list[dict[str, Any]]:
    return [{"id": c.id, "platform": c.platform, "order_id": c.order_id, "external_id": c.external_id,
             "status": c.status, "attempts": c.attempts, "last_error": c.last_error}
            for c in db.scalars(select(PlatformCallback).where(PlatformCallback.state == "dead")
                                .order_by(PlatformCallback.id))]


def reconcile(db: Session, day: dt.date, tz: str = "Asia/Shanghai") -> dict[str, dict[str, Any]]:
    """Per platform for one local day: orders received, delivered, cancelled, callbacks acknowledged,
    and the mismatches (a delivered or cancelled order the platform was never told about)."""
    from zoneinfo import ZoneInfo

    start = dt.datetime.combine(day, dt.time(0), ZoneInfo(tz)).astimezone(dt.UTC)
    end = start + dt.timedelta(days=1)
    report: dict[str, dict[str, Any]] = {}
    rows = db.execute(select(ExternalOrderLink, Order).join(Order, Order.id == ExternalOrderLink.order_id)
                      .where(ExternalOrderLink.received_at >= start, ExternalOrderLink.received_at < end)).all()
    cbs = list(db.scalars(select(PlatformCallback).where(PlatformCallback.order_id.in_([o.id for _, o in rows]))))
    sent = {(c.order_id, c.status) for c in cbs if c.state == "sent"}
    for p in PLATFORMS:
        mine = [(link, o) for link, o in rows if link.platform == p]
        delivered = [o for _, o in mine if o.status == Status.delivered.value]
        cancelled = [o for _, o in mine if o.status in ("cancelled", "rejected", "refunded")]
        mismatches = [f"order {o.id} delivered, platform not told" for o in delivered if (o.id, "delivered") not in sent]
        mismatches += [f"order {o.id} cancelled, platform not told" for o in cancelled
                       if (o.id, "cancelled") not in sent]
        mine_cbs = [c for c in cbs if c.platform == p]
        report[p] = {"received": len(mine), "delivered": len(delivered), "cancelled": len(cancelled),
                     "callbacks_acknowledged": sum(c.state == "sent" for c in mine_cbs),
                     "callbacks_pending": sum(c.state == "pending" for c in mine_cbs),
                     "callbacks_dead": sum(c.state == "dead" for c in mine_cbs), "mismatches": mismatches}
    return report
