"""Web Push: who may subscribe what, what each change owes which browser, and the sender.

Subscribing stores the browser's Push API subscription (endpoint, `p256dh`, `auth`) for the signed-in
user, checked before it is kept: the endpoint is an https URL of a named host (no address literal, no
`localhost`: our servers POST to it), or in development and tests `http://127.0.0.1`; the keys are a P-256
point and a 16-byte secret. A user keeps at most `push_subscriptions_per_user` browsers.

Messages are owed once per change (`queue_order_update` is the `push.order_status` subscriber of `order.*`,
committed with its delivery record; incident notices queue theirs in the notifier's fan-out), one `push_messages` row per
subscription, worded in the language the subscription was made in. The sender (a singleton job of the
notifier role, never a request) encrypts each (RFC 8291, aes128gcm) and signs it (VAPID, RFC 8292) with
pywebpush, through the `push.<host>` Dependency: stamina retries on 429 and 5xx within its budget and a
breaker per push service; what still fails waits 2, 4 … 300 s and is dead after `MAX_ATTEMPTS`. A 404 or
410 means the browser dropped the subscription: it is deleted with what it was owed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog
from cryptography.hazmat.primitives.asymmetric import ec
from prometheus_client import Counter, Gauge
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from waimai.core import uow
from waimai.core.database import Database, utcnow
from waimai.core.errors import Conflict, NotFound, Unprocessable
from waimai.core.events import Event
from waimai.core.messages import N_
from waimai.core.outbound.policy import DependencyUnavailable, Policy, Resilience
from waimai.platform.ordering.models import Order
from waimai.platform.ordering.state import Status
from waimai.platform.push.models import PushMessage, PushSubscription
from waimai.platform.push.vapid import VapidKeys, unb64u

log = structlog.get_logger(__name__)

PUSH_SENT = Counter("waimai_push_messages_total", "Web Push messages by kind and outcome "
                    "(sent, retry, failed, dead, gone).", ["kind", "outcome"])
PUSH_BACKLOG = Gauge("waimai_push_backlog", "Web Push messages waiting to be sent.", multiprocess_mode="mostrecent")
PUSH_SUBSCRIPTIONS = Counter("waimai_push_subscription_changes_total", "Push subscriptions made, removed by "
                             "their user, and dropped by push services (gone).", ["change"])
PUSH_POLICY = Policy(timeout_s=5.0, attempts=3, wait_initial_s=0.2, wait_max_s=2.0, deadline_s=15.0,
                     max_concurrent=8, failure_threshold=10, open_s=30.0)
MAX_ATTEMPTS = 8
LOCALES = ("zh_CN", "en")

# What a customer hears about their order (the rest they did themselves or is too early to matter).
ORDER_TEXTS: dict[Status, str] = {
    Status.accepted: N_("%(shop)s accepted your order %(number)s."),
    Status.ready: N_("Your order %(number)s is ready and waiting for a rider."),
    Status.picked_up: N_("Your order %(number)s is on its way."),
    Status.delivered: N_("Your order %(number)s has been delivered. Enjoy your meal!"),
    Status.cancelled: N_("Your order %(number)s was cancelled."),
    Status.rejected: N_("%(shop)s could not take your order %(number)s."),
    Status.failed: N_("Your order %(number)s could not be delivered; support will contact you."),
    Status.refunded: N_("Your order %(number)s has been refunded."),
}


def locale_of(value: str | None) -> str:
    return "en" if (value or "").lower().replace("-", "_").startswith("en") else "zh_CN"


def _gettext(locale: str, msgid: str) -> str:
    from waimai.core.i18n import translations

    return translations(locale).gettext(msgid)


# --- subscriptions -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SubscriptionIn:
    endpoint: str
    p256dh: str
    auth: str
    locale: str


def check_endpoint(endpoint: str, *, allow_loopback: bool) -> str:
    """An endpoint we are willing to POST to (see the module docstring); Unprocessable otherwise."""
    bad = Unprocessable("The push endpoint must be an https URL of a push service.", code="push_endpoint_invalid")
    if not isinstance(endpoint, str) or not 10 <= len(endpoint) <= 800 or any(c.isspace() for c in endpoint):
        raise bad
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    if parts.username or parts.password or parts.fragment or not host:
        raise bad
    if parts.scheme == "http" and allow_loopback and host == "127.0.0.1":
        return endpoint
    if parts.scheme != "https" or host == "localhost" or host.endswith(".localhost") or "." not in host:
        raise bad
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return endpoint
    raise bad  # an address literal: push services have names, internal hosts often do not


def check_keys(p256dh: str, auth: str) -> None:
    bad = Unprocessable("The push subscription's keys are not valid.", code="push_keys_invalid")
    try:
        point, secret = unb64u(p256dh), unb64u(auth)
        if len(point) != 65 or len(secret) != 16:
            raise ValueError("sizes")
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise bad from None


def subscribe(db: Session, user_id: int, sub: SubscriptionIn, *, cap: int, allow_loopback: bool) -> PushSubscription:
    """Keep (or refresh) this browser's subscription for the user; the caller commits."""
    check_endpoint(sub.endpoint, allow_loopback=allow_loopback)
    check_keys(sub.p256dh, sub.auth)
    row = db.scalar(select(PushSubscription).where(PushSubscription.endpoint == sub.endpoint))
    if row is not None and row.user_id != user_id:
        raise Conflict("This browser receives push notifications for another account; turn them off there first.",
                       code="push_endpoint_taken")
    if row is None:
        have = db.scalar(select(func.count()).select_from(PushSubscription)
                         .where(PushSubscription.user_id == user_id)) or 0
        if have >= cap:
            raise Conflict("Push notifications are on in too many browsers; turn them off in one first.",
                           code="push_subscriptions_full", details={"limit": cap})
        row = PushSubscription(user_id=user_id, endpoint=sub.endpoint)
        db.add(row)
        PUSH_SUBSCRIPTIONS.labels("made").inc()
    row.p256dh, row.auth, row.locale = sub.p256dh, sub.auth, locale_of(sub.locale)
    db.flush()
    return row


def _drop(db: Session, sub_id: int) -> None:
    db.execute(delete(PushMessage).where(PushMessage.subscription_id == sub_id))
    db.execute(delete(PushSubscription).where(PushSubscription.id == sub_id))


def unsubscribe(db: Session, user_id: int, endpoint: str) -> None:
    """Delete the user's own subscription for this endpoint; someone else's is simply not there."""
    row = db.scalar(select(PushSubscription).where(PushSubscription.endpoint == endpoint))
    if row is None or row.user_id != user_id:
        raise NotFound("No such push subscription.")
    _drop(db, row.id)
    PUSH_SUBSCRIPTIONS.labels("removed").inc()


def subscriptions(db: Session, user_id: int) -> list[PushSubscription]:
    return list(db.scalars(select(PushSubscription).where(PushSubscription.user_id == user_id)
                           .order_by(PushSubscription.id)))


# --- what is owed --------------------------------------------------------------------------------------

def order_text(locale: str, to: Status, number: str, shop: str) -> tuple[str, str]:
    title = f"{_gettext(locale, 'app.short_name')} · {_gettext(locale, 'status.' + to.value)}"
    return title[:200], (_gettext(locale, ORDER_TEXTS[to]) % {"shop": shop, "number": number})[:500]


def queue_order_update(db: Session, ev: Event) -> None:
    """Subscriber of `order.*`: owe each of the customer's browsers a push about the change (committed with
    the delivery record, so each change is owed once)."""
    status = ev.payload.get("status")
    if status is None or Status(status) not in ORDER_TEXTS:
        return
    if ev.payload.get("actor_role") == "customer":
        return  # they know: they did it (a cancellation from their own page)
    to = Status(status)
    order = db.get(Order, int(ev.payload["order_id"]))
    if order is None:
        return
    subs = db.execute(select(PushSubscription.id, PushSubscription.locale)
                      .where(PushSubscription.user_id == order.customer_id)).all()
    if not subs:
        return
    from waimai.platform.catalog.models import Merchant

    shop = db.scalar(select(Merchant.name).where(Merchant.id == order.merchant_id)) or ""
    ref = f"order:{order.id}:{to.value}"
    texts = {loc: order_text(loc, to, order.number, shop) for loc in {locale_of(s.locale) for s in subs}}
    for sub_id, loc in subs:
        title, body = texts[locale_of(loc)]
        db.add(PushMessage(subscription_id=sub_id, user_id=order.customer_id, kind="order", ref=ref, title=title,
                           body=body, url=f"/orders/{order.id}"))


def notice_pushes_within(db: Session, user_ids: list[int], since: dt.datetime) -> tuple[dict[int, int],
                                                                                          dict[int, dt.datetime]]:
    """Per user: notices pushed since `since` (distinct updates), and when the last one was queued."""
    if not user_ids:
        return {}, {}
    recent = dict(db.execute(select(PushMessage.user_id, func.count(func.distinct(PushMessage.ref))).where(
        PushMessage.user_id.in_(user_ids), PushMessage.kind == "notice", PushMessage.created_at >= since)
        .group_by(PushMessage.user_id)).all())
    last = dict(db.execute(select(PushMessage.user_id, func.max(PushMessage.created_at)).where(
        PushMessage.user_id.in_(user_ids), PushMessage.kind == "notice").group_by(PushMessage.user_id)).all())
    return recent, last


def queue_notice(db: Session, user_id: int, event_id: int, url: str,
                 render: Callable[[str], tuple[str, str]], now: dt.datetime) -> int:
    """Owe each of the user's browsers the incident update, worded in its language; how many rows."""
    subs = db.execute(select(PushSubscription.id, PushSubscription.locale)
                      .where(PushSubscription.user_id == user_id)).all()
    for sub_id, loc in subs:
        title, body = render(locale_of(loc))
        db.add(PushMessage(subscription_id=sub_id, user_id=user_id, kind="notice", ref=f"notice:{event_id}",
                           title=title[:200], body=body[:500], url=url, created_at=now, next_attempt_at=now))
    return len(subs)


def users_with_push(db: Session, user_ids: list[int]) -> set[int]:
    if not user_ids:
        return set()
    return set(db.scalars(select(PushSubscription.user_id).where(PushSubscription.user_id.in_(user_ids))
                          .distinct()))


# --- sending -------------------------------------------------------------------------------------------

class _Transient(Exception):
    """429 or 5xx from the push service, or no answer: worth another attempt."""


class _Gone(Exception):
    pass


class PushSender:
    """Sends what is owed, oldest first (see the module docstring)."""

    def __init__(self, database: Database, keys: Callable[[], VapidKeys], *, subject: str, ttl_s: int,
                 resilience: Resilience | None = None, timeout_s: float = 5.0) -> None:
        self.database, self.keys, self.subject, self.ttl_s = database, keys, subject, ttl_s
        self.resilience = resilience or Resilience(policies={"push.*": PUSH_POLICY})
        self.timeout_s = timeout_s
        self.http = requests.Session()

    def run_once(self, now: dt.datetime | None = None, limit: int = 200) -> dict[str, int]:
        now = now or utcnow()
        out = {"sent": 0, "retry": 0, "wait": 0, "failed": 0, "dead": 0, "gone": 0}
        with self.database.read_session() as db:
            rows = db.execute(select(PushMessage, PushSubscription).join(
                PushSubscription, PushSubscription.id == PushMessage.subscription_id).where(
                PushMessage.state == "pending", PushMessage.next_attempt_at <= now)
                .order_by(PushMessage.id).limit(limit)).all()
            work = [(m.id, m.kind, {"title": m.title, "body": m.body, "url": m.url, "tag": m.ref},
                     {"endpoint": s.endpoint, "keys": {"p256dh": s.p256dh, "auth": s.auth}}, s.id) for m, s in rows]
        if work:
            keys = self.keys()
            for msg_id, kind, payload, info, sub_id in work:
                outcome, error = self._send(keys, payload, info)
                self._record(msg_id, sub_id, kind, outcome, error, now)
                out[outcome] += 1
        self._backlog()
        return out

    def _send(self, keys: VapidKeys, payload: dict[str, Any], info: dict[str, Any]) -> tuple[str, str]:
        from pywebpush import WebPushException, webpush

        host = urlsplit(info["endpoint"]).netloc

        def call() -> requests.Response:
            try:
                r = webpush(info, json.dumps(payload, ensure_ascii=False), vapid_private_key=keys.private_key,
                            vapid_claims={"sub": self.subject}, ttl=self.ttl_s, timeout=self.timeout_s,
                            requests_session=self.http)
            except WebPushException as exc:
                r = exc.response
                if r is None:
                    raise _Transient("no answer") from None
            except requests.RequestException as exc:
                raise _Transient(type(exc).__name__) from None
            assert isinstance(r, requests.Response)
            if r.status_code == 429 or r.status_code >= 500:
                raise _Transient(f"HTTP {r.status_code}")
            if r.status_code in (404, 410):
                raise _Gone(f"HTTP {r.status_code}")
            return r

        try:
            r = self.resilience.dependency(f"push.{host}", PUSH_POLICY).call(call, retry_on=_Transient)
        except _Gone as exc:
            return "gone", str(exc)
        except DependencyUnavailable as exc:  # the push service's breaker is open: wait, spending no attempt
            return "wait", f"{exc.retry_after_s:.1f}"
        except _Transient as exc:
            return "retry", str(exc)[:200]
        if r.status_code >= 300:  # 400 (bad request), 401/403 (VAPID refused), 413 (too large): no retry helps
            return "failed", f"HTTP {r.status_code}: {r.text[:120]}"
        return "sent", ""

    def _record(self, msg_id: int, sub_id: int, kind: str, outcome: str, error: str, now: dt.datetime) -> None:
        with uow.unit_of_work(self.database) as db:
            if outcome == "wait":
                row = db.get(PushMessage, msg_id)
                if row is not None:
                    row.next_attempt_at = now + dt.timedelta(seconds=max(1.0, float(error)))
            elif outcome == "gone":
                _drop(db, sub_id)
                PUSH_SUBSCRIPTIONS.labels("gone").inc()
                log.info("push_subscription_gone", subscription=sub_id, reason=error)
            else:
                row = db.get(PushMessage, msg_id)
                if row is None:
                    return
                row.attempts += 1
                if outcome == "sent":
                    row.state, row.sent_at, row.last_error = "sent", now, None
                    sub = db.get(PushSubscription, sub_id)
                    if sub is not None:
                        sub.last_sent_at = now
                elif outcome == "failed":
                    row.state, row.last_error = "failed", error[:200]
                    log.warning("push_refused", subscription=sub_id, message=msg_id, reason=error[:200])
                elif row.attempts >= MAX_ATTEMPTS:
                    row.state, row.last_error, outcome = "dead", error[:200], "dead"
                    log.warning("push_dead", subscription=sub_id, message=msg_id, reason=error[:200])
                else:
                    row.last_error = error[:200]
                    backoff = min(300, 2 ** row.attempts) * random.uniform(0.5, 1.0)  # noqa: S311  # nosec B311
                    row.next_attempt_at = now + dt.timedelta(seconds=backoff)
        PUSH_SENT.labels(kind, outcome).inc()

    def _backlog(self) -> None:
        with self.database.read_session() as db:
            PUSH_BACKLOG.set(db.scalar(select(func.count()).select_from(PushMessage)
                                       .where(PushMessage.state == "pending")) or 0)

    def close(self) -> None:
        self.http.close()
