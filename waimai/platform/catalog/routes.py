from __future__ import annotations

from fastapi import APIRouter

from waimai.core import audit
from waimai.core.deps import API_PREFIX, IdPath, MerchantDep, ReadSessionDep, SessionDep
from waimai.core.outbox import emit
from waimai.platform.accounts.models import User
from waimai.platform.catalog import service
from waimai.platform.catalog.schemas import (
    DeliveryPointOut,
    ItemOut,
    MerchantDetail,
    MerchantStatusUpdate,
    MerchantSummary,
    StockUpdate,
)
from waimai.platform.ordering.service import hot_reads

router = APIRouter(prefix=API_PREFIX, tags=["catalog"])


@router.get("/merchants", response_model=list[MerchantSummary])
def list_merchants(db: ReadSessionDep) -> list[MerchantSummary]:
    return service.list_merchants(db)


@router.get("/merchants/{merchant_id}", response_model=MerchantDetail)
def get_merchant(merchant_id: IdPath, db: ReadSessionDep) -> MerchantDetail:
    return service.merchant_detail(db, merchant_id)


@router.get("/delivery-points", response_model=list[DeliveryPointOut])
def delivery_points(db: ReadSessionDep) -> list[DeliveryPointOut]:
    return [DeliveryPointOut.model_validate(d) for d in service.list_delivery_points(db)]


@router.patch("/items/{item_id}", response_model=ItemOut)
def update_item(item_id: IdPath, body: StockUpdate, p: MerchantDep, db: SessionDep) -> ItemOut:
    item = service.get_item(db, item_id)
    staff = db.get(User, p.user_id)
    service.check_merchant_staff(p, item.merchant_id, staff.merchant_id if staff else None)
    changes = body.model_dump(exclude_unset=True)
    for k, v in changes.items():
        setattr(item, k, v)
    if p.role == "ops":
        audit.record(db, actor_id=p.user_id, actor_role=p.role, action="item.update", target=f"item:{item_id}",
                     details=changes)
    return ItemOut.model_validate(item)


@router.post("/merchants/{merchant_id}/status", response_model=MerchantSummary)
def set_status(merchant_id: IdPath, body: MerchantStatusUpdate, p: MerchantDep, db: SessionDep) -> MerchantSummary:
    m = service.get_merchant(db, merchant_id)
    staff = db.get(User, p.user_id)
    service.check_merchant_staff(p, merchant_id, staff.merchant_id if staff else None)
    old, m.status = m.status, body.status
    hot_reads(db.connection()).merchant.invalidate(merchant_id)
    emit(db, "merchant.status_changed", key=str(merchant_id), old=old, new=body.status, reason=body.reason)
    if p.role == "ops":
        audit.record(db, actor_id=p.user_id, actor_role=p.role, action="merchant.status",
                     target=f"merchant:{merchant_id}", details={"old": old, "new": body.status,
                                                                "reason": body.reason})
    return service.summary(m)
