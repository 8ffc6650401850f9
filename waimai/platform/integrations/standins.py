"""Stand-in Meituan Waimai, Ele.me and JD Daojia platforms over real HTTP, for tests and drills.

Each factory returns a FastAPI app that

* pushes realistic, signed orders to a webhook (`POST /admin/push_order`) and records our acknowledgement,
* serves the platform's status API paths, verifies our signature there as the platform would and
  records every call in order,
* can be broken for a while (`PUT /admin/config`: an HTTP status such as 503 and/or a delay, for a
  number of seconds or of calls) — only the platform API side, the push side keeps working.

The signing and verifying here is written independently of the adapters on purpose: the stand-ins
follow the published schemes, so a test that passes proves the adapters agree with them.
`GET /admin/state` returns pushes, acknowledgements and callbacks.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, quote

import httpx
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

CN = dt.timezone(dt.timedelta(hours=8))
MAX_SKEW_S = 600


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


class StandinConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fail_status: int = Field(default=0, ge=0, le=599)  # 0 = answer normally; e.g. 503
    delay_ms: int = Field(default=0, ge=0, le=120_000)  # sleep before answering (client timeouts)
    for_seconds: float | None = Field(default=None, gt=0)  # then heal by itself
    for_calls: int | None = Field(default=None, ge=1)  # or heal after this many calls


class PushItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    sku: str
    quantity: int = Field(ge=1, le=999)
    price: str = Field(pattern=r"^\d+(\.\d{1,2})?$")  # yuan, as the platform shows it


class PushIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhook_url: str
    order_id: str | None = None
    shop_id: str = "1001"
    items: list[PushItem] = Field(min_length=1)
    recipient_name: str = "张同学"
    phone: str = "13800001234_5678"  # the platform's privacy number with extension
    address: str = "北苑3号楼 302室"
    lat: float | None = None
    lng: float | None = None
    shipping_fee: str = Field(default="0", pattern=r"^\d+(\.\d{1,2})?$")
    paid_online: bool = True
    deliver_in_min: int | None = 30  # None = as soon as possible
    note: str = ""
    # drill / test knobs
    secret_override: str | None = None  # sign with another secret (a forgery)
    timestamp_offset_s: int = 0  # sign a timestamp this far from now (stale)
    tamper: dict[str, str] = Field(default_factory=dict)  # change fields after signing
    inline_detail: bool = True  # JD only: False sends JD's real bill-id-only message


@dataclass
class StandinState:
    platform: str
    config: StandinConfig = field(default_factory=StandinConfig)
    fail_until: float | None = None
    fail_left: int | None = None
    pushes: list[dict[str, Any]] = field(default_factory=list)
    acks: list[dict[str, Any]] = field(default_factory=list)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        return {"platform": self.platform, "config": self.config.model_dump(), "pushes": self.pushes,
                "acks": self.acks, "callbacks": self.callbacks}


@dataclass(frozen=True)
class BuiltPush:
    order_id: str
    content_type: str
    body: bytes
    fields: dict[str, Any]  # what was sent, decoded
    expected_ack: Callable[[int, bytes], bool]


def _money(text: str) -> Decimal:
    return Decimal(text)


def _yuan(d: Decimal) -> str:
    return f"{d.quantize(Decimal('0.01'))}"


def _dumps(obj: Any) -> str:
    """JSON where Decimal values are written as JSON numbers (the platforms send numbers, not strings)."""
    marks: dict[str, str] = {}

    def conv(o: Any) -> Any:
        if isinstance(o, Decimal):
            key = f"@@{len(marks)}@@"
            marks[key] = _yuan(o)
            return key
        if isinstance(o, dict):
            return {k: conv(v) for k, v in o.items()}
        if isinstance(o, list):
            return [conv(v) for v in o]
        return o

    text = json.dumps(conv(obj), ensure_ascii=False, separators=(",", ":"))
    for key, number in marks.items():
        text = text.replace(f'"{key}"', number)
    return text


def _totals(spec: PushIn) -> tuple[Decimal, Decimal]:
    goods = sum((_money(i.price) * i.quantity for i in spec.items), Decimal(0))
    return goods, goods + _money(spec.shipping_fee)


def _new_order_id() -> str:
    return str(random.randint(10**15, 10**16 - 1))  # noqa: S311 - ids, not secrets


def _register_common(app: FastAPI, state: StandinState, build: Callable[[PushIn], BuiltPush]) -> None:
    @app.get("/admin/state")
    async def get_state() -> dict[str, Any]:
        return state.snapshot()

    @app.put("/admin/config")
    async def put_config(cfg: StandinConfig) -> dict[str, Any]:
        state.config = cfg
        state.fail_until = time.time() + cfg.for_seconds if cfg.for_seconds else None
        state.fail_left = cfg.for_calls
        return cfg.model_dump()

    @app.post("/admin/push_order")
    async def push_order(spec: PushIn) -> dict[str, Any]:
        push = build(spec)
        state.pushes.append({"order_id": push.order_id, "fields": push.fields})
        record: dict[str, Any] = {"order_id": push.order_id}
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                r = await client.post(spec.webhook_url, content=push.body,
                                      headers={"content-type": push.content_type})
            record.update(status_code=r.status_code, body=r.text, accepted=push.expected_ack(r.status_code, r.content))
        except httpx.HTTPError as exc:
            record.update(status_code=0, body=f"{exc.__class__.__name__}: {exc}", accepted=False)
        state.acks.append(record)
        return {**record, "content_type": push.content_type, "sent": push.body.decode()}


async def _chaos(state: StandinState) -> None:
    cfg = state.config
    if not (cfg.fail_status or cfg.delay_ms):
        return
    expired = state.fail_until is not None and time.time() > state.fail_until
    if expired or (state.fail_left is not None and state.fail_left <= 0):
        state.config, state.fail_until, state.fail_left = StandinConfig(), None, None
        return
    if state.fail_left is not None:
        state.fail_left -= 1
    if cfg.delay_ms:
        await asyncio.sleep(cfg.delay_ms / 1000)
    if cfg.fail_status:
        raise HTTPException(cfg.fail_status, "platform failure (injected)")


def _fresh(sent_at: dt.datetime) -> bool:
    return abs((dt.datetime.now(dt.UTC) - sent_at).total_seconds()) <= MAX_SKEW_S


def _cn_parse(text: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CN)
    except ValueError:
        return dt.datetime.fromtimestamp(0, dt.UTC)


def _cn_text(moment: dt.datetime) -> str:
    return moment.astimezone(CN).strftime("%Y-%m-%d %H:%M:%S")


# ------------------------------------------------------------------------------------------------
# Meituan Waimai
# ------------------------------------------------------------------------------------------------
def create_meituan_standin(*, app_id: str, secret: str) -> FastAPI:
    app = FastAPI(title="Stand-in Meituan Waimai open platform", docs_url=None, redoc_url=None)
    state = StandinState("meituan")
    app.state.standin = state

    def sign(url: str, params: dict[str, str], key: str) -> str:
        joined = "&".join(f"{k}={params[k]}" for k in sorted(params))
        return _md5(f"{url.split('?', 1)[0]}?{joined}{key}")

    def build(spec: PushIn) -> BuiltPush:
        order_id = spec.order_id or _new_order_id()
        now = time.time()
        goods, total = _totals(spec)
        detail = [{"app_food_code": i.sku, "food_name": i.name, "sku_id": i.sku, "quantity": i.quantity,
                   "price": _money(i.price), "box_num": 0, "box_price": 0, "unit": "份", "food_discount": 1,
                   "spec": "", "food_property": ""} for i in spec.items]
        fields: dict[str, str] = {
            "app_id": app_id, "timestamp": str(int(now) + spec.timestamp_offset_s),
            "order_id": order_id, "wm_order_id_view": order_id, "app_poi_code": spec.shop_id,
            "wm_poi_id": f"9{spec.shop_id}", "wm_poi_name": "校园食堂", "wm_poi_address": "校内",
            "recipient_name": spec.recipient_name, "recipient_phone": spec.phone,
            "recipient_address": spec.address, "latitude": "" if spec.lat is None else f"{spec.lat:.6f}",
            "longitude": "" if spec.lng is None else f"{spec.lng:.6f}", "shipping_fee": _yuan(_money(spec.shipping_fee)),
            "total": _yuan(total), "original_price": _yuan(total), "caution": spec.note, "status": "2",
            "city_id": "110100", "has_invoiced": "0", "ctime": str(int(now)), "utime": str(int(now)),
            "delivery_time": "0" if spec.deliver_in_min is None else str(int(now) + spec.deliver_in_min * 60),
            "is_third_shipping": "0", "pay_type": "2" if spec.paid_online else "1", "day_seq": "1",
            "detail": _dumps(detail), "extras": "[]"}
        fields["sig"] = sign(spec.webhook_url, fields, spec.secret_override or secret)
        fields.update(spec.tamper)
        state.orders[order_id] = fields
        body = "&".join(f"{k}={_q(v)}" for k, v in fields.items())

        def ok(status: int, content: bytes) -> bool:
            try:
                return status == 200 and str(json.loads(content).get("data", "")).lower() == "ok"
            except (ValueError, AttributeError):
                return False

        return BuiltPush(order_id, "application/x-www-form-urlencoded", body.encode(), fields, ok)

    _register_common(app, state, build)

    @app.get("/api/v1/order/{action}")
    async def order_action(action: str, request: Request) -> JSONResponse:
        await _chaos(state)
        params = dict(request.query_params)
        sig = params.pop("sig", "")
        expected = sign(str(request.url), params, secret)
        problem = ""
        if action not in {"confirm", "delivering", "arrived", "cancel"}:
            problem = "unknown api"
        elif not sig or params.get("app_id") != app_id or not params.get("timestamp"):
            problem = "缺少参数"
        elif sig != expected:
            problem = "签名验证错误"
        elif not _fresh(dt.datetime.fromtimestamp(int(params["timestamp"]), dt.UTC)):
            problem = "timestamp expired"
        state.callbacks.append({"action": action, "order_id": params.get("order_id"), "ok": not problem,
                                "params": params, "problem": problem})
        if problem:
            return JSONResponse({"data": "ng", "error": {"code": 703 if "签名" in problem else 701, "msg": problem}})
        return JSONResponse({"data": "ok"})

    return app


def _q(value: str) -> str:
    return quote(value, safe="")


# ------------------------------------------------------------------------------------------------
# Ele.me
# ------------------------------------------------------------------------------------------------
def create_eleme_standin(*, app_id: int, app_key: str, secret: str, access_token: str) -> FastAPI:
    app = FastAPI(title="Stand-in Ele.me open platform", docs_url=None, redoc_url=None)
    state = StandinState("eleme")
    app.state.standin = state

    def build(spec: PushIn) -> BuiltPush:
        if not spec.shop_id.isdigit():
            raise HTTPException(422, "Ele.me shop ids are numeric")
        order_id = spec.order_id or _new_order_id()
        now = time.time()
        goods, total = _totals(spec)
        items: list[dict[str, Any]] = [{"id": n + 1, "skuId": 200000 + n, "name": i.name, "categoryId": 1, "price": _money(i.price),
                  "quantity": i.quantity, "total": _money(i.price) * i.quantity, "additions": [], "newSpecs": [],
                  "attributes": [], "extendCode": i.sku, "barCode": "", "weight": None}
                 for n, i in enumerate(spec.items)]
        created = dt.datetime.fromtimestamp(now, CN).strftime("%Y-%m-%dT%H:%M:%S")
        deliver = (None if spec.deliver_in_min is None else
                   dt.datetime.fromtimestamp(now + spec.deliver_in_min * 60, CN).strftime("%Y-%m-%dT%H:%M:%S"))
        order = {"id": order_id, "orderId": order_id, "address": spec.address, "createdAt": created,
                 "activeAt": created, "deliverFee": _money(spec.shipping_fee), "deliverTime": deliver,
                 "description": spec.note, "groups": [{"name": "1号篮子", "type": "normal", "items": items}],
                 "invoice": None, "book": spec.deliver_in_min is not None and spec.deliver_in_min > 60,
                 "onlinePaid": spec.paid_online, "phoneList": [spec.phone], "shopId": int(spec.shop_id),
                 "openId": f"open-{spec.shop_id}", "shopName": "校园食堂", "daySn": 1, "status": "unprocessed",
                 "refundStatus": "noRefund", "userId": 5_000_001, "totalPrice": total, "originalPrice": total,
                 "consignee": spec.recipient_name,
                 "deliveryGeo": "" if spec.lat is None or spec.lng is None else f"{spec.lng:.6f},{spec.lat:.6f}",
                 "deliveryPoiAddress": spec.address, "invoiced": False, "income": goods,
                 "serviceRate": Decimal("0.15"), "serviceFee": Decimal(0), "hongbao": Decimal(0),
                 "packageFee": Decimal(0), "activityTotal": Decimal(0), "shopPart": Decimal(0),
                 "elemePart": Decimal(0), "downgraded": False}
        fields: dict[str, Any] = {"requestId": uuid.uuid4().hex, "type": 10, "appId": app_id,
                                  "message": _dumps(order), "shopId": int(spec.shop_id),
                                  "timestamp": int(now * 1000) + spec.timestamp_offset_s * 1000,
                                  "userId": 5_000_001}
        joined = "".join(f"{k}={fields[k]}" for k in sorted(fields))
        fields["signature"] = _md5(joined + (spec.secret_override or secret)).upper()
        fields.update(spec.tamper)
        state.orders[order_id] = order

        def ok(status: int, content: bytes) -> bool:
            try:
                return status == 200 and json.loads(content).get("message") == "ok"
            except (ValueError, AttributeError):
                return False

        return BuiltPush(order_id, "application/json; charset=utf-8",
                         json.dumps(fields, ensure_ascii=False).encode(), fields, ok)

    _register_common(app, state, build)

    actions = {"eleme.order.confirmOrderLite", "eleme.order.startDeliveryBySelf",
               "eleme.order.completeDeliveryBySelf", "eleme.order.cancelOrderLite"}
    needs_phone = {"eleme.order.startDeliveryBySelf", "eleme.order.completeDeliveryBySelf"}

    async def rpc(request: Request) -> JSONResponse:
        await _chaos(state)
        try:
            call = json.loads(await request.body())
            action, token = str(call["action"]), str(call["token"])
            metas, params, signature = dict(call["metas"]), dict(call["params"]), str(call["signature"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"id": None, "result": None, "error": {"code": "INVALID_REQUEST",
                                                                      "message": "malformed"}})
        merged = {**metas, **params}
        joined = "".join(f"{k}={json.dumps(merged[k], ensure_ascii=False, separators=(',', ':'))}"
                         for k in sorted(merged))
        expected = _md5(f"{action}{token}{joined}{secret}").upper()
        problem = ""
        if signature.upper() != expected:
            problem = "invalid signature"
        elif token != access_token or metas.get("app_key") != app_key:
            problem = "unauthorized"
        elif not _fresh(dt.datetime.fromtimestamp(int(metas.get("timestamp", 0)), dt.UTC)):
            problem = "invalid timestamp"
        elif action not in actions:
            problem = "method not found"
        elif action in needs_phone and not params.get("phone"):
            problem = "phone is required"
        state.callbacks.append({"action": action, "order_id": params.get("orderId"), "ok": not problem,
                                "params": params, "problem": problem})
        if problem:
            code = {"invalid signature": "ILLEGAL_REQUEST", "unauthorized": "UNAUTHORIZED"}.get(problem,
                                                                                             "BUSINESS_ERROR")
            return JSONResponse({"id": call.get("id"), "result": None, "error": {"code": code, "message": problem}})
        return JSONResponse({"id": call.get("id"), "result": None, "error": None})

    app.add_api_route("/api/v1/", rpc, methods=["POST"])
    app.add_api_route("/api/v1", rpc, methods=["POST"])
    return app


# ------------------------------------------------------------------------------------------------
# JD Daojia
# ------------------------------------------------------------------------------------------------
def create_jd_standin(*, app_key: str, secret: str, token: str) -> FastAPI:
    app = FastAPI(title="Stand-in JD Daojia open platform", docs_url=None, redoc_url=None)
    state = StandinState("jd")
    app.state.standin = state

    def sign(params: dict[str, str], key: str) -> str:
        return _md5(key + "".join(f"{k}{params[k]}" for k in sorted(params)) + key).upper()

    def fen(text: str) -> int:
        return int(_money(text) * 100)

    def build(spec: PushIn) -> BuiltPush:
        order_id = spec.order_id or _new_order_id()
        if not order_id.isdigit():
            raise HTTPException(422, "JD Daojia order ids are numeric")
        now = dt.datetime.now(dt.UTC)
        goods, total = _totals(spec)
        entry: dict[str, Any] = {
            "orderId": int(order_id), "srcOrderId": "", "orderStatus": 32000, "orderStartTime": _cn_text(now),
            "orderPreStartDeliveryTime": _cn_text(now),
            "orderPreEndDeliveryTime": (None if spec.deliver_in_min is None
                                        else _cn_text(now + dt.timedelta(minutes=spec.deliver_in_min))),
            "buyerFullName": spec.recipient_name, "buyerFullAddress": spec.address, "buyerTelephone": "",
            "buyerMobile": spec.phone, "buyerLng": spec.lng, "buyerLat": spec.lat, "buyerCoordType": 2,
            "deliveryStationNo": spec.shop_id, "deliveryStationNoIsv": f"isv-{spec.shop_id}",
            "deliveryStationName": "校园食堂", "orderTotalMoney": int(goods * 100),
            "orderFreightMoney": fen(spec.shipping_fee), "orderBuyerPayableMoney": int(total * 100),
            "orderPayType": 4 if spec.paid_online else 1, "orderBuyerRemark": spec.note,
            "product": [{"skuId": 3000 + n, "skuIdIsv": i.sku, "skuName": i.name, "skuCount": i.quantity,
                         "skuJdPrice": fen(i.price), "skuStorePrice": fen(i.price)}
                        for n, i in enumerate(spec.items)]}
        state.orders[order_id] = entry
        sent_at = _cn_text(now + dt.timedelta(seconds=spec.timestamp_offset_s))
        message: dict[str, Any] = {"billId": order_id, "statusId": "32000", "timestamp": sent_at}
        if spec.inline_detail:
            message.update(entry)
        fields = {"app_key": app_key, "token": token, "timestamp": sent_at, "format": "json", "v": "1.0",
                  "jd_param_json": json.dumps(message, ensure_ascii=False, separators=(",", ":"))}
        fields["sign"] = sign(fields, spec.secret_override or secret)
        fields.update(spec.tamper)

        def ok(status: int, content: bytes) -> bool:
            try:
                return status == 200 and str(json.loads(content).get("code")) == "0"
            except (ValueError, AttributeError):
                return False

        body = "&".join(f"{k}={_q(v)}" for k, v in fields.items())
        return BuiltPush(order_id, "application/x-www-form-urlencoded", body.encode(), fields, ok)

    _register_common(app, state, build)

    paths = {"ocs/orderAcceptOperate", "bm/open/api/order/OrderSerllerDelivery", "ocs/deliveryEndOrder",
             "orderStatus/cancelAndRefund", "order/es/query"}

    def answer(code: str, msg: str, data: Any = None) -> JSONResponse:
        inner = json.dumps(data if data is not None else {"code": code, "msg": msg, "detail": ""},
                           ensure_ascii=False)
        return JSONResponse({"code": code, "msg": msg, "data": inner if code == "0" else "",
                             "success": code == "0"})

    @app.post("/djapi/{path:path}")
    async def api(path: str, request: Request) -> JSONResponse:
        await _chaos(state)
        params = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        got = params.pop("sign", "")
        problem = ""
        try:
            param = json.loads(params.get("jd_param_json", ""))
        except ValueError:
            param, problem = {}, "jd_param_json is not JSON"
        if not problem and got.upper() != sign(params, secret):
            problem = "签名验证失败"
        elif not problem and (params.get("token") != token or params.get("app_key") != app_key):
            problem = "token或app_key无效"
        elif not problem and not _fresh(_cn_parse(params.get("timestamp", ""))):
            problem = "时间戳过期"
        elif not problem and path not in paths:
            problem = "接口不存在"
        state.callbacks.append({"action": path, "order_id": str(param.get("orderId", "")), "ok": not problem,
                                "params": param, "problem": problem})
        if problem:
            return answer("-1", problem)
        if path == "order/es/query":
            found = state.orders.get(str(param.get("orderId")))
            return answer("0", "操作成功", {"code": "0", "msg": "成功", "result": {
                "pageNo": 1, "pageSize": 20, "totalCount": 1 if found else 0,
                "resultList": [found] if found else []}})
        return answer("0", "操作成功")

    return app

