"""Alerts → incidents, automatically: the listener the alerting service calls after every round.

- A firing P1/P2 alert that is not silenced opens an incident — public only for user-facing symptoms,
  internal for attack symptoms (`classify`, the one place that decides) — unless an open incident already
  covers the same fault (same alert component, or overlapping public components): then it joins
  that one. One incident for one fault, not one per alert; a P1 joining a P2 incident raises it.
- Every alert that fires or resolves, every acknowledgement and every notification sent for the
  incident's alerts lands on its timeline; anomaly signals on the affected series do too.
- When every alert of an alert-opened incident has resolved, it moves to monitoring (a public
  update), and resolves itself after `auto_resolve_minutes` of quiet.
- Public incidents remind their commander when no public update was posted for `update_cadence_minutes`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from sqlalchemy.orm import Session

from waimai.core import uow
from waimai.core.database import Database
from waimai.core.messages import msg
from waimai.core.numbers import readable
from waimai.core.timeutil import parse_iso
from waimai.firewall.alerting.rules import Alert
from waimai.firewall.incidents import service as incidents
from waimai.firewall.incidents.models import Incident

log = structlog.get_logger(__name__)
OPENS = ("P1", "P2")
ATTACK = "attack"  # the `symptom` label of security alerts (waimai/firewall/alerting/security.py)
# Which public component a watched series speaks for (for anomaly signals on the timeline).
SERIES_COMPONENT = {"payment_success_ratio": "payment", "orders_placed_per_min": "ordering",
                    "http_latency_p95_ms": "ordering", "http_error_ratio": "ordering", "dispatch_backlog": "delivery",
                    "riders_on_shift": "delivery"}
Reminder = Callable[[Incident, str], None]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def user_facing(a: Alert) -> bool:
    """Whether an alert speaks for what users see. Attack symptoms (signature failures, floods, anonymous
    5xx: label `symptom: attack`, see waimai/firewall/alerting/security.py) say something about a caller, not
    about our service."""
    return a.labels.get("symptom") != ATTACK


def classify(a: Alert, sop: incidents.Sop) -> tuple[str, list[str]]:
    """The one place that decides what an alert's incident is: (fault key, public components). Only
    user-facing symptoms name public components — and an incident is public exactly when it has some; an
    attack symptom gets an internal incident of its own (`security:` fault key, no components), so the status
    page, banners and user notices never follow it and it never joins or raises a public incident."""
    comp = a.labels.get("component", "")
    if not user_facing(a):
        return f"security:{comp or a.name}", []
    return (f"component:{comp}" if comp else f"alert:{a.name}"), sop.public_components(comp)


class IncidentManager:
    def __init__(self, database: Database, sop: incidents.Sop, *, clock: Callable[[], dt.datetime] = _utcnow,
                 auto_open: bool = True, remind: Reminder | None = None) -> None:
        self.db = database
        self.sop = sop
        self.clock = clock
        self.auto_open = auto_open
        self.remind = remind
        self._known: dict[str, str] = {}  # fingerprint -> last status handled (a fast path only)
        self._signals_seen: set[tuple[str, float]] = set()

    # --- called by the alerting service ----------------------------------------------------------------

    def on_alerts(self, states: Sequence[tuple[Alert, str | None]]) -> None:
        """All alerts the pipeline knows, with what mutes each (None if nothing)."""
        changed = [(a, m) for a, m in states if self._known.get(a.fingerprint) != a.status + ("m" if m else "")]
        if not changed:
            return
        now = self.clock()
        with uow.unit_of_work(self.db) as db:
            for a, muted in sorted(changed, key=lambda am: am[0].starts_at):
                self._handle(db, a, muted, now)
        for a, m in changed:
            self._known[a.fingerprint] = a.status + ("m" if m else "")

    def on_ack(self, fingerprints: Sequence[str], by: str) -> None:
        now = self.clock()
        with uow.unit_of_work(self.db) as db:
            for inc in incidents.open_incidents(db):
                if set(fingerprints) & set(inc.alerts):
                    incidents.acknowledge(db, inc, actor=by, now=now)

    def on_notified(self, deliveries: Sequence[tuple[Sequence[str], str, str, bool]]) -> None:
        """(alert fingerprints, receiver, reason, ok) for each notification the pipeline sent."""
        if not deliveries:
            return
        with uow.unit_of_work(self.db) as db:
            for inc in incidents.open_incidents(db):
                for fps, receiver, reason, ok in deliveries:
                    if set(fps) & set(inc.alerts):
                        incidents.record(db, inc, "notified",
                                         msg("%(reason)s alert to %(receiver)s: delivered", reason=reason,
                                             receiver=receiver) if ok else
                                         msg("%(reason)s alert to %(receiver)s: NOT delivered", reason=reason,
                                             receiver=receiver),
                                         details={"receiver": receiver, "reason": reason, "ok": ok})

    # --- the periodic job --------------------------------------------------------------------------------

    def tick(self, signals: Sequence[Any] = ()) -> None:
        now = self.clock()
        with self.db.read_session() as db:  # most ticks find nothing: look before taking the write lock
            if not incidents.open_incidents(db):
                return
        with uow.unit_of_work(self.db) as db:
            open_ = incidents.open_incidents(db)
            for inc in open_:
                self._maybe_resolve(db, inc, now)
                self._maybe_remind(db, inc, now)
            self._signals(db, [i for i in open_ if i.status != "resolved"], signals)

    def refresh_components(self) -> None:
        """Component status also changes with the clock (maintenance windows start and end): apply it.
        The first run also starts each component's history."""
        now = self.clock()
        with self.db.read_session() as db:
            want = incidents.derived_statuses(db, self.sop, now)
            rows = incidents.component_rows(db, self.sop)
            if all(rows[c].updated_at is not None and (rows[c].override or st) == rows[c].status
                   for c, (st, _) in want.items()):
                return
        with uow.unit_of_work(self.db) as db:
            incidents.recompute_components(db, self.sop, now=now)

    # --- internals ----------------------------------------------------------------------------------------

    def _fault(self, a: Alert) -> tuple[str, list[str]]:
        return classify(a, self.sop)

    def _find(self, db: Session, a: Alert) -> Incident | None:
        key, comps = self._fault(a)
        for inc in incidents.open_incidents(db):
            if a.fingerprint in inc.alerts or inc.fault_key == key or (set(comps) & set(inc.components)):
                return inc
        return None

    def _handle(self, db: Session, a: Alert, muted: str | None, now: dt.datetime) -> None:
        inc = self._find(db, a)
        kind = "anomaly" if a.annotations.get("kind") == "anomaly" else "alert"
        if a.status == "firing":
            if inc is None:
                if muted or not self.auto_open or a.severity not in OPENS:
                    return
                key, comps = self._fault(a)
                onset = _onset(a)
                inc = incidents.open_incident(db, self.sop, title=a.annotations.get("summary") or a.name,
                                              severity=a.severity, components=comps, actor="system:alert",
                                              source="alert", public=bool(comps), fault_key=key, onset_at=onset,
                                              now=now)
                log.warning("incident_opened", incident=inc.id, alert=a.name, severity=a.severity)
            prev = inc.alerts.get(a.fingerprint, {})
            if prev.get("status") == "firing":
                return
            inc.alerts = {**inc.alerts, a.fingerprint: {"name": a.name, "status": "firing", "severity": a.severity}}
            inc.quiet_since = None
            incidents.record(db, inc, kind, msg("%(severity)s %(alert)s firing: %(summary)s", severity=a.severity,
                                                alert=a.name, summary=a.annotations.get("summary", "")),
                             at=now, details={"fingerprint": a.fingerprint, "labels": a.labels,
                                              "value": a.value, "muted": muted})
            if incidents.SEVERITIES.index(a.severity if a.severity in incidents.SEVERITIES else "P4") < \
                    incidents.SEVERITIES.index(inc.severity) and not muted:
                incidents.change(db, self.sop, inc, actor="system:alert", severity=a.severity)
            if inc.status == "monitoring" and inc.source == "alert":
                incidents.post_update(db, self.sop, inc, actor="system:alert", status="investigating", now=now)
        elif inc is not None and a.fingerprint in inc.alerts:
            if inc.alerts[a.fingerprint].get("status") == "resolved":
                return
            inc.alerts = {**inc.alerts, a.fingerprint: {**inc.alerts[a.fingerprint], "status": "resolved"}}
            incidents.record(db, inc, "alert_resolved", msg("%(alert)s resolved", alert=a.name), at=now,
                             details={"fingerprint": a.fingerprint})
            if all(v.get("status") == "resolved" for v in inc.alerts.values()):
                inc.quiet_since = now
                if inc.source == "alert" and inc.status in ("investigating", "identified"):
                    incidents.post_update(db, self.sop, inc, actor="system:alert", status="monitoring", now=now)

    def _maybe_resolve(self, db: Session, inc: Incident, now: dt.datetime) -> None:
        if inc.source != "alert" or inc.quiet_since is None or inc.status == "resolved":
            return
        if now - inc.quiet_since >= dt.timedelta(minutes=self.sop.auto_resolve_minutes):
            incidents.post_update(db, self.sop, inc, actor="system:alert", status="resolved", now=now)
            log.warning("incident_resolved", incident=inc.id, by="quiet period")

    def _maybe_remind(self, db: Session, inc: Incident, now: dt.datetime) -> None:
        if not inc.public or self.remind is None:
            return
        cadence = dt.timedelta(minutes=self.sop.update_cadence_minutes)
        last = max(t for t in (inc.last_public_update_at, inc.detected_at, inc.last_reminder_at) if t is not None)
        if now - last < cadence:
            return
        inc.last_reminder_at = now
        who = inc.roles.get("commander") or "on-call"
        try:  # rare (every half hour at most): sent inside the transaction that records it
            self.remind(inc, who)
            ok = True
        except Exception:  # noqa: BLE001 - a failed reminder is noted, never fatal
            log.exception("incident_reminder_failed", incident=inc.id)
            ok = False
        incidents.record(db, inc, "reminder", msg("reminded %(who)s to post a public update", who=who) if ok
                         else msg("reminded %(who)s to post a public update (reminder NOT delivered)", who=who),
                         at=now, details={"to": who, "ok": ok})

    def _signals(self, db: Session, open_: list[Incident], signals: Sequence[Any]) -> None:
        for s in signals:
            key = (s.series, s.onset.timestamp())
            if key in self._signals_seen:
                continue
            comp = SERIES_COMPONENT.get(s.series)
            for inc in open_:
                if comp in inc.components and s.onset >= inc.onset_at - dt.timedelta(minutes=10):
                    self._signals_seen.add(key)
                    incidents.record(db, inc, "anomaly", msg(
                        "anomaly on %(series)s: %(value)s outside %(low)s–%(high)s (score %(score)s)", series=s.series,
                        value=readable(s.value), low=readable(s.expected_low), high=readable(s.expected_high),
                        score=f"{s.score:.2f}"), at=s.onset,
                                     details={"series": s.series, "score": s.score})


def _onset(a: Alert) -> dt.datetime:
    raw = a.annotations.get("onset_at")
    if raw:
        try:
            return parse_iso(raw)
        except ValueError:
            pass
    return a.starts_at
