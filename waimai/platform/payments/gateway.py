"""HTTP payment gateway client ("Waimai Pay v1", spoken by `waimai fake-gateway` and docs/payments.md).

Requests carry `X-Pay-App-Id`, `X-Pay-Timestamp`, `X-Pay-Nonce` and `X-Pay-Signature`, the hex
HMAC-SHA256 of `METHOD\\nPATH\\nTIMESTAMP\\nNONCE\\nsha256(body)` under the shared secret.
Callbacks carry `X-Pay-Timestamp`, `X-Pay-Event-Id` and `X-Pay-Signature` = HMAC of
`TIMESTAMP.EVENT_ID.BODY`; stale (> 5 min) or forged ones are rejected.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx

from waimai.core.outbound.policy import Dependency, DependencyUnavailable, Policy, standalone
from waimai.platform.payments.base import (
    CallbackEvent,
    CallbackRejected,
    PaymentError,
    PaymentIntent,
    ProbeResult,
    RefundResult,
)

MAX_CALLBACK_AGE_S = 300
T = TypeVar("T")


def sign_request(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    msg = "\n".join([method.upper(), path, timestamp, nonce, hashlib.sha256(body).hexdigest()])
    return hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()


def sign_callback(secret: str, timestamp: str, event_id: str, body: bytes) -> str:
    msg = f"{timestamp}.{event_id}.".encode() + body
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


class Retryable(Exception):
    """A failure worth another try (timeout, connection refused, 5xx): counted against the breaker."""



def through(dependency: Dependency, attempt: Callable[[], T], what: str) -> T:
    """One logical provider call through its Dependency (bulkhead, breaker, retries within the budget);
    every way it can fail comes out as PaymentError."""
    try:
        return dependency.call(attempt, retry_on=Retryable)
    except Retryable as exc:
        raise PaymentError(str(exc)) from exc
    except DependencyUnavailable as exc:
        raise PaymentError(f"{what} not called: {exc}") from exc


class GatewayProvider:
    """Pays through the HTTP gateway; create and refund are idempotent on our references, so retried.

    Every call goes through `dependency` (waimai.core.outbound): bulkhead, circuit breaker,
    retries with jitter within a retry budget. The service swaps in its shared one at start-up.
    """

    name = "gateway"

    def __init__(self, *, base_url: str, app_id: str, secret: str, timeout_s: float = 3.0,
                 attempts: int = 2, dependency: Dependency | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self._secret = secret
        self.dependency = dependency or standalone("payment_gateway", Policy(timeout_s=timeout_s, attempts=attempts))
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout_s)

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps(payload, separators=(",", ":")).encode() if payload is not None else b""

        def attempt() -> dict[str, Any]:
            ts, nonce = str(int(time.time())), secrets.token_hex(8)
            headers = {"content-type": "application/json", "x-pay-app-id": self.app_id, "x-pay-timestamp": ts,
                       "x-pay-nonce": nonce,
                       "x-pay-signature": sign_request(self._secret, method, path, ts, nonce, body)}
            try:
                resp = self._client.request(method, path, content=body, headers=headers)
            except httpx.TimeoutException as exc:
                raise Retryable(f"gateway timed out: {exc.__class__.__name__}") from exc
            except httpx.TransportError as exc:
                raise Retryable(f"gateway unreachable: {exc.__class__.__name__}") from exc
            if resp.status_code >= 500:
                raise Retryable(f"gateway error {resp.status_code}")
            if resp.status_code >= 400:
                raise PaymentError(f"gateway refused ({resp.status_code}): {resp.text[:200]}", retryable=False)
            data: dict[str, Any] = resp.json()
            return data

        return through(self.dependency, attempt, "gateway")

    def create_payment(self, *, order_number: str, amount_fen: int, description: str, notify_url: str,
                       return_url: str) -> PaymentIntent:
        data = self._call("POST", "/v1/payments", {
            "out_trade_no": order_number, "amount_fen": amount_fen, "description": description,
            "notify_url": notify_url, "return_url": return_url})
        return PaymentIntent(provider_ref=data["payment_id"], pay_url=data.get("pay_url"),
                             status=str(data.get("status", "pending")))

    def refund(self, *, provider_ref: str, amount_fen: int, refund_no: str) -> RefundResult:
        data = self._call("POST", "/v1/refunds", {"payment_id": provider_ref, "amount_fen": amount_fen,
                                                  "out_refund_no": refund_no})
        return RefundResult(refund_ref=data["refund_id"], status=str(data.get("status", "succeeded")))

    def query(self, provider_ref: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/payments/{provider_ref}")

    def verify_callback(self, headers: Mapping[str, str], body: bytes) -> CallbackEvent:
        h = {k.lower(): v for k, v in headers.items()}
        ts, event_id, sig = h.get("x-pay-timestamp"), h.get("x-pay-event-id"), h.get("x-pay-signature")
        if not (ts and event_id and sig):
            raise CallbackRejected("missing signature headers")
        try:
            age = abs(time.time() - int(ts))
        except ValueError as exc:
            raise CallbackRejected("bad timestamp") from exc
        if age > MAX_CALLBACK_AGE_S:
            raise CallbackRejected("stale callback")
        if not hmac.compare_digest(sign_callback(self._secret, ts, event_id, body), sig):
            raise CallbackRejected("bad signature")
        try:
            data = json.loads(body)
            return CallbackEvent(event_id=event_id, provider_ref=str(data["payment_id"]),
                                 order_number=str(data["out_trade_no"]), status=str(data["status"]),
                                 amount_fen=int(data["amount_fen"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise CallbackRejected("malformed callback body") from exc

    def health(self) -> ProbeResult:
        t0 = time.perf_counter()
        try:
            r = self._client.get("/healthz", timeout=2.0)
            ok = r.status_code == 200
            detail = "" if ok else f"status {r.status_code}"
        except httpx.HTTPError as exc:
            ok, detail = False, exc.__class__.__name__
        return ProbeResult(ok=ok, latency_ms=(time.perf_counter() - t0) * 1000, detail=detail)
