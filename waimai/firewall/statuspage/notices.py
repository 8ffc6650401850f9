"""Telling users: every public incident update goes to the in-app inbox, by SMS and by Web Push to the
people it concerns — once per user and update, in their language, with SMS and push each rate-limited per
user (the same limits: `sms_per_hour`, `sms_min_gap_s`).

Who is told about an incident:
- subscribers (users who opted in on the status page) — about every public incident;
- affected customers: those with an order still open, or placed since the fault began — the impact
  is scoped to them; and everyone told earlier in the same incident hears how it ends.

Delivery runs in three steps so no HTTP call happens inside a database transaction: (1) write the
inbox notices and mark the update as fanned out (the unique (user, update) key makes a second run a
no-op) and owe the pushes (`push_messages` rows, one per browser, in the language it was turned on in;
the push sender delivers them, waimai/platform/push), (2) send the SMS in batches per language (Alibaba
Cloud's SendSms takes up to 1,000 numbers with the same parameters), (3) record each SMS outcome and one
`notice` line on the timeline.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy import func, select, update

from waimai.core import uow
from waimai.core.database import Database
from waimai.core.inbox import Notice
from waimai.core.messages import msg
from waimai.firewall.alerting.channels.sms import SmsProvider
from waimai.firewall.incidents import service as incidents
from waimai.firewall.incidents.models import Incident, IncidentEvent, StatusSubscriber
from waimai.platform.accounts import read as accounts
from waimai.platform.ordering import read as orders
from waimai.platform.push import service as push

log = structlog.get_logger(__name__)
STAGE = {"investigating": ("Investigating", "调查中"), "identified": ("Cause found", "已定位原因"),
         "monitoring": ("Fixed, watching", "已修复观察中"), "resolved": ("Resolved", "已恢复")}
SHANGHAI = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _zh(locale: str | None) -> bool:
    return not (locale or "zh_CN").startswith("en")


def render_notice(sop: incidents.Sop, inc: Incident, ev: IncidentEvent, locale: str | None) -> tuple[str, str]:
    zh = _zh(locale)
    loc = "zh_CN" if zh else "en"
    names = incidents.component_names(sop, list(inc.components), loc)
    stage = STAGE.get(ev.status, (ev.status, ev.status))[1 if zh else 0]
    title = f"{names}：{stage}" if zh else f"{names}: {stage}"
    texts = (ev.details or {}).get("text") or {}
    parts = [str(texts.get("zh" if zh else "en") or ev.text)]
    if ev.status != "resolved":
        if inc.workaround:
            parts.append(inc.workaround)
        else:
            specs = [sop.components[c] for c in inc.components if c in sop.components]
            parts += [s.workaround.get(loc) for s in specs if s.workaround]
        if inc.eta is not None:
            hhmm = inc.eta.astimezone(SHANGHAI).strftime("%H:%M")
            parts.append(f"预计 {hhmm} 左右恢复。" if zh else f"Expected back around {hhmm}.")
    return title[:200], " ".join(parts)[:1000]


def sms_params(sop: incidents.Sop, inc: Incident, ev: IncidentEvent, locale: str) -> dict[str, str]:
    """Variables of the SMS template (Alibaba Cloud limits each to 35 characters):
    `component`, `status`, `eta` — e.g. 「【外卖】${component}${status}，预计${eta}恢复，详见状态页。」"""
    zh = _zh(locale)
    eta = inc.eta.astimezone(SHANGHAI).strftime("%H:%M") if inc.eta and ev.status != "resolved" else "-"
    return {"component": incidents.component_names(sop, list(inc.components), "zh_CN" if zh else "en")[:35],
            "status": STAGE.get(ev.status, (ev.status, ev.status))[1 if zh else 0][:35], "eta": eta}


def inbox(db: Any, user_id: int, limit: int = 50) -> list[Notice]:
    """A user's notices, newest first."""
    return list(db.scalars(select(Notice).where(Notice.user_id == user_id).order_by(Notice.id.desc()).limit(limit)))


def read_all(db: Any, user_id: int) -> int:
    """Mark every unread notice of the user read (the caller commits); how many were."""
    res = db.execute(update(Notice).where(Notice.user_id == user_id, Notice.read_at.is_(None))
                     .values(read_at=_utcnow()))
    return int(res.rowcount or 0)


class Notifier:
    def __init__(self, database: Database, sop: incidents.Sop, *, sms: dict[str, SmsProvider] | None = None,
                 sms_per_hour: int = 3, sms_min_gap_s: float = 60.0,
                 clock: Callable[[], dt.datetime] = _utcnow, web_push: bool = True) -> None:
        """`sms`: one provider per language ("zh_CN", "en"), since each SMS template is in one language;
        a language without its own provider falls back to zh_CN. None or empty: inbox only. `web_push`:
        also owe a push to the browsers users turned push notifications on in."""
        self.db, self.sop, self.sms, self.web_push = database, sop, dict(sms or {}), web_push
        self.sms_per_hour, self.sms_min_gap_s = sms_per_hour, sms_min_gap_s
        self.clock = clock

    def run_once(self) -> int:
        """Fan out every public update not yet sent; returns how many updates were handled."""
        with self.db.read_session() as db:
            pending = list(db.scalars(select(IncidentEvent.id).where(IncidentEvent.public.is_(True),
                                                                     IncidentEvent.notified_at.is_(None))
                                      .order_by(IncidentEvent.id).limit(20)))
        for ev_id in pending:
            self.fan_out(ev_id)
        return len(pending)

    def recipients(self, db: Any, inc: Incident) -> dict[int, bool]:
        """user id -> wants SMS."""
        out: dict[int, bool] = {}
        for sub in db.scalars(select(StatusSubscriber)):
            out[sub.user_id] = sub.sms
        if inc.components:
            for uid in orders.customers_active_or_since(db, inc.onset_at):
                out[uid] = True
            told = select(Notice.user_id).where(Notice.incident_id == inc.id).distinct()
            for uid in db.scalars(told):
                out.setdefault(uid, True)
        return out

    def fan_out(self, event_id: int) -> dict[str, int]:
        now = self.clock()
        with uow.unit_of_work(self.db) as db:  # stored before any SMS is sent
            ev = db.get(IncidentEvent, event_id)
            if ev is None or ev.notified_at is not None:
                return {}
            inc = db.get(Incident, ev.incident_id)
            assert inc is not None
            wanted = self.recipients(db, inc)
            done = set(db.scalars(select(Notice.user_id).where(Notice.event_id == ev.id)))
            users = accounts.active_users(db, wanted)
            hour_ago = now - dt.timedelta(hours=1)
            recent = dict(db.execute(select(Notice.user_id, func.count()).where(
                Notice.user_id.in_(list(users)), Notice.sms == "sent", Notice.created_at >= hour_ago)
                .group_by(Notice.user_id)).all())
            last_sms = dict(db.execute(select(Notice.user_id, func.max(Notice.created_at)).where(
                Notice.user_id.in_(list(users)), Notice.sms == "sent").group_by(Notice.user_id)).all())
            new: list[Notice] = []
            for uid, user in users.items():
                if uid in done:
                    continue
                title, body = render_notice(self.sop, inc, ev, user.locale)
                if not wanted[uid] or not self.sms:
                    sms = "off"
                elif recent.get(uid, 0) >= self.sms_per_hour or (
                        last_sms.get(uid) and (now - last_sms[uid]).total_seconds() < self.sms_min_gap_s):
                    sms = "rate_limited"
                else:
                    sms = "pending"
                new.append(Notice(user_id=uid, incident_id=inc.id, event_id=ev.id, title=title, body=body, sms=sms,
                                  created_at=now))
            db.add_all(new)
            pushed, push_limited = self._queue_pushes(db, inc, ev, [n.user_id for n in new], now)
            ev.notified_at = now
            db.flush()  # the notices' ids, for the SMS batches
            batches: dict[str, list[tuple[int, str]]] = defaultdict(list)
            for n in new:
                if n.sms == "pending":
                    loc = "zh_CN" if _zh(users[n.user_id].locale) else "en"
                    batches[loc].append((n.id, users[n.user_id].phone))
            params = {loc: sms_params(self.sop, inc, ev, loc) for loc in batches}
            incident_id = inc.id
        outcome = self._send(batches, params, incident_id, event_id)
        counts = {"inbox": len(new), "sms_sent": sum(1 for v in outcome.values() if v == "sent"),
                  "sms_failed": sum(1 for v in outcome.values() if v == "failed"),
                  "sms_rate_limited": sum(1 for n in new if n.sms == "rate_limited"),
                  "push": pushed, "push_rate_limited": push_limited}
        with uow.unit_of_work(self.db) as db:
            for nid, state in outcome.items():
                row = db.get(Notice, nid)
                if row is not None:
                    row.sms = state
            inc2 = db.get(Incident, incident_id)
            if inc2 is not None and new:
                incidents.record(db, inc2, "notice", msg(
                    "notified %(users)s users (inbox %(inbox)s, SMS %(sms)s, rate-limited %(limited)s, failed "
                    "%(failed)s; push %(push)s)", users=counts["inbox"], inbox=counts["inbox"], sms=counts["sms_sent"],
                    limited=counts["sms_rate_limited"], failed=counts["sms_failed"], push=pushed),
                    details={"event_id": event_id, **counts})
        log.info("incident_notices_sent", incident=incident_id, update=event_id, **counts)
        return counts

    def _queue_pushes(self, db: Any, inc: Incident, ev: IncidentEvent, user_ids: list[int],
                      now: dt.datetime) -> tuple[int, int]:
        """Owe a push to every browser of the users told now (in the fan-out's transaction), within the
        per-user limits; returns (users pushed, users held back by the limit)."""
        if not self.web_push:
            return 0, 0
        targets = push.users_with_push(db, user_ids)
        recent, last = push.notice_pushes_within(db, list(targets), now - dt.timedelta(hours=1))
        pushed = limited = 0
        for uid in sorted(targets):
            gap = last.get(uid)
            if recent.get(uid, 0) >= max(1, self.sms_per_hour) or (gap and (now - gap).total_seconds() < self.sms_min_gap_s):
                limited += 1
                continue
            push.queue_notice(db, uid, ev.id, f"/status/incidents/{inc.id}",
                              lambda loc: render_notice(self.sop, inc, ev, loc), now)
            pushed += 1
        return pushed, limited

    def _send(self, batches: dict[str, list[tuple[int, str]]], params: dict[str, dict[str, str]], incident_id: int,
              event_id: int) -> dict[int, str]:
        out: dict[int, str] = {}
        for loc, items in batches.items():
            provider = self.sms.get(loc) or self.sms.get("zh_CN")
            for k in range(0, len(items), 1000):
                chunk = items[k:k + 1000]
                try:
                    if provider is None:
                        raise RuntimeError("no SMS provider for this language")
                    provider.send_sms([p for _, p in chunk], params[loc],
                                      out_id=f"inc{incident_id}-u{event_id}-{loc}-{k // 1000}")
                    state = "sent"
                except Exception as exc:  # noqa: BLE001 - the inbox notice stands; the SMS outcome is kept
                    log.warning("incident_sms_failed", incident=incident_id, error=type(exc).__name__,
                                reason=str(exc)[:200])
                    state = "failed"
                for nid, _ in chunk:
                    out[nid] = state
        return out
