"""Catalog: what is on the campus and what can be ordered right now."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from waimai.core.database import utcnow
from waimai.core.deps import Principal
from waimai.core.errors import Forbidden, NotFound
from waimai.core.timeutil import is_open_at
from waimai.platform.catalog.models import DeliveryPoint, MenuCategory, MenuItem, Merchant, MerchantStatus
from waimai.platform.catalog.schemas import CategoryOut, ItemOut, MerchantDetail, MerchantSummary


def open_now(m: Merchant, when: dt.datetime | None = None) -> bool:
    return m.status == MerchantStatus.open.value and is_open_at(m.opens_at, m.closes_at, when or utcnow())


def summary(m: Merchant, when: dt.datetime | None = None) -> MerchantSummary:
    return MerchantSummary(
        id=m.id, name=m.name, description=m.description, status=m.status, open_now=open_now(m, when),
        opens_at=m.opens_at, closes_at=m.closes_at, prep_minutes=m.prep_minutes, rating=m.rating,
        min_order_fen=m.min_order_fen, x=m.x, y=m.y)


def list_merchants(db: Session, *, campus_id: int | None = None) -> list[MerchantSummary]:
    q = select(Merchant).order_by(Merchant.id)
    if campus_id is not None:
        q = q.where(Merchant.campus_id == campus_id)
    now = utcnow()
    return [summary(m, now) for m in db.scalars(q)]


def get_merchant(db: Session, merchant_id: int) -> Merchant:
    m = db.get(Merchant, merchant_id)
    if m is None:
        raise NotFound(f"Merchant {merchant_id} does not exist.")
    return m


def merchant_detail(db: Session, merchant_id: int) -> MerchantDetail:
    m = db.scalar(select(Merchant).where(Merchant.id == merchant_id)
                  .options(selectinload(Merchant.categories).selectinload(MenuCategory.items)))
    if m is None:
        raise NotFound(f"Merchant {merchant_id} does not exist.")
    cats = [CategoryOut(id=c.id, name=c.name,
                        items=[ItemOut.model_validate(i, from_attributes=True) for i in c.items])
            for c in m.categories]
    return MerchantDetail(**summary(m).model_dump(), categories=cats)


def list_delivery_points(db: Session, *, campus_id: int | None = None) -> list[DeliveryPoint]:
    q = select(DeliveryPoint).where(DeliveryPoint.active.is_(True)).order_by(DeliveryPoint.id)
    if campus_id is not None:
        q = q.where(DeliveryPoint.campus_id == campus_id)
    return list(db.scalars(q))


def check_merchant_staff(p: Principal, merchant_id: int, staff_merchant_id: int | None) -> None:
    """Merchant staff act only on their own shop; ops on any."""
    if p.role == "ops":
        return
    if p.role != "merchant" or staff_merchant_id != merchant_id:
        raise Forbidden("You can only manage your own shop.")


def get_item(db: Session, item_id: int) -> MenuItem:
    item = db.get(MenuItem, item_id)
    if item is None:
        raise NotFound(f"Menu item {item_id} does not exist.")
    return item
