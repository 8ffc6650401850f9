"""Meituan Waimai open platform (美团外卖开放平台, waimaiopen.meituan.com/api/v1): order push in, status out.

Signature scheme (both directions: Meituan's pushes to us and our calls to Meituan):

    sig = lowercase hex md5( URL + "?" + "&".join(f"{k}={v}" for k, v in sorted(params)) + consumer_secret )

* URL is the request URL without its query string: for a push, the push URL exactly as registered
  with Meituan (ours, `push_url`); for an API call, e.g. https://waimaiopen.meituan.com/api/v1/order/confirm.
* params are all system + application parameters except `sig` (system: `app_id`, `timestamp` in
  seconds), values percent-decoded, sorted by name, joined with "&"; empty values are kept.
* Note the literal "?" between URL and the parameter string.

Confirmed from the official Java SDK `com.sankuai.meituan.waimai.opensdk.factory.URLFactory`
(`genUrlForGenSig`: `genUrlPrefix(method) + "?" + concatParams(params) + appSecret`; `concatParams`
sorts keys and joins `k=v` with "&"), cross-checked with jiabangou/mtwm-sdk `MtWmBaseService.createApiSignature`
(url + "?" + sorted k=v&... + secret, `DigestUtils.md5Hex`, lowercase) and Code-Fly/MeituanAPI
`OrderPushCallBack` (pushes verified with our own callback URL + the pushed params).

Order push ("推送订单URL", form-encoded POST) fields used, named as Meituan names them (see
easynet-cn/go-meituan `OrderGetOrderDetailResposneDataItem`): `order_id`, `wm_order_id_view`,
`app_poi_code` (our store code as bound at Meituan), `wm_poi_id`, `wm_poi_name`, `recipient_name`,
`recipient_phone` (real masked "138****5678" or privacy "13812345678_123456"), `recipient_address`
(user text, optionally "@#" + reverse-geocoded text), `latitude`/`longitude` (GCJ-02 degrees; values
above 180 are read as micro-degrees), `total` (yuan, what the user paid), `shipping_fee`, `caution`,
`delivery_time` (0 = deliver now, else epoch seconds), `estimate_arrival_time`, `pay_type` (2 = online),
`detail` (JSON string: `app_food_code`, `food_name`, `sku_id`, `quantity`, `price` in yuan, `box_num`,
`box_price`). Our answer: HTTP 200 `{"data":"ok"}`; failure `{"data":"ng","error":{"code":..,"msg":..}}`.

Status calls (GET, parameters in the query): accepted -> /order/confirm, picked_up -> /order/delivering,
delivered -> /order/arrived, cancelled -> /order/cancel (`reason`, optional `reason_code`): the
self-delivery (自配送) calls, as in easynet-cn/go-meituan `order/*_request.go`. Meituan answers
`{"data":"ok"}` or `{"data":"ng","error":{...}}`.
"""

from __future__ import annotations

import datetime as dt
import hmac
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from waimai.platform.integrations.base import (
    DEFAULT_MAX_SKEW_S,
    Clock,
    ExternalItem,
    ExternalOrder,
    InboundRequest,
    OutboundRequest,
    OutboundResponse,
    PayloadInvalid,
    ReplayCache,
    SignatureRejected,
    StatusUpdate,
    check_fresh_and_new,
    epoch_to_utc,
    json_loads_exact,
    mask_phone,
    md5_hex,
    require,
    to_coord,
    to_int,
    yuan_to_fen,
)

API_BASE = "https://waimaiopen.meituan.com/api/v1"
STATUS_PATHS = {"accepted": "/order/confirm", "picked_up": "/order/delivering",
                "delivered": "/order/arrived", "cancelled": "/order/cancel"}
# /order/cancel takes an optional `reason_code` from Meituan's appendix (附录, "取消订单原因code列表"), a
# table we could not read from public sources: left out unless a deployment sets `cancel_reason_code`.
CANCEL_REASON_CODE = ""


def meituan_sign(url: str, params: Mapping[str, Any], secret: str) -> str:
    base_url = url.split("?", 1)[0]
    joined = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sig")
    return md5_hex(f"{base_url}?{joined}{secret}")


class MeituanAdapter:
    name = "meituan"

    def __init__(self, *, app_id: str, secret: str, push_url: str, api_base: str = API_BASE,
                 max_skew_s: float = DEFAULT_MAX_SKEW_S, replay_cache: ReplayCache | None = None,
                 clock: Clock = time.time, cancel_reason_code: str = CANCEL_REASON_CODE) -> None:
        self.app_id = str(app_id)
        self.cancel_reason_code = cancel_reason_code
        self.secret = secret
        self.push_url = push_url.split("?", 1)[0]
        self.api_base = api_base.rstrip("/")
        self.max_skew_s = max_skew_s
        self.clock = clock
        self.replay_cache = replay_cache or ReplayCache.for_skew(max_skew_s, clock=clock)

    # -- inbound -------------------------------------------------------------------------------
    def verify(self, request: InboundRequest) -> None:
        try:
            params = request.params()
        except PayloadInvalid:
            raise SignatureRejected("missing", "unreadable parameters") from None
        sig = params.pop("sig", "")
        if not sig or not params.get("timestamp") or not params.get("app_id"):
            raise SignatureRejected("missing", "sig, app_id and timestamp are required")
        expected = meituan_sign(self.push_url, params, self.secret)
        if not hmac.compare_digest(expected, sig.lower()) or params["app_id"] != self.app_id:
            raise SignatureRejected("forged", "sig does not match")
        try:
            sent_at = epoch_to_utc(int(params["timestamp"]))
        except (ValueError, OverflowError, OSError):
            raise SignatureRejected("stale", "timestamp is not epoch seconds") from None
        check_fresh_and_new(sent_at=sent_at, received_at=request.received_at, max_skew_s=self.max_skew_s,
                            cache=self.replay_cache, replay_key=f"meituan:{params['timestamp']}:{sig.lower()}")

    def parse(self, request: InboundRequest) -> ExternalOrder:
        p = request.params()
        detail = json_loads_exact(require(p, "detail"))
        if not isinstance(detail, list) or not detail:
            raise PayloadInvalid("detail must be a non-empty JSON list")
        items = []
        for line in detail:
            if not isinstance(line, dict):
                raise PayloadInvalid("detail entries must be objects")
            sku = str(line.get("app_food_code") or line.get("sku_id") or "")
            items.append(ExternalItem(name=str(require(line, "food_name")), external_sku=sku,
                                      quantity=to_int(require(line, "quantity"), "quantity"),
                                      unit_price_fen=yuan_to_fen(require(line, "price"))))
        address = str(require(p, "recipient_address"))
        user_text, _, geocoded = address.partition("@#")
        lat, lng = _degrees(p.get("latitude")), _degrees(p.get("longitude"))
        return ExternalOrder(
            platform=self.name,
            external_id=str(require(p, "order_id")),
            external_shop_id=str(p.get("app_poi_code") or require(p, "wm_poi_id")),
            items=tuple(items),
            recipient_name=str(p.get("recipient_name", "")),
            recipient_phone_masked=mask_phone(str(p.get("recipient_phone", ""))),
            address_text=user_text.strip(),
            address_lat=lat,
            address_lng=lng,
            campus_hint=geocoded.strip() or None,
            promised_at=_promised(p),
            total_fen=yuan_to_fen(require(p, "total")),
            paid_online=str(p.get("pay_type", "2")) == "2",
            note=str(p.get("caution", "")),
            raw=dict(p),
        )

    def ack(self, ok: bool, message: str) -> OutboundResponse:
        if ok:
            return OutboundResponse.json(200, {"data": "ok"})
        return OutboundResponse.json(200, {"data": "ng", "error": {"code": 700, "msg": message[:200]}})

    # -- outbound ------------------------------------------------------------------------------
    def build_status_callback(self, update: StatusUpdate) -> OutboundRequest:
        url = self.api_base + STATUS_PATHS[update.status]
        params: dict[str, str] = {"app_id": self.app_id, "timestamp": str(int(self.clock())),
                                  "order_id": update.external_id}
        if update.status == "cancelled":
            params["reason"] = update.reason or "商家取消"
            if self.cancel_reason_code:
                params["reason_code"] = self.cancel_reason_code
        params["sig"] = meituan_sign(url, params, self.secret)
        return OutboundRequest("GET", f"{url}?{urlencode(params)}", {}, b"")

    def parse_callback_response(self, status_code: int, body: bytes) -> bool:
        if status_code != 200:
            return False
        try:
            data = json_loads_exact(body)
        except PayloadInvalid:
            return False
        return isinstance(data, dict) and str(data.get("data", "")).lower() == "ok"


def _degrees(value: Any) -> float | None:
    f = to_coord(value)
    if f is not None and abs(f) > 180:
        f = float(Decimal(str(value)) / Decimal(1_000_000))
    return f


def _promised(p: Mapping[str, str]) -> dt.datetime | None:
    for key in ("delivery_time", "estimate_arrival_time"):
        raw = p.get(key, "")
        if raw and raw != "0":
            return epoch_to_utc(to_int(raw, key))
    return None
