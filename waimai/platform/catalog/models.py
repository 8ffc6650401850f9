"""The campus and what can be ordered on it: zones, delivery points, merchants, menus."""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from waimai.core.database import Base
from waimai.core.models_base import Timestamped


class Campus(Base):
    __tablename__ = "campuses"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    # Bounding box in metres; delivery points must lie inside it.
    width_m: Mapped[int] = mapped_column(default=2000)
    height_m: Mapped[int] = mapped_column(default=2000)


class FeatureKind(enum.StrEnum):
    building = "building"
    road = "road"
    area = "area"      # a named part of campus (dorm district, sports ground)
    green = "green"    # lawns and water: drawn, not named on small maps


class CampusFeature(Base):
    """One drawn thing on the campus map: a building footprint, a road's centre line or a named area."""

    __tablename__ = "campus_features"

    id: Mapped[int] = mapped_column(primary_key=True)
    campus_id: Mapped[int] = mapped_column(ForeignKey("campuses.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(80), default="")
    # [[x, y], ...] in campus metres (y grows northwards): a polygon for buildings and areas, a line for roads.
    points: Mapped[list[Any]] = mapped_column(default=list)


class Zone(Base):
    __tablename__ = "zones"

    id: Mapped[int] = mapped_column(primary_key=True)
    campus_id: Mapped[int] = mapped_column(ForeignKey("campuses.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))


class PointKind(enum.StrEnum):
    dorm = "dorm"
    teaching = "teaching"
    locker = "locker"
    other = "other"


class DeliveryPoint(Base):
    __tablename__ = "delivery_points"

    id: Mapped[int] = mapped_column(primary_key=True)
    campus_id: Mapped[int] = mapped_column(ForeignKey("campuses.id"), index=True)
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("zones.id"), default=None)
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(16), default=PointKind.dorm.value)
    x: Mapped[float] = mapped_column()
    y: Mapped[float] = mapped_column()
    active: Mapped[bool] = mapped_column(default=True)


class MerchantStatus(enum.StrEnum):
    open = "open"
    paused = "paused"
    closed = "closed"


class Merchant(Timestamped, Base):
    __tablename__ = "merchants"

    id: Mapped[int] = mapped_column(primary_key=True)
    campus_id: Mapped[int] = mapped_column(ForeignKey("campuses.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(String(300), default="")
    x: Mapped[float] = mapped_column()
    y: Mapped[float] = mapped_column()
    # Opening hours in campus local time, "HH:MM"; close < open means it closes after midnight.
    opens_at: Mapped[str] = mapped_column(String(5), default="06:30")
    closes_at: Mapped[str] = mapped_column(String(5), default="23:30")
    prep_minutes: Mapped[int] = mapped_column(default=12)
    capacity: Mapped[int] = mapped_column(default=40)  # orders in the kitchen at once
    status: Mapped[str] = mapped_column(String(8), default=MerchantStatus.open.value)
    rating: Mapped[float] = mapped_column(default=4.5)
    min_order_fen: Mapped[int] = mapped_column(default=0)

    categories: Mapped[list[MenuCategory]] = relationship(
        back_populates="merchant", order_by="MenuCategory.position")


class MenuCategory(Base):
    __tablename__ = "menu_categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    position: Mapped[int] = mapped_column(default=0)

    merchant: Mapped[Merchant] = relationship(back_populates="categories")
    items: Mapped[list[MenuItem]] = relationship(back_populates="category", order_by="MenuItem.position")


class MenuItem(Timestamped, Base):
    __tablename__ = "menu_items"
    __table_args__ = (
        CheckConstraint("price_fen >= 0", name="price_nonneg"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock_nonneg"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("menu_categories.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(String(300), default="")
    price_fen: Mapped[int] = mapped_column()
    # None = not counted (made to order); otherwise portions left today.
    stock: Mapped[int | None] = mapped_column(default=None)
    available: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)
    # [{"name": "辣度", "required": true, "choices": [{"name": "微辣", "price_fen": 0}, ...]}]
    options: Mapped[list[Any]] = mapped_column(default=list)

    category: Mapped[MenuCategory] = relationship(back_populates="items")

    @property
    def sold_out(self) -> bool:
        return not self.available or (self.stock is not None and self.stock <= 0)
