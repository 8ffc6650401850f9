"""JD Daojia open platform (京东到家开放平台, openapi.jddj.com/djapi): order push in, status out.

Signature scheme (both directions):

    sign = UPPER hex md5( secret + "".join(f"{k}{v}" for k, v in sorted(params except sign)) + secret )

with the system parameters `app_key`, `token`, `timestamp` ("yyyy-MM-dd HH:mm:ss", China time),
`format` ("json"), `v` ("1.0") and the application parameter `jd_param_json` (one JSON string),
sent form-encoded. Confirmed from build-dream `JDDJUtils.generateSign` (TreeMap of the parameters,
`new StringBuilder(appSecret)`, append key + value, append appSecret, `md5Hex(...).toUpperCase()`) and
the JD Daojia PHP clients that post `jd_param_json` / `token` / `app_key` / `timestamp` / `v` / `format`;
pushes carry the same parameter set and are verified the same way (a Laravel `JdDjController` checks
`sign` against the pushed parameters).

Push: JD Daojia's `newOrder` message carries only `jd_param_json = {"billId", "statusId", "timestamp"}`;
the order itself is read with `/djapi/order/es/query` (`build_order_query` + `parse_order_query_response`
here). For a one-step intake `parse` also accepts a push whose `jd_param_json` inlines the order in the
es/query `resultList` shape (our stand-in does that by default); a bare message raises `OrderDetailRequired`.
Order fields used, as JD names them: `orderId`, `deliveryStationNo` (JD store number),
`deliveryStationNoIsv` (merchant's own store code), `buyerFullName`, `buyerMobile` (privacy number),
`buyerFullAddress`, `buyerLng`/`buyerLat`, `orderPreEndDeliveryTime`, `orderBuyerPayableMoney` (fen,
what the buyer paid), `orderPayType` (4 = online), `orderBuyerRemark`, `product[]` (`skuId`, `skuIdIsv`,
`skuName`, `skuCount`, `skuJdPrice` fen). JD amounts are already integer fen.
Our answer: HTTP 200 `{"code":"0","msg":"success","data":""}`; failure `code` != "0".

Status calls (POST form): accepted -> /ocs/orderAcceptOperate (`isAgreed`), picked_up ->
/bm/open/api/order/OrderSerllerDelivery (JD's own spelling), delivered -> /ocs/deliveryEndOrder,
cancelled -> /orderStatus/cancelAndRefund. JD answers `{"code":"0","msg":..,"data":"<JSON string>"}`;
`data` carries its own `code` which must also be "0".
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Mapping
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
    beijing_text_to_utc,
    check_fresh_and_new,
    epoch_to_utc,
    json_loads_exact,
    mask_phone,
    md5_hex,
    require,
    to_coord,
    to_int,
    utc_to_beijing_text,
)

API_BASE = "https://openapi.jddj.com/djapi"
STATUS_PATHS = {"accepted": "/ocs/orderAcceptOperate", "picked_up": "/bm/open/api/order/OrderSerllerDelivery",
                "delivered": "/ocs/deliveryEndOrder", "cancelled": "/orderStatus/cancelAndRefund"}
ORDER_QUERY_PATH = "/order/es/query"
ONLINE_PAY = 4


class OrderDetailRequired(PayloadInvalid):
    """The push names the order (billId) but does not carry it: fetch it with `build_order_query`."""

    def __init__(self, bill_id: str) -> None:
        super().__init__(f"push for bill {bill_id} carries no order detail")
        self.bill_id = bill_id


def jd_sign(params: Mapping[str, Any], secret: str) -> str:
    joined = "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign")
    return md5_hex(f"{secret}{joined}{secret}").upper()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class JdDaojiaAdapter:
    name = "jd"

    def __init__(self, *, app_key: str, secret: str, token: str, api_base: str = API_BASE,
                 max_skew_s: float = DEFAULT_MAX_SKEW_S, replay_cache: ReplayCache | None = None,
                 clock: Clock = time.time) -> None:
        self.app_key = app_key
        self.secret = secret
        self.token = token
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
        sign = params.pop("sign", "")
        if not sign or not params.get("timestamp") or not params.get("app_key") or "jd_param_json" not in params:
            raise SignatureRejected("missing", "sign, app_key, timestamp and jd_param_json are required")
        expected = jd_sign(params, self.secret)
        if not hmac.compare_digest(expected, sign.upper()) or params["app_key"] != self.app_key:
            raise SignatureRejected("forged", "sign does not match")
        try:
            sent_at = beijing_text_to_utc(params["timestamp"])
        except PayloadInvalid:
            raise SignatureRejected("stale", "timestamp is not yyyy-MM-dd HH:mm:ss") from None
        check_fresh_and_new(sent_at=sent_at, received_at=request.received_at, max_skew_s=self.max_skew_s,
                            cache=self.replay_cache, replay_key=f"jd:{sign.upper()}")

    def parse(self, request: InboundRequest) -> ExternalOrder:
        p = request.params()
        message = json_loads_exact(require(p, "jd_param_json"))
        if not isinstance(message, dict):
            raise PayloadInvalid("jd_param_json is not a JSON object")
        if "product" not in message:
            raise OrderDetailRequired(str(require(message, "billId")))
        return self._order(message, raw=p)

    def _order(self, o: Mapping[str, Any], raw: Mapping[str, Any]) -> ExternalOrder:
        items = []
        for sku in o.get("product") or []:
            items.append(ExternalItem(name=str(require(sku, "skuName")),
                                      external_sku=str(sku.get("skuIdIsv") or require(sku, "skuId")),
                                      quantity=to_int(require(sku, "skuCount"), "skuCount"),
                                      unit_price_fen=to_int(require(sku, "skuJdPrice"), "skuJdPrice")))
        if not items:
            raise PayloadInvalid("order has no products")
        promised = o.get("orderPreEndDeliveryTime")
        return ExternalOrder(
            platform=self.name,
            external_id=str(require(o, "orderId")),
            external_shop_id=str(require(o, "deliveryStationNo")),
            items=tuple(items),
            recipient_name=str(o.get("buyerFullName", "")),
            recipient_phone_masked=mask_phone(str(o.get("buyerMobile") or o.get("buyerTelephone") or "")),
            address_text=str(require(o, "buyerFullAddress")),
            address_lat=to_coord(o.get("buyerLat")),
            address_lng=to_coord(o.get("buyerLng")),
            campus_hint=None,
            promised_at=beijing_text_to_utc(str(promised)) if promised else None,
            total_fen=to_int(require(o, "orderBuyerPayableMoney"), "orderBuyerPayableMoney"),
            paid_online=to_int(o.get("orderPayType", ONLINE_PAY), "orderPayType") == ONLINE_PAY,
            note=str(o.get("orderBuyerRemark") or ""),
            raw=dict(raw),
        )

    def ack(self, ok: bool, message: str) -> OutboundResponse:
        if ok:
            return OutboundResponse.json(200, {"code": "0", "msg": "success", "data": ""})
        return OutboundResponse.json(200, {"code": "-1", "msg": message[:200], "data": ""})

    # -- outbound ------------------------------------------------------------------------------
    def _signed_post(self, path: str, param: Mapping[str, Any]) -> OutboundRequest:
        params = {"app_key": self.app_key, "token": self.token, "format": "json", "v": "1.0",
                  "timestamp": utc_to_beijing_text(epoch_to_utc(self.clock())), "jd_param_json": _json(param)}
        params["sign"] = jd_sign(params, self.secret)
        return OutboundRequest("POST", self.api_base + path,
                               {"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
                               urlencode(params).encode())

    def build_status_callback(self, update: StatusUpdate) -> OutboundRequest:
        at = utc_to_beijing_text(update.occurred_at)
        param: dict[str, Any]
        if update.status == "accepted":
            param = {"orderId": update.external_id, "isAgreed": True, "operator": update.operator}
        elif update.status == "picked_up":
            param = {"orderId": update.external_id, "operator": update.operator}
        elif update.status == "delivered":
            param = {"orderId": update.external_id, "operPin": update.operator, "operTime": at}
        else:
            param = {"orderId": update.external_id, "operPin": update.operator,
                     "operRemark": update.reason or "商家取消", "operTime": at}
        return self._signed_post(STATUS_PATHS[update.status], param)

    def parse_callback_response(self, status_code: int, body: bytes) -> bool:
        if status_code != 200:
            return False
        try:
            data = json.loads(body)
        except (ValueError, TypeError):
            return False
        if not isinstance(data, dict) or str(data.get("code")) != "0":
            return False
        inner = data.get("data")
        if isinstance(inner, str) and inner.strip().startswith("{"):
            try:
                inner = json.loads(inner)
            except ValueError:
                return False
        return not (isinstance(inner, dict) and "code" in inner and str(inner["code"]) != "0")

    # -- the real two-step intake: push names the bill, es/query returns the order ----------------
    def build_order_query(self, bill_id: str) -> OutboundRequest:
        return self._signed_post(ORDER_QUERY_PATH, {"orderId": bill_id})

    def parse_order_query_response(self, status_code: int, body: bytes) -> ExternalOrder:
        if status_code != 200:
            raise PayloadInvalid(f"order query answered HTTP {status_code}")
        data = json_loads_exact(body)
        if not isinstance(data, dict) or str(data.get("code")) != "0":
            raise PayloadInvalid(f"order query failed: {str(data)[:200]}")
        raw_inner = data.get("data")
        inner: Any = json_loads_exact(raw_inner) if isinstance(raw_inner, str) else raw_inner
        if not isinstance(inner, dict):
            raise PayloadInvalid("order query answer has no data object")
        try:
            orders = inner["result"]["resultList"]
        except (TypeError, KeyError):
            raise PayloadInvalid("order query answer has no result.resultList") from None
        if not orders:
            raise PayloadInvalid("order query found no order")
        return self._order(orders[0], raw=inner)

