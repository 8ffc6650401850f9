"""The `PaymentProvider` plug-in interface every way of paying implements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class PaymentError(Exception):
    """The provider could not do what was asked (down, refused, timed out)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class CallbackRejected(Exception):
    """A callback that is not provably from the provider (bad or stale signature, malformed)."""


@dataclass(frozen=True)
class PaymentIntent:
    provider_ref: str | None
    pay_url: str | None
    status: str  # pending | succeeded | failed


@dataclass(frozen=True)
class RefundResult:
    refund_ref: str
    status: str  # succeeded | pending


@dataclass(frozen=True)
class CallbackEvent:
    event_id: str
    provider_ref: str
    order_number: str
    status: str  # succeeded | failed | pending; for kind "refund": refunded | refund_failed
    amount_fen: int
    kind: str = "payment"  # payment | refund
    transaction_id: str = ""  # the provider's own number for the trade, where it has one


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    latency_ms: float
    detail: str = ""


@runtime_checkable
class PaymentProvider(Protocol):
    name: str

    def create_payment(self, *, order_number: str, amount_fen: int, description: str, notify_url: str,
                       return_url: str) -> PaymentIntent: ...

    def refund(self, *, provider_ref: str, amount_fen: int, refund_no: str) -> RefundResult: ...

    def verify_callback(self, headers: Mapping[str, str], body: bytes) -> CallbackEvent: ...

    def health(self) -> ProbeResult: ...


class CashOnDelivery:
    """Cash handed to the rider: nothing to call, always available — the fallback when gateways fail."""

    name = "cod"

    def create_payment(self, *, order_number: str, amount_fen: int, description: str, notify_url: str,
                       return_url: str) -> PaymentIntent:
        return PaymentIntent(provider_ref=f"cod-{order_number}", pay_url=None, status="pending")

    def refund(self, *, provider_ref: str, amount_fen: int, refund_no: str) -> RefundResult:
        # Nothing was charged before delivery; cash returned at the door is settled by the rider.
        return RefundResult(refund_ref=f"cod-refund-{refund_no}", status="succeeded")

    def verify_callback(self, headers: Mapping[str, str], body: bytes) -> CallbackEvent:
        raise CallbackRejected("cash on delivery has no callbacks")

    def health(self) -> ProbeResult:
        return ProbeResult(ok=True, latency_ms=0.0, detail="always available")
