"""The notification-channel plug-in interface: messages, receipts, the delivery log and the registry.

Every channel (DingTalk, WeCom, Feishu, Slack, PagerDuty, Standard Webhooks, e-mail, SMS) takes an
`AlertMessage` and returns a `DeliveryReceipt`; `build_channel(kind, config)` makes one from a plain
dict (validated by the channel's pydantic config model, secrets held as `SecretStr`). Every attempt
is written to a `DeliveryLog` (sent / retried / failed / queued) that the pipeline can persist; the
log keeps recipients masked (phone numbers as 138****5678, e-mail as a***@host) and never a secret.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from waimai.firewall.alerting.channels.delivery import ManagedChannel

Severity = Literal["P1", "P2", "P3", "P4"]
Status = Literal["firing", "resolved", "acknowledged"]
Event = Literal["sent", "retried", "failed", "queued"]
SEVERITIES: tuple[Severity, ...] = ("P1", "P2", "P3", "P4")
STATUSES: tuple[Status, ...] = ("firing", "resolved", "acknowledged")
Clock = Callable[[], float]

logger = logging.getLogger("waimai.firewall.alerting")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AlertMessage:
    """One notification. `dedup_key` ties firing, acknowledged and resolved messages of one alert together."""

    title: str
    body_markdown: str
    severity: Severity
    dedup_key: str
    status: Status = "firing"
    labels: Mapping[str, str] = field(default_factory=dict)
    ack_url: str | None = None
    runbook_url: str | None = None
    incident_url: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    # Set on a combined message built by rate-limit merging: the dedup keys it carries.
    merged_from: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")
        if not self.dedup_key or len(self.dedup_key) > 255:
            raise ValueError("dedup_key must have 1..255 characters")
        if self.created_at.tzinfo is None or self.created_at.utcoffset() is None:
            raise ValueError("created_at must be timezone-aware")
        object.__setattr__(self, "created_at", self.created_at.astimezone(UTC))
        object.__setattr__(self, "labels", {str(k): str(v) for k, v in self.labels.items()})

    @property
    def headline(self) -> str:
        return f"[{self.severity}][{self.status.upper()}] {self.title}"

    def links(self) -> list[tuple[str, str]]:
        """(label, url) for the links present, in display order."""
        out = [("确认 Acknowledge", self.ack_url), ("处理手册 Runbook", self.runbook_url),
               ("事件 Incident", self.incident_url)]
        return [(label, url) for label, url in out if url]


@dataclass(frozen=True)
class DeliveryReceipt:
    channel: str
    ok: bool
    status_code: int | None = None
    attempts: int = 0
    provider_id: str | None = None
    error: str | None = None
    sent_at: datetime | None = None
    # How many alerts this delivery carried (> 1 for a combined message after rate limiting).
    merged_count: int = 1
    # True when the message waits in the channel's queue (rate limit spent or provider asked to back off);
    # it will go out inside a combined message on a later send() or flush().
    queued: bool = False
    dedup_key: str = ""


@dataclass(frozen=True)
class RateLimit:
    """At most `limit` messages per `window_s` seconds (sliding window); `extra` adds further windows."""

    limit: int
    window_s: float
    extra: tuple[tuple[int, float], ...] = ()

    def windows(self) -> tuple[tuple[int, float], ...]:
        return ((self.limit, self.window_s), *self.extra)

    @property
    def longest_window_s(self) -> float:
        return max(w for _, w in self.windows())

    def __str__(self) -> str:
        return ", ".join(f"{n}/{w:g}s" for n, w in self.windows())


class SlidingWindowLimiter:
    """Counts deliveries on the injected clock; `block_until` honours a provider's "come back later"."""

    def __init__(self, rate: RateLimit, clock: Clock) -> None:
        self.rate = rate
        self._clock = clock
        self._stamps: deque[float] = deque()
        self._blocked_until = 0.0

    def _prune(self, now: float) -> None:
        horizon = now - self.rate.longest_window_s
        while self._stamps and self._stamps[0] <= horizon:
            self._stamps.popleft()

    def available(self) -> bool:
        now = self._clock()
        if now < self._blocked_until:
            return False
        self._prune(now)
        return all(sum(1 for t in self._stamps if t > now - w) < n for n, w in self.rate.windows())

    def record(self) -> None:
        self._stamps.append(self._clock())

    def next_free_at(self) -> float:
        """Clock time from which `available()` holds (now, if it already does)."""
        now = self._clock()
        self._prune(now)
        at = max(now, self._blocked_until)
        for n, w in self.rate.windows():
            inside = [t for t in self._stamps if t > now - w]
            if len(inside) >= n:
                at = max(at, inside[len(inside) - n] + w)
        return at

    def block_until(self, t: float) -> None:
        self._blocked_until = max(self._blocked_until, t)


_DIGITS = re.compile(r"\d")


def mask_phone(number: str) -> str:
    """'+8613812345678' -> '+86138****5678'; short numbers keep only their last two digits."""
    s = number.strip()
    digits = [i for i, ch in enumerate(s) if ch.isdigit()]
    if len(digits) < 7:
        return "*" * max(len(s) - 2, 0) + s[-2:]
    hide = set(digits[-8:-4]) if len(digits) >= 8 else set(digits[3:-2])
    return "".join("*" if i in hide else ch for i, ch in enumerate(s))


def mask_recipient(value: str) -> str:
    """Mask what could identify a person: phone numbers and e-mail local parts."""
    v = value.strip()
    if "@" in v and not v.startswith("<"):
        local, _, host = v.partition("@")
        return f"{local[:1]}***@{host}"
    if len(_DIGITS.findall(v)) >= 7 and re.fullmatch(r"[+\d\s()-]+", v):
        return mask_phone(v)
    return v


def mask_text(text: str) -> str:
    """Mask phone-number-looking runs inside free text (error messages, log lines)."""
    return re.sub(r"\+?\d[\d -]{8,}\d", lambda m: mask_phone(m.group(0)), text)


@dataclass(frozen=True)
class DeliveryRecord:
    channel: str
    dedup_key: str
    event: Event
    attempt: int
    at: datetime
    status_code: int | None = None
    error: str | None = None
    provider_id: str | None = None
    retry_after_s: float | None = None
    merged_from: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()  # masked

    def to_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "dedup_key": self.dedup_key, "event": self.event,
                "attempt": self.attempt, "at": self.at.isoformat(), "status_code": self.status_code,
                "error": self.error, "provider_id": self.provider_id, "retry_after_s": self.retry_after_s,
                "merged_from": list(self.merged_from), "recipients": list(self.recipients)}


class DeliveryLog:
    """In-memory, thread-safe log of every delivery attempt. Persist it by iterating `records()`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[DeliveryRecord] = []

    def append(self, record: DeliveryRecord) -> None:
        with self._lock:
            self._records.append(record)
        logger.info("alert delivery %s channel=%s dedup_key=%s attempt=%d status=%s recipients=%s%s",
                    record.event, record.channel, record.dedup_key, record.attempt, record.status_code,
                    ",".join(record.recipients) or "-", f" error={record.error}" if record.error else "")

    def records(self, channel: str | None = None) -> list[DeliveryRecord]:
        with self._lock:
            return [r for r in self._records if channel is None or r.channel == channel]

    def take(self) -> list[DeliveryRecord]:
        """The records since the last take, forgotten here: a long-running service persists and drops them
        instead of keeping (and copying) every record it ever made."""
        with self._lock:
            out, self._records = self._records, []
        return out

    def records_for(self, dedup_key: str) -> list[DeliveryRecord]:
        """Records of this alert, including deliveries of combined messages that carried it."""
        with self._lock:
            return [r for r in self._records if r.dedup_key == dedup_key or dedup_key in r.merged_from]

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[DeliveryRecord]:
        return iter(self.records())


_SEV_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def merge_messages(items: Sequence[AlertMessage], *, now: datetime | None = None) -> AlertMessage:
    """One combined message for alerts held back by a rate limit ("5 more alerts: ...")."""
    if not items:
        raise ValueError("nothing to merge")
    if len(items) == 1:
        return items[0]
    keys: list[str] = []
    for m in items:
        for k in (m.merged_from or (m.dedup_key,)):
            if k not in keys:
                keys.append(k)
    worst = min((m.severity for m in items), key=_SEV_RANK.__getitem__)
    statuses = {m.status for m in items}
    status: Status = "firing" if "firing" in statuses else (
        "acknowledged" if "acknowledged" in statuses else "resolved")
    listing = "; ".join(f"[{m.severity}] {m.title}" for m in items)
    title = f"{len(items)} more alerts: {listing}"
    if len(title) > 200:
        title = title[:199] + "…"
    lines = [f"{len(items)} alerts were held back by the channel's rate limit:", ""]
    for m in items:
        links = " · ".join(f"[{label}]({url})" for label, url in m.links())
        lines.append(f"- **[{m.severity}] {m.title}** ({m.status}){' — ' + links if links else ''}")
    digest = hashlib.sha256("|".join(keys).encode()).hexdigest()[:16]
    return AlertMessage(title=title, body_markdown="\n".join(lines), severity=worst, status=status,
                        dedup_key=f"merged-{digest}", labels={"merged_count": str(len(items))},
                        created_at=now or utcnow(), merged_from=tuple(keys))


@runtime_checkable
class NotificationChannel(Protocol):
    """What the alert pipeline talks to. `send` never raises for delivery problems: see the receipt."""

    name: str
    rate_limit: RateLimit

    def send(self, message: AlertMessage, recipients: Sequence[str] | None = None) -> DeliveryReceipt: ...

    def flush(self) -> DeliveryReceipt | None:
        """Send the queued alerts as one combined message if the rate limit allows; None if nothing went."""
        ...

    def next_flush_at(self) -> float | None:
        """Clock time when the queued alerts may go out; None when nothing is queued."""
        ...

    @property
    def pending(self) -> int: ...

    def close(self) -> None: ...


ChannelFactory = Callable[..., "ManagedChannel"]
CHANNELS: dict[str, type[ManagedChannel]] = {}


def register(kind: str) -> Callable[[type[ManagedChannel]], type[ManagedChannel]]:
    def deco(cls: type[ManagedChannel]) -> type[ManagedChannel]:
        CHANNELS[kind] = cls
        cls.kind = kind
        return cls
    return deco


def _load_builtin() -> None:
    # Importing the modules registers their channels.
    from waimai.firewall.alerting.channels import (  # noqa: F401
        im,
        mail,
        pagerduty,
        sms,
        webhook,
    )


def build_channel(kind: str, config: Mapping[str, Any], *, clock: Clock | None = None,
                  log: DeliveryLog | None = None) -> ManagedChannel:
    """Make a channel of `kind` ("dingtalk", "wecom", "feishu", "slack", "pagerduty", "webhook", "email",
    "sms") from a config dict; raises `pydantic.ValidationError` on a bad config, KeyError on a bad kind."""
    _load_builtin()
    if kind not in CHANNELS:
        raise KeyError(f"unknown channel kind {kind!r}; known: {sorted(CHANNELS)}")
    cls = CHANNELS[kind]
    cfg = cls.Config.model_validate(dict(config))
    return cls(cfg, clock=clock, log=log)


def channel_kinds() -> list[str]:
    _load_builtin()
    return sorted(CHANNELS)


def union_recipients(groups: Iterable[Sequence[str] | None]) -> tuple[str, ...] | None:
    out: list[str] = []
    seen_any = False
    for g in groups:
        if g is None:
            continue
        seen_any = True
        out.extend(r for r in g if r not in out)
    return tuple(out) if seen_any else None
