"""The `PlatformAdapter` plug-in interface every delivery platform (Meituan, Ele.me, JD Daojia) implements.

An adapter is pure: it never does I/O. The web layer turns an HTTP request into an `InboundRequest`,
calls `verify` (raises `SignatureRejected`), then `parse` (raises `PayloadInvalid`), answers with
`ack(...)`; the outbox sends `build_status_callback(...)` and judges the reply with
`parse_callback_response(...)`.

Money is integer fen everywhere (yuan amounts are converted exactly through `Decimal`, never float);
every datetime is timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import parse_qsl

Clock = Callable[[], float]  # seconds since the epoch, like time.time
RejectReason = Literal["missing", "forged", "stale", "replayed"]
StatusKind = Literal["accepted", "picked_up", "delivered", "cancelled"]
STATUS_KINDS: tuple[StatusKind, ...] = ("accepted", "picked_up", "delivered", "cancelled")

# China has used UTC+8 all year since 1991: a fixed offset needs no tz database.
BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
DEFAULT_MAX_SKEW_S = 600  # 10 minutes


class SignatureRejected(Exception):
    """A request that is not provably from the platform: signature missing or forged, stale, or replayed."""

    def __init__(self, reason: RejectReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: RejectReason = reason
        self.detail = detail


class PayloadInvalid(Exception):
    """Correctly signed, but not an order we can read (missing fields, bad amounts, unsupported message type)."""


@dataclass(frozen=True)
class InboundRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    received_at: dt.datetime  # tz-aware

    def header(self, name: str, default: str = "") -> str:
        low = name.lower()
        for k, v in self.headers.items():
            if k.lower() == low:
                return v
        return default

    def form(self) -> dict[str, str]:
        """The body as application/x-www-form-urlencoded (percent-decoded, UTF-8)."""
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise PayloadInvalid("body is not UTF-8") from None
        return dict(parse_qsl(text, keep_blank_values=True))

    def params(self) -> dict[str, str]:
        """Query parameters and form fields together (the body wins on a clash)."""
        merged = dict(self.query)
        if self.body and "json" not in self.header("content-type").lower():
            merged.update(self.form())
        return merged


@dataclass(frozen=True)
class ExternalItem:
    name: str
    external_sku: str
    quantity: int
    unit_price_fen: int


@dataclass(frozen=True)
class ExternalOrder:
    platform: str
    external_id: str
    external_shop_id: str
    items: tuple[ExternalItem, ...]
    recipient_name: str
    recipient_phone_masked: str  # the platform's privacy / virtual number, or a masked one: never the real one
    address_text: str
    address_lat: float | None
    address_lng: float | None
    campus_hint: str | None  # e.g. a building / gate the platform put in a separate field
    promised_at: dt.datetime | None  # UTC; None = "as soon as possible" with no estimate given
    total_fen: int  # what the customer paid the platform for this order
    paid_online: bool
    note: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class StatusUpdate:
    external_id: str
    status: StatusKind
    occurred_at: dt.datetime  # tz-aware
    reason: str = ""  # cancellations
    operator: str = "campus-waimai"
    rider_phone: str = ""  # the courier's contact number, where the platform asks for one (Ele.me self-delivery)


@dataclass(frozen=True)
class OutboundRequest:
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class OutboundResponse:
    status_code: int
    headers: Mapping[str, str]
    body: bytes

    @staticmethod
    def json(status_code: int, payload: Any) -> OutboundResponse:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        return OutboundResponse(status_code, {"content-type": "application/json; charset=utf-8"}, body)


@runtime_checkable
class PlatformAdapter(Protocol):
    name: str

    def verify(self, request: InboundRequest) -> None: ...

    def parse(self, request: InboundRequest) -> ExternalOrder: ...

    def ack(self, ok: bool, message: str) -> OutboundResponse: ...

    def build_status_callback(self, update: StatusUpdate) -> OutboundRequest: ...

    def parse_callback_response(self, status_code: int, body: bytes) -> bool: ...


class ReplayCache:
    """Signatures / nonces seen recently, bounded in time (ttl) and in size (oldest evicted first).

    The ttl must cover the accepted clock skew on both sides, or a request could be replayed after
    its entry expired but while its timestamp is still fresh: `for_skew` picks 2 x skew.
    """

    def __init__(self, *, ttl_s: float, max_entries: int = 100_000, clock: Clock = time.time) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def for_skew(cls, max_skew_s: float, *, max_entries: int = 100_000, clock: Clock = time.time) -> ReplayCache:
        return cls(ttl_s=2 * max_skew_s, max_entries=max_entries, clock=clock)

    def seen_before(self, key: str) -> bool:
        """True if `key` was recorded within the ttl; otherwise records it and returns False."""
        now = self.clock()
        with self._lock:
            while self._seen:
                oldest_key, at = next(iter(self._seen.items()))
                if now - at <= self.ttl_s:
                    break
                del self._seen[oldest_key]
            last = self._seen.get(key)
            if last is not None and now - last <= self.ttl_s:
                return True
            self._seen[key] = now
            self._seen.move_to_end(key)
            while len(self._seen) > self.max_entries:
                self._seen.popitem(last=False)
            return False

    def __len__(self) -> int:
        return len(self._seen)


def check_fresh_and_new(*, sent_at: dt.datetime, received_at: dt.datetime, max_skew_s: float,
                        cache: ReplayCache, replay_key: str) -> None:
    """Call only after the signature checked out: stale first, then replay (so forgeries never fill the cache)."""
    skew = abs((received_at - sent_at).total_seconds())
    if skew > max_skew_s:
        raise SignatureRejected("stale", f"timestamp is {skew:.0f}s away from our clock (max {max_skew_s:.0f}s)")
    if cache.seen_before(replay_key):
        raise SignatureRejected("replayed", "this signed request was already accepted")


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def yuan_to_fen(value: Any) -> int:
    """'12.5', 12, Decimal('0.01') -> fen, exactly. Floats are refused: parse JSON with parse_float=Decimal."""
    if isinstance(value, bool) or isinstance(value, float):
        raise PayloadInvalid(f"amount {value!r} must be a decimal string or Decimal, not {type(value).__name__}")
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation:
        raise PayloadInvalid(f"amount {value!r} is not a number") from None
    if not d.is_finite():
        raise PayloadInvalid(f"amount {value!r} is not finite")
    fen = d * 100
    if fen != fen.to_integral_value():
        raise PayloadInvalid(f"amount {value!r} has a fraction of a fen")
    return int(fen)


def fen_to_yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def json_loads_exact(text: str | bytes) -> Any:
    """JSON with every non-integer number as Decimal, so money never passes through float."""
    try:
        return json.loads(text, parse_float=Decimal)
    except (ValueError, TypeError):
        raise PayloadInvalid("malformed JSON") from None


_MOBILE = re.compile(r"^(\+?86)?(1\d{2})(\d{4})(\d{4})$")


def mask_phone(raw: str) -> str:
    """Keep the platform's privacy number as given (virtual number with extension, or already masked);
    mask a bare real mobile number that slipped through (138****5678), so we never store the real one."""
    phone = raw.strip()
    if not phone:
        return ""
    if "*" in phone or "_" in phone or "," in phone or "#" in phone or "转" in phone:
        return phone
    m = _MOBILE.match(phone.replace(" ", "").replace("-", ""))
    if m:
        return f"{m.group(2)}****{m.group(4)}"
    if len(phone) > 4:
        return "*" * (len(phone) - 4) + phone[-4:]
    return phone


def epoch_to_utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def beijing_text_to_utc(text: str) -> dt.datetime:
    """'2026-11-25 12:30:00' or '2026-11-25T12:30:00' in China time -> aware UTC."""
    try:
        naive = dt.datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        raise PayloadInvalid(f"bad time {text!r}") from None
    if naive.tzinfo is None:
        naive = naive.replace(tzinfo=BEIJING)
    return naive.astimezone(dt.UTC)


def utc_to_beijing_text(moment: dt.datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def require(mapping: Mapping[str, Any], key: str, what: str = "field") -> Any:
    value = mapping.get(key)
    if value is None or value == "":
        raise PayloadInvalid(f"{what} {key!r} is missing")
    return value


def to_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise PayloadInvalid(f"{what} must be an integer")
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation:
        raise PayloadInvalid(f"{what} must be an integer") from None
    if not d.is_finite() or d != d.to_integral_value():
        raise PayloadInvalid(f"{what} must be an integer")
    return int(d)


def to_coord(value: Any) -> float | None:
    """A latitude / longitude as float (coordinates are not money); None when absent or zero."""
    if value is None or value == "":
        return None
    try:
        f = float(Decimal(str(value).strip()))
    except InvalidOperation:
        raise PayloadInvalid(f"bad coordinate {value!r}") from None
    return None if f == 0 else f
