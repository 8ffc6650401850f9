"""Each platform over real HTTP: stand-in pushes -> our receiver (adapter verify/parse/ack), our status calls -> stand-in."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from typing import Any

import httpx
import pytest

from tests.platform.integrations.conftest import PLATFORMS, Stack, build_adapters
from waimai.platform.integrations.base import STATUS_KINDS, ExternalItem, StatusUpdate
from waimai.platform.integrations.http import deliver

ACTIONS = {
    "meituan": ["confirm", "delivering", "arrived", "cancel"],
    "eleme": ["eleme.order.confirmOrderLite", "eleme.order.startDeliveryBySelf",
              "eleme.order.completeDeliveryBySelf", "eleme.order.cancelOrderLite"],
    "jd": ["ocs/orderAcceptOperate", "bm/open/api/order/OrderSerllerDelivery", "ocs/deliveryEndOrder",
           "orderStatus/cancelAndRefund"],
}
OK_ACK = {"meituan": (200, {"data": "ok"}), "eleme": (200, {"message": "ok"}),
          "jd": (200, {"code": "0", "msg": "success", "data": ""})}
# a field covered by the signature, changed in flight after signing
TAMPER = {"meituan": {"total": "0.01"}, "eleme": {"requestId": "f" * 32},
          "jd": {"jd_param_json": '{"billId":"1","statusId":"32000","timestamp":"2026-01-01 00:00:00"}'}}


def _new_id() -> str:
    return str(uuid.uuid4().int % 10**15 + 10**15)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_signed_push_verifies_and_parses_exactly(stack: Stack, platform: str) -> None:
    oid = _new_id()
    before = len(stack.received[platform].orders)
    t0 = dt.datetime.now(dt.UTC)
    res = stack.push(platform, order_id=oid, shop_id="1001", shipping_fee="3.5", lat=30.001, lng=120.002,
                     note="不要辣", address="北苑3号楼 302室")
    assert res["accepted"] is True, res
    status, body = OK_ACK[platform]
    assert (res["status_code"], json.loads(res["body"])) == (status, body)
    orders = stack.received[platform].orders
    assert len(orders) == before + 1
    o = orders[-1]
    assert (o.platform, o.external_id, o.external_shop_id) == (platform, oid, "1001")
    skus = {"meituan": ("GB01", "RICE"), "eleme": ("GB01", "RICE"), "jd": ("GB01", "RICE")}[platform]
    assert o.items == (ExternalItem("宫保鸡丁", skus[0], 2, 1880), ExternalItem("米饭", skus[1], 1, 200))
    assert o.total_fen == 1880 * 2 + 200 + 350  # 43.10 yuan, no float rounding anywhere
    assert isinstance(o.total_fen, int)
    assert o.recipient_phone_masked == "13800001234_5678"  # the privacy number, as the platform gave it
    assert "北苑3号楼" in o.address_text
    assert o.address_lat == pytest.approx(30.001) and o.address_lng == pytest.approx(120.002)
    assert o.paid_online is True
    assert o.promised_at is not None and o.promised_at.tzinfo is not None
    assert o.promised_at.utcoffset() == dt.timedelta(0)
    assert dt.timedelta(minutes=29) <= o.promised_at - t0.replace(microsecond=0) <= dt.timedelta(minutes=31)
    assert "不要辣" in o.note


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_real_mobile_number_is_masked(stack: Stack, platform: str) -> None:
    res = stack.push(platform, order_id=_new_id(), phone="13812345678")
    assert res["accepted"] is True, res
    assert stack.received[platform].orders[-1].recipient_phone_masked == "138****5678"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_push_signed_with_the_wrong_secret_is_rejected(stack: Stack, platform: str) -> None:
    got = stack.received[platform]
    before = (len(got.orders), len(got.rejections))
    res = stack.push(platform, order_id=_new_id(), secret_override="not-the-secret")
    assert res["accepted"] is False, res
    assert (len(got.orders), len(got.rejections)) == (before[0], before[1] + 1)
    assert got.rejections[-1] == "forged"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_tampered_push_is_rejected(stack: Stack, platform: str) -> None:
    got = stack.received[platform]
    n = len(got.orders)
    res = stack.push(platform, order_id=_new_id(), tamper=TAMPER[platform])
    assert res["accepted"] is False, res
    assert got.rejections[-1] == "forged" and len(got.orders) == n


@pytest.mark.parametrize("platform", PLATFORMS)
def test_stale_push_is_rejected(stack: Stack, platform: str) -> None:
    got = stack.received[platform]
    n = len(got.orders)
    res = stack.push(platform, order_id=_new_id(), timestamp_offset_s=-11 * 60)
    assert res["accepted"] is False, res
    assert got.rejections[-1] == "stale" and len(got.orders) == n
    # 9 minutes of skew is still fine
    assert stack.push(platform, order_id=_new_id(), timestamp_offset_s=-9 * 60)["accepted"] is True


@pytest.mark.parametrize("platform", PLATFORMS)
def test_replayed_push_is_rejected(stack: Stack, platform: str) -> None:
    got = stack.received[platform]
    first = stack.push(platform, order_id=_new_id())
    assert first["accepted"] is True
    n = len(got.orders)
    r = stack.http.post(stack.webhook(platform), content=first["sent"].encode(),
                        headers={"content-type": first["content_type"]})
    assert got.rejections[-1] == "replayed" and len(got.orders) == n
    assert (r.status_code, r.json()) != OK_ACK[platform]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_unsigned_push_is_rejected_as_missing(stack: Stack, platform: str) -> None:
    first = stack.push(platform, order_id=_new_id(), secret_override="x")  # any signature, we drop it below
    sent = first["sent"]
    if platform == "eleme":
        data = json.loads(sent)
        del data["signature"]
        body = json.dumps(data).encode()
    else:
        field = "sig" if platform == "meituan" else "sign"
        body = "&".join(p for p in sent.split("&") if not p.startswith(f"{field}=")).encode()
    stack.http.post(stack.webhook(platform), content=body, headers={"content-type": first["content_type"]})
    assert stack.received[platform].rejections[-1] == "missing"


def _update(status: Any, oid: str) -> StatusUpdate:
    return StatusUpdate(external_id=oid, status=status, occurred_at=dt.datetime.now(dt.UTC),
                        reason="骑手无法接单" if status == "cancelled" else "", operator="campus-rider-7",
                        rider_phone="13900007777")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_status_callbacks_are_accepted_by_the_platform_verifier(stack: Stack, platform: str) -> None:
    adapter = stack.adapters[platform]
    oid = _new_id()
    for status in STATUS_KINDS:
        out = adapter.build_status_callback(_update(status, oid))
        r = stack.send(out)
        assert adapter.parse_callback_response(r.status_code, r.content) is True, r.text
    mine = [c for c in stack.state(platform)["callbacks"] if c["order_id"] == oid]
    assert [c["action"] for c in mine] == ACTIONS[platform]  # recorded in order
    assert all(c["ok"] for c in mine), mine


@pytest.mark.parametrize("platform", PLATFORMS)
def test_forged_status_callback_is_refused(stack: Stack, platform: str) -> None:
    forger = build_adapters(stack.hook_base, stack.standin, **{platform: "stolen-but-wrong"})[platform]
    oid = _new_id()
    r = stack.send(forger.build_status_callback(_update("accepted", oid)))
    assert forger.parse_callback_response(r.status_code, r.content) is False, r.text
    mine = [c for c in stack.state(platform)["callbacks"] if c["order_id"] == oid]
    assert len(mine) == 1 and mine[0]["ok"] is False


@pytest.mark.parametrize("platform", PLATFORMS)
def test_standin_can_fail_for_a_while_then_recovers(stack: Stack, platform: str) -> None:
    adapter = stack.adapters[platform]
    stack.configure(platform, fail_status=503, for_calls=2)
    try:
        results = []
        for _ in range(3):
            r = stack.send(adapter.build_status_callback(_update("accepted", _new_id())))
            results.append((r.status_code, adapter.parse_callback_response(r.status_code, r.content)))
        assert results == [(503, False), (503, False), (200, True)]
        stack.configure(platform, delay_ms=1500, for_calls=1)
        with pytest.raises(httpx.TimeoutException):
            stack.send(adapter.build_status_callback(_update("picked_up", _new_id())), timeout=0.3)
    finally:
        stack.configure(platform)


def test_jd_real_two_step_intake_push_then_order_query(stack: Stack) -> None:
    adapter = stack.adapters["jd"]
    oid = _new_id()
    res = stack.push("jd", order_id=oid, inline_detail=False, shipping_fee="1.5")
    assert res["accepted"] is True, res
    assert stack.received["jd"].bills_to_fetch[-1] == oid
    r = stack.send(adapter.build_order_query(oid))
    order = adapter.parse_order_query_response(r.status_code, r.content)
    assert order.external_id == oid and order.total_fen == 1880 * 2 + 200 + 150
    assert [(i.external_sku, i.quantity, i.unit_price_fen) for i in order.items] == [("GB01", 2, 1880),
                                                                                      ("RICE", 1, 200)]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_deliver_helper_reports_acceptance_and_outage(stack: Stack, platform: str) -> None:
    adapter = stack.adapters[platform]

    async def run() -> list[bool]:
        async with httpx.AsyncClient(timeout=0.5) as client:
            ok = await deliver(adapter, adapter.build_status_callback(_update("delivered", _new_id())), client)
            stack.configure(platform, delay_ms=1200, for_calls=1)
            slow = await deliver(adapter, adapter.build_status_callback(_update("delivered", _new_id())), client)
            return [ok, slow]

    try:
        assert asyncio.run(run()) == [True, False]
    finally:
        stack.configure(platform)
