"""SMS through a provider interface; the built-in provider speaks Alibaba Cloud SMS (dysmsapi) `SendSms`.

Alibaba Cloud RPC-style request (alibabacloud.com/help/en/sms "Signature method" and the SendSms API):
`GET {base}/?<query>` where the query holds the common parameters `AccessKeyId`, `Action=SendSms`,
`Format=JSON`, `RegionId`, `SignatureMethod=HMAC-SHA1`, `SignatureNonce` (unique per request, a UUID),
`SignatureVersion=1.0`, `Timestamp` (UTC, `YYYY-MM-DDThh:mm:ssZ`), `Version=2017-05-25`, and the action's
`PhoneNumbers` (comma-separated), `SignName`, `TemplateCode`, `TemplateParam` (a JSON object string),
`OutId`. Signature: sort the parameters (all but `Signature`) by name, percent-encode names and values
(RFC 3986: unreserved `A-Za-z0-9-_.~` kept, space as `%20`, `*` as `%2A`), join as `k=v&…`;
StringToSign = `GET&%2F&` + percentEncode(that); `Signature` = base64(HMAC-SHA1(key=AccessKeySecret + "&",
StringToSign)), sent percent-encoded. The documented example (testId/testSecret, nonce 45e25e9b-…,
Timestamp 2017-07-12T02:42:19Z) yields `zJDF+Lrzhj/ThnlvIToysFRq6t4=`; the tests check it.
Reply `{"Code": "OK", "Message": "OK", "BizId": ..., "RequestId": ...}`; business errors come with HTTP 200
and another Code (`isv.BUSINESS_LIMIT_CONTROL` = per-number flow control, retried later by queueing);
signature errors are HTTP 400 `SignatureDoesNotMatch`, `InvalidTimeStamp.Expired`, `SignatureNonceUsed`.

Phone numbers are personal data: they are masked (138****5678) in reprs, receipts, logs and the
delivery log; only the provider request carries them in full.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol
from urllib.parse import quote

import httpx
from pydantic import SecretStr, field_validator

from waimai.firewall.alerting.channels.base import (
    AlertMessage,
    Clock,
    DeliveryLog,
    RateLimit,
    mask_phone,
    register,
)
from waimai.firewall.alerting.channels.delivery import (
    ChannelConfig,
    Delivery,
    ManagedChannel,
    PermanentError,
    Sent,
    TransientError,
    http_call,
)

STATUS_ZH = {"firing": "告警", "resolved": "恢复", "acknowledged": "已确认"}
TEMPLATE_VAR_MAX = 35  # characters per template variable


def percent_encode(value: str) -> str:
    return quote(value, safe="-_.~")


def canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))


def string_to_sign(params: Mapping[str, str], method: str = "GET") -> str:
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def rpc_signature(access_key_secret: str, params: Mapping[str, str], method: str = "GET") -> str:
    digest = hmac.new(f"{access_key_secret}&".encode(), string_to_sign(params, method).encode(), hashlib.sha1)
    return base64.b64encode(digest.digest()).decode()


class SmsProvider(Protocol):
    """Sends one templated SMS to some numbers; raises TransientError / PermanentError; returns an id."""

    name: str

    def send_sms(self, phone_numbers: Sequence[str], template_params: Mapping[str, str], *, out_id: str) -> str: ...

    def close(self) -> None: ...


class AliyunSmsProvider:
    name = "aliyun"

    def __init__(self, *, base_url: str, access_key_id: str, access_key_secret: SecretStr, sign_name: str,
                 template_code: str, region_id: str = "cn-hangzhou", timeout_s: float = 5.0,
                 clock: Clock = time.time) -> None:
        self.base_url = base_url.rstrip("/")
        self._key_id = access_key_id
        self._secret = access_key_secret
        self.sign_name = sign_name
        self.template_code = template_code
        self.region_id = region_id
        self._clock = clock
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s)

    def __repr__(self) -> str:
        return f"<AliyunSmsProvider base_url={self.base_url!r} template={self.template_code!r}>"

    def close(self) -> None:
        self._http.close()

    def request_params(self, phone_numbers: Sequence[str], template_params: Mapping[str, str], *,
                       out_id: str) -> dict[str, str]:
        params = {
            "AccessKeyId": self._key_id, "Action": "SendSms", "Format": "JSON", "RegionId": self.region_id,
            "SignatureMethod": "HMAC-SHA1", "SignatureNonce": str(uuid.uuid4()), "SignatureVersion": "1.0",
            "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock())), "Version": "2017-05-25",
            "PhoneNumbers": ",".join(phone_numbers), "SignName": self.sign_name,
            "TemplateCode": self.template_code,
            "TemplateParam": json.dumps(dict(template_params), ensure_ascii=False, separators=(",", ":")),
            "OutId": out_id[:64],
        }
        params["Signature"] = rpc_signature(self._secret.get_secret_value(), params)
        return params

    def send_sms(self, phone_numbers: Sequence[str], template_params: Mapping[str, str], *, out_id: str) -> str:
        params = self.request_params(phone_numbers, template_params, out_id=out_id)
        query = "Signature=" + percent_encode(params.pop("Signature")) + "&" + canonical_query(params)
        # the body is left out of errors: a signature error quotes the string to sign (numbers inside)
        resp = http_call(self._http, "GET", f"/?{query}", body_in_error=False)
        try:
            data: dict[str, Any] = resp.json()
        except ValueError:
            raise PermanentError(f"HTTP {resp.status_code}: response is not JSON", resp.status_code) from None
        code = str(data.get("Code", ""))
        if resp.status_code == 200 and code == "OK":
            return str(data.get("BizId", ""))
        # Never echo Message blindly: SignatureDoesNotMatch quotes the string to sign (numbers inside).
        reason = f"{code or 'HTTP ' + str(resp.status_code)}"
        if code.startswith("Throttling") or code == "isv.BUSINESS_LIMIT_CONTROL":
            raise TransientError(f"{reason}: flow control", resp.status_code, retry_after=60.0)
        if code in {"isp.SYSTEM_ERROR", "ServiceUnavailable", "InternalError"}:
            raise TransientError(reason, resp.status_code)
        raise PermanentError(reason, resp.status_code)


class SmsConfig(ChannelConfig):
    provider: str = "aliyun"
    base_url: str = "https://dysmsapi.aliyuncs.com"
    access_key_id: str
    access_key_secret: SecretStr
    sign_name: str
    template_code: str
    region_id: str = "cn-hangzhou"
    phone_numbers: list[str] = []  # default recipients

    @field_validator("provider")
    @classmethod
    def _known(cls, v: str) -> str:
        if v != "aliyun":
            raise ValueError("only the 'aliyun' SMS provider is built in")
        return v


def template_params(m: AlertMessage) -> dict[str, str]:
    """Variables of the alert template, e.g. "【校园外卖】${severity}级${status}：${title}，请及时处理。"."""
    title = m.title if len(m.title) <= TEMPLATE_VAR_MAX else m.title[: TEMPLATE_VAR_MAX - 1] + "…"
    return {"severity": m.severity, "status": STATUS_ZH[m.status], "title": title}


@register("sms")
class SmsChannel(ManagedChannel):
    Config: ClassVar[type[ChannelConfig]] = SmsConfig
    # Alibaba's default flow control for one number: 1 per minute (also 5/hour, 10/day).
    default_rate_limit: ClassVar[RateLimit] = RateLimit(1, 60.0, extra=((5, 3600.0), (10, 86400.0)))

    def __init__(self, config: SmsConfig, *, clock: Clock | None = None, log: DeliveryLog | None = None,
                 provider: SmsProvider | None = None) -> None:
        super().__init__(config, clock=clock, log=log)
        self.cfg = config
        self.provider: SmsProvider = provider or AliyunSmsProvider(
            base_url=config.base_url, access_key_id=config.access_key_id, access_key_secret=config.access_key_secret,
            sign_name=config.sign_name, template_code=config.template_code, region_id=config.region_id,
            timeout_s=config.timeout_s, clock=self.clock)

    def _describe(self) -> str:
        masked = [mask_phone(p) for p in self.cfg.phone_numbers]
        return f"provider={self.provider!r} phone_numbers={masked}"

    def default_recipients(self) -> tuple[str, ...]:
        return tuple(self.cfg.phone_numbers)

    def close(self) -> None:
        self.provider.close()

    def _attempt(self, delivery: Delivery, attempt: int) -> Sent:
        numbers = list(delivery.recipients or self.cfg.phone_numbers)
        if not numbers:
            raise PermanentError("no phone numbers")
        biz_id = self.provider.send_sms(numbers, template_params(delivery.message), out_id=delivery.message.dedup_key)
        return Sent(200, provider_id=biz_id)
