"""WeChat Pay API v3 (微信支付) through `wechatpayv3`: JSAPI, H5 and Native payments, query, close, refund.

wechatpayv3 signs each request (`Authorization: WECHATPAY2-SHA256-RSA2048 ...` over
`METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n` with the merchant API key), verifies every answer and callback
against the platform certificate named by `Wechatpay-Serial`, and decrypts callback resources
(AEAD_AES_256_GCM under the API v3 key). On top of it this provider refuses callbacks whose
`Wechatpay-Timestamp` is more than five minutes off (the SDK does not look), and the service applies
each notification id once. The SDK's base URL is a setting (`WAIMAI_WECHATPAY_URL`), which is how the
stand-in (`waimai fake-wechatpay`) is reached; nothing else differs between it and the real API.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import requests
from wechatpayv3 import WeChatPay, WeChatPayType

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
CHANNELS = ("native", "h5", "jsapi")
_TYPES = {"native": WeChatPayType.NATIVE, "h5": WeChatPayType.H5, "jsapi": WeChatPayType.JSAPI}
# trade_state (query and callbacks) -> our payment status
TRADE_STATES = {"SUCCESS": "succeeded", "REFUND": "succeeded", "NOTPAY": "pending", "USERPAYING": "pending",
                "CLOSED": "failed", "REVOKED": "failed", "PAYERROR": "failed"}


class WechatPayProvider:
    """Pays with WeChat Pay; out_trade_no is our order number, so creating twice is one payment."""

    name = "wechat"
    channels = CHANNELS

    def __init__(self, *, base_url: str, mchid: str, appid: str, apiv3_key: str, private_key_pem: str,
                 cert_serial_no: str, cert_dir: str, timeout_s: float = 3.0, refund_notify_url: str | None = None,
                 dependency: Dependency | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.mchid, self.appid = mchid, appid
        self._apiv3_key, self._private_key, self._serial, self._cert_dir = (apiv3_key, private_key_pem,
                                                                            cert_serial_no, cert_dir)
        self.timeout_s = timeout_s
        self.refund_notify_url = refund_notify_url
        self.dependency = dependency or standalone("payment.wechat", Policy(timeout_s=timeout_s, attempts=2))
        self._sdk: WeChatPay | None = None

    def __repr__(self) -> str:  # never the keys
        return f"WechatPayProvider(mchid={self.mchid!r}, base_url={self.base_url!r})"

    def sdk(self) -> WeChatPay:
        """Built on first use: loading the platform certificate needs no network when cert_dir holds it."""
        if self._sdk is None:
            wx = WeChatPay(wechatpay_type=WeChatPayType.NATIVE, mchid=self.mchid, private_key=self._private_key,
                           cert_serial_no=self._serial, appid=self.appid, apiv3_key=self._apiv3_key,
                           cert_dir=self._cert_dir, timeout=(self.timeout_s, self.timeout_s))
            # The SDK has no base-URL argument; its one gateway attribute is the setting.
            wx._core._gate_way = self.base_url
            self._sdk = wx
        return self._sdk

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> tuple[int, Any]:
        def attempt() -> tuple[int, Any]:
            try:
                code, message = fn(*args, **kwargs)
            except requests.Timeout as exc:
                raise Retryable("wechat pay timed out") from exc
            except requests.RequestException as exc:
                raise Retryable(f"wechat pay unreachable: {exc.__class__.__name__}") from exc
            except Exception as exc:  # noqa: BLE001 - the SDK raises bare Exception for a forged answer
                raise PaymentError(f"wechat pay answer refused: {exc}", retryable=False) from exc
            if code >= 500:
                raise Retryable(f"wechat pay error {code}")
            return code, message

        return through(self.dependency, attempt, "wechat pay")

    @staticmethod
    def _json(code: int, message: Any, what: str) -> dict[str, Any]:
        if code >= 400:
            raise PaymentError(f"wechat pay refused {what} ({code}): {str(message)[:200]}", retryable=False)
        if not message:
            return {}
        data: dict[str, Any] = json.loads(message)
        return data

    def create_payment(self, *, order_number: str, amount_fen: int, description: str, notify_url: str,
                       return_url: str, channel: str = "native", client_ip: str = "127.0.0.1",
                       payer_openid: str | None = None) -> PaymentIntent:
        if channel not in _TYPES:
            raise PaymentError(f"unknown wechat pay channel {channel!r}", retryable=False)
        kwargs: dict[str, Any] = {"description": description[:127], "out_trade_no": order_number,
                                  "amount": {"total": amount_fen, "currency": "CNY"}, "notify_url": notify_url,
                                  "pay_type": _TYPES[channel]}
        if channel == "h5":
            kwargs["scene_info"] = {"payer_client_ip": client_ip, "h5_info": {"type": "Wap"}}
        if channel == "jsapi":
            if not payer_openid:
                raise PaymentError("JSAPI needs the payer's openid", retryable=False)
            kwargs["payer"] = {"openid": payer_openid}
        data = self._json(*self._call(self.sdk().pay, **kwargs), what="the payment")
        if channel == "native":
            url = str(data["code_url"])
        elif channel == "h5":
            # The cashier sends the customer back to redirect_url (our order page, which never trusts it).
            from urllib.parse import quote

            url = f"{data['h5_url']}&redirect_url={quote(return_url, safe='')}"
        else:
            url = f"jsapi:prepay_id={data['prepay_id']}"
        # WeChat Pay names the transaction only once paid: our reference is the out_trade_no.
        return PaymentIntent(provider_ref=order_number, pay_url=url, status="pending")

    def jsapi_params(self, prepay_id: str) -> dict[str, str]:
        """What WeixinJSBridge `getBrandWCPayRequest` needs, signed with the merchant key (paySign)."""
        import secrets

        ts, nonce = str(int(time.time())), secrets.token_hex(16)
        package = f"prepay_id={prepay_id}"
        sign = self.sdk().sign([self.appid, ts, nonce, package])
        return {"appId": self.appid, "timeStamp": ts, "nonceStr": nonce, "package": package, "signType": "RSA",
                "paySign": sign}

    def query(self, provider_ref: str) -> CallbackEvent:
        """The transaction as WeChat Pay has it now (an interrupted payment is settled by this)."""
        data = self._json(*self._call(self.sdk().query, out_trade_no=provider_ref), what="the query")
        state = str(data.get("trade_state", ""))
        return CallbackEvent(event_id=f"query:{data.get('transaction_id') or provider_ref}:{state}",
                             provider_ref=str(data["out_trade_no"]), order_number=str(data["out_trade_no"]),
                             status=TRADE_STATES.get(state, "pending"),
                             amount_fen=int((data.get("amount") or {}).get("total") or 0),
                             transaction_id=str(data.get("transaction_id") or ""))

    def close_trade(self, provider_ref: str) -> None:
        code, message = self._call(self.sdk().close, out_trade_no=provider_ref)
        if code >= 400:
            raise PaymentError(f"wechat pay refused to close ({code}): {str(message)[:200]}", retryable=False)

    def refund(self, *, provider_ref: str, amount_fen: int, refund_no: str, total_fen: int | None = None,
               notify_url: str | None = None) -> RefundResult:
        data = self._json(*self._call(self.sdk().refund, out_refund_no=refund_no, out_trade_no=provider_ref,
                                      amount={"refund": amount_fen, "total": total_fen or amount_fen,
                                              "currency": "CNY"}, notify_url=notify_url or self.refund_notify_url),
                          what="the refund")
        status = {"SUCCESS": "succeeded", "PROCESSING": "pending"}.get(str(data.get("status")), "pending")
        return RefundResult(refund_ref=str(data.get("refund_id", "")), status=status)

    def refund_query(self, provider_ref: str, refund_no: str) -> CallbackEvent:
        """A refund as WeChat Pay has it now (its REFUND.SUCCESS notification may have been lost)."""
        data = self._json(*self._call(self.sdk().query_refund, out_refund_no=refund_no), what="the refund query")
        status = {"SUCCESS": "refunded", "CLOSED": "refund_failed", "ABNORMAL": "refund_failed"}.get(
            str(data.get("status")), "pending")
        return CallbackEvent(event_id=f"refund-query:{data.get('refund_id', refund_no)}:{data.get('status')}",
                             provider_ref=provider_ref, order_number=provider_ref, status=status,
                             amount_fen=int((data.get("amount") or {}).get("refund") or 0), kind="refund")

    def trade_bill(self, bill_date: str) -> bytes:
        """The day's trade bill (交易账单, `bill_type=ALL`), as the CSV WeChat Pay serves, gunzipped."""
        import gzip

        data = self._json(*self._call(self.sdk().trade_bill, bill_date=bill_date), what="the bill")
        code, content = self._call(self.sdk().download_bill, data["download_url"])
        if code >= 400:
            raise PaymentError(f"wechat pay bill download refused ({code})", retryable=False)
        raw = content if isinstance(content, bytes) else str(content).encode()
        import hashlib

        if data.get("hash_type") == "SHA1" and hashlib.sha1(raw, usedforsecurity=False).hexdigest() \
                != str(data.get("hash_value", "")).lower():
            raise PaymentError("wechat pay bill does not match its hash", retryable=False)
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw

    def verify_callback(self, headers: Mapping[str, str], body: bytes) -> CallbackEvent:
        h = {k.lower(): v for k, v in headers.items()}
        try:
            age = abs(time.time() - int(h.get("wechatpay-timestamp", "")))
        except ValueError as exc:
            raise CallbackRejected("missing or bad Wechatpay-Timestamp") from exc
        if age > MAX_CALLBACK_AGE_S:
            raise CallbackRejected("stale callback")
        try:
            data = self.sdk().callback(h, body)
        except Exception as exc:  # noqa: BLE001 - the SDK raises bare Exception on unknown algorithms
            raise CallbackRejected(f"callback refused: {exc}") from exc
        if not data:
            raise CallbackRejected("bad signature or undecryptable resource")
        try:
            res, event_type = data["resource"], str(data["event_type"])
            if event_type.startswith("REFUND."):
                return CallbackEvent(event_id=str(data["id"]), provider_ref=str(res["out_trade_no"]),
                                     order_number=str(res["out_trade_no"]),
                                     status="refunded" if res.get("refund_status") == "SUCCESS" else "refund_failed",
                                     amount_fen=int(res["amount"]["refund"]), kind="refund",
                                     transaction_id=str(res.get("transaction_id", "")))
            return CallbackEvent(event_id=str(data["id"]), provider_ref=str(res["out_trade_no"]),
                                 order_number=str(res["out_trade_no"]),
                                 status=TRADE_STATES.get(str(res.get("trade_state")), "pending"),
                                 amount_fen=int(res["amount"]["total"]),
                                 transaction_id=str(res.get("transaction_id", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise CallbackRejected("malformed callback resource") from exc

    def health(self) -> ProbeResult:
        """Whether the API answers at all (any HTTP answer; a refused connection or a timeout is down)."""
        t0 = time.perf_counter()
        try:
            r = requests.get(f"{self.base_url}/v3/certificates", timeout=2.0)
            ok, detail = r.status_code < 500, f"status {r.status_code}"
        except requests.RequestException as exc:
            ok, detail = False, exc.__class__.__name__
        return ProbeResult(ok=ok, latency_ms=(time.perf_counter() - t0) * 1000, detail=detail)

    @staticmethod
    def ack(outcome: str) -> tuple[int, str, str]:
        """The answer WeChat Pay expects: 2xx (with no body needed) means received; anything else is retried."""
        return 200, json.dumps({"code": "SUCCESS", "message": outcome}), "application/json"
