from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from waimai.platform.accounts.schemas import Strict
from waimai.platform.ordering.schemas import LineIn

Id = Field(ge=1, le=2**31 - 1)


class CustomerIn(Strict):
    phone: str = Field(min_length=6, max_length=24)
    name: str = Field(default="", max_length=80)


class CustomerOut(BaseModel):
    id: int
    name: str
    phone_masked: str
    created: bool = False
    recent_orders: list[dict[str, Any]] = []


class AssistedOrderIn(Strict):
    customer_id: int = Id
    merchant_id: int = Id
    delivery_point_id: int = Id
    items: list[LineIn] = Field(min_length=1, max_length=50)
    payment_method: Literal["cod", "gateway"] = Field(description="cash on delivery, or a payment link to send")
    note: str = Field(default="", max_length=200)
    contact_phone: str | None = Field(default=None, pattern=r"^\+?\d{6,15}$")
    coupon_code: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{4,24}$",
                                    description="a coupon of the customer's, if they read one out")


class AssistedOrderOut(BaseModel):
    order: dict[str, Any] = Field(description="the order as placed, with the proof code to read to the customer")
    replayed: bool
    pay_url: str | None = None
    pay_error: str | None = None


class TicketIn(Strict):
    order_id: int = Id
    category: str = Field(max_length=24)
    description: str = Field(default="", max_length=1000)


class ReplyIn(Strict):
    text: str = Field(min_length=1, max_length=1000)
    internal: bool = False


class ReopenIn(Strict):
    reason: str = Field(default="", max_length=200)


class ResolveIn(Strict):
    resolution: Literal["refund", "redelivery", "coupon", "no_action"]
    note: str = Field(default="", max_length=500)
    amount_fen: int | None = Field(default=None, ge=1, le=10_000_00, description="refund or coupon value")
    min_spend_fen: int = Field(default=0, ge=0, le=10_000_00, description="coupon: minimum spend")
    days: int = Field(default=14, ge=1, le=90, description="coupon: valid for")
    item_ids: list[int] | None = Field(default=None, max_length=50, description="re-delivery: which items (all)")


class IncidentLinkIn(Strict):
    incident_id: int | None = Field(default=None, ge=1, le=2**31 - 1)


class RatingIn(Strict):
    stars: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=300)


class TicketEventOut(BaseModel):
    at: dt.datetime
    kind: str
    actor_role: str
    text: str
    public: bool


class TicketOut(BaseModel):
    id: int
    order_id: int
    category: str
    description: str
    status: str
    source: str
    reporter_role: str
    created_at: dt.datetime
    first_response_due: dt.datetime
    first_response_at: dt.datetime | None
    resolution_due: dt.datetime
    resolved_at: dt.datetime | None
    sla: dict[str, str]
    resolution: str | None
    resolution_note: str
    refund_fen: int
    coupon_id: int | None
    redelivery_order_id: int | None
    incident_id: int | None = Field(description="the incident it is part of (staff only)")
    photos: list[int] = []
    events: list[TicketEventOut] = []


class RatingOut(BaseModel):
    subject: str
    stars: int
    comment: str
