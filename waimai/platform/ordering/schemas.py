from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from waimai.platform.accounts.schemas import Strict

MAX_QTY = 99


class LineIn(Strict):
    item_id: int = Field(ge=1, le=2**31 - 1)
    quantity: int = Field(ge=1, le=MAX_QTY)
    options: list[str] = Field(default_factory=list, max_length=10)


class PlaceOrderIn(Strict):
    merchant_id: int = Field(ge=1, le=2**31 - 1)
    delivery_point_id: int = Field(ge=1, le=2**31 - 1)
    items: list[LineIn] = Field(min_length=1, max_length=50)
    payment_method: Literal["gateway", "cod", "platform"] = Field(
        default="gateway", description="gateway or cod; `platform` is only for orders taken in from Meituan etc.")
    note: str = Field(default="", max_length=200)
    contact_phone: str | None = Field(default=None, pattern=r"^\+?\d{6,15}$")
    coupon_code: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{4,24}$",
                                    description="one coupon per order; see GET /api/v1/coupons")


class QuoteLine(BaseModel):
    item_id: int
    name: str
    quantity: int
    options: list[str]
    unit_price_fen: int
    line_total_fen: int


class QuoteOut(BaseModel):
    merchant_id: int
    lines: list[QuoteLine]
    subtotal_fen: int
    delivery_fee_fen: int
    discount_fen: int
    total_fen: int
    distance_m: int
    estimated_minutes: int


class LineOut(BaseModel):
    item_id: int
    name: str
    quantity: int
    options: list[str]
    unit_price_fen: int
    line_total_fen: int


class OrderOut(BaseModel):
    id: int
    number: str
    status: str
    merchant_id: int
    delivery_point_id: int
    rider_id: int | None
    payment_method: str
    source: str
    lines: list[LineOut]
    subtotal_fen: int
    delivery_fee_fen: int
    discount_fen: int
    total_fen: int
    note: str
    contact_phone: str = Field(description="masked unless you are the rider carrying the order")
    proof_code: str | None = Field(default=None, description="only shown to the customer and ops")
    reason: str | None
    created_at: dt.datetime
    promised_at: dt.datetime | None


class TransitionOut(BaseModel):
    from_status: str | None
    to_status: str
    actor_role: str
    reason: str | None
    at: dt.datetime


class ReasonIn(Strict):
    reason: str = Field(default="", max_length=200)


class DeliverIn(Strict):
    proof_code: str = Field(pattern=r"^\d{4}$")


class AssignIn(Strict):
    rider_id: int = Field(ge=1, le=2**31 - 1)


class PayOut(BaseModel):
    order_id: int
    payment_id: int
    status: str
    pay_url: str | None
    provider: str | None = Field(default=None, description="gateway, wechat, alipay or cod")
