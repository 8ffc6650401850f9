from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from waimai.platform.accounts.schemas import Strict

Id = Field(ge=1, le=2**31 - 1)
Kind = Literal["day", "week"]
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2100, 1, 1)  # dates outside are typos (and overflow)


class RulesIn(Strict):
    base_fen: int = Field(ge=0, le=100_000, description="per delivered order")
    per_km_fen: int = Field(ge=0, le=100_000, description="per km from the merchant to the delivery point")
    free_m: int = Field(ge=0, le=100_000, description="metres included in the base")
    peak_pct: int = Field(ge=100, le=500, description="order pay in a peak window, percent (150 = ×1.5)")
    peak_windows: list[str] = Field(max_length=8, description='campus local times, "11:00-13:00"')
    hourly_min_fen: int = Field(ge=0, le=100_000, description="guaranteed per hour on shift")
    late_grace_min: int = Field(ge=0, le=240)
    late_penalty_fen: int = Field(ge=0, le=100_000)
    pay_cycle: Kind = Field(description="which periods are paid out")


class RulesOut(RulesIn):
    campus_id: int


class ComputeIn(Strict):
    kind: Kind
    date: dt.date = Field(ge=FIRST_DAY, le=LAST_DAY, description="any day in the period (campus local date)")
    campus_id: int | None = Field(default=None, ge=1, le=2**31 - 1, description="omit: every campus")


class ComputeOut(BaseModel):
    period_id: int
    campus_id: int
    kind: str
    start: dt.date
    status: str
    created: bool
    frozen: bool
    written: int
    unchanged: int
    removed: int
    changed: bool


class PaidIn(Strict):
    batch_ref: str | None = Field(default=None, max_length=64, description="finance's reference; default ours")


class AdjustmentIn(Strict):
    rider_id: int = Id
    amount_fen: int = Field(description="signed: tips and bonuses positive, deductions negative")
    reason: str = Field(min_length=3, max_length=200)
    kind: Literal["tip", "bonus", "deduction", "correction"] = "bonus"
    order_id: int | None = Field(default=None, ge=1, le=2**31 - 1, description="required for a tip")
    date: dt.date | None = Field(default=None, ge=FIRST_DAY, le=LAST_DAY,
                                 description="the day it counts on (default today, or the tip's delivery day); "
                                             "moved past closed periods")


class AdjustmentOut(BaseModel):
    id: int
    rider_id: int
    kind: str
    amount_fen: int
    reason: str
    order_id: int | None
    requested_on: dt.date
    applies_on: dt.date
    created_at: dt.datetime
    created_by: int | None

    model_config = {"from_attributes": True}


class LineOut(BaseModel):
    kind: str
    day: dt.date
    at: dt.datetime | None
    order_id: int | None
    adjustment_id: int | None
    distance_m: int
    base_fen: int
    distance_fen: int
    peak_fen: int
    amount_fen: int
    note: str

    model_config = {"from_attributes": True}


class PayslipOut(BaseModel):
    id: int | None = Field(description="none for a live preview of a period not closed yet")
    reference: str | None
    rider_id: int
    period_id: int | None
    kind: str
    start: dt.date
    end: dt.date = Field(description="the first day after the period")
    status: str = Field(description="preview (computed now), draft, closed or paid")
    orders: int
    shift_seconds: int
    delivery_fen: int
    guarantee_fen: int
    late_fen: int
    tips_fen: int
    adjustments_fen: int
    total_fen: int
    revision: int | None = None
    lines: list[LineOut] = []


class PeriodOut(BaseModel):
    id: int
    campus_id: int
    kind: str
    start_date: dt.date
    end_date: dt.date
    status: str
    payable: bool
    rules: dict[str, Any]
    computed_at: dt.datetime
    closed_at: dt.datetime | None
    paid_at: dt.datetime | None
    batch_ref: str | None
    payslips: int = 0
    total_fen: int = 0
    reconciliation: dict[str, Any] | None = None

    model_config = {"from_attributes": True}
