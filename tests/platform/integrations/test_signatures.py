"""Hand-computed signature vectors (hashlib over the canonical string written out by hand), money, replay cache."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from waimai.platform.integrations.base import (
    InboundRequest,
    PayloadInvalid,
    ReplayCache,
    SignatureRejected,
    StatusUpdate,
    mask_phone,
    yuan_to_fen,
)
from waimai.platform.integrations.eleme import ElemeAdapter
from waimai.platform.integrations.jd import JdDaojiaAdapter
from waimai.platform.integrations.meituan import MeituanAdapter

T0 = 1_764_000_000  # 2025-11-24 16:00:00 UTC = 2025-11-25 00:00:00 China time
AT_T0 = dt.datetime.fromtimestamp(T0, dt.UTC)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def _inbound(body: bytes, content_type: str, received_at: dt.datetime = AT_T0) -> InboundRequest:
    return InboundRequest("POST", "/hooks/x", {}, {"Content-Type": content_type}, body, received_at)


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# --- Meituan ----------------------------------------------------------------------------------------
MT_URL = "https://hooks.campus.example/hooks/meituan"
MT_FIELDS = {"app_id": "6001", "timestamp": str(T0), "order_id": "27061900338318741", "total": "43.10",
             "recipient_phone": "13800001234_5678", "app_poi_code": "1001", "recipient_address": "北苑3号楼 302室",
             "detail": '[{"app_food_code":"GB01","food_name":"宫保鸡丁","quantity":2,"price":18.80}]'}
# sorted by name, k=v joined by "&", URL + "?" in front, the secret behind, md5 lowercase
MT_CANONICAL = (MT_URL + "?app_id=6001&app_poi_code=1001"
                '&detail=[{"app_food_code":"GB01","food_name":"宫保鸡丁","quantity":2,"price":18.80}]'
                "&order_id=27061900338318741&recipient_address=北苑3号楼 302室&recipient_phone=13800001234_5678"
                f"&timestamp={T0}&total=43.10" + "mt-secret")


def _meituan(clock: float = T0) -> MeituanAdapter:
    return MeituanAdapter(app_id="6001", secret="mt-secret", push_url=MT_URL,
                          api_base="https://waimaiopen.meituan.com/api/v1", clock=FakeClock(clock))


def test_meituan_vector() -> None:
    sig = _md5(MT_CANONICAL)
    body = urlencode({**MT_FIELDS, "sig": sig}).encode()
    adapter = _meituan()
    adapter.verify(_inbound(body, "application/x-www-form-urlencoded"))
    order = adapter.parse(_inbound(body, "application/x-www-form-urlencoded"))
    assert order.total_fen == 4310 and order.items[0].unit_price_fen == 1880
    # one character off in the canonical string -> rejected
    bad = urlencode({**MT_FIELDS, "sig": _md5(MT_CANONICAL.replace("?", "", 1))}).encode()
    with pytest.raises(SignatureRejected) as exc:
        _meituan().verify(_inbound(bad, "application/x-www-form-urlencoded"))
    assert exc.value.reason == "forged"


def test_meituan_status_call_vector() -> None:
    out = _meituan().build_status_callback(StatusUpdate("27061900338318741", "accepted", AT_T0))
    url = urlsplit(out.url)
    params = dict(parse_qsl(url.query))
    expected = _md5("https://waimaiopen.meituan.com/api/v1/order/confirm"
                    f"?app_id=6001&order_id=27061900338318741&timestamp={T0}" + "mt-secret")
    assert out.method == "GET" and url.path == "/api/v1/order/confirm"
    assert params["sig"] == expected


def test_meituan_stale_and_replayed_with_injected_times() -> None:
    body = urlencode({**MT_FIELDS, "sig": _md5(MT_CANONICAL)}).encode()
    late = AT_T0 + dt.timedelta(minutes=10, seconds=1)
    with pytest.raises(SignatureRejected) as exc:
        _meituan().verify(_inbound(body, "application/x-www-form-urlencoded", late))
    assert exc.value.reason == "stale"
    adapter = _meituan()
    adapter.verify(_inbound(body, "application/x-www-form-urlencoded"))
    with pytest.raises(SignatureRejected) as exc:
        adapter.verify(_inbound(body, "application/x-www-form-urlencoded", AT_T0 + dt.timedelta(seconds=5)))
    assert exc.value.reason == "replayed"


# --- Ele.me -----------------------------------------------------------------------------------------
EL_MESSAGE = json.dumps({"id": "3019184111443869746", "shopId": 163047, "totalPrice": 25.5,
                         "groups": [{"items": [{"name": "黄焖鸡米饭", "extendCode": "HMJ", "quantity": 1,
                                                "price": 25.5}]}],
                         "phoneList": ["17012345678,8123"], "address": "图书馆北门", "onlinePaid": True},
                        ensure_ascii=False, separators=(",", ":"))
EL_PUSH = {"requestId": "100000032019916838", "type": 10, "appId": 78247922, "message": EL_MESSAGE,
           "shopId": 163047, "timestamp": T0 * 1000, "userId": 5000001}
EL_CANONICAL = ("appId=78247922" + "message=" + EL_MESSAGE + "requestId=100000032019916838" + "shopId=163047"
                + f"timestamp={T0 * 1000}" + "type=10" + "userId=5000001" + "el-secret")


def _eleme() -> ElemeAdapter:
    return ElemeAdapter(app_key="el-key", secret="el-secret", app_id=78247922, access_token="tok",
                        clock=FakeClock(T0))


def test_eleme_push_vector() -> None:
    body = json.dumps({**EL_PUSH, "signature": _md5(EL_CANONICAL).upper()}, ensure_ascii=False).encode()
    adapter = _eleme()
    adapter.verify(_inbound(body, "application/json"))
    order = adapter.parse(_inbound(body, "application/json"))
    assert (order.total_fen, order.items[0].unit_price_fen, order.items[0].external_sku) == (2550, 2550, "HMJ")
    assert order.recipient_phone_masked == "17012345678,8123"
    lower_ok = json.dumps({**EL_PUSH, "signature": _md5(EL_CANONICAL)}, ensure_ascii=False).encode()
    with pytest.raises(SignatureRejected) as exc:  # same request id again: a replay, even in lower case
        adapter.verify(_inbound(lower_ok, "application/json"))
    assert exc.value.reason == "replayed"


def test_eleme_api_call_vector() -> None:
    update = StatusUpdate("3019184111443869746", "delivered", AT_T0, rider_phone="13900007777")
    body = json.loads(_eleme().build_status_callback(update).body)
    # action + token + sorted k=json(v) of metas and params + secret, md5 upper
    canonical = ('eleme.order.completeDeliveryBySelf' + 'tok' + 'app_key="el-key"' + 'orderId="3019184111443869746"'
                 + 'phone="13900007777"' + f'timestamp={T0}' + 'el-secret')
    assert body["signature"] == _md5(canonical).upper()
    assert body["action"] == "eleme.order.completeDeliveryBySelf"
    assert body["metas"] == {"app_key": "el-key", "timestamp": T0}
    assert body["params"] == {"orderId": "3019184111443869746", "phone": "13900007777"}


# --- JD Daojia --------------------------------------------------------------------------------------
JD_PARAM = '{"billId":"2314336432000074","statusId":"32000","timestamp":"2025-11-25 00:00:00"}'
JD_PUSH = {"app_key": "jd-key", "token": "jd-token", "timestamp": "2025-11-25 00:00:00", "format": "json",
           "v": "1.0", "jd_param_json": JD_PARAM}
JD_CANONICAL = ("jd-secret" + "app_keyjd-key" + "formatjson" + "jd_param_json" + JD_PARAM
                + "timestamp2025-11-25 00:00:00" + "tokenjd-token" + "v1.0" + "jd-secret")


def _jd() -> JdDaojiaAdapter:
    return JdDaojiaAdapter(app_key="jd-key", secret="jd-secret", token="jd-token", clock=FakeClock(T0))


def test_jd_push_vector() -> None:
    body = urlencode({**JD_PUSH, "sign": _md5(JD_CANONICAL).upper()}).encode()
    _jd().verify(_inbound(body, "application/x-www-form-urlencoded"))  # China time 00:00 = T0 in UTC
    with pytest.raises(SignatureRejected) as exc:
        _jd().verify(_inbound(urlencode({**JD_PUSH, "sign": _md5(JD_CANONICAL)}).encode()[:-3],
                              "application/x-www-form-urlencoded"))
    assert exc.value.reason == "forged"


def test_jd_status_call_vector() -> None:
    out = _jd().build_status_callback(StatusUpdate("2314336432000074", "picked_up", AT_T0, operator="op"))
    params = dict(parse_qsl(out.body.decode()))
    param_json = '{"orderId":"2314336432000074","operator":"op"}'
    canonical = ("jd-secret" + "app_keyjd-key" + "formatjson" + "jd_param_json" + param_json
                 + "timestamp2025-11-25 00:00:00" + "tokenjd-token" + "v1.0" + "jd-secret")
    assert out.url.endswith("/djapi/bm/open/api/order/OrderSerllerDelivery")
    assert params["jd_param_json"] == param_json and params["sign"] == _md5(canonical).upper()


# --- money, phones, replay cache --------------------------------------------------------------------
@pytest.mark.parametrize(("value", "fen"), [("19.99", 1999), ("0.29", 29), ("2", 200), (Decimal("0.1"), 10),
                                            (12, 1200), ("1234567.89", 123456789)])
def test_yuan_to_fen_is_exact(value: object, fen: int) -> None:
    assert yuan_to_fen(value) == fen


@pytest.mark.parametrize("value", [0.29, "0.001", "abc", "NaN", True])
def test_yuan_to_fen_refuses_floats_and_sub_fen(value: object) -> None:
    with pytest.raises(PayloadInvalid):
        yuan_to_fen(value)


def test_mask_phone() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+8613812345678") == "138****5678"
    assert mask_phone("13800001234_5678") == "13800001234_5678"
    assert mask_phone("185****0000") == "185****0000"


def test_replay_cache_expires_and_is_bounded() -> None:
    clock = FakeClock(1000.0)
    cache = ReplayCache(ttl_s=60, max_entries=3, clock=clock)
    assert cache.seen_before("a") is False
    assert cache.seen_before("a") is True
    clock.t += 61
    assert cache.seen_before("a") is False  # expired, recorded again
    for k in "bcd":
        assert cache.seen_before(k) is False
    assert len(cache) == 3
    assert cache.seen_before("a") is False  # evicted as the oldest when "d" came in
