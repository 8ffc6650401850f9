"""The alerting service inside Waimai: rules evaluated over the metric store, the pipeline, intake
from Prometheus Alertmanager and PagerDuty-style events, and the API the console uses."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog
import yaml
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from waimai.core import uow
from waimai.core.database import Database
from waimai.core.leader import identity
from waimai.core.timeutil import parse_iso
from waimai.firewall.alerting import state
from waimai.firewall.alerting.channels.base import DeliveryLog, NotificationChannel, build_channel
from waimai.firewall.alerting.models import AlertHistory, AlertRuleSet, NotificationRow
from waimai.firewall.alerting.pipeline import AlertPipeline, Group, PipelineConfig, Silence
from waimai.firewall.alerting.rules import DEFAULT_RULES, Alert, Evaluator, RuleFile, _RuleState
from waimai.firewall.monitoring.store import MetricSource

log = structlog.get_logger(__name__)
DEFAULT_CONFIG = Path(__file__).with_name("default_alerting.yml")
AM_SEVERITY = {"critical": "P1", "page": "P1", "high": "P2", "error": "P2", "warning": "P3", "info": "P4"}
PD_SEVERITY = {"critical": "P1", "error": "P2", "warning": "P3", "info": "P4"}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class AlertingService:
    """Alerting for the whole deployment: the state lives in the database (see `state`), every replica reads
    and changes it there, and the notifier leader (`leads()`) evaluates the rules, advances every group
    (whichever replica ingested its alerts) and sends what the pipeline decided."""

    def __init__(self, *, source: MetricSource, database: Database, rules_file: Path | None = None,
                 config_file: Path | None = None, link_secret: str, public_url: str, clock: Any = _utcnow,
                 leads: Callable[[], bool] | None = None, me: str | None = None) -> None:
        self.database = database
        self.rules_text = (rules_file or DEFAULT_RULES).read_text(encoding="utf-8")
        self._rules_id = 0
        latest = self._latest_rules()
        if latest is not None:  # a rule set edited in the console wins over the file
            self._rules_id, self.rules_text = latest
        self.rules = RuleFile.parse(self.rules_text)
        # Escalation targets, schedules and routes are checked here: a typo stops the start, not a tick.
        self.config = PipelineConfig.model_validate(
            yaml.safe_load((config_file or DEFAULT_CONFIG).read_text(encoding="utf-8")))
        self.delivery_log = DeliveryLog()
        self.channels: dict[str, list[NotificationChannel]] = {
            name: [build_channel(spec.kind, spec.config, log=self.delivery_log) for spec in specs]
            for name, specs in self.config.receivers.items()}
        self.link_secret, self.public_url = link_secret, public_url
        self.evaluator = Evaluator([r for g in self.rules.groups for r in g.rules], source)
        for name in self.receivers_without_channels():
            log.warning("alert_receiver_has_no_channel", receiver=name,
                        hint="configure a channel in WAIMAI_ALERTING_CONFIG_FILE; alerts reach only /ops/alerts")
        self.clock = clock
        self.leads = leads or (lambda: True)
        self.me = me or identity()
        self._lock = threading.RLock()
        # The last copy read from the database (pages and tests look at it; the database is the truth).
        self.pipeline = self._fresh()
        # Told after every round (incidents, remediation): any of on_alerts(states), on_notified(deliveries),
        # on_ack(fingerprints, by) a listener defines. A failing listener is logged and never stops alerting.
        self.listeners: list[Any] = []
        # Other producers of alerts read on every round, e.g. SecurityEvents.alerts (per-address attack symptoms).
        self.sources: list[Any] = []

    def _latest_rules(self) -> tuple[int, str] | None:
        try:
            with self.database.read_session() as db:
                row = db.execute(select(AlertRuleSet.id, AlertRuleSet.yaml).order_by(AlertRuleSet.id.desc())
                                 .limit(1)).first()
        except SQLAlchemyError:  # not migrated yet (/readyz says so): start on the shipped rules
            log.warning("alert_rules_from_file", reason="rule-set table unavailable")
            return None
        return (int(row[0]), str(row[1])) if row else None

    def _receiver(self, name: str) -> list[NotificationChannel]:
        # a receiver without channels was said once at start-up (and stays on /ops/alerts), not per round
        return self.channels.get(name, [])

    def receivers_without_channels(self) -> list[str]:
        """Receivers that notify nobody: the route still groups and records, but no one is told."""
        named: set[str] = set(self.config.receivers)
        todo = [self.config.route]
        while todo:
            r = todo.pop()
            named.add(r.receiver or "")
            todo.extend(r.routes or [])
        return sorted(n for n in named if n and not self.channels.get(n))

    def _fresh(self) -> AlertPipeline:
        return AlertPipeline(self.config, self._receiver, clock=lambda: self.clock(), link_secret=self.link_secret,
                             public_url=self.public_url, defer=True)

    # --- the state in the database ---------------------------------------------------------------------
    @contextmanager
    def _change(self) -> Iterator[AlertPipeline]:
        """One locked transaction over the shared state: load, change, write back what changed, queue sends."""
        with self._lock, uow.unit_of_work(self.database) as db:
            state.lock(db)
            p = self._fresh()
            now = self.clock()
            before = state.load(db, p, now)
            yield p
            state.save(db, p, before, now)
            state.queue(db, p.sent)
        self.pipeline = p

    def view(self) -> AlertPipeline:
        """The current state, read from the database (what every API call and page shows)."""
        p = self._fresh()
        with self.database.read_session() as db:
            state.load(db, p, self.clock())
        self.pipeline = p
        return p

    # --- the leader's round -------------------------------------------------------------------------------
    def evaluate(self) -> None:
        """One round on the notifier leader: rules over the store, into the shared state, tick, send."""
        self._follow_rules()
        self._adopt(self.view())
        now = self.clock()
        # rule alerts, and other producers' (SecurityEvents.alerts: attack symptoms per source address)
        alerts = [*self.evaluator.evaluate(now), *(a for src in self.sources for a in src(now))]
        self._round(alerts)

    def _round(self, alerts: list[Alert]) -> None:
        with self._change() as p:
            p.ingest(alerts)
            p.tick()
        self.send_pending()
        self._tell_alerts(p)

    def _follow_rules(self) -> None:
        """Rules edited on another replica reach the leader's evaluator within one round."""
        latest = self._latest_rules()
        if latest is None or latest[0] == self._rules_id:
            return
        try:
            self._swap_rules(RuleFile.parse(latest[1]), latest[1])
        except Exception:  # noqa: BLE001 - a rule set that no longer parses: keep the running one
            log.exception("alert_rules_reload_failed", rule_set=latest[0])
        self._rules_id = latest[0]

    def _adopt(self, p: AlertPipeline) -> None:
        """A new leader takes over the rule alerts its predecessor fired, so their resolution is not lost."""
        names = {r.alert for r in self.evaluator.rules}
        for st in p.alerts.values():
            a = st.alert
            if a.status != "firing" or a.generator != "waimai" or a.name not in names:
                continue
            rs = self.evaluator._state.setdefault(a.name, _RuleState())  # noqa: SLF001
            if rs.firing_since is None:
                rs.firing_since, rs.last_true = a.starts_at, self.clock()
                onset = a.annotations.get("onset_at")
                rs.onset = parse_iso(onset) if onset else a.starts_at

    def ingest(self, alerts: list[Alert]) -> None:
        """Alerts from a sender (Alertmanager, Events API, the backup job): stored at once on any replica;
        the leader advances them (at once when this process leads, else on its next round)."""
        leads = self.leads()
        with self._change() as p:
            p.ingest(alerts)
            if leads:
                p.tick()
        if leads:
            self.send_pending()
            self._tell_alerts(p)

    def event(self, action: str, dedup_key: str) -> int:
        """Events API acknowledge / resolve of the alerts named `dedup_key`; how many matched."""
        leads = self.leads()
        acked: list[tuple[list[str], str]] = []
        with self._change() as p:
            matching = [st for st in p.alerts.values() if st.alert.labels.get("alertname") == dedup_key]
            for st in matching:
                if action == "resolve":
                    st.alert = dataclasses.replace(st.alert, status="resolved", ends_at=self.clock())
            if action == "acknowledge":
                fps = {m.alert.fingerprint for m in matching}
                for g in list(p.groups.values()):
                    if fps & g.members:
                        p.acknowledge(g.key, by="events-api")
                        acked.append((sorted(g.members), "events-api"))
            if leads:
                p.tick()
        for members, by in acked:
            self._tell("on_ack", members, by)
        if leads:
            self.send_pending()
        return len(matching)

    def acknowledge(self, group_key: str, by: str) -> Group:
        """Raises KeyError for an unknown group."""
        with self._change() as p:
            g = p.acknowledge(group_key, by=by)
            db_hist = AlertHistory(event="acknowledged", group_key=g.key[:300], details={"by": by})
        self._history([db_hist])
        self._tell("on_ack", sorted(g.members), by)
        if self.leads():
            self.send_pending()
        return g

    def add_silence(self, matchers: dict[str, str], *, ends_at: dt.datetime, created_by: str,
                    comment: str = "") -> Silence:
        with self._change() as p:
            return p.add_silence(matchers, ends_at=ends_at, created_by=created_by, comment=comment)

    def expire_silence(self, sid: str) -> bool:
        with self._change() as p:
            if sid not in p.silences:
                return False
            p.expire_silence(sid)
            return True

    def silences(self) -> list[Silence]:
        return sorted(self.view().silences.values(), key=lambda s: s.ends_at)

    # --- sending (the leader only) ---------------------------------------------------------------------------
    def send_pending(self) -> int:
        """Send what the pipeline decided: claimed (committed) before, recorded after, never twice."""
        if not self.leads():
            return 0
        with self._lock:
            with self.database.read_session() as db:  # most rounds have nothing to send: no write lock then
                if not state.waiting(db, self.me):
                    return 0
            with uow.unit_of_work(self.database) as db:
                rows = state.claim(db, self.me, self.clock())
            if not rows:
                return 0
            done: list[tuple[Any, bool, str | None]] = []
            used: dict[str, list[NotificationChannel]] = {}
            for r in rows:
                chans = used.setdefault(r.receiver, self._receiver(r.receiver))
                ok, error = False, "no channel" if not chans else None
                try:
                    msg = state.message_from(r.message)
                    receipts = [ch.send(msg) for ch in chans]
                    ok = bool(receipts) and all(x.ok for x in receipts)
                    error = error or "; ".join(x.error for x in receipts if x.error) or None
                except Exception as exc:  # noqa: BLE001 - one failed send must not stop the others
                    error = f"{exc.__class__.__name__}: {exc}"[:300]
                    log.exception("alert_send_failed", receiver=r.receiver)
                done.append((r, ok, error))
            for chans in used.values():
                for ch in chans:
                    ch.flush()
            history = []
            with uow.unit_of_work(self.database) as db:
                for r, ok, error in done:
                    state.record(db, r.id, self.me, ok=ok, error=error)
                    log.warning("alert_notified", receiver=r.receiver, reason=r.reason, title=r.title,
                                status=r.message.get("status"), ok=ok)
                    history.append(AlertHistory(event=f"notified:{r.reason}", group_key=r.group_key[:300],
                                                title=r.title, severity=r.message.get("severity", ""),
                                                status=r.message.get("status", ""),
                                                details={"receiver": r.receiver, "ok": ok, "error": error,
                                                         "step": r.step}))
                history += [AlertHistory(event=f"delivery:{x.event}", title=str(getattr(x, "dedup_key", ""))[:300],
                                         details=x.to_dict()) for x in self.delivery_log.take()]
                db.add_all(history)
        self._tell("on_notified", [(list(r.members), r.receiver, r.reason, ok) for r, ok, _e in done])
        return len(done)

    def prune(self) -> dict[str, int]:
        with self._lock, uow.unit_of_work(self.database) as db:
            state.lock(db)
            out = state.prune(db, self.clock())
        if any(out.values()):
            log.info("alert_state_pruned", **out)
        return out

    # --- listeners --------------------------------------------------------------------------------------------
    def _tell(self, event: str, *args: Any) -> None:
        for listener in self.listeners:
            fn = getattr(listener, event, None)
            if fn is None:
                continue
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - a listener must never stop alerting
                log.exception("alert_listener_failed", listener=type(listener).__name__, event=event)

    def _tell_alerts(self, p: AlertPipeline) -> None:
        if self.listeners:
            now = self.clock()
            self._tell("on_alerts", [(st.alert, p.muted_by(st.alert, now)) for st in p.alerts.values()])

    def _swap_rules(self, parsed: RuleFile, text: str) -> None:
        with self._lock:
            rules = [r for g in parsed.groups for r in g.rules]
            kept = {k: v for k, v in self.evaluator._state.items() if k in {r.alert for r in rules}}  # noqa: SLF001
            self.evaluator = Evaluator(rules, self.evaluator.source)
            self.evaluator._state.update(kept)  # noqa: SLF001
            self.rules, self.rules_text = parsed, text

    def update_rules(self, text: str, *, by: str) -> RuleFile:
        """Validate a rule set edited in the console, swap it in (keeping state of unchanged rules), keep it."""
        parsed = RuleFile.parse(text)  # raises on invalid YAML or rules
        self._swap_rules(parsed, text)
        with uow.unit_of_work(self.database) as db:
            row = AlertRuleSet(yaml=text, updated_by=by[:40])
            db.add(row)
            db.add(AlertHistory(event="rules:updated",
                                details={"by": by, "rules": sum(len(g.rules) for g in parsed.groups)}))
        self._rules_id = row.id
        return parsed

    def _history(self, rows: list[AlertHistory]) -> None:
        if not rows:
            return
        try:
            with uow.unit_of_work(self.database) as db:
                db.add_all(rows)
        except Exception:  # noqa: BLE001 - history must never stop alerting
            log.exception("alert_history_write_failed")

    def history(self, limit: int = 100) -> list[AlertHistory]:
        with self.database.read_session() as db:
            return list(db.scalars(select(AlertHistory).order_by(AlertHistory.id.desc()).limit(limit)))

    def noise(self, days: int = 7) -> dict[str, dict[str, int]]:
        """Per rule: notifications sent (from the shared log) and flaps (resolved → firing again)."""
        since = self.clock() - dt.timedelta(days=days)
        with self.database.read_session() as db:
            titles = list(db.scalars(select(NotificationRow.title).where(NotificationRow.at >= since)))
        out: dict[str, dict[str, int]] = {}
        for title in titles:
            for name in {part.split(" ")[0] for part in re.sub(r"^\[escalation \d+\] ", "", title).split(", ")}:
                out.setdefault(name, {"notifications": 0, "flaps": 0})["notifications"] += 1
        for st in self.pipeline.alerts.values():
            out.setdefault(st.alert.name, {"notifications": 0, "flaps": 0})["flaps"] += st.flaps
        return out

    def send_direct(self, msg: Any, receiver: str | None = None) -> list[Any]:
        """Send one message (e.g. an incident reminder) to a receiver — the default route's if None."""
        with self._lock:
            receipts = []
            for ch in self._receiver(receiver or self.config.route.receiver or ""):
                receipts.append(ch.send(msg))
                ch.flush()
            return receipts

    def close(self) -> None:
        for chans in self.channels.values():
            for c in chans:
                c.close()


def _parse_time(v: Any) -> dt.datetime | None:
    if not v or str(v).startswith("0001-01-01"):
        return None
    return parse_iso(v)


def from_alertmanager(payload: dict[str, Any]) -> list[Alert]:
    """Alertmanager webhook v4 → alerts. The Alertmanager `groupKey` travels as a label."""
    if str(payload.get("version")) != "4":
        raise ValueError("only Alertmanager webhook version 4 is understood")
    out = []
    for a in payload.get("alerts", []):
        labels = {str(k): str(v) for k, v in (a.get("labels") or {}).items()}
        labels["severity"] = AM_SEVERITY.get(labels.get("severity", "").lower(), labels.get("severity", "P3"))
        if labels["severity"] not in ("P1", "P2", "P3", "P4"):
            labels["severity"] = "P3"
        labels.setdefault("source", "alertmanager")
        ann = {str(k): str(v) for k, v in (a.get("annotations") or {}).items()}
        ann.setdefault("am_group_key", str(payload.get("groupKey", "")))
        status = "resolved" if a.get("status") == "resolved" else "firing"
        starts = _parse_time(a.get("startsAt")) or _utcnow()
        out.append(Alert(labels=labels, annotations=ann, status=status, starts_at=starts,  # type: ignore[arg-type]
                         ends_at=_parse_time(a.get("endsAt")) if status == "resolved" else None,
                         generator="alertmanager"))
    return out


def from_pagerduty_event(ev: dict[str, Any]) -> tuple[str, Alert | None]:
    """A PagerDuty Events API v2 event → (action, alert). acknowledge/resolve refer to a dedup_key."""
    action = ev.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        raise ValueError("event_action must be trigger, acknowledge or resolve")
    key = str(ev.get("dedup_key") or "")
    if action != "trigger":
        if not key:
            raise ValueError("acknowledge and resolve need a dedup_key")
        return action, None
    p = ev.get("payload") or {}
    if not p.get("summary") or not p.get("source"):
        raise ValueError("payload.summary and payload.source are required")
    labels = {"alertname": key or str(p.get("class") or p["summary"])[:80], "source": str(p["source"]),
              "severity": PD_SEVERITY.get(str(p.get("severity", "error")), "P2"),
              "component": str(p.get("component") or p.get("group") or "external")}
    return action, Alert(labels=labels, annotations={"summary": str(p["summary"])}, status="firing",
                         starts_at=_utcnow(), generator="events-api")
