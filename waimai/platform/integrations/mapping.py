"""Normalise a platform's `ExternalOrder` into our world: merchant, menu items, campus delivery point.

Pure functions over lookup tables the caller provides (the ordering service backs them with the
database): nothing here touches a session. `normalise` returns a `MappedOrder` (turn it into
`PlaceOrderIn` with `to_place_order`) or a `MappingFailure` saying what could not be mapped.

Delivery point: a building name (a point's name or one of its aliases) found in the address text
wins; otherwise the platform's coordinates are projected onto campus metres from the campus origin
(equirectangular, x east / y north, ample at campus scale) and the nearest active point is taken,
unless it is farther than `max_distance_m`: "delivery point off campus".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from waimai.platform.integrations.base import ExternalOrder
from waimai.platform.ordering.schemas import MAX_QTY, LineIn, PlaceOrderIn

EARTH_RADIUS_M = 6_371_008.8
NOTE_MAX = 200

FailureCode = Literal["unknown_merchant", "unmapped_items", "delivery_point_off_campus", "no_location",
                      "quantity_out_of_range"]


@dataclass(frozen=True)
class CampusPoint:
    id: int
    name: str
    x: float  # metres east of the campus origin
    y: float  # metres north of the campus origin
    aliases: tuple[str, ...] = ()  # other names people write: "北苑3号楼", "N3", "Bldg 3"
    active: bool = True


@dataclass(frozen=True)
class CampusFrame:
    origin_lat: float  # the WGS-84 / GCJ-02 position of campus (0, 0): the platforms send GCJ-02
    origin_lng: float
    max_distance_m: float = 300.0  # farther than this from every point = off campus


@dataclass(frozen=True)
class MappingTables:
    # (platform, external shop id) -> our merchant id
    merchants: Mapping[tuple[str, str], int]
    # (merchant id, external sku) -> menu item id; the first lookup
    skus: Mapping[tuple[int, str], int]
    # (merchant id, item name as the platform shows it) -> menu item id; the fallback
    names: Mapping[tuple[int, str], int]
    points: Sequence[CampusPoint]
    frame: CampusFrame


@dataclass(frozen=True)
class MappedLine:
    item_id: int
    quantity: int


@dataclass(frozen=True)
class PointMatch:
    point_id: int
    how: Literal["building_name", "coordinates"]
    distance_m: float | None = None  # set when matched by coordinates


@dataclass(frozen=True)
class MappedOrder:
    platform: str
    external_id: str
    merchant_id: int
    delivery_point: PointMatch
    lines: tuple[MappedLine, ...]
    note: str
    contact_phone_masked: str  # the platform's privacy number: not a PlaceOrderIn.contact_phone
    paid_online: bool
    external_total_fen: int

    def to_place_order(self, payment_method: Literal["gateway", "cod"]) -> PlaceOrderIn:
        """The caller decides how a platform-paid order is settled on our side (it was paid to the platform)."""
        return PlaceOrderIn(merchant_id=self.merchant_id, delivery_point_id=self.delivery_point.point_id,
                            items=[LineIn(item_id=ln.item_id, quantity=ln.quantity) for ln in self.lines],
                            payment_method=payment_method, note=self.note)


@dataclass(frozen=True)
class MappingFailure:
    code: FailureCode
    message: str
    details: tuple[str, ...] = field(default=())


def project(lat: float, lng: float, frame: CampusFrame) -> tuple[float, float]:
    """Degrees -> campus metres (x east, y north of the origin)."""
    phi0 = math.radians(frame.origin_lat)
    x = math.radians(lng - frame.origin_lng) * EARTH_RADIUS_M * math.cos(phi0)
    y = math.radians(lat - frame.origin_lat) * EARTH_RADIUS_M
    return x, y


def _mentions(text: str, name: str) -> bool:
    """`name` occurs in `text` as a whole token: "3号楼" is not found inside "13号楼", "A1" not in "A12"."""
    if not name:
        return False
    start = text.find(name)
    while start != -1:
        before = text[start - 1] if start > 0 else ""
        end = start + len(name)
        after = text[end] if end < len(text) else ""
        clash_before = before.isascii() and before.isalnum() and name[0].isascii() and name[0].isalnum()
        clash_after = after.isascii() and after.isalnum() and name[-1].isascii() and name[-1].isalnum()
        if not clash_before and not clash_after:
            return True
        start = text.find(name, start + 1)
    return False


def match_delivery_point(address_text: str, lat: float | None, lng: float | None, campus_hint: str | None,
                         points: Sequence[CampusPoint], frame: CampusFrame) -> PointMatch | MappingFailure:
    active = [p for p in points if p.active]
    haystack = f"{address_text} {campus_hint or ''}".casefold()
    best: tuple[int, CampusPoint] | None = None
    for point in active:
        for label in (point.name, *point.aliases):
            label_cf = label.casefold().strip()
            if _mentions(haystack, label_cf) and (best is None or len(label_cf) > best[0]):
                best = (len(label_cf), point)
    if best is not None:
        return PointMatch(point_id=best[1].id, how="building_name")
    if lat is None or lng is None:
        return MappingFailure("no_location", "no campus building named in the address and no coordinates",
                              (address_text,))
    if not active:
        return MappingFailure("delivery_point_off_campus", "delivery point off campus: no active points")
    x, y = project(lat, lng, frame)
    nearest = min(active, key=lambda p: math.hypot(p.x - x, p.y - y))
    distance = math.hypot(nearest.x - x, nearest.y - y)
    if distance > frame.max_distance_m:
        return MappingFailure("delivery_point_off_campus",
                              f"delivery point off campus: {distance:.0f} m from the nearest point "
                              f"({nearest.name}), limit {frame.max_distance_m:.0f} m",
                              (f"{lat},{lng}",))
    return PointMatch(point_id=nearest.id, how="coordinates", distance_m=round(distance, 1))


def normalise(order: ExternalOrder, tables: MappingTables) -> MappedOrder | MappingFailure:
    merchant_id = tables.merchants.get((order.platform, order.external_shop_id))
    if merchant_id is None:
        return MappingFailure("unknown_merchant",
                              f"{order.platform} shop {order.external_shop_id} is not linked to a merchant")
    quantities: dict[int, int] = {}
    unmapped: list[str] = []
    for item in order.items:
        item_id = tables.skus.get((merchant_id, item.external_sku)) if item.external_sku else None
        if item_id is None:
            item_id = tables.names.get((merchant_id, item.name.strip()))
        if item_id is None:
            unmapped.append(f"{item.name} (sku {item.external_sku or '-'})")
            continue
        quantities[item_id] = quantities.get(item_id, 0) + item.quantity
    if unmapped:
        return MappingFailure("unmapped_items", f"{len(unmapped)} item(s) not on our menu", tuple(unmapped))
    bad = [f"item {i}: {q}" for i, q in quantities.items() if not 1 <= q <= MAX_QTY]
    if bad or not quantities:
        return MappingFailure("quantity_out_of_range", f"quantities must be 1..{MAX_QTY}", tuple(bad))
    point = match_delivery_point(order.address_text, order.address_lat, order.address_lng, order.campus_hint,
                                 tables.points, tables.frame)
    if isinstance(point, MappingFailure):
        return point
    prefix = f"[{order.platform} {order.external_id}] "
    note = (prefix + order.note.strip())[:NOTE_MAX]
    return MappedOrder(platform=order.platform, external_id=order.external_id, merchant_id=merchant_id,
                       delivery_point=point,
                       lines=tuple(MappedLine(i, q) for i, q in quantities.items()),
                       note=note, contact_phone_masked=order.recipient_phone_masked,
                       paid_online=order.paid_online, external_total_fen=order.total_fen)
