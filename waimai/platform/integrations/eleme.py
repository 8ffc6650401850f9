"""Ele.me open platform (饿了么商家开放平台, open-api.shop.ele.me, "nop 1.0.0"): message push in, status out.

Version: the current open platform (open.shop.ele.me: OAuth tokens, JSON-RPC API, JSON message push
with a `signature` field), which every official SDK (eleme-openapi-{java,php,go,python}-sdk) targets.
The older "OpenAPI v2" (v2.openapi.ele.me, consumer_key / `sig` over the URL path and query) is not
implemented: it predates the shop platform, is not what merchants can register for today, and its
SDKs are gone; if a campus partner is still on it, it needs its own adapter.

Push signature (Ele.me -> us, POST JSON body `{requestId, type, appId, message, shopId, timestamp,
userId, signature}`):

    signature = UPPER hex md5( "".join(f"{k}={v}" for k, v in sorted(fields except signature)) + secret )

values as raw text (`message` is itself a JSON string, used verbatim; numbers in decimal).
Confirmed from the official PHP SDK demo `demo/push/util.php` (`ksort`, `$key . "=" . $value`,
`. $secret`, `strtoupper(md5(...))`) and the Go SDK demo `demo/server.go` (same sorted `k=v`
concatenation, upper-case md5). The Java SDK helper `CallbackValidationUtil.getSignature` renders each
value with `gson.toJson` (which would quote strings); we follow the PHP/Go demos, which agree with
each other, and compare case-insensitively as all three do.

API call signature (us -> Ele.me, POST JSON `{nop, id, action, token, metas:{app_key, timestamp}, params,
signature}`):

    signature = UPPER hex md5( action + token + "".join(f"{k}={json(v)}" for sorted metas+params) + secret )

confirmed from eleme-openapi-java-sdk `SignatureUtil.generateSignature` and eleme-openapi-go-sdk
`apiUtil.go` (`ApiBody.Sign`, values JSON-encoded, strings quoted).

Order message: `type` 10 = order effective (订单生效); `message` is the order (eleme-openapi-java-sdk
`OOrder`): `id`, `shopId`, `openId`, `groups[].items[]` (`name`, `skuId`, `extendCode`, `quantity`,
`price` yuan), `totalPrice` (yuan, paid by the user), `consignee`, `phoneList` (privacy numbers),
`address`, `deliveryPoiAddress`, `deliveryGeo` ("lng,lat"), `deliverTime` (China time or null),
`onlinePaid`, `description`. Our answer: HTTP 200 `{"message":"ok"}` (the SDK demos); failure HTTP 500.

Status calls: accepted -> `eleme.order.confirmOrderLite`, picked_up -> `eleme.order.startDeliveryBySelf`
(订单确认送出(自配送), `phone` of the courier), delivered -> `eleme.order.completeDeliveryBySelf`
(订单确认送达(自配送), `phone`), cancelled -> `eleme.order.cancelOrderLite` (`type`, `remark`); names and
parameters as in the official python / php / go SDKs' OrderService. Ele.me answers `{"id":..,"result":..,"error":null}` or an `error` object.
"""

from __future__ import annotations

import hmac
import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

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
    yuan_to_fen,
)

API_URL = "https://open-api.shop.ele.me/api/v1/"
PUSH_FIELDS = ("appId", "message", "requestId", "shopId", "timestamp", "type", "userId")
ORDER_EFFECTIVE = 10
# Campus teams deliver themselves: the self-delivery (自配送) calls, which carry the courier's phone.
ACTIONS = {"accepted": "eleme.order.confirmOrderLite", "picked_up": "eleme.order.startDeliveryBySelf",
           "delivered": "eleme.order.completeDeliveryBySelf", "cancelled": "eleme.order.cancelOrderLite"}
CANCEL_TYPE = "others"  # OInvalidateType: the merchant's "other reason" cancellation


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def eleme_push_signature(fields: Mapping[str, Any], secret: str) -> str:
    joined = "".join(f"{k}={_text(fields[k])}" for k in sorted(fields) if k != "signature")
    return md5_hex(joined + secret).upper()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def eleme_api_signature(action: str, token: str, metas: Mapping[str, Any], params: Mapping[str, Any],
                        secret: str) -> str:
    merged = {**metas, **params}
    joined = "".join(f"{k}={_json(merged[k])}" for k in sorted(merged))
    return md5_hex(f"{action}{token}{joined}{secret}").upper()


class ElemeAdapter:
    name = "eleme"

    def __init__(self, *, app_key: str, secret: str, app_id: int | str, access_token: str,
                 api_url: str = API_URL, max_skew_s: float = DEFAULT_MAX_SKEW_S,
                 replay_cache: ReplayCache | None = None, clock: Clock = time.time,
                 dispatch_phone: str = "") -> None:
        self.app_key = app_key
        self.dispatch_phone = dispatch_phone  # used when an update names no rider phone
        self.secret = secret
        self.app_id = str(app_id)
        self.access_token = access_token
        self.api_url = api_url
        self.max_skew_s = max_skew_s
        self.clock = clock
        self.replay_cache = replay_cache or ReplayCache.for_skew(max_skew_s, clock=clock)

    def _envelope(self, request: InboundRequest) -> dict[str, Any]:
        try:
            data = json.loads(request.body)  # integers stay int; the order itself is a string inside
        except (ValueError, TypeError):
            raise SignatureRejected("missing", "body is not JSON") from None
        if not isinstance(data, dict):
            raise SignatureRejected("missing", "body is not a JSON object")
        return data

    # -- inbound -------------------------------------------------------------------------------
    def verify(self, request: InboundRequest) -> None:
        data = self._envelope(request)
        signature = data.get("signature")
        if not signature or any(data.get(k) is None for k in PUSH_FIELDS):
            raise SignatureRejected("missing", "signature and " + ", ".join(PUSH_FIELDS) + " are required")
        expected = eleme_push_signature({k: v for k, v in data.items() if k != "signature"}, self.secret)
        if not hmac.compare_digest(expected, str(signature).upper()) or _text(data["appId"]) != self.app_id:
            raise SignatureRejected("forged", "signature does not match")
        try:
            sent_at = epoch_to_utc(int(data["timestamp"]) / 1000)  # milliseconds
        except (ValueError, TypeError, OverflowError, OSError):
            raise SignatureRejected("stale", "timestamp is not epoch milliseconds") from None
        check_fresh_and_new(sent_at=sent_at, received_at=request.received_at, max_skew_s=self.max_skew_s,
                            cache=self.replay_cache, replay_key=f"eleme:{data['requestId']}")

    def parse(self, request: InboundRequest) -> ExternalOrder:
        data = self._envelope(request)
        if to_int(data.get("type"), "type") != ORDER_EFFECTIVE:
            raise PayloadInvalid(f"message type {data.get('type')} is not a new order (10)")
        order = json_loads_exact(require(data, "message"))
        if not isinstance(order, dict):
            raise PayloadInvalid("message is not a JSON object")
        items = []
        for group in order.get("groups") or []:
            for it in group.get("items") or []:
                sku = str(it.get("extendCode") or it.get("skuId") or it.get("id") or "")
                items.append(ExternalItem(name=str(require(it, "name")), external_sku=sku,
                                          quantity=to_int(require(it, "quantity"), "quantity"),
                                          unit_price_fen=yuan_to_fen(require(it, "price"))))
        if not items:
            raise PayloadInvalid("order has no items")
        lng = lat = None
        geo = str(order.get("deliveryGeo") or "")
        if geo:
            parts = geo.split(",")
            if len(parts) != 2:
                raise PayloadInvalid(f"deliveryGeo {geo!r} is not 'lng,lat'")
            lng, lat = to_coord(parts[0]), to_coord(parts[1])
        phones = order.get("phoneList") or []
        deliver_time = order.get("deliverTime")
        return ExternalOrder(
            platform=self.name,
            external_id=str(order.get("id") or require(order, "orderId")),
            external_shop_id=str(require(order, "shopId")),
            items=tuple(items),
            recipient_name=str(order.get("consignee", "")),
            recipient_phone_masked=mask_phone(str(phones[0])) if phones else "",
            address_text=str(order.get("address") or require(order, "deliveryPoiAddress")),
            address_lat=lat,
            address_lng=lng,
            campus_hint=str(order.get("deliveryPoiAddress") or "") or None,
            promised_at=beijing_text_to_utc(str(deliver_time)) if deliver_time else None,
            total_fen=yuan_to_fen(require(order, "totalPrice")),
            paid_online=bool(order.get("onlinePaid", True)),
            note=str(order.get("description") or ""),
            raw=data,
        )

    def ack(self, ok: bool, message: str) -> OutboundResponse:
        if ok:
            return OutboundResponse.json(200, {"message": "ok"})
        return OutboundResponse.json(500, {"message": message[:200]})

    # -- outbound ------------------------------------------------------------------------------
    def build_status_callback(self, update: StatusUpdate) -> OutboundRequest:
        action = ACTIONS[update.status]
        params: dict[str, Any] = {"orderId": update.external_id}
        if update.status in ("picked_up", "delivered"):
            params["phone"] = update.rider_phone or self.dispatch_phone
        if update.status == "cancelled":
            params["type"] = CANCEL_TYPE
            params["remark"] = update.reason or "商家取消"
        metas = {"app_key": self.app_key, "timestamp": int(self.clock())}
        body = {"nop": "1.0.0", "id": f"{uuid.uuid4().hex.upper()}|{int(self.clock() * 1000)}",
                "action": action, "token": self.access_token, "metas": metas, "params": params,
                "signature": eleme_api_signature(action, self.access_token, metas, params, self.secret)}
        return OutboundRequest("POST", self.api_url, {"content-type": "application/json; charset=utf-8"},
                               _json(body).encode())

    def parse_callback_response(self, status_code: int, body: bytes) -> bool:
        if status_code != 200:
            return False
        try:
            data = json.loads(body)
        except (ValueError, TypeError):
            return False
        return isinstance(data, dict) and "id" in data and data.get("error") is None
