"""What the incident API and the console forms accept (one definition for both)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["investigating", "identified", "monitoring", "resolved"]
Sev = Literal["P1", "P2", "P3", "P4"]
Impact = Literal["operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage"]

class IncidentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=3, max_length=200)
    severity: Sev
    components: list[str] = Field(default=[], max_length=10)
    public: bool = True
    summary: str = Field(default="", max_length=2000)
    workaround: str = Field(default="", max_length=300)
    onset_at: dt.datetime | None = None
    text_zh: str = Field(default="", max_length=1000)
    text_en: str = Field(default="", max_length=1000)


class IncidentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, min_length=3, max_length=200)
    severity: Sev | None = None
    components: list[str] | None = Field(default=None, max_length=10)
    public: bool | None = None
    summary: str | None = Field(default=None, max_length=2000)
    onset_at: dt.datetime | None = None
    roles: dict[str, str] | None = None


class UpdateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Status | None = None
    text_zh: str = Field(default="", max_length=1000)
    text_en: str = Field(default="", max_length=1000)
    public: bool | None = None
    eta: dt.datetime | None = None
    eta_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    workaround: str | None = Field(default=None, max_length=300)
    impact: Impact | None = None


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=1000)


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    done: bool = True


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Impact | None = Field(description="null clears the override: the status follows incidents again")
    reason: str = Field(default="", max_length=200)


class MaintenanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=3, max_length=200)
    description: str = Field(default="", max_length=1000)
    components: list[str] = Field(min_length=1, max_length=10)
    starts_at: dt.datetime
    ends_at: dt.datetime


class CompensationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    budget_fen: int = Field(gt=0, le=10_000_000)
    confirm: bool = Field(description="must be true: coupons cannot be taken back")


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    whys: list[Annotated[str, Field(max_length=500)]] = Field(default=[], max_length=10)
    root_cause: str = Field(default="", max_length=2000)
    notes: str = Field(default="", max_length=5000)


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=3, max_length=300)
    owner: str = Field(min_length=1, max_length=60)
    due_at: dt.datetime | None = None


class ActionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["open", "done"]
