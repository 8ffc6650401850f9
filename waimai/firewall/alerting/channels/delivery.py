"""The delivery engine shared by every channel: rate limiting by merging, retries, the delivery log.

* Rate limit: a sliding window on an injected clock (`clock`, seconds). While the window's budget is
  spent, messages are queued; the next `send()` or `flush()` that finds budget sends everything queued
  as ONE combined message ("5 more alerts: ..."), so nothing is dropped and the provider never sees more
  than its limit.
* Retries: `stamina` with exponential backoff and jitter on timeouts, transport errors, HTTP 5xx and
  429, a bounded number of attempts, through the channel's `Dependency` (waimai.core.outbound):
  retries only while its retry budget allows, the whole delivery under its bulkhead and circuit
  breaker. While the breaker is open nothing is sent: the alerts wait in the queue and go out as one
  combined message once the breaker lets a trial through (`next_flush_at` says when). A `Retry-After` (seconds or HTTP date) is honoured: up to
  `max_inline_retry_after_s` we wait for it; a longer one puts the message back in the queue and closes
  the window until then, instead of blocking the caller.
* Every attempt is written to the `DeliveryLog`: `sent`, `retried` (failed, another attempt follows),
  `failed` (given up), `queued`.
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field

from waimai.core.outbound.policy import Dependency, DependencyUnavailable, Policy, standalone
from waimai.firewall.alerting.channels.base import (
    AlertMessage,
    Clock,
    DeliveryLog,
    DeliveryReceipt,
    DeliveryRecord,
    Event,
    RateLimit,
    SlidingWindowLimiter,
    mask_recipient,
    mask_text,
    merge_messages,
    union_recipients,
)


class TransientError(Exception):
    """Worth another attempt (timeout, connection error, 5xx, 429, provider "busy")."""

    def __init__(self, reason: str, status_code: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code
        self.retry_after = retry_after


class PermanentError(Exception):
    """Retrying will not help (bad signature, bad payload, unknown token, 4xx)."""

    def __init__(self, reason: str, status_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


def http_call(client: httpx.Client, method: str, url: str, *, body_in_error: bool = True,
              **kw: Any) -> httpx.Response:
    """One HTTP call with the outcomes every sender classifies alike: no answer or a timeout, 429 and 5xx
    are transient (with the server's Retry-After); anything else is returned for the caller to judge."""
    try:
        resp = client.request(method, url, **kw)
    except httpx.TimeoutException as exc:
        raise TransientError(f"timed out ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        # Never str(exc): some carry the URL, and some URLs carry the token.
        raise TransientError(f"unreachable ({type(exc).__name__})") from None
    if resp.status_code == 429 or resp.status_code >= 500:
        raise TransientError(f"HTTP {resp.status_code}" + (f": {resp.text[:120]}" if body_in_error else ""),
                             resp.status_code, parse_retry_after(resp.headers.get("retry-after")))
    return resp


@dataclass(frozen=True)
class Sent:
    status_code: int | None
    provider_id: str | None = None


@dataclass(frozen=True)
class Delivery:
    """Stable across the attempts of one delivery (e.g. the Standard Webhooks `webhook-id`)."""

    id: str
    message: AlertMessage
    recipients: tuple[str, ...] | None


class RetryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(default=4, ge=1, le=10)
    wait_initial_s: float = Field(default=0.5, ge=0)
    wait_max_s: float = Field(default=10.0, ge=0)
    wait_jitter_s: float = Field(default=0.5, ge=0)
    timeout_s: float = Field(default=60.0, gt=0)  # all attempts of one delivery together
    max_inline_retry_after_s: float = Field(default=10.0, ge=0)


class RateLimitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(ge=1)
    window_s: float = Field(gt=0)


class ChannelConfig(BaseModel):
    """Settings every channel accepts besides its own."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    rate_limit: RateLimitConfig | None = None  # override the provider's documented limit
    retry: RetryPolicy = RetryPolicy()
    timeout_s: float = Field(default=5.0, gt=0)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class ManagedChannel:
    """Base class of every channel; subclasses implement `_attempt` (one try, raising on failure)."""

    kind: ClassVar[str] = "channel"
    Config: ClassVar[type[ChannelConfig]] = ChannelConfig
    default_rate_limit: ClassVar[RateLimit] = RateLimit(60, 60.0)

    def __init__(self, config: ChannelConfig, *, clock: Clock | None = None, log: DeliveryLog | None = None) -> None:
        self.config = config
        self.name = config.name or self.kind
        self.rate_limit = (RateLimit(config.rate_limit.limit, config.rate_limit.window_s)
                           if config.rate_limit else self.default_rate_limit)
        self.clock: Clock = clock or time.time
        self.log = log if log is not None else DeliveryLog()
        self._limiter = SlidingWindowLimiter(self.rate_limit, self.clock)
        self._pending: list[tuple[AlertMessage, tuple[str, ...] | None]] = []
        self._lock = threading.RLock()
        # A breaker of its own until the service attaches the shared one (use_dependency).
        self.dependency: Dependency = standalone(f"channel.{self.name}", Policy(
            timeout_s=config.timeout_s, retry_ratio=0.5, min_retries_per_s=2.0, max_concurrent=4, open_s=30.0))

    def use_dependency(self, dependency: Dependency) -> None:
        """Deliver through `dependency` (the service's shared breaker, bulkhead and retry budget)."""
        self.dependency = dependency

    # -- what subclasses provide -------------------------------------------------------------
    def _attempt(self, delivery: Delivery, attempt: int) -> Sent:
        raise NotImplementedError

    def _describe(self) -> str:
        """Extra, secret-free fields for repr()."""
        return ""

    def default_recipients(self) -> tuple[str, ...]:
        """Who gets a message sent without recipients (for the delivery log)."""
        return ()

    def close(self) -> None:
        return None

    # -- public interface ---------------------------------------------------------------------
    def __repr__(self) -> str:
        extra = self._describe()
        return f"<{type(self).__name__} name={self.name!r} rate_limit={self.rate_limit}{' ' + extra if extra else ''}>"

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def send(self, message: AlertMessage, recipients: Sequence[str] | None = None) -> DeliveryReceipt:
        rcpt = tuple(recipients) if recipients is not None else None
        with self._lock:
            if not self._pending and self._limiter.available():
                return self._deliver([(message, rcpt)])
            self._pending.append((message, rcpt))
            self._record("queued", message, 0, recipients=rcpt)
            flushed = self._flush_locked()
            if flushed is not None and not flushed.queued:
                return flushed
            return DeliveryReceipt(channel=self.name, ok=False, queued=True, dedup_key=message.dedup_key,
                                   error="rate limit reached; queued for a combined message")

    def flush(self) -> DeliveryReceipt | None:
        with self._lock:
            return self._flush_locked()

    def next_flush_at(self) -> float | None:
        """Clock time when queued alerts can go out (None: nothing queued). Schedule `flush()` for then."""
        with self._lock:
            return self._limiter.next_free_at() if self._pending else None

    # -- engine ------------------------------------------------------------------------------------
    def _flush_locked(self) -> DeliveryReceipt | None:
        if not self._pending or not self._limiter.available():
            return None
        batch, self._pending = self._pending, []
        return self._deliver(batch)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def _record(self, event: Event, message: AlertMessage, attempt: int, *, status_code: int | None = None,
                error: str | None = None, provider_id: str | None = None, retry_after_s: float | None = None,
                recipients: tuple[str, ...] | None = None) -> None:
        self.log.append(DeliveryRecord(
            channel=self.name, dedup_key=message.dedup_key, event=event, attempt=attempt, at=self._now(),
            status_code=status_code, error=mask_text(error) if error else None, provider_id=provider_id,
            retry_after_s=retry_after_s, merged_from=message.merged_from,
            recipients=tuple(mask_recipient(r) for r in (
                recipients if recipients is not None else self.default_recipients()))))

    def _try(self, delivery: Delivery, num: int, state: dict[str, Any], should_retry: Any,
             recipients: tuple[str, ...] | None) -> Sent:
        """One attempt, written to the delivery log (`retried` when another attempt will follow)."""
        message = delivery.message
        state["attempt"] = num
        try:
            return self._attempt(delivery, num)
        except TransientError as exc:
            again = (should_retry(exc) is not False and num < self.config.retry.attempts
                     and self.dependency.budget.available())
            self._record("retried" if again else "failed", message, num, status_code=exc.status_code,
                         error=exc.reason, retry_after_s=exc.retry_after, recipients=recipients)
            raise
        except PermanentError as exc:
            self._record("failed", message, num, status_code=exc.status_code, error=exc.reason,
                         recipients=recipients)
            raise
        except Exception as exc:  # noqa: BLE001 - a channel bug must not break the pipeline
            reason = f"unexpected {type(exc).__name__}"
            self._record("failed", message, num, error=reason, recipients=recipients)
            raise PermanentError(reason) from exc

    def _deliver(self, batch: list[tuple[AlertMessage, tuple[str, ...] | None]]) -> DeliveryReceipt:
        message = merge_messages([m for m, _ in batch], now=self._now())
        recipients = union_recipients(r for _, r in batch)
        delivery = Delivery(id=uuid.uuid4().hex, message=message, recipients=recipients)
        policy = self.config.retry
        self._limiter.record()
        state: dict[str, Any] = {"attempt": 0}

        def should_retry(exc: Exception) -> bool | float:
            if not isinstance(exc, TransientError):
                return False
            if exc.retry_after is not None:
                if exc.retry_after > policy.max_inline_retry_after_s:
                    return False
                return float(exc.retry_after)
            return True

        dep = self.dependency
        try:
            with dep.guard(lambda e: isinstance(e, TransientError)):
                for attempt in dep.retry_context(
                        should_retry, attempts=policy.attempts, deadline_s=policy.timeout_s,
                        wait_initial_s=policy.wait_initial_s, wait_max_s=policy.wait_max_s,
                        wait_jitter_s=policy.wait_jitter_s):
                    with attempt:
                        sent = self._try(delivery, attempt.num, state, should_retry, recipients)
        except DependencyUnavailable as exc:
            # Breaker open (or bulkhead full): keep the alerts and try again when a trial is allowed.
            self._limiter.block_until(self.clock() + max(exc.retry_after_s, 0.1))
            self._pending[:0] = batch
            for m, r in batch:
                self._record("queued", m, 0, error=str(exc), retry_after_s=exc.retry_after_s, recipients=r)
            return DeliveryReceipt(channel=self.name, ok=False, attempts=0, error=str(exc), queued=True,
                                   merged_count=len(batch), dedup_key=message.dedup_key)
        except TransientError as exc:
            last = self.log.records_for(message.dedup_key)
            if last and last[-1].event == "retried":  # stopped by the overall timeout
                self._record("failed", message, state["attempt"], status_code=exc.status_code,
                             error=f"gave up: {exc.reason}", recipients=recipients)
            if exc.retry_after is not None and exc.retry_after > policy.max_inline_retry_after_s:
                # The provider asked for a long pause: keep the alerts and close the window until then.
                self._limiter.block_until(self.clock() + exc.retry_after)
                self._pending[:0] = batch
                for m, r in batch:
                    self._record("queued", m, 0, retry_after_s=exc.retry_after, recipients=r)
                return DeliveryReceipt(channel=self.name, ok=False, status_code=exc.status_code,
                                       attempts=state["attempt"], error=mask_text(exc.reason), queued=True,
                                       merged_count=len(batch), dedup_key=message.dedup_key)
            return DeliveryReceipt(channel=self.name, ok=False, status_code=exc.status_code,
                                   attempts=state["attempt"], error=mask_text(exc.reason),
                                   merged_count=len(batch), dedup_key=message.dedup_key)
        except PermanentError as exc:
            return DeliveryReceipt(channel=self.name, ok=False, status_code=exc.status_code,
                                   attempts=state["attempt"], error=mask_text(exc.reason),
                                   merged_count=len(batch), dedup_key=message.dedup_key)
        self._record("sent", message, state["attempt"], status_code=sent.status_code,
                     provider_id=sent.provider_id, recipients=recipients)
        return DeliveryReceipt(channel=self.name, ok=True, status_code=sent.status_code, attempts=state["attempt"],
                               provider_id=sent.provider_id, sent_at=self._now(), merged_count=len(batch),
                               dedup_key=message.dedup_key)


class HttpChannel(ManagedChannel):
    """A channel speaking JSON over HTTP with an httpx client (base URL configurable for stand-ins)."""

    def __init__(self, config: ChannelConfig, *, base_url: str, clock: Clock | None = None,
                 log: DeliveryLog | None = None) -> None:
        super().__init__(config, clock=clock, log=log)
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=config.timeout_s, follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def _describe(self) -> str:
        return f"base_url={self.base_url!r}"

    @staticmethod
    def dumps(payload: Any) -> bytes:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def _request(self, method: str, url: str, *, params: dict[str, str] | None = None, body: bytes | None = None,
                 headers: dict[str, str] | None = None) -> httpx.Response:
        hdrs = {"content-type": "application/json; charset=utf-8"} if body is not None else {}
        hdrs.update(headers or {})
        return http_call(self._http, method, url, params=params, content=body, headers=hdrs)

    @staticmethod
    def json_of(resp: httpx.Response) -> dict[str, Any]:
        try:
            data = resp.json()
        except ValueError:
            raise PermanentError(f"HTTP {resp.status_code}: response is not JSON", resp.status_code) from None
        if not isinstance(data, dict):
            raise PermanentError(f"HTTP {resp.status_code}: unexpected JSON", resp.status_code)
        return data


def truncate_utf8(text: str, max_bytes: int) -> str:
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    cut = raw[: max_bytes - 3].decode("utf-8", errors="ignore")
    return cut + "…"
