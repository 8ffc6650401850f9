"""The alert pipeline: grouping, dedup, repeat, acknowledgement, inhibition, silences,
maintenance windows, escalation with on-call rotation, signed ack links, and noise under flapping."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pytest

from waimai.firewall.alerting.channels.base import AlertMessage, DeliveryReceipt, RateLimit
from waimai.firewall.alerting.pipeline import AlertPipeline, PipelineConfig
from waimai.firewall.alerting.rules import Alert, Evaluator, RuleFile
from waimai.firewall.monitoring.store import MetricStore

T0 = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)  # 12:00 in Shanghai


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += dt.timedelta(**kw)


class Recorder:
    """An in-tree channel that records what it is asked to send (the plug-in family's fake)."""

    rate_limit = RateLimit(limit=1000, window_s=60)

    def __init__(self, name: str) -> None:
        self.name = name
        self.messages: list[AlertMessage] = []

    def send(self, message: AlertMessage, recipients: Sequence[str] | None = None) -> DeliveryReceipt:
        self.messages.append(message)
        return DeliveryReceipt(channel=self.name, ok=True, attempts=1, dedup_key=message.dedup_key)

    def flush(self) -> DeliveryReceipt | None:
        return None

    @property
    def pending(self) -> int:
        return 0

    def close(self) -> None:
        pass


CONFIG = {
    "route": {"receiver": "ops", "group_by": ["alertname", "component"], "group_wait": "10s",
              "group_interval": "1m", "repeat_interval": "30m",
              "routes": [{"match": {"severity": "P1"}, "receiver": "ops", "escalation": "p1"}]},
    "inhibit_rules": [{"source_match": {"alertname": "PaymentGatewayDown"},
                       "target_match": {"alertname": "PaymentFailureRateHigh"}, "equal": ["component"]}],
    "maintenance_windows": [{"name": "db-tuesday", "matchers": {"component": "database"}, "weekdays": [1],
                             "start": "02:00", "end": "03:00"}],
    "escalation_policies": {"p1": [{"after": "0s", "targets": ["oncall:primary"]},
                                   {"after": "5m", "targets": ["oncall:secondary", "receiver:lead"]}]},
    "schedules": {
        "primary": {"members": ["li", "wang"], "start": "2026-11-23T01:00:00Z", "handoff_every": "1d",
                    "overrides": [{"member": "zhao", "start": "2026-11-25T03:00:00Z",
                                   "end": "2026-11-25T03:30:00Z"}]},
        "secondary": {"members": ["chen"], "start": "2026-11-01T00:00:00Z"}},
    "contacts": {"li": {"name": "Li", "receivers": ["sms-li"]}, "wang": {"name": "Wang", "receivers": ["sms-wang"]},
                 "zhao": {"name": "Zhao", "receivers": ["sms-zhao"]}, "chen": {"name": "Chen", "receivers": ["sms-chen"]}},
}


@pytest.fixture
def setup() -> tuple[AlertPipeline, Clock, dict[str, Recorder]]:
    clock = Clock()
    rx = {n: Recorder(n) for n in ("ops", "lead", "sms-li", "sms-wang", "sms-zhao", "sms-chen")}
    p = AlertPipeline(PipelineConfig.model_validate(CONFIG), {k: [v] for k, v in rx.items()}, clock=clock,
                      link_secret="link-secret", public_url="https://waimai.example")
    return p, clock, rx


def alert(name: str, status: str = "firing", severity: str = "P2", **labels: str) -> Alert:
    return Alert(labels={"alertname": name, "severity": severity, **labels}, annotations={"summary": name},
                 status=status, starts_at=T0)  # type: ignore[arg-type]


def test_grouping_waits_then_sends_one_message_for_the_group(setup) -> None:  # type: ignore[no-untyped-def]
    p, clock, rx = setup
    p.ingest([alert("LatencyHigh", component="ordering", route="/a")])
    clock.advance(seconds=3)
    p.ingest([alert("LatencyHigh", component="ordering", route="/b")])
    assert p.tick() == []  # still inside group_wait
    clock.advance(seconds=8)
    sent = p.tick()
    assert len(sent) == 1 and "(2)" in sent[0].message.title
    assert len(rx["ops"].messages) == 1


def test_dedup_and_repeat_interval(setup) -> None:  # type: ignore[no-untyped-def]
    p, clock, rx = setup
    a = alert("LatencyHigh", component="ordering")
    for _ in range(40):  # the evaluator re-sends the same firing alert every 30 s
        p.ingest([a])
        p.tick()
        clock.advance(seconds=30)
    # 20 minutes of the same alert: one notification only (repeat interval 30 m).
    assert len(rx["ops"].messages) == 1
    for _ in range(30):
        p.ingest([a])
        p.tick()
        clock.advance(seconds=30)
    assert len(rx["ops"].messages) == 2 and p.sent[-1].reason == "repeat"


def test_acknowledgement_stops_repeats_and_new_alerts_wake_people(setup) -> None:  # type: ignore[no-untyped-def]
    p, clock, rx = setup
    p.ingest([alert("LatencyHigh", component="ordering", route="/a")])
    clock.advance(seconds=11)
    p.tick()
    key = next(iter(p.groups))
    p.acknowledge(key, by="li")
    assert rx["ops"].messages[-1].status == "acknowledged"
    for _ in range(6):
        clock.advance(minutes=30)
        p.ingest([alert("LatencyHigh", component="ordering", route="/a")])
        p.tick()
    assert [m.status for m in rx["ops"].messages] == ["firing", "acknowledged"]
    p.ingest([alert("LatencyHigh", component="ordering", route="/new")])
    clock.advance(minutes=2)
    p.tick()
    assert rx["ops"].messages[-1].status == "firing" and "(2)" in rx["ops"].messages[-1].title


def test_inhibition_gateway_down_mutes_failure_rate(setup) -> None:  # type: ignore[no-untyped-def]
    p, clock, rx = setup
    p.ingest([alert("PaymentGatewayDown", component="payment"),
              alert("PaymentFailureRateHigh", component="payment")])
    clock.advance(seconds=11)
    p.tick()
    titles = [m.title for m in rx["ops"].messages]
    assert titles == ["PaymentGatewayDown"]
    # Gateway back, failure rate still high: now it is told.
    p.ingest([alert("PaymentGatewayDown", "resolved", component="payment")])
    clock.advance(minutes=2)
    p.tick()
    assert any(t == "PaymentFailureRateHigh" for t in (m.title for m in rx["ops"].messages))


def test_silence_mutes_until_it_ends(setup) -> None:  # type: ignore[no-untyped-def]
    p, clock, rx = setup
    s = p.add_silence({"alertname": "LatencyHigh"}, ends_at=T0 + dt.timedelta(minutes=10), created_by="li",
                      comment="load test")
    p.ingest([alert("LatencyHigh", component="ordering")])
    clock.advance(minutes=5)
    p.tick()
    assert rx["ops"].messages == []
    p.expire_silence(s.id)
    clock.advance(seconds=1)
    p.ingest([alert("LatencyHigh", component="ordering")])
    p.tick()
    assert len(rx["ops"].messages) == 1


def test_recurring_maintenance_window(setup) -> None:  # type: ignore[no-untyped-def]
    p, clock, rx = setup
    clock.now = dt.datetime(2026, 11, 23, 18, 30, tzinfo=dt.UTC)  # Tuesday 02:30 in Shanghai
    p.ingest([alert("DatabaseSlow", component="database")])
    clock.advance(minutes=1)
    p.tick()
    assert rx["ops"].messages == []
    clock.advance(minutes=40)  # 03:11: the window is over
    p.ingest([alert("DatabaseSlow", component="database")])
    p.tick()
    assert len(rx["ops"].messages) == 1


def test_escalation_follows_rotation_and_override(setup) -> None:  # type: ignore[no-untyped-def]
    p, clock, rx = setup
    clock.now = dt.datetime(2026, 11, 25, 3, 10, tzinfo=dt.UTC)  # zhao's override
    p.ingest([alert("PaymentGatewayDown", severity="P1", component="payment")])
    clock.advance(seconds=11)
    p.tick()
    assert len(rx["sms-zhao"].messages) == 1 and rx["sms-li"].messages == rx["sms-wang"].messages == []
    clock.advance(minutes=4)
    p.ingest([alert("PaymentGatewayDown", severity="P1", component="payment")])
    p.tick()
    assert rx["sms-chen"].messages == []
    clock.advance(minutes=1, seconds=1)
    p.tick()
    assert len(rx["sms-chen"].messages) == 1 and len(rx["lead"].messages) == 1
    assert "escalation 2" in rx["lead"].messages[0].title


def test_acknowledged_alert_does_not_escalate(setup) -> None:  # type: ignore[no-untyped-def]
    p, clock, rx = setup
    p.ingest([alert("PaymentGatewayDown", severity="P1", component="payment")])
    clock.advance(seconds=11)
    p.tick()
    p.acknowledge(next(iter(p.groups)), by="wang")
    clock.advance(minutes=10)
    p.tick()
    assert rx["sms-chen"].messages == [] and rx["lead"].messages == []


def test_rotation_hands_over_daily() -> None:
    cfg = PipelineConfig.model_validate(CONFIG)
    s = cfg.schedules["primary"]
    assert s.on_call(dt.datetime(2026, 11, 23, 2, tzinfo=dt.UTC)) == "li"
    assert s.on_call(dt.datetime(2026, 11, 24, 2, tzinfo=dt.UTC)) == "wang"
    assert s.on_call(dt.datetime(2026, 11, 25, 2, tzinfo=dt.UTC)) == "li"


def test_signed_ack_link(setup) -> None:  # type: ignore[no-untyped-def]
    p, clock, rx = setup
    p.ingest([alert("LatencyHigh", component="ordering")])
    clock.advance(seconds=11)
    p.tick()
    url = rx["ops"].messages[0].ack_url
    assert url and url.startswith("https://waimai.example/api/v1/alerts/ack?token=")
    token = url.split("token=")[1]
    assert p.verify_ack_token(token) == next(iter(p.groups))
    g64, exp, sig = token.split(".")
    assert p.verify_ack_token(f"{g64}.{int(exp) + 10}.{sig}") is None  # extended expiry: forged
    assert p.verify_ack_token(token[:-2] + "AA") is None
    clock.advance(days=2)
    assert p.verify_ack_token(token) is None  # expired


def test_flapping_metric_for_an_hour_notifies_at_most_once_per_repeat_interval(tmp_path: Path) -> None:
    store = MetricStore(f"sqlite:///{tmp_path / 'm.db'}")
    rules = RuleFile.parse("""
groups:
  - name: g
    rules:
      - alert: LatencyHigh
        expr: {kind: threshold, series: http_latency_p95_ms, op: ">", value: 1000, window: 10s, agg: last}
        for: 10s
        keep_firing_for: 1m
        severity: P3
""").groups[0].rules
    clock = Clock()
    ev = Evaluator(rules, store)
    rec = Recorder("ops")
    cfg = PipelineConfig.model_validate({"route": {"receiver": "ops", "group_wait": "10s", "group_interval": "1m",
                                                   "repeat_interval": "4h"}})
    p = AlertPipeline(cfg, {"ops": [rec]}, clock=clock)
    for step in range(3600 // 5):
        t = clock.now
        high = (step * 5 // 20) % 2 == 0  # flips every 20 s
        store.write(t, {"http_latency_p95_ms": 2000.0 if high else 100.0})
        p.ingest(ev.evaluate(t))
        p.tick()
        clock.advance(seconds=5)
    firing = [m for m in rec.messages if m.status == "firing"]
    assert len(firing) == 1, [m.title for m in rec.messages]


def test_evaluator_threshold_for_and_keep_firing(tmp_path: Path) -> None:
    store = MetricStore(f"sqlite:///{tmp_path / 'm.db'}")
    rule = RuleFile.parse("""
groups:
  - name: g
    rules:
      - alert: PayLow
        expr: {kind: threshold, series: payment_success_ratio, op: "<", value: 0.8, window: 5s, agg: last}
        for: 10s
        keep_firing_for: 20s
        severity: P2
        labels: {component: payment}
        summary: "Only {{ pct }} succeed"
""").groups[0].rules
    ev = Evaluator(rule, store)
    t = T0
    store.write(t, {"payment_success_ratio": 0.2})
    assert ev.evaluate(t) == []  # pending
    store.write(t + dt.timedelta(seconds=10), {"payment_success_ratio": 0.1})
    [a] = ev.evaluate(t + dt.timedelta(seconds=10))
    assert a.status == "firing" and a.labels["component"] == "payment" and a.annotations["summary"] == "Only 10.0% succeed"
    store.write(t + dt.timedelta(seconds=15), {"payment_success_ratio": 1.0})
    assert ev.evaluate(t + dt.timedelta(seconds=15))[0].status == "firing"  # kept firing
    store.write(t + dt.timedelta(seconds=31), {"payment_success_ratio": 1.0})
    assert ev.evaluate(t + dt.timedelta(seconds=31))[0].status == "resolved"


def test_absence_only_counts_inside_lunch_hours(tmp_path: Path) -> None:
    store = MetricStore(f"sqlite:///{tmp_path / 'm.db'}")
    rule = RuleFile.parse("""
groups:
  - name: g
    rules:
      - alert: OrdersStoppedAtLunch
        expr: {kind: absence, series: orders_placed_per_min, absent_for: 10m, local_hours: "11:00-13:00"}
        severity: P1
""").groups[0].rules
    ev = Evaluator(rule, store)
    noon = T0  # 12:00 Shanghai
    for i in range(12):
        store.write(noon - dt.timedelta(minutes=12 - i), {"orders_placed_per_min": 0.0})
    assert ev.evaluate(noon)[0].status == "firing"
    evening = T0 + dt.timedelta(hours=8)  # 20:00 Shanghai, no data at all
    assert Evaluator(rule, store).evaluate(evening) == []
    store.write(noon - dt.timedelta(minutes=3), {"orders_placed_per_min": 4.0})
    assert Evaluator(rule, store).evaluate(noon) == []


def test_burn_rate_needs_both_windows(tmp_path: Path) -> None:
    store = MetricStore(f"sqlite:///{tmp_path / 'm.db'}")
    rule = RuleFile.parse("""
groups:
  - name: g
    rules:
      - alert: Burn
        expr: {kind: burn_rate, success_ratio_series: s, slo: 0.99, windows: [["1h", "5m", 14.4]]}
        severity: P2
""").groups[0].rules
    # An hour at 99.5%, then five bad minutes: the short window burns, the long one not yet.
    for m in range(60):
        store.write(T0 - dt.timedelta(minutes=60 - m), {"s": 0.995 if m < 55 else 0.5})
    assert Evaluator(rule, store).evaluate(T0) == []
    for m in range(60):
        store.write(T0 - dt.timedelta(minutes=60 - m), {"s": 0.7})
    assert Evaluator(rule, store).evaluate(T0)[0].status == "firing"


def test_default_rules_load() -> None:
    from waimai.firewall.alerting.rules import DEFAULT_RULES

    f = RuleFile.load(DEFAULT_RULES)
    names = {r.alert for g in f.groups for r in g.rules}
    assert {"PaymentGatewayDown", "PaymentFailureRateHigh", "OrdersStoppedAtLunch", "LatencyHigh",
            "DispatchBacklog", "DatabaseDown", "WatchdogDown"} <= names
