"""What the layers above may read about coupons (the firewall's compensation): through these functions,
never the `coupons` table (the `firewall-through-services` contract). Issuing is `service.issue`."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from waimai.platform.coupons.models import Coupon


def made_good(db: Session, user_id: int, order_ids: Iterable[int]) -> set[int]:
    """Which of the user's `order_ids` a coupon already made good other than an incident's compensation."""
    ids = list(set(order_ids))
    return set(db.scalars(select(Coupon.order_id).where(Coupon.user_id == user_id, Coupon.order_id.in_(ids),
                                                        Coupon.source != "compensation"))) if ids else set()


def of_incident(db: Session, incident_id: int) -> list[Coupon]:
    """The coupons issued as an incident's compensation."""
    return list(db.scalars(select(Coupon).where(Coupon.incident_id == incident_id, Coupon.source == "compensation")))


def incident_cost_fen(db: Session, incident_id: int) -> int:
    """What an incident's compensation coupons are worth in total (fen)."""
    return int(db.scalar(select(func.coalesce(func.sum(Coupon.amount_fen), 0)).where(
        Coupon.incident_id == incident_id, Coupon.source == "compensation")) or 0)
