"""The campus map shared by the order page and /ops/dispatch: drawn from the campus's own rows.

Coordinates are campus metres with y growing northwards; SVG's y grows downwards, so every point is
flipped here once and the template draws plain numbers (labels stay upright).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from waimai.platform.catalog.models import Campus, CampusFeature, DeliveryPoint, Merchant


@dataclass
class Shape:
    kind: str
    name: str
    path: str            # "x,y x,y ..." for <polygon>/<polyline points=...>
    cx: float = 0.0      # where its label goes
    cy: float = 0.0


@dataclass
class Spot:
    id: int
    name: str
    kind: str
    x: float
    y: float


@dataclass
class CampusMap:
    width: int
    height: int
    shapes: list[Shape] = field(default_factory=list)
    points: list[Spot] = field(default_factory=list)
    shops: list[Spot] = field(default_factory=list)

    def flip(self, x: float | None, y: float | None) -> tuple[float, float] | None:
        """Campus metres to SVG units; None while a position is unknown."""
        if x is None or y is None:
            return None
        return round(x, 1), round(self.height - y, 1)


def _footprint(x: float, y: float) -> list[list[float]]:
    return [[x - 45, y], [x + 45, y], [x + 45, y + 50], [x - 45, y + 50]]


def load_map(db: Session, campus_id: int) -> CampusMap | None:
    campus = db.get(Campus, campus_id)
    if campus is None:
        return None
    cmap = CampusMap(width=campus.width_m, height=campus.height_m)
    h = campus.height_m
    features: list[Any] = list(db.scalars(select(CampusFeature).where(CampusFeature.campus_id == campus_id)
                                          .order_by(CampusFeature.id)))
    points = list(db.scalars(select(DeliveryPoint).where(DeliveryPoint.campus_id == campus_id,
                                                         DeliveryPoint.active.is_(True))
                             .order_by(DeliveryPoint.id)))
    if not any(f.kind == "building" for f in features):
        # A campus whose map was never drawn still shows each delivery point as a building.
        features += [CampusFeature(kind="building", name=d.name, points=_footprint(d.x, d.y))
                     for d in points if d.kind != "locker"]
    order = {"green": 0, "area": 1, "road": 2, "building": 3}
    for f in sorted(features, key=lambda f: order.get(f.kind, 9)):
        pts = [(float(p[0]), float(h - p[1])) for p in f.points if len(p) == 2]
        if len(pts) < 2:
            continue
        if f.kind == "road":
            mid = pts[len(pts) // 2 - 1] if len(pts) > 2 else pts[0]
            nxt = pts[len(pts) // 2] if len(pts) > 2 else pts[1]
            cx, cy = (mid[0] + nxt[0]) / 2, (mid[1] + nxt[1]) / 2
        else:
            cx, cy = sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)
        cmap.shapes.append(Shape(kind=f.kind, name=f.name, path=" ".join(f"{x:.0f},{y:.0f}" for x, y in pts),
                                 cx=round(cx), cy=round(cy)))
    cmap.points = [Spot(id=d.id, name=d.name, kind=d.kind, x=d.x, y=h - d.y) for d in points]
    cmap.shops = [Spot(id=m.id, name=m.name.split(" ")[0], kind="shop", x=m.x, y=h - m.y)
                  for m in db.scalars(select(Merchant).where(Merchant.campus_id == campus_id).order_by(Merchant.id))]
    return cmap
