"""Alipay (支付宝) through `python-alipay-sdk`: mobile web (wap) and desktop page pay, query, close, refund.

The SDK signs every request with RSA2 (SHA256withRSA over the sorted `k=v&...` string, `sign` and
`sign_type` left out) and verifies the signature over each synchronous answer's response object with
Alipay's public key; `verify` checks the same scheme on the customer's return and on asynchronous
notifications. On top of it this provider refuses notifications for another app id or older than five
minutes, and the service applies each `notify_id` once. The gateway URL is a setting
(`WAIMAI_ALIPAY_URL`): that is how the stand-in (`waimai fake-alipay`) is reached.
"""

from __future__ import annotations

import datetime as dt
import time
import urllib.error
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from alipay import AliPay
from alipay.exceptions import AliPayException, AliPayValidationError
from alipay.utils import AliPayConfig

from waimai.core.outbound.policy import Dependency, Policy, standalone
from waimai.platform.payments.base import (
    CallbackEvent,
    CallbackRejected,
    PaymentError,
    PaymentIntent,
    ProbeResult,
    RefundResult,
)
from waimai.platform.payments.gateway import Retryable, through

MAX_CALLBACK_AGE_S = 300
CHANNELS = ("wap", "page")
SHANGHAI = ZoneInfo("Asia/Shanghai")
TRADE_STATES = {"TRADE_SUCCESS": "succeeded", "TRADE_FINISHED": "succeeded", "WAIT_BUYER_PAY": "pending",
                "TRADE_CLOSED": "failed"}


def yuan(fen: int) -> str:
    """Alipay amounts are yuan strings with two decimals."""
    return f"{fen // 100}.{fen % 100:02d}"


def fen(amount: str) -> int:
    return int((Decimal(amount) * 100).to_integral_value())


class AlipayProvider:
    """Pays with Alipay; out_trade_no is our order number."""

    name = "alipay"
    channels = CHANNELS

    def __init__(self, *, gateway_url: str, appid: str, app_private_key_pem: str, alipay_public_key_pem: str,
                 timeout_s: float = 3.0, dependency: Dependency | None = None) -> None:
        self.gateway_url = gateway_url
        self.appid = appid
        self.timeout_s = timeout_s
        self.dependency = dependency or standalone("payment.alipay", Policy(timeout_s=timeout_s, attempts=2))
        self._sdk = AliPay(appid=appid, app_private_key_string=app_private_key_pem,
                           alipay_public_key_string=alipay_public_key_pem, sign_type="RSA2",
                           config=AliPayConfig(timeout=int(max(1, timeout_s))))
        self._sdk._gateway = gateway_url  # the SDK's one gateway attribute is the setting

    def __repr__(self) -> str:  # never the keys
        return f"AlipayProvider(appid={self.appid!r}, gateway_url={self.gateway_url!r})"

    def _call(self, fn: Any, **kwargs: Any) -> dict[str, Any]:
        def attempt() -> dict[str, Any]:
            try:
                result: dict[str, Any] = fn(**kwargs)
            except AliPayValidationError as exc:
                raise PaymentError("alipay answer with a bad signature refused", retryable=False) from exc
            except AliPayException as exc:
                raise PaymentError(f"alipay refused: {str(exc)[:200]}", retryable=False) from exc
            except urllib.error.HTTPError as exc:
                if exc.code >= 500:
                    raise Retryable(f"alipay error {exc.code}") from exc
                raise PaymentError(f"alipay refused ({exc.code})", retryable=False) from exc
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                raise Retryable(f"alipay unreachable: {exc.__class__.__name__}") from exc
            return result

        return through(self.dependency, attempt, "alipay")

    def create_payment(self, *, order_number: str, amount_fen: int, description: str, notify_url: str,
                       return_url: str, channel: str = "wap", client_ip: str = "", payer_openid: str | None = None
                       ) -> PaymentIntent:
        """A signed cashier URL. Alipay creates the trade only when the customer arrives, so the trade is
        asked about first (through the breaker): a failing Alipay is noticed here, before the customer is
        sent to a dead cashier, and a trade already paid is reported instead of being offered again."""
        if channel not in CHANNELS:
            raise PaymentError(f"unknown alipay channel {channel!r}", retryable=False)
        if self.query(order_number).status == "succeeded":
            return PaymentIntent(provider_ref=order_number, pay_url=None, status="succeeded")
        make = self._sdk.api_alipay_trade_wap_pay if channel == "wap" else self._sdk.api_alipay_trade_page_pay
        query = make(subject=description[:256], out_trade_no=order_number, total_amount=yuan(amount_fen),
                     return_url=return_url, notify_url=notify_url)
        return PaymentIntent(provider_ref=order_number, pay_url=f"{self.gateway_url}?{query}", status="pending")

    def query(self, provider_ref: str) -> CallbackEvent:
        data = self._call(self._sdk.api_alipay_trade_query, out_trade_no=provider_ref)
        if data.get("sub_code") == "ACQ.TRADE_NOT_EXIST":  # the customer never reached the cashier
            return CallbackEvent(event_id=f"query:{provider_ref}:none", provider_ref=provider_ref,
                                 order_number=provider_ref, status="pending", amount_fen=0)
        if data.get("code") != "10000":
            raise PaymentError(f"alipay query failed: {data.get('sub_code') or data.get('code')}", retryable=False)
        state = str(data.get("trade_status", ""))
        return CallbackEvent(event_id=f"query:{data.get('trade_no')}:{state}", provider_ref=str(data["out_trade_no"]),
                             order_number=str(data["out_trade_no"]), status=TRADE_STATES.get(state, "pending"),
                             amount_fen=fen(str(data.get("total_amount", "0"))),
                             transaction_id=str(data.get("trade_no", "")))

    def close_trade(self, provider_ref: str) -> None:
        data = self._call(self._sdk.api_alipay_trade_close, out_trade_no=provider_ref)
        if data.get("code") != "10000":
            raise PaymentError(f"alipay close failed: {data.get('sub_code')}", retryable=False)

    def refund(self, *, provider_ref: str, amount_fen: int, refund_no: str, total_fen: int | None = None,
               notify_url: str | None = None) -> RefundResult:
        """Alipay refunds synchronously; `out_request_no` makes a retried refund the same refund."""
        data = self._call(self._sdk.api_alipay_trade_refund, refund_amount=yuan(amount_fen),
                          out_trade_no=provider_ref, out_request_no=refund_no)
        if data.get("code") != "10000":
            raise PaymentError(f"alipay refund failed: {data.get('sub_code')}", retryable=False)
        # fund_change "N" answers a repeated out_request_no: the money moved the first time.
        return RefundResult(refund_ref=f"{data.get('trade_no', '')}:{refund_no}"[:64], status="succeeded")

    def bill_url(self, bill_date: str) -> str:
        data = self._call(self._sdk.server_api, api_name="alipay.data.dataservice.bill.downloadurl.query",
                          biz_content={"bill_type": "trade", "bill_date": bill_date})
        if data.get("code") != "10000":
            raise PaymentError(f"alipay bill not available: {data.get('sub_code')}", retryable=False)
        return str(data["bill_download_url"])

    def verify_return(self, params: Mapping[str, str]) -> bool:
        """The customer's return from the cashier: only whether Alipay signed it (its outcome is not trusted)."""
        data = dict(params)
        sign = data.pop("sign", "")
        try:
            return bool(sign) and data.get("app_id") == self.appid and self._sdk.verify(data, sign)
        except (AliPayException, ValueError, TypeError):
            return False

    def verify_callback(self, headers: Mapping[str, str], body: bytes) -> CallbackEvent:
        try:
            data = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError) as exc:
            raise CallbackRejected("malformed notification") from exc
        sign = data.pop("sign", "")
        if not sign or data.get("app_id") != self.appid:
            raise CallbackRejected("unsigned notification or another app's")
        try:
            ok = self._sdk.verify(dict(data), sign)
        except (AliPayException, ValueError, TypeError) as exc:
            raise CallbackRejected("bad signature") from exc
        if not ok:
            raise CallbackRejected("bad signature")
        try:
            sent = dt.datetime.strptime(data["notify_time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
        except (KeyError, ValueError) as exc:
            raise CallbackRejected("bad notify_time") from exc
        if abs(time.time() - sent.timestamp()) > MAX_CALLBACK_AGE_S:
            raise CallbackRejected("stale callback")
        try:
            state = data["trade_status"]
            if data.get("refund_fee"):  # a refund closes (or partly refunds) the trade: a refund notification
                return CallbackEvent(event_id=data["notify_id"], provider_ref=data["out_trade_no"],
                                     order_number=data["out_trade_no"], status="refunded",
                                     amount_fen=fen(data["refund_fee"]), kind="refund",
                                     transaction_id=data.get("trade_no", ""))
            return CallbackEvent(event_id=data["notify_id"], provider_ref=data["out_trade_no"],
                                 order_number=data["out_trade_no"], status=TRADE_STATES.get(state, "pending"),
                                 amount_fen=fen(data["total_amount"]), transaction_id=data.get("trade_no", ""))
        except (KeyError, ArithmeticError) as exc:
            raise CallbackRejected("malformed notification") from exc

    def health(self) -> ProbeResult:
        """Whether the gateway answers at all (a query for a trade that cannot exist)."""
        t0 = time.perf_counter()
        try:
            self._sdk.api_alipay_trade_query(out_trade_no="waimai-health-probe")
            ok, detail = True, ""
        except (AliPayException, AliPayValidationError):
            ok, detail = True, "answered"
        except urllib.error.HTTPError as exc:
            ok, detail = exc.code < 500, f"status {exc.code}"
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            ok, detail = False, exc.__class__.__name__
        return ProbeResult(ok=ok, latency_ms=(time.perf_counter() - t0) * 1000, detail=detail)

    @staticmethod
    def ack(outcome: str) -> tuple[int, str, str]:
        """Alipay stops resending only on the plain body `success`."""
        return 200, "success", "text/plain"
