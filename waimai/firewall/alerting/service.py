"""The alerting service inside Waimai: rules evaluated over the metric store, the pipeline, intake
from Prometheus Alertmanager and PagerDuty-style events, and the API the console uses."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import structlog
import yaml
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from waimai.core.database import Database
from waimai.core.timeutil import parse_iso
from waimai.firewall.alerting.channels.base import DeliveryLog, NotificationChannel, build_channel
from waimai.firewall.alerting.models import AlertHistory, AlertRuleSet
from waimai.firewall.alerting.pipeline import AlertPipeline, PipelineConfig
from waimai.firewall.alerting.rules import DEFAULT_RULES, Alert, Evaluator, RuleFile
from waimai.firewall.monitoring.store import MetricSource

log = structlog.get_logger(__name__)
DEFAULT_CONFIG = Path(__file__).with_name("default_alerting.yml")
AM_SEVERITY = {"critical": "P1", "page": "P1", "high": "P2", "error": "P2", "warning": "P3", "info": "P4"}
PD_SEVERITY = {"critical": "P1", "error": "P2", "warning": "P3", "info": "P4"}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class AlertingService:
    def __init__(self, *, source: MetricSource, rules_file: Path | None = None, config_file: Path | None = None,
                 link_secret: str, public_url: str, clock: Any = _utcnow, database: Database | None = None) -> None:
        self.database = database
        self.rules_text = (rules_file or DEFAULT_RULES).read_text(encoding="utf-8")
        if database is not None:  # a rule set edited in the console wins over the file
            try:
                with database.read_session() as db:
                    latest = db.scalar(select(AlertRuleSet).order_by(AlertRuleSet.id.desc()).limit(1))
            except SQLAlchemyError:  # not migrated yet (/readyz says so): start on the shipped rules
                log.warning("alert_rules_from_file", reason="rule-set table unavailable")
                latest = None
            if latest is not None:
                self.rules_text = latest.yaml
        self.rules = RuleFile.parse(self.rules_text)
        self.config = PipelineConfig.model_validate(
            yaml.safe_load((config_file or DEFAULT_CONFIG).read_text(encoding="utf-8")))
        self.delivery_log = DeliveryLog()
        self.channels: dict[str, list[NotificationChannel]] = {
            name: [build_channel(spec.kind, spec.config, log=self.delivery_log) for spec in specs]
            for name, specs in self.config.receivers.items()}
        self.pipeline = AlertPipeline(self.config, self._receiver, clock=clock, link_secret=link_secret,
                                      public_url=public_url)
        self.evaluator = Evaluator([r for g in self.rules.groups for r in g.rules], source)
        for name in self.receivers_without_channels():
            log.warning("alert_receiver_has_no_channel", receiver=name,
                        hint="configure a channel in WAIMAI_ALERTING_CONFIG_FILE; alerts reach only /ops/alerts")
        self.clock = clock
        self._lock = threading.RLock()
        self._logged = 0
        # Told after every round (incidents, remediation): any of on_alerts(states), on_notified(deliveries),
        # on_ack(fingerprints, by) a listener defines. A failing listener is logged and never stops alerting.
        self.listeners: list[Any] = []

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

    def evaluate(self) -> None:
        """One round: rules over the store, into the pipeline, and the pipeline's clock tick."""
        with self._lock:
            self.pipeline.ingest(self.evaluator.evaluate(self.clock()))
            sent = self.pipeline.tick()
            self._record(sent)
            self._tell_listeners(sent)

    def ingest(self, alerts: list[Alert]) -> None:
        with self._lock:
            self.pipeline.ingest(alerts)
            sent = self.pipeline.tick()
            self._record(sent)
            self._tell_listeners(sent)

    def _tell(self, event: str, *args: Any) -> None:
        for listener in self.listeners:
            fn = getattr(listener, event, None)
            if fn is None:
                continue
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - a listener must never stop alerting
                log.exception("alert_listener_failed", listener=type(listener).__name__, event=event)

    def _tell_listeners(self, sent: list[Any]) -> None:
        if not self.listeners:
            return
        p = self.pipeline
        now = self.clock()
        self._tell("on_alerts", [(st.alert, p.muted_by(st.alert, now)) for st in p.alerts.values()])
        if sent:
            self._tell("on_notified", [(sorted(p.groups[n.group].members) if n.group in p.groups else [],
                                        n.receiver, n.reason, bool(n.receipt and n.receipt.ok)) for n in sent])

    def acknowledge(self, group_key: str, by: str) -> None:
        with self._lock:
            g = self.pipeline.acknowledge(group_key, by=by)
            self._history([AlertHistory(event="acknowledged", group_key=g.key[:300], details={"by": by})])
            self._tell("on_ack", sorted(g.members), by)

    def update_rules(self, text: str, *, by: str) -> RuleFile:
        """Validate a rule set edited in the console, swap it in (keeping state of unchanged rules), keep it."""
        parsed = RuleFile.parse(text)  # raises on invalid YAML or rules
        with self._lock:
            rules = [r for g in parsed.groups for r in g.rules]
            kept = {k: v for k, v in self.evaluator._state.items() if k in {r.alert for r in rules}}  # noqa: SLF001
            self.evaluator = Evaluator(rules, self.evaluator.source)
            self.evaluator._state.update(kept)  # noqa: SLF001
            self.rules, self.rules_text = parsed, text
        if self.database is not None:
            with self.database.session() as db:
                db.add(AlertRuleSet(yaml=text, updated_by=by[:40]))
                db.add(AlertHistory(event="rules:updated", details={"by": by, "rules": len(rules)}))
                db.commit()
        return parsed

    def _record(self, sent: list[Any]) -> None:
        rows = []
        for n in sent:
            log.warning("alert_notified", receiver=n.receiver, reason=n.reason, title=n.message.title,
                        status=n.message.status, ok=bool(n.receipt and n.receipt.ok))
            rows.append(AlertHistory(event=f"notified:{n.reason}", group_key=n.group[:300],
                                     title=n.message.title[:300], severity=n.message.severity,
                                     status=n.message.status,
                                     details={"receiver": n.receiver,
                                              "ok": bool(n.receipt and n.receipt.ok),
                                              "error": n.receipt.error if n.receipt else "no channel"}))
        new = self.delivery_log.records()[self._logged:]
        self._logged += len(new)
        rows += [AlertHistory(event=f"delivery:{r.event}", title=str(getattr(r, "dedup_key", ""))[:300],
                              details=r.to_dict()) for r in new]
        self._history(rows)

    def _history(self, rows: list[AlertHistory]) -> None:
        if not rows or self.database is None:
            return
        try:
            with self.database.session() as db:
                db.add_all(rows)
                db.commit()
        except Exception:  # noqa: BLE001 - history must never stop alerting
            log.exception("alert_history_write_failed")

    def history(self, limit: int = 100) -> list[AlertHistory]:
        if self.database is None:
            return []
        with self.database.read_session() as db:
            return list(db.scalars(select(AlertHistory).order_by(AlertHistory.id.desc()).limit(limit)))

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
