"""Rider pay: rules per campus, pay periods, payslips and their lines, adjustments, and the shift log.

Money is integer fen. A pay period is one campus's day or ISO week (campus local dates); a payslip is one
rider's pay in one period (unique per rider and period: recomputing replaces a draft's lines, it never adds
a second payslip). Closed and paid periods are frozen.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from waimai.core.database import Base, utcnow
from waimai.platform.delivery.models import Rider


class PeriodKind(enum.StrEnum):
    day = "day"
    week = "week"


class PeriodStatus(enum.StrEnum):
    draft = "draft"  # recomputed freely (by the job, ops, the CLI)
    closed = "closed"  # frozen; payable ones go into a payout batch
    paid = "paid"  # finance confirmed the batch


class LineKind(enum.StrEnum):
    order = "order"  # one per delivered order: base + distance + peak bonus
    late = "late"  # a late-delivery penalty (negative), linked to its order
    guarantee = "guarantee"  # hourly-minimum top-up for one day
    tip = "tip"  # a tip: an adjustment linked to the delivered order
    adjustment = "adjustment"  # any other manual adjustment (bonus, deduction, correction)


class PayRules(Base):
    """One campus's pay rules (defaults when a campus has no row: rules.DEFAULT)."""

    __tablename__ = "pay_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    campus_id: Mapped[int] = mapped_column(ForeignKey("campuses.id"), unique=True)
    base_fen: Mapped[int] = mapped_column()
    per_km_fen: Mapped[int] = mapped_column()
    free_m: Mapped[int] = mapped_column()
    peak_pct: Mapped[int] = mapped_column()
    peak_windows: Mapped[list[Any]] = mapped_column()
    hourly_min_fen: Mapped[int] = mapped_column()
    late_grace_min: Mapped[int] = mapped_column()
    late_penalty_fen: Mapped[int] = mapped_column()
    pay_cycle: Mapped[str] = mapped_column(String(8))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)


class PayPeriod(Base):
    __tablename__ = "pay_periods"
    __table_args__ = (UniqueConstraint("campus_id", "kind", "start_date", name="uq_pay_periods_campus_kind_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campus_id: Mapped[int] = mapped_column(ForeignKey("campuses.id"))
    kind: Mapped[str] = mapped_column(String(8))
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)  # exclusive: the first day after the period
    status: Mapped[str] = mapped_column(String(8), default=PeriodStatus.draft.value, index=True)
    payable: Mapped[bool] = mapped_column(default=False)  # set at closing: the campus's pay cycle
    rules: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the rules the lines were computed with
    computed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)  # last time something changed
    closed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    paid_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    batch_ref: Mapped[str | None] = mapped_column(String(64), default=None)


class Payslip(Base):
    __tablename__ = "payslips"
    __table_args__ = (UniqueConstraint("period_id", "rider_id", name="uq_payslips_period_rider"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("pay_periods.id"))
    rider_id: Mapped[int] = mapped_column(ForeignKey("riders.id"), index=True)
    reference: Mapped[str] = mapped_column(String(48), unique=True)
    orders: Mapped[int] = mapped_column(default=0)
    shift_seconds: Mapped[int] = mapped_column(default=0)
    delivery_fen: Mapped[int] = mapped_column(default=0)  # base + distance + peak bonus
    guarantee_fen: Mapped[int] = mapped_column(default=0)
    late_fen: Mapped[int] = mapped_column(default=0)  # <= 0
    tips_fen: Mapped[int] = mapped_column(default=0)
    adjustments_fen: Mapped[int] = mapped_column(default=0)  # other adjustments, signed
    total_fen: Mapped[int] = mapped_column(default=0)
    digest: Mapped[str] = mapped_column(String(64))  # of the lines: an unchanged recompute writes nothing
    revision: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    lines: Mapped[list[PayLine]] = relationship(back_populates="payslip", order_by="PayLine.position",
                                                cascade="all, delete-orphan", lazy="selectin")


class PayLine(Base):
    __tablename__ = "pay_lines"
    __table_args__ = (Index("ix_pay_lines_order", "order_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payslip_id: Mapped[int] = mapped_column(ForeignKey("payslips.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column()
    kind: Mapped[str] = mapped_column(String(12))
    day: Mapped[dt.date] = mapped_column(Date)
    at: Mapped[dt.datetime | None] = mapped_column(default=None)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), default=None)
    adjustment_id: Mapped[int | None] = mapped_column(ForeignKey("pay_adjustments.id"), default=None)
    distance_m: Mapped[int] = mapped_column(default=0)
    base_fen: Mapped[int] = mapped_column(default=0)
    distance_fen: Mapped[int] = mapped_column(default=0)
    peak_fen: Mapped[int] = mapped_column(default=0)
    amount_fen: Mapped[int] = mapped_column()
    note: Mapped[str] = mapped_column(String(200), default="")

    payslip: Mapped[Payslip] = relationship(back_populates="lines")


class AdjustmentKind(enum.StrEnum):
    tip = "tip"
    bonus = "bonus"
    deduction = "deduction"
    correction = "correction"


class PayAdjustment(Base):
    """A manual change to a rider's pay, with a reason; never edited or deleted (correct with another one).

    `applies_on` is the campus date whose period it counts in: the requested date, or the first day after
    the closed period that date falls in (`requested_on` keeps what was asked)."""

    __tablename__ = "pay_adjustments"
    __table_args__ = (CheckConstraint("amount_fen <> 0", name="amount_nonzero"),
                      Index("ix_pay_adjustments_rider_applies", "rider_id", "applies_on"))

    id: Mapped[int] = mapped_column(primary_key=True)
    rider_id: Mapped[int] = mapped_column(ForeignKey("riders.id"))
    kind: Mapped[str] = mapped_column(String(12))
    amount_fen: Mapped[int] = mapped_column()
    reason: Mapped[str] = mapped_column(String(200))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), default=None)
    requested_on: Mapped[dt.date] = mapped_column(Date)
    applies_on: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)


class RiderShift(Base):
    """Every shift a rider worked (the riders table keeps only the current one); written by shifts.py."""

    __tablename__ = "rider_shifts"
    __table_args__ = (UniqueConstraint("rider_id", "started_at", name="uq_rider_shifts_rider_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rider_id: Mapped[int] = mapped_column(ForeignKey("riders.id"))
    started_at: Mapped[dt.datetime] = mapped_column()
    ends_at: Mapped[dt.datetime | None] = mapped_column(default=None)  # None: open-ended, counts until now

    rider: Mapped[Rider] = relationship()
