"""A customer's own coupons."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from waimai.core.deps import API_PREFIX, CustomerDep, ReadSessionDep
from waimai.platform.coupons import service

router = APIRouter(prefix=API_PREFIX + "/coupons", tags=["coupons"])


@router.get("")
def my_coupons(p: CustomerDep, db: ReadSessionDep) -> list[dict[str, Any]]:
    """Your coupons with their terms and state (active, redeemed, expired, void)."""
    return [{"id": c.id, "code": c.code, "amount_fen": c.amount_fen, "min_spend_fen": c.min_spend_fen,
             "merchant_id": c.merchant_id, "expires_at": c.expires_at, "state": service.state(c), "reason": c.reason,
             "source": c.source} for c in service.mine(db, p.user_id)]
