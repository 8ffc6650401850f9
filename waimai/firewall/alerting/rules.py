"""Alert rules in YAML, close to Prometheus rule files, evaluated over any `MetricSource`.

    groups:
      - name: payments
        rules:
          - alert: PaymentFailureRateHigh
            expr: {kind: threshold, series: payment_success_ratio, op: "<", value: 0.9, window: 1m, agg: mean}
            for: 30s
            keep_firing_for: 2m
            severity: P2
            labels: {component: payment}
            summary: "Only {{ pct }} of gateway calls succeed"
            runbook: docs/operations.md#payment-gateway-down

Expression kinds: `threshold` (aggregate over a window compared to a value), `change` (relative
or absolute change between two windows), `absence` (no data, or only zeros, for a duration,
optionally only inside local hours such as 11:00–13:00: "no order placed for 10 minutes at
12:00"), `anomaly` (the detectors' score series above a level) and `burn_rate` (multi-window SLO
burn on an error-ratio series, as in the Google SRE workbook). `for` holds a condition pending
before it fires; `keep_firing_for` keeps it firing through short dips (hysteresis against flaps).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from waimai.firewall.monitoring.store import MetricSource, Point

SEVERITY_NAMES = {"P1": "critical", "P2": "high", "P3": "warning", "P4": "info"}
_DUR = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_OPS: dict[str, Callable[[float, float], bool]] = {">": operator.gt, ">=": operator.ge, "<": operator.lt,
                                                   "<=": operator.le, "==": operator.eq, "!=": operator.ne}


def parse_duration(v: Any) -> dt.timedelta:
    if isinstance(v, dt.timedelta):
        return v
    if isinstance(v, int | float):
        return dt.timedelta(seconds=float(v))
    m = _DUR.match(str(v).strip())
    if not m:
        raise ValueError(f"not a duration: {v!r} (use 30s, 5m, 1h)")
    n, unit = int(m.group(1)), m.group(2)
    return {"ms": dt.timedelta(milliseconds=n), "s": dt.timedelta(seconds=n), "m": dt.timedelta(minutes=n),
            "h": dt.timedelta(hours=n), "d": dt.timedelta(days=n)}[unit]




Dur = Annotated[dt.timedelta, BeforeValidator(parse_duration)]


class _Expr(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Threshold(_Expr):
    kind: Literal["threshold"]
    series: str
    op: Literal[">", ">=", "<", "<=", "==", "!="]
    value: float
    window: Dur = dt.timedelta(minutes=1)
    agg: Literal["last", "mean", "max", "min"] = "last"


class Change(_Expr):
    kind: Literal["change"]
    series: str
    op: Literal[">", ">=", "<", "<="]
    value: float
    relative: bool = True  # (now - before) / before, else now - before
    window: Dur = dt.timedelta(minutes=5)
    baseline_window: Dur = dt.timedelta(minutes=30)


class Absence(_Expr):
    kind: Literal["absence"]
    series: str
    absent_for: Dur = dt.timedelta(minutes=10)
    zero_counts_as_absent: bool = True
    local_hours: str | None = Field(default=None, pattern=r"^\d\d:\d\d-\d\d:\d\d$")
    timezone: str = "Asia/Shanghai"


class Anomaly(_Expr):
    kind: Literal["anomaly"]
    series: str  # the detector's score series, e.g. anomaly.payment_success_ratio
    min_score: float = Field(default=0.9, ge=0, le=1)
    window: Dur = dt.timedelta(seconds=30)


class BurnRate(_Expr):
    kind: Literal["burn_rate"]
    error_ratio_series: str | None = None  # a series of error ratios in [0, 1] …
    success_ratio_series: str | None = None  # … or of success ratios (error = 1 - success)
    slo: float = Field(gt=0, lt=1)
    # (long window, short window, burn factor): fire when both windows burn faster than the factor.
    windows: list[tuple[str, str, float]] = [("1h", "5m", 14.4), ("6h", "30m", 6.0)]


Expr = Annotated[Threshold | Change | Absence | Anomaly | BurnRate, Field(discriminator="kind")]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    alert: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    expr: Expr
    for_: dt.timedelta = Field(default=dt.timedelta(0), alias="for")
    keep_firing_for: dt.timedelta = dt.timedelta(0)
    severity: Literal["P1", "P2", "P3", "P4"] = "P3"
    labels: dict[str, str] = {}
    summary: str = ""
    runbook: str | None = None

    @field_validator("for_", "keep_firing_for", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> dt.timedelta:
        return parse_duration(v)


class RuleGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    interval: dt.timedelta = dt.timedelta(seconds=5)
    rules: list[Rule]

    @field_validator("interval", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> dt.timedelta:
        return parse_duration(v)


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    groups: list[RuleGroup]

    @classmethod
    def load(cls, path: Path) -> RuleFile:
        return cls.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))

    @classmethod
    def parse(cls, text: str) -> RuleFile:
        return cls.model_validate(yaml.safe_load(text))


@dataclass
class Alert:
    """One alert instance as Alertmanager models it: labels identify it, annotations describe it."""

    labels: dict[str, str]
    annotations: dict[str, str]
    status: Literal["firing", "resolved"]
    starts_at: dt.datetime
    ends_at: dt.datetime | None = None
    value: float | None = None
    generator: str = "waimai"

    @property
    def fingerprint(self) -> str:
        raw = "\x1f".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "P3")


@dataclass
class _RuleState:
    active_since: dt.datetime | None = None  # condition true since (pending)
    firing_since: dt.datetime | None = None
    last_true: dt.datetime | None = None
    value: float | None = None
    onset: dt.datetime | None = None  # when the condition began to hold, for the episode now firing


def _agg(points: list[Point], how: str) -> float | None:
    vals = [p.value for p in points if not math.isnan(p.value)]
    if not vals:
        return None
    return {"last": vals[-1], "mean": sum(vals) / len(vals), "max": max(vals), "min": min(vals)}[how]


def _in_hours(now: dt.datetime, spec: str, tz: str) -> bool:
    start, end = spec.split("-")
    t = now.astimezone(ZoneInfo(tz)).strftime("%H:%M")
    return start <= t < end if start <= end else (t >= start or t < end)


def evaluate_expr(expr: Any, source: MetricSource, now: dt.datetime) -> tuple[bool, float | None]:
    """(condition holds, the value that decided it)."""
    if isinstance(expr, Threshold):
        v = _agg(source.query_range(expr.series, now - expr.window, now, 1), expr.agg)
        return (v is not None and _OPS[expr.op](v, expr.value)), v
    if isinstance(expr, Change):
        cur = _agg(source.query_range(expr.series, now - expr.window, now, 1), "mean")
        base = _agg(source.query_range(expr.series, now - expr.window - expr.baseline_window, now - expr.window, 1),
                    "mean")
        if cur is None or base is None:
            return False, None
        if expr.relative:
            if base == 0:
                return False, None
            change = (cur - base) / abs(base)
        else:
            change = cur - base
        return _OPS[expr.op](change, expr.value), change
    if isinstance(expr, Absence):
        if expr.local_hours and not _in_hours(now, expr.local_hours, expr.timezone):
            return False, None
        pts = source.query_range(expr.series, now - expr.absent_for, now, 1)
        present = [p for p in pts if not math.isnan(p.value) and (p.value != 0 or not expr.zero_counts_as_absent)]
        if not present and not source.query_range(expr.series, now - expr.absent_for - dt.timedelta(days=1),
                                                  now - expr.absent_for, 60):
            return False, None  # the series is younger than absent_for (a fresh start): too early to tell
        return (not present), float(len(present))
    if isinstance(expr, Anomaly):
        v = _agg(source.query_range(expr.series, now - expr.window, now, 1), "max")
        return (v is not None and v >= expr.min_score), v
    if isinstance(expr, BurnRate):
        budget = 1 - expr.slo
        worst: float | None = None
        fired = False
        for long_w, short_w, factor in expr.windows:
            burns: list[float] = []
            for w in (long_w, short_w):
                name = expr.error_ratio_series or expr.success_ratio_series or ""
                v = _agg(source.query_range(name, now - parse_duration(w), now, 1), "mean")
                if v is None:
                    burns = []
                    break
                err = v if expr.error_ratio_series else 1 - v
                burns.append(err / budget)
            if len(burns) == 2:
                worst = max(worst or 0.0, min(burns))
                fired |= all(b > factor for b in burns)
        return fired, worst
    raise TypeError(f"unknown expression {expr!r}")


@dataclass
class Evaluator:
    """Keeps each rule's pending/firing state between evaluations; returns alert transitions."""

    rules: list[Rule]
    source: MetricSource
    base_labels: Mapping[str, str] = field(default_factory=dict)
    _state: dict[str, _RuleState] = field(default_factory=dict)

    def evaluate(self, now: dt.datetime) -> list[Alert]:
        """Alerts that are firing now, plus a `resolved` alert for each that just stopped."""
        out: list[Alert] = []
        for rule in self.rules:
            st = self._state.setdefault(rule.alert, _RuleState())
            holds, value = evaluate_expr(rule.expr, self.source, now)
            st.value = value
            if holds:
                st.last_true = now
                st.active_since = st.active_since or now
                if st.firing_since is None and now - st.active_since >= rule.for_:
                    st.firing_since, st.onset = now, st.active_since
            else:
                st.active_since = None
                if st.firing_since is not None and (st.last_true is None or now - st.last_true >= rule.keep_firing_for):
                    out.append(self._alert(rule, st, now, "resolved"))
                    st.firing_since = None
            if st.firing_since is not None:
                out.append(self._alert(rule, st, now, "firing"))
        return out

    def _alert(self, rule: Rule, st: _RuleState, now: dt.datetime, status: Literal["firing", "resolved"]) -> Alert:
        labels = {**self.base_labels, **rule.labels, "alertname": rule.alert, "severity": rule.severity}
        value = st.value
        summary = rule.summary.replace("{{ value }}", "–" if value is None else f"{value:.4g}").replace(
            "{{ pct }}", "–" if value is None else f"{value * 100:.1f}%")
        ann = {"summary": summary or rule.alert, "kind": rule.expr.kind}
        if st.onset is not None:
            ann["onset_at"] = st.onset.isoformat()
        if rule.runbook:
            ann["runbook_url"] = rule.runbook
        assert st.firing_since is not None
        return Alert(labels=labels, annotations=ann, status=status, starts_at=st.firing_since,
                     ends_at=now if status == "resolved" else None, value=value)

    def pending(self) -> dict[str, dt.datetime]:
        return {k: s.active_since for k, s in self._state.items() if s.active_since and not s.firing_since}


DEFAULT_RULES = Path(__file__).with_name("default_rules.yml")
