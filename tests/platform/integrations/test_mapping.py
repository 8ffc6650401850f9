"""Mapping an ExternalOrder onto our merchant, menu items and campus delivery points."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from tests.platform.integrations.conftest import Stack
from waimai.platform.integrations.base import ExternalItem, ExternalOrder
from waimai.platform.integrations.mapping import (
    EARTH_RADIUS_M,
    CampusFrame,
    CampusPoint,
    MappedOrder,
    MappingFailure,
    MappingTables,
    PointMatch,
    match_delivery_point,
    normalise,
    project,
)
from waimai.platform.ordering.schemas import PlaceOrderIn

FRAME = CampusFrame(origin_lat=30.0, origin_lng=120.0, max_distance_m=300)
POINTS = [
    CampusPoint(1, "北苑3号楼", 100, 200, aliases=("3号楼", "N3")),
    CampusPoint(2, "13号楼", 400, 200),
    CampusPoint(3, "图书馆", 800, 900, aliases=("Library",)),
    CampusPoint(4, "旧实验楼", 1500, 1500, active=False),
]
TABLES = MappingTables(
    merchants={("meituan", "1001"): 7, ("eleme", "1001"): 7, ("jd", "1001"): 7},
    skus={(7, "GB01"): 51},
    names={(7, "米饭"): 52},
    points=POINTS,
    frame=FRAME,
)


def latlng_of(x: float, y: float) -> tuple[float, float]:
    """Inverse of the projection, written out independently."""
    lat = FRAME.origin_lat + math.degrees(y / EARTH_RADIUS_M)
    lng = FRAME.origin_lng + math.degrees(x / (EARTH_RADIUS_M * math.cos(math.radians(FRAME.origin_lat))))
    return lat, lng


def order(**kw: object) -> ExternalOrder:
    base = ExternalOrder(platform="meituan", external_id="9001", external_shop_id="1001",
                         items=(ExternalItem("宫保鸡丁", "GB01", 2, 1880), ExternalItem("米饭", "", 1, 200)),
                         recipient_name="张同学", recipient_phone_masked="13800001234_5678",
                         address_text="浙江省杭州市西湖区 某大学 北苑3号楼 302室", address_lat=None, address_lng=None,
                         campus_hint=None, promised_at=None, total_fen=3960, paid_online=True, note="不要辣")
    return replace(base, **kw)  # type: ignore[arg-type]


def test_projection_is_metres_east_and_north() -> None:
    lat, lng = latlng_of(800, 900)
    x, y = project(lat, lng, FRAME)
    assert (x, y) == (pytest.approx(800, abs=0.01), pytest.approx(900, abs=0.01))
    x, _ = project(30.0, 120.001, FRAME)
    assert x == pytest.approx(96.3, abs=0.5)  # 0.001 deg of longitude at 30N is ~96 m


def test_building_name_in_the_address_wins() -> None:
    far_away = latlng_of(800, 900)  # coordinates point at the library...
    got = match_delivery_point("某大学 北苑3号楼 302室", *far_away, None, POINTS, FRAME)
    assert got == PointMatch(point_id=1, how="building_name")  # ...but the text names 北苑3号楼


def test_building_names_are_whole_tokens() -> None:
    assert match_delivery_point("13号楼 201", None, None, None, POINTS, FRAME).point_id == 2  # type: ignore[union-attr]
    assert match_delivery_point("近 library 南门", None, None, None, POINTS, FRAME).point_id == 3  # type: ignore[union-attr]
    assert isinstance(match_delivery_point("N35 宿舍", None, None, None, POINTS, FRAME), MappingFailure)


def test_nearest_point_by_coordinates() -> None:
    lat, lng = latlng_of(760, 870)  # 50 m from the library
    got = match_delivery_point("某大学 东区", lat, lng, None, POINTS, FRAME)
    assert not isinstance(got, MappingFailure)
    assert (got.point_id, got.how) == (3, "coordinates")
    assert got.distance_m == pytest.approx(50, abs=0.5)


def test_inactive_points_are_never_chosen() -> None:
    lat, lng = latlng_of(1500, 1500)
    got = match_delivery_point("旧实验楼", lat, lng, None, POINTS, FRAME)
    assert isinstance(got, MappingFailure) and got.code == "delivery_point_off_campus"


def test_off_campus_is_rejected() -> None:
    lat, lng = latlng_of(800, 1250)  # 350 m north of the library, past the 300 m limit
    got = match_delivery_point("西湖边 某小区", lat, lng, None, POINTS, FRAME)
    assert isinstance(got, MappingFailure)
    assert got.code == "delivery_point_off_campus" and "delivery point off campus" in got.message
    no_location = match_delivery_point("某小区", None, None, None, POINTS, FRAME)
    assert isinstance(no_location, MappingFailure) and no_location.code == "no_location"


def test_normalise_to_place_order() -> None:
    got = normalise(order(items=order().items + (ExternalItem("宫保鸡丁", "GB01", 1, 1880),)), TABLES)
    assert isinstance(got, MappedOrder)
    assert got.merchant_id == 7 and got.delivery_point.point_id == 1
    assert [(ln.item_id, ln.quantity) for ln in got.lines] == [(51, 3), (52, 1)]  # sku first, then name
    assert got.note == "[meituan 9001] 不要辣" and got.contact_phone_masked == "13800001234_5678"
    placed = got.to_place_order("cod")
    assert isinstance(placed, PlaceOrderIn)
    assert (placed.merchant_id, placed.delivery_point_id, placed.payment_method) == (7, 1, "cod")
    assert [(li.item_id, li.quantity) for li in placed.items] == [(51, 3), (52, 1)]


def test_normalise_failures_say_what_could_not_be_mapped() -> None:
    unknown_shop = normalise(order(external_shop_id="404"), TABLES)
    assert isinstance(unknown_shop, MappingFailure) and unknown_shop.code == "unknown_merchant"
    unmapped = normalise(order(items=(ExternalItem("佛跳墙", "FTQ", 1, 9900),)), TABLES)
    assert isinstance(unmapped, MappingFailure) and unmapped.code == "unmapped_items"
    assert unmapped.details == ("佛跳墙 (sku FTQ)",)
    lat, lng = latlng_of(5000, 5000)
    off = normalise(order(address_text="校外 某小区", address_lat=lat, address_lng=lng), TABLES)
    assert isinstance(off, MappingFailure) and off.code == "delivery_point_off_campus"
    too_many = normalise(order(items=(ExternalItem("米饭", "", 120, 200),)), TABLES)
    assert isinstance(too_many, MappingFailure) and too_many.code == "quantity_out_of_range"


@pytest.mark.parametrize("platform", ["meituan", "eleme", "jd"])
def test_a_pushed_order_maps_end_to_end(stack: Stack, platform: str) -> None:
    lat, lng = latlng_of(790, 905)
    res = stack.push(platform, order_id="7" + "0" * 14 + str(len(platform)), address="某大学 东区 快递柜旁",
                     lat=lat, lng=lng)
    assert res["accepted"] is True, res
    got = normalise(stack.received[platform].orders[-1], TABLES)
    assert isinstance(got, MappedOrder), got
    assert (got.delivery_point.point_id, got.delivery_point.how) == (3, "coordinates")
    assert got.external_total_fen == 1880 * 2 + 200
