"""Who may see which pay (a rider only their own; ops anyone) and the shapes the pay API and pages answer with."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from waimai.core.deps import Principal
from waimai.core.errors import NotFound, Unprocessable
from waimai.platform.catalog.models import Campus
from waimai.platform.delivery.models import Rider
from waimai.platform.delivery.service import rider_for_user
from waimai.platform.payroll import service
from waimai.platform.payroll.models import PayPeriod, Payslip
from waimai.platform.payroll.schemas import LineOut, PayslipOut, PeriodOut


def own_rider(db: Session, p: Principal) -> Rider | None:
    """The caller's rider profile (riders), or None for ops, who may look at anyone."""
    return None if p.role == "ops" else rider_for_user(db, p.user_id)


def rider_in_scope(db: Session, p: Principal, rider_id: int | None) -> Rider:
    """The rider a request is about: a rider only ever gets themselves (another id is a 404), ops name one."""
    mine = own_rider(db, p)
    if mine is not None:
        if rider_id is not None and rider_id != mine.id:
            raise NotFound("No such rider.")
        return mine
    if rider_id is None:
        raise Unprocessable("Name the rider (rider_id).", code="rider_required")
    r = db.get(Rider, rider_id)
    if r is None:
        raise NotFound("No such rider.")
    return r


def visible_payslip(db: Session, p: Principal, payslip_id: int) -> tuple[Payslip, PayPeriod]:
    slip = db.get(Payslip, payslip_id)
    mine = own_rider(db, p)
    if slip is None or (mine is not None and slip.rider_id != mine.id):
        raise NotFound("No such payslip.")
    period = db.get(PayPeriod, slip.period_id)
    assert period is not None
    return slip, period


def slip_out(slip: Any, *, rider_id: int, kind: str, start: dt.date, end: dt.date, period: PayPeriod | None,
             lines: bool = True) -> PayslipOut:
    stored = isinstance(slip, Payslip)
    return PayslipOut(
        id=slip.id if stored else None, reference=slip.reference if stored else None, rider_id=rider_id,
        period_id=period.id if period else None, kind=kind, start=start, end=end,
        status=period.status if stored and period else "preview", orders=slip.orders, shift_seconds=slip.shift_seconds,
        delivery_fen=slip.delivery_fen, guarantee_fen=slip.guarantee_fen, late_fen=slip.late_fen,
        tips_fen=slip.tips_fen, adjustments_fen=slip.adjustments_fen, total_fen=slip.total_fen,
        revision=slip.revision if stored else None,
        lines=[LineOut.model_validate(ln, from_attributes=True) for ln in slip.lines] if lines else [])


def period_out(db: Session, period: PayPeriod, *, reconcile: bool = False) -> PeriodOut:
    slips = list(db.scalars(select(Payslip).where(Payslip.period_id == period.id)))
    out = PeriodOut.model_validate(period, from_attributes=True)
    out.payslips, out.total_fen = len(slips), sum(s.total_fen for s in slips)
    if reconcile:
        out.reconciliation = service.reconcile(db, period).as_dict()
    return out


def campus_id_or_first(db: Session, campus_id: int | None) -> int:
    if campus_id is not None:
        if db.get(Campus, campus_id) is None:
            raise NotFound("No such campus.")
        return campus_id
    first = db.scalar(select(Campus.id).order_by(Campus.id).limit(1))
    if first is None:
        raise NotFound("No campus yet.")
    return first


def period_or_404(db: Session, period_id: int) -> PayPeriod:
    period = db.get(PayPeriod, period_id)
    if period is None:
        raise NotFound("No such pay period.")
    return period
