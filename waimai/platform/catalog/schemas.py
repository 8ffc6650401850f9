from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from waimai.platform.accounts.schemas import Strict


class Orm(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class OptionChoice(Orm):
    name: str
    price_fen: int = 0


class OptionGroup(Orm):
    name: str
    required: bool = False
    multi: bool = False
    choices: list[OptionChoice]


class ItemOut(Orm):
    id: int
    name: str
    description: str
    price_fen: int
    stock: int | None
    available: bool
    sold_out: bool
    options: list[OptionGroup]


class CategoryOut(Orm):
    id: int
    name: str
    items: list[ItemOut]


class MerchantSummary(Orm):
    id: int
    name: str
    description: str
    status: str
    open_now: bool
    opens_at: str
    closes_at: str
    prep_minutes: int
    rating: float
    min_order_fen: int
    x: float
    y: float


class MerchantDetail(MerchantSummary):
    categories: list[CategoryOut]


class DeliveryPointOut(Orm):
    id: int
    name: str
    kind: str
    x: float
    y: float
    zone_id: int | None


class StockUpdate(Strict):
    stock: int | None = Field(default=None, ge=0, le=100_000)  # null: unlimited
    # Not nullable (the column is NOT NULL): null is a 422, leaving the field out leaves it unchanged.
    available: bool = Field(default=True, description="omit to leave unchanged")


class MerchantStatusUpdate(Strict):
    status: str = Field(pattern="^(open|paused|closed)$")
    reason: str = Field(default="", max_length=200)
