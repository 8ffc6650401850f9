"""The alert pipeline, on Alertmanager's proven model plus what its users ask for.

alerts ─▶ route (labels → receiver, group_by) ─▶ group (group_wait / group_interval /
repeat_interval) ─▶ drop silenced, in-maintenance and inhibited alerts ─▶ notify the receiver's
channels ─▶ repeat until acknowledged ─▶ escalate along the route's policy (on-call schedule
with rotations and overrides) when nobody acknowledges in time.

Everything runs on an injected clock, so behaviour is tested without sleeping. Acknowledgement
comes from the console, the API, or a signed link in the message (`ack_token`).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import structlog
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from waimai.firewall.alerting.channels.base import AlertMessage, DeliveryReceipt, NotificationChannel
from waimai.firewall.alerting.rules import Alert, parse_duration

log = structlog.get_logger(__name__)
Dur = Annotated[dt.timedelta, BeforeValidator(parse_duration)]
SEV_ORDER = {"P1": 0, "P2": 1, "P3": 2, "P4": 3}


def _matches(labels: Mapping[str, str], eq: Mapping[str, str], rx: Mapping[str, str] | None = None) -> bool:
    if any(labels.get(k) != v for k, v in eq.items()):
        return False
    return all(re.fullmatch(p, labels.get(k, "")) for k, p in (rx or {}).items())


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    receiver: str | None = None
    match: dict[str, str] = {}
    match_re: dict[str, str] = {}
    group_by: list[str] | None = None
    group_wait: Dur | None = None
    group_interval: Dur | None = None
    repeat_interval: Dur | None = None
    escalation: str | None = None
    continue_: bool = Field(default=False, alias="continue")
    routes: list[Route] = []


class InhibitRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_match: dict[str, str]
    target_match: dict[str, str]
    equal: list[str] = []


class MaintenanceWindow(BaseModel):
    """A recurring quiet period, e.g. the weekly database maintenance on Tuesdays 02:00–03:00."""

    model_config = ConfigDict(extra="forbid")

    name: str
    matchers: dict[str, str] = {}
    weekdays: list[int] = Field(default=[0, 1, 2, 3, 4, 5, 6], description="0 = Monday")
    start: str = Field(pattern=r"^\d\d:\d\d$")
    end: str = Field(pattern=r"^\d\d:\d\d$")
    timezone: str = "Asia/Shanghai"

    def active(self, now: dt.datetime) -> bool:
        local = now.astimezone(ZoneInfo(self.timezone))
        t = local.strftime("%H:%M")
        if self.start <= self.end:
            return local.weekday() in self.weekdays and self.start <= t < self.end
        # Crosses midnight: the part after midnight belongs to the previous day's window.
        if t >= self.start:
            return local.weekday() in self.weekdays
        return t < self.end and (local.weekday() - 1) % 7 in self.weekdays


class Override(BaseModel):
    member: str
    start: dt.datetime
    end: dt.datetime


class Schedule(BaseModel):
    """A rotation: members take turns for `handoff_every` starting at `start`; overrides win."""

    model_config = ConfigDict(extra="forbid")

    members: list[str] = Field(min_length=1)
    start: dt.datetime
    handoff_every: Dur = dt.timedelta(days=7)
    overrides: list[Override] = []

    def on_call(self, now: dt.datetime) -> str:
        for o in self.overrides:
            if o.start <= now < o.end:
                return o.member
        turns = int((now - self.start) / self.handoff_every) if now >= self.start else 0
        return self.members[turns % len(self.members)]


class EscalationStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: Dur = dt.timedelta(0)
    targets: list[str]  # "receiver:<name>", "oncall:<schedule>", "person:<contact>"


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    receivers: list[str] = []  # the person's own receivers (their SMS number, their e-mail, …)


class ChannelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    config: dict[str, Any] = {}


class PipelineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    route: Route
    receivers: dict[str, list[ChannelSpec]] = {}
    inhibit_rules: list[InhibitRule] = []
    maintenance_windows: list[MaintenanceWindow] = []
    escalation_policies: dict[str, list[EscalationStep]] = {}
    schedules: dict[str, Schedule] = {}
    contacts: dict[str, Contact] = {}

    @model_validator(mode="after")
    def _targets_exist(self) -> PipelineConfig:
        """A misspelt escalation target is a configuration error now, not an exception on the first tick."""
        known: dict[str, Mapping[str, Any]] = {"receiver": self.receivers, "oncall": self.schedules,
                                               "person": self.contacts}
        problems = []
        for policy, steps in self.escalation_policies.items():
            for i, step in enumerate(steps):
                for target in step.targets:
                    kind, _, name = target.partition(":")
                    if kind not in known:
                        problems.append(f"{policy}[{i}]: {target!r} is not receiver:, oncall: or person:")
                    elif name not in known[kind] and (kind != "receiver" or self.receivers):
                        # Receivers are checked when the file lists them (a test may inject channels by name).
                        problems.append(f"{policy}[{i}]: {target!r} names no {kind} in this configuration")

        def routes(r: Route) -> list[Route]:
            return [r, *(x for child in r.routes for x in routes(child))]

        for r in routes(self.route):
            if r.escalation is not None and r.escalation not in self.escalation_policies:
                problems.append(f"route escalation {r.escalation!r} is not an escalation policy")
        if problems:
            raise ValueError("; ".join(problems))
        return self


DEFAULTS = {"group_by": ["alertname"], "group_wait": dt.timedelta(seconds=10),
            "group_interval": dt.timedelta(minutes=1), "repeat_interval": dt.timedelta(hours=4)}


@dataclass(frozen=True)
class ResolvedRoute:
    receiver: str
    group_by: tuple[str, ...]
    group_wait: dt.timedelta
    group_interval: dt.timedelta
    repeat_interval: dt.timedelta
    escalation: str | None
    path: str


def resolve_routes(root: Route, labels: Mapping[str, str]) -> list[ResolvedRoute]:
    """Depth-first like Alertmanager: the deepest matching child wins unless `continue` is set."""

    def walk(r: Route, inherited: dict[str, Any], path: str) -> list[ResolvedRoute]:
        eff = dict(inherited)
        for k in ("receiver", "group_by", "group_wait", "group_interval", "repeat_interval", "escalation"):
            v = getattr(r, k)
            if v is not None:
                eff[k] = v
        out: list[ResolvedRoute] = []
        for i, child in enumerate(r.routes):
            if _matches(labels, child.match, child.match_re):
                out += walk(child, eff, f"{path}/{i}")
                if not child.continue_:
                    break
        if not out:
            out = [ResolvedRoute(receiver=eff["receiver"], group_by=tuple(eff["group_by"]),
                                 group_wait=eff["group_wait"], group_interval=eff["group_interval"],
                                 repeat_interval=eff["repeat_interval"], escalation=eff.get("escalation"),
                                 path=path)]
        return out

    return walk(root, {**DEFAULTS, "escalation": None}, "root")


@dataclass
class Silence:
    id: str
    matchers: dict[str, str]
    starts_at: dt.datetime
    ends_at: dt.datetime
    created_by: str
    comment: str = ""

    def active(self, now: dt.datetime) -> bool:
        return self.starts_at <= now < self.ends_at


@dataclass
class AlertState:
    alert: Alert
    acked_by: str | None = None
    acked_at: dt.datetime | None = None
    flaps: int = 0


@dataclass
class Group:
    key: str
    route: ResolvedRoute
    labels: dict[str, str]
    members: set[str] = field(default_factory=set)
    created_at: dt.datetime | None = None
    last_flush: dt.datetime | None = None
    last_sent_at: dt.datetime | None = None
    last_digest: str = ""
    first_firing_at: dt.datetime | None = None
    escalation_step: int = 0
    acked_by: str | None = None
    acked_at: dt.datetime | None = None
    seq: int = 0  # numbers the group's sends: (group, seq, receiver) is one step, sent at most once


@dataclass
class Notification:
    at: dt.datetime
    group: str
    receiver: str
    message: AlertMessage
    receipt: DeliveryReceipt | None
    reason: str  # first, update, repeat, resolved, escalation, acknowledged
    step: str = ""
    members: tuple[str, ...] = ()


Resolver = Callable[[str], Sequence[NotificationChannel]]


class AlertPipeline:
    def __init__(self, config: PipelineConfig, receivers: Resolver | Mapping[str, Sequence[NotificationChannel]], *,
                 clock: Callable[[], dt.datetime], link_secret: str = "", public_url: str = "",
                 defer: bool = False) -> None:
        self.config = config
        self._resolve = receivers if callable(receivers) else (lambda name: receivers.get(name, ()))  # type: ignore[union-attr]
        self.clock = clock
        self.link_secret = link_secret.encode()
        self.public_url = public_url.rstrip("/")
        self.alerts: dict[str, AlertState] = {}
        self.groups: dict[str, Group] = {}
        self.silences: dict[str, Silence] = {}
        self.sent: list[Notification] = []
        # Deferred: deliveries are decided here (receipt None) and sent by whoever owns the outbox — the
        # alerting service records them in the database first, so a new leader never sends one twice.
        self.defer = defer
        self.failed_groups: list[str] = []

    # --- intake ---------------------------------------------------------------------------------

    def ingest(self, alerts: Iterable[Alert]) -> None:
        now = self.clock()
        for a in alerts:
            fp = a.fingerprint
            st = self.alerts.get(fp)
            if st is None:
                st = self.alerts[fp] = AlertState(alert=a)
            else:
                if st.alert.status == "resolved" and a.status == "firing":
                    st.flaps += 1
                    st.acked_by = st.acked_at = None  # a new episode needs a new acknowledgement
                st.alert = a
            for route in resolve_routes(self.config.route, a.labels):
                glabels = {k: a.labels.get(k, "") for k in route.group_by}
                key = route.path + "|" + "|".join(f"{k}={v}" for k, v in sorted(glabels.items()))
                g = self.groups.get(key)
                if g is None:
                    g = self.groups[key] = Group(key=key, route=route, labels=glabels, created_at=now)
                if g.acked_by and a.status == "firing" and fp not in g.members:
                    g.acked_by = g.acked_at = None  # something new in the group: wake people again
                g.members.add(fp)
                if a.status == "firing" and g.first_firing_at is None:
                    g.first_firing_at = now

    # --- silences, maintenance, inhibition ---------------------------------------------------------

    def add_silence(self, matchers: dict[str, str], *, ends_at: dt.datetime, created_by: str, comment: str = "",
                    starts_at: dt.datetime | None = None) -> Silence:
        # Unique across replicas (each has its own pipeline copy): a random id, not a counter.
        s = Silence(id=f"s{secrets.token_hex(6)}", matchers=matchers, starts_at=starts_at or self.clock(), ends_at=ends_at,
                    created_by=created_by, comment=comment)
        self.silences[s.id] = s
        return s

    def expire_silence(self, sid: str) -> None:
        s = self.silences.get(sid)
        if s is not None:
            s.ends_at = self.clock()

    def muted_by(self, a: Alert, now: dt.datetime) -> str | None:
        for s in self.silences.values():
            if s.active(now) and _matches(a.labels, s.matchers):
                return f"silence {s.id}"
        for w in self.config.maintenance_windows:
            if w.active(now) and _matches(a.labels, w.matchers):
                return f"maintenance {w.name}"
        for rule in self.config.inhibit_rules:
            if not _matches(a.labels, rule.target_match):
                continue
            for other in self.alerts.values():
                o = other.alert
                if o.status == "firing" and o.fingerprint != a.fingerprint and \
                        _matches(o.labels, rule.source_match) and \
                        all(o.labels.get(k) == a.labels.get(k) for k in rule.equal):
                    return f"inhibited by {o.name}"
        return None

    # --- acknowledgement ---------------------------------------------------------------------------

    def acknowledge(self, group_key: str, by: str) -> Group:
        g = self.groups[group_key]
        now = self.clock()
        g.acked_by, g.acked_at = by, now
        for fp in g.members:
            st = self.alerts[fp]
            if st.alert.status == "firing":
                st.acked_by, st.acked_at = by, now
        msg = self._message(g, [self.alerts[f].alert for f in g.members if self.alerts[f].alert.status == "firing"],
                            status="acknowledged")
        if msg is not None:
            self._deliver(g, g.route.receiver, msg, "acknowledged", now)
        return g

    def ack_token(self, group_key: str, expires: dt.datetime) -> str:
        exp = str(int(expires.timestamp()))
        mac = hmac.new(self.link_secret, f"{group_key}\n{exp}".encode(), hashlib.sha256).digest()
        g = base64.urlsafe_b64encode(group_key.encode()).decode().rstrip("=")
        return f"{g}.{exp}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"

    def verify_ack_token(self, token: str) -> str | None:
        """The group key a signed link acknowledges, or None if forged or expired."""
        try:
            g64, exp, sig = token.split(".")
            key = base64.urlsafe_b64decode(g64 + "=" * (-len(g64) % 4)).decode()
            want = hmac.new(self.link_secret, f"{key}\n{exp}".encode(), hashlib.sha256).digest()
            got = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
        except (ValueError, UnicodeDecodeError):
            return None
        if not self.link_secret or not hmac.compare_digest(want, got):
            return None
        if self.clock().timestamp() > int(exp):
            return None
        return key if key in self.groups else None

    # --- the clock tick ----------------------------------------------------------------------------

    def tick(self) -> list[Notification]:
        """Flush due groups, repeat unacknowledged ones, escalate; returns what was sent now."""
        now = self.clock()
        before = len(self.sent)
        for g in list(self.groups.values()):
            try:
                self._tick_group(g, now)
            except Exception:  # noqa: BLE001 - one broken group must not stop the tick for the others
                self.failed_groups.append(g.key)
                log.exception("alert_group_tick_failed", group=g.key[:200])
        if not self.defer:
            for ch_name in self._all_receivers():
                for ch in self._resolve(ch_name):
                    ch.flush()
        return self.sent[before:]

    def _all_receivers(self) -> set[str]:
        return {g.route.receiver for g in self.groups.values()}

    def _tick_group(self, g: Group, now: dt.datetime) -> None:
        states = [self.alerts[f] for f in g.members]
        firing = [s.alert for s in states if s.alert.status == "firing" and not self.muted_by(s.alert, now)]
        resolved = [s.alert for s in states if s.alert.status == "resolved"]
        digest = hashlib.sha256(("|".join(sorted(a.fingerprint + a.status for a in firing + resolved))).encode()
                                ).hexdigest()
        r = g.route
        if g.last_flush is None:
            if not firing or (g.created_at and now - g.created_at < r.group_wait):
                return
            reason = "first"
        elif digest != g.last_digest:
            if now - g.last_flush < r.group_interval:
                return
            reason = "resolved" if not firing else "update"
        elif firing and not g.acked_by and g.last_sent_at and now - g.last_sent_at >= r.repeat_interval:
            reason = "repeat"
        else:
            reason = ""
        if reason:
            alerts = firing or resolved
            msg = self._message(g, alerts, status="firing" if firing else "resolved")
            if msg is not None:
                self._deliver(g, r.receiver, msg, reason, now)
                g.last_sent_at = now
            g.last_flush = now
            g.last_digest = digest
            if not firing:
                # Everything resolved: forget the episode (members drop, escalation resets).
                g.members = {s.alert.fingerprint for s in states if s.alert.status == "firing"}
                g.first_firing_at = None
                g.escalation_step = 0
                g.acked_by = g.acked_at = None
        if firing and not g.acked_by and r.escalation:
            self._escalate(g, firing, now)

    def _escalate(self, g: Group, firing: list[Alert], now: dt.datetime) -> None:
        steps = self.config.escalation_policies.get(g.route.escalation or "", [])
        start = g.first_firing_at or now
        while g.escalation_step < len(steps) and now - start >= steps[g.escalation_step].after:
            step = steps[g.escalation_step]
            g.escalation_step += 1
            msg = self._message(g, firing, status="firing", escalation=g.escalation_step)
            if msg is None:
                continue
            for target in step.targets:
                for receiver in self._expand(target, now):
                    self._deliver(g, receiver, msg, "escalation", now)

    def _expand(self, target: str, now: dt.datetime) -> list[str]:
        kind, _, name = target.partition(":")
        if kind == "receiver":
            return [name]
        if kind == "oncall":
            sched = self.config.schedules.get(name)
            person = sched.on_call(now) if sched else None
            return list(self.config.contacts[person].receivers) if person in self.config.contacts else []
        if kind == "person":
            return list(self.config.contacts[name].receivers) if name in self.config.contacts else []
        raise ValueError(f"unknown escalation target {target!r}")

    def _message(self, g: Group, alerts: list[Alert], *, status: str, escalation: int = 0) -> AlertMessage | None:
        if not alerts:
            return None
        worst = min((a.severity for a in alerts), key=lambda s: SEV_ORDER.get(s, 9))
        names = sorted({a.name for a in alerts})
        title = ", ".join(names) + (f" ({len(alerts)})" if len(alerts) > 1 else "")
        if escalation:
            title = f"[escalation {escalation}] {title}"
        lines = [f"- **{a.name}** {a.annotations.get('summary', '')}" for a in alerts]
        labels = {**g.labels, "group": g.key}
        runbook = next((a.annotations.get("runbook_url") for a in alerts if a.annotations.get("runbook_url")), None)
        ack_url = None
        if self.link_secret and self.public_url and status == "firing":
            token = self.ack_token(g.key, self.clock() + dt.timedelta(days=1))
            ack_url = f"{self.public_url}/api/v1/alerts/ack?token={token}"
        return AlertMessage(title=title, body_markdown="\n".join(lines), severity=worst,  # type: ignore[arg-type]
                            dedup_key=hashlib.sha256(g.key.encode()).hexdigest()[:32], status=status,  # type: ignore[arg-type]
                            labels=labels, ack_url=ack_url, runbook_url=runbook)

    def _deliver(self, g: Group, receiver: str, msg: AlertMessage, reason: str, now: dt.datetime) -> None:
        g.seq += 1
        step, members = f"{g.seq}:{reason}", tuple(sorted(g.members))
        if self.defer:
            self.sent.append(Notification(now, g.key, receiver, msg, None, reason, step, members))
            return
        channels = self._resolve(receiver)
        if not channels:
            self.sent.append(Notification(now, g.key, receiver, msg, None, reason, step, members))
        for ch in channels:
            self.sent.append(Notification(now, g.key, receiver, msg, ch.send(msg), reason, step, members))

    # --- console statistics --------------------------------------------------------------------------

    def noise(self) -> dict[str, dict[str, int]]:
        """Per rule: notifications sent and flaps (resolved → firing again)."""
        out: dict[str, dict[str, int]] = {}
        for n in self.sent:
            for name in {part.split(" ")[0] for part in n.message.title.split(", ")}:
                clean = re.sub(r"^\[escalation \d+\] ", "", name)
                out.setdefault(clean, {"notifications": 0, "flaps": 0})["notifications"] += 1
        for st in self.alerts.values():
            out.setdefault(st.alert.name, {"notifications": 0, "flaps": 0})["flaps"] += st.flaps
        return out
