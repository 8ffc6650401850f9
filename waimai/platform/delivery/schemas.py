from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from waimai.platform.accounts.schemas import Strict


class ShiftIn(Strict):
    on_shift: bool
    hours: float = Field(default=4.0, gt=0, le=12)


class PositionIn(Strict):
    x: float = Field(ge=-10_000, le=100_000)
    y: float = Field(ge=-10_000, le=100_000)


class RiderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    vehicle: str
    capacity: int
    on_shift: bool
    shift_ends_at: dt.datetime | None
    x: float | None
    y: float | None
