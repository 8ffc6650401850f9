"""The alert pipeline's state in the database, so every replica sees and changes the same alerts.

Each change is one transaction: take the alerting lock (a transaction-scoped advisory lock on PostgreSQL;
SQLite's single writer is the lock there), load alerts, groups and active silences into a fresh
`AlertPipeline`, let it work, write back the rows that changed and queue the notifications it decided as
`pending` rows of the notification log. The notifier leader alone sends them: it marks a batch `sending`
(committed) before calling any channel and `sent`/`failed` after, so a leader that dies in between leaves
`sending` rows that its successor marks `unknown` instead of sending them again.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from waimai.core.timeutil import parse_iso
from waimai.firewall.alerting.channels.base import AlertMessage
from waimai.firewall.alerting.models import AlertGroupRow, AlertHistory, AlertRow, NotificationRow, SilenceRow
from waimai.firewall.alerting.pipeline import (
    AlertPipeline,
    AlertState,
    Group,
    Notification,
    ResolvedRoute,
    Silence,
)
from waimai.firewall.alerting.rules import Alert

LOCK_KEY = int.from_bytes(hashlib.sha256(b"waimai:alerting:state").digest()[:8], "big", signed=True)
# How long finished things stay: resolved alerts and empty groups a day, the notification log two weeks,
# expired silences a week, the history (rule edits, acknowledgements, deliveries) a month.
KEEP_RESOLVED = dt.timedelta(days=1)
KEEP_NOTIFICATIONS = dt.timedelta(days=14)
KEEP_SILENCES = dt.timedelta(days=7)
KEEP_HISTORY = dt.timedelta(days=30)

Snapshot = tuple[dict[str, AlertState], dict[str, Group], dict[str, Silence]]


def lock(s: Session) -> None:
    """Serialise alerting writes across replicas for the rest of this transaction."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})


def _route_json(r: ResolvedRoute) -> dict[str, Any]:
    return {"receiver": r.receiver, "group_by": list(r.group_by), "group_wait": r.group_wait.total_seconds(),
            "group_interval": r.group_interval.total_seconds(), "repeat_interval": r.repeat_interval.total_seconds(),
            "escalation": r.escalation, "path": r.path}


def _route(d: dict[str, Any]) -> ResolvedRoute:
    sec = dt.timedelta
    return ResolvedRoute(receiver=d["receiver"], group_by=tuple(d["group_by"]), group_wait=sec(seconds=d["group_wait"]),
                         group_interval=sec(seconds=d["group_interval"]),
                         repeat_interval=sec(seconds=d["repeat_interval"]), escalation=d.get("escalation"),
                         path=d["path"])


def load(s: Session, p: AlertPipeline, now: dt.datetime) -> Snapshot:
    """Fill `p` from the database; returns a copy of what was loaded, for `save` to compare against."""
    for r in s.scalars(select(AlertRow)):
        a = Alert(labels=dict(r.labels), annotations=dict(r.annotations), status=r.status,  # type: ignore[arg-type]
                  starts_at=r.starts_at, ends_at=r.ends_at, value=r.value, generator=r.generator)
        p.alerts[r.fingerprint] = AlertState(alert=a, acked_by=r.acked_by, acked_at=r.acked_at, flaps=r.flaps)
    for g in s.scalars(select(AlertGroupRow)):
        p.groups[g.key] = Group(key=g.key, route=_route(g.route), labels=dict(g.labels),
                                members={m for m in g.members if m in p.alerts}, created_at=g.created_at,
                                last_flush=g.last_flush, last_sent_at=g.last_sent_at, last_digest=g.last_digest,
                                first_firing_at=g.first_firing_at, escalation_step=g.escalation_step,
                                acked_by=g.acked_by, acked_at=g.acked_at, seq=g.seq)
    for x in s.scalars(select(SilenceRow).where(SilenceRow.ends_at > now)):
        p.silences[x.id] = Silence(id=x.id, matchers=dict(x.matchers), starts_at=x.starts_at, ends_at=x.ends_at,
                                   created_by=x.created_by, comment=x.comment)
    return copy.deepcopy((p.alerts, p.groups, p.silences))


def save(s: Session, p: AlertPipeline, before: Snapshot, now: dt.datetime) -> None:
    """Write what changed since `load` (the alerting lock is held, so nobody else changed it meanwhile)."""
    alerts, groups, silences = before
    for fp, st in p.alerts.items():
        if alerts.get(fp) != st:
            a = st.alert
            s.merge(AlertRow(fingerprint=fp, labels=a.labels, annotations=a.annotations, status=a.status,
                             starts_at=a.starts_at, ends_at=a.ends_at, value=a.value, generator=a.generator,
                             acked_by=st.acked_by, acked_at=st.acked_at, flaps=st.flaps, updated_at=now))
    for key, g in p.groups.items():
        if groups.get(key) != g:
            s.merge(AlertGroupRow(key=key, route=_route_json(g.route), labels=g.labels, members=sorted(g.members),
                                  created_at=g.created_at, last_flush=g.last_flush, last_sent_at=g.last_sent_at,
                                  last_digest=g.last_digest, first_firing_at=g.first_firing_at,
                                  escalation_step=g.escalation_step, acked_by=g.acked_by, acked_at=g.acked_at,
                                  seq=g.seq, updated_at=now))
    for sid, x in p.silences.items():
        if silences.get(sid) != x:
            s.merge(SilenceRow(id=sid, matchers=x.matchers, starts_at=x.starts_at, ends_at=x.ends_at,
                               created_by=x.created_by[:80], comment=x.comment[:300]))


# --- the notification outbox ------------------------------------------------------------------------------
def message_json(m: AlertMessage) -> dict[str, Any]:
    d = dataclasses.asdict(m)
    d["created_at"] = m.created_at.isoformat()
    d["merged_from"] = list(m.merged_from)
    return d


def message_from(d: dict[str, Any]) -> AlertMessage:
    return AlertMessage(**{**d, "created_at": parse_iso(d["created_at"]), "merged_from": tuple(d["merged_from"])})


def queue(s: Session, sent: Iterable[Notification]) -> None:
    """The pipeline's decisions become `pending` rows, in the same transaction as the state that led to them."""
    for n in sent:
        s.add(NotificationRow(at=n.at, group_key=n.group[:500], step=n.step[:40], receiver=n.receiver[:120],
                              reason=n.reason[:20], state="pending", message=message_json(n.message),
                              members=list(n.members), title=n.message.title[:300]))


def waiting(s: Session, me: str) -> bool:
    """Is anything pending, or left `sending` by another process?"""
    q = select(NotificationRow.id).where((NotificationRow.state == "pending")
                                         | ((NotificationRow.state == "sending") & (NotificationRow.claimed_by != me)))
    return s.scalar(q.limit(1)) is not None


def claim(s: Session, me: str, now: dt.datetime, limit: int = 200) -> list[NotificationRow]:
    """Take pending rows for sending. Rows another process left `sending` died with it: `unknown`, not resent."""
    s.execute(update(NotificationRow).where(NotificationRow.state == "sending", NotificationRow.claimed_by != me)
              .values(state="unknown", error="the sending process stopped before recording the result; "
                                             "not sent again"))
    rows = list(s.scalars(select(NotificationRow).where(NotificationRow.state == "pending")
                          .order_by(NotificationRow.id).limit(limit).with_for_update(skip_locked=True)))
    for r in rows:
        r.state, r.claimed_by, r.claimed_at = "sending", me[:120], now
    return rows


def record(s: Session, row_id: int, me: str, *, ok: bool, error: str | None) -> bool:
    """The result of one send; False when the row was no longer ours (taken over as `unknown`)."""
    res = s.execute(update(NotificationRow).where(NotificationRow.id == row_id, NotificationRow.state == "sending",
                                                  NotificationRow.claimed_by == me)
                    .values(state="sent" if ok else "failed", ok=ok, error=(error or None) and error[:300]))
    return bool(getattr(res, "rowcount", 0))


def prune(s: Session, now: dt.datetime) -> dict[str, int]:
    """Retention for all of it; what each step removed. Runs on the notifier leader."""
    out: dict[str, int] = {}

    def gone(res: Any) -> int:
        return int(getattr(res, "rowcount", 0) or 0)

    out["notifications"] = gone(s.execute(delete(NotificationRow).where(
        NotificationRow.at < now - KEEP_NOTIFICATIONS, NotificationRow.state.in_(("sent", "failed", "unknown")))))
    out["alerts"] = gone(s.execute(delete(AlertRow).where(AlertRow.status == "resolved",
                                                          AlertRow.updated_at < now - KEEP_RESOLVED)))
    live = set(s.scalars(select(AlertRow.fingerprint)))
    stale = [g.key for g in s.scalars(select(AlertGroupRow).where(AlertGroupRow.updated_at < now - KEEP_RESOLVED))
             if not live.intersection(g.members)]
    out["groups"] = gone(s.execute(delete(AlertGroupRow).where(AlertGroupRow.key.in_(stale)))) if stale else 0
    out["silences"] = gone(s.execute(delete(SilenceRow).where(SilenceRow.ends_at < now - KEEP_SILENCES)))
    out["history"] = gone(s.execute(delete(AlertHistory).where(AlertHistory.at < now - KEEP_HISTORY)))
    return out
