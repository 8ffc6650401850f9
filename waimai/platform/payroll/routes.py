"""Rider pay API: riders read their own earnings and payslips; ops set rules, compute, close and pay periods,
add adjustments and download the payout batch — every ops action audited."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from waimai.core import audit
from waimai.core.deps import API_PREFIX, IdPath, OpsDep, ReadSessionDep, RiderDep, SessionDep
from waimai.core.errors import Unprocessable
from waimai.platform.catalog.models import Campus
from waimai.platform.payroll import export, service, views
from waimai.platform.payroll.models import PayAdjustment, PayPeriod
from waimai.platform.payroll.rules import Rules
from waimai.platform.payroll.schemas import (
    FIRST_DAY,
    LAST_DAY,
    AdjustmentIn,
    AdjustmentOut,
    ComputeIn,
    ComputeOut,
    Kind,
    PaidIn,
    PayslipOut,
    PeriodOut,
    RulesIn,
    RulesOut,
)

router = APIRouter(prefix=API_PREFIX + "/payroll", tags=["payroll"])
OptId = Annotated[int | None, Query(ge=1, le=2**31 - 1)]


def _csv(body: str, filename: str) -> Response:
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# --- riders (and ops) ----------------------------------------------------------------------------------------

@router.get("/earnings", response_model=PayslipOut)
def earnings(p: RiderDep, db: ReadSessionDep, kind: Kind = "day",
             date: Annotated[dt.date | None, Query(ge=FIRST_DAY, le=LAST_DAY)] = None,
             rider_id: OptId = None) -> PayslipOut:
    """A rider's pay for the day or week containing `date` (default today): the payslip of a closed period,
    otherwise computed now (status `preview`), line by line."""
    rider = views.rider_in_scope(db, p, rider_id)
    day = date or service.local_today()
    period, slip = service.statement(db, rider, kind, day)
    start, end = service.bounds(kind, day)
    return views.slip_out(slip, rider_id=rider.id, kind=kind, start=start, end=end, period=period)


@router.get("/payslips", response_model=list[PayslipOut])
def list_payslips(p: RiderDep, db: ReadSessionDep, rider_id: OptId = None, period_id: OptId = None) -> list[PayslipOut]:
    """Stored payslips, newest first (a rider's own only); without lines."""
    mine = views.own_rider(db, p)
    if mine is not None:
        if rider_id is not None and rider_id != mine.id:
            return []
        rider_id = mine.id
    out = []
    for s in service.payslips(db, period_id=period_id, rider_id=rider_id):
        period = db.get(PayPeriod, s.period_id)
        assert period is not None
        out.append(views.slip_out(s, rider_id=s.rider_id, kind=period.kind, start=period.start_date, end=period.end_date,
                            period=period, lines=False))
    return out


@router.get("/payslips/{payslip_id}.csv", response_class=Response)
def payslip_csv(payslip_id: IdPath, p: RiderDep, db: ReadSessionDep) -> Response:
    slip, _period = views.visible_payslip(db, p, payslip_id)
    return _csv(export.payslip_csv(db, slip), f"payslip-{slip.reference}.csv")


@router.get("/payslips/{payslip_id}", response_model=PayslipOut)
def get_payslip(payslip_id: IdPath, p: RiderDep, db: ReadSessionDep) -> PayslipOut:
    slip, period = views.visible_payslip(db, p, payslip_id)
    return views.slip_out(slip, rider_id=slip.rider_id, kind=period.kind, start=period.start_date, end=period.end_date,
                    period=period)


@router.get("/adjustments", response_model=list[AdjustmentOut])
def list_adjustments(p: RiderDep, db: ReadSessionDep, rider_id: OptId = None) -> list[PayAdjustment]:
    mine = views.own_rider(db, p)
    if mine is not None:
        if rider_id is not None and rider_id != mine.id:
            return []
        rider_id = mine.id
    return service.adjustments(db, rider_id=rider_id)


# --- ops -----------------------------------------------------------------------------------------------------

@router.get("/rules", response_model=RulesOut)
def get_rules(_p: OpsDep, db: ReadSessionDep, campus_id: OptId = None) -> RulesOut:
    cid = views.campus_id_or_first(db, campus_id)
    return RulesOut(campus_id=cid, **service.rules_for(db, cid).as_dict())


@router.put("/rules", response_model=RulesOut)
def put_rules(body: RulesIn, p: OpsDep, db: SessionDep, campus_id: OptId = None) -> RulesOut:
    cid = views.campus_id_or_first(db, campus_id)
    try:
        rules = Rules.from_dict(body.model_dump())
    except ValueError as exc:
        raise Unprocessable(str(exc), code="bad_rules") from None
    service.set_rules(db, cid, rules, actor_id=p.user_id, actor_role=p.role)
    return RulesOut(campus_id=cid, **rules.as_dict())


@router.post("/periods", response_model=list[ComputeOut])
def compute(body: ComputeIn, p: OpsDep, db: SessionDep) -> list[dict[str, Any]]:
    """Compute (or recompute) the period containing `date`: idempotent — the same data writes nothing, and a
    closed or paid period is never touched (`frozen`)."""
    campuses = [views.campus_id_or_first(db, body.campus_id)] if body.campus_id else list(db.scalars(select(Campus.id)))
    out = [service.compute(db, campus_id=c, kind=body.kind, day=body.date, actor_id=p.user_id, actor_role=p.role)
           for c in campuses]
    return [r.as_dict() for r in out]


@router.get("/periods", response_model=list[PeriodOut])
def list_periods(_p: OpsDep, db: ReadSessionDep, kind: Kind | None = None, campus_id: OptId = None) -> list[PeriodOut]:
    return [views.period_out(db, x) for x in service.periods(db, campus_id=campus_id, kind=kind)]


@router.get("/periods/{period_id}", response_model=PeriodOut)
def get_period(period_id: IdPath, _p: OpsDep, db: ReadSessionDep) -> PeriodOut:
    return views.period_out(db, views.period_or_404(db, period_id), reconcile=True)


@router.get("/periods/{period_id}/reconciliation")
def reconciliation(period_id: IdPath, _p: OpsDep, db: ReadSessionDep) -> dict[str, Any]:
    """Do the period's order lines match the delivered orders, rider by rider (counts and ids)?"""
    return service.reconcile(db, views.period_or_404(db, period_id)).as_dict()


@router.get("/periods/{period_id}/payslips", response_model=list[PayslipOut])
def period_payslips(period_id: IdPath, _p: OpsDep, db: ReadSessionDep) -> list[PayslipOut]:
    period = views.period_or_404(db, period_id)
    return [views.slip_out(s, rider_id=s.rider_id, kind=period.kind, start=period.start_date, end=period.end_date,
                     period=period, lines=False) for s in service.payslips(db, period_id=period.id, limit=10_000)]


@router.post("/periods/{period_id}/close", response_model=PeriodOut)
def close(period_id: IdPath, p: OpsDep, db: SessionDep) -> PeriodOut:
    """Freeze a finished period after a last recompute and a reconciliation (409 if it does not reconcile)."""
    period = service.close(db, period_id, actor_id=p.user_id, actor_role=p.role)
    return views.period_out(db, period, reconcile=True)


@router.post("/periods/{period_id}/paid", response_model=PeriodOut)
def paid(period_id: IdPath, body: PaidIn, p: OpsDep, db: SessionDep) -> PeriodOut:
    """Finance paid the batch: the period becomes `paid`."""
    period = views.period_or_404(db, period_id)
    campus = db.get(Campus, period.campus_id)
    assert campus is not None
    period = service.mark_paid(db, period_id, batch_ref=body.batch_ref or service.batch_reference(campus, period),
                               actor_id=p.user_id, actor_role=p.role)
    return views.period_out(db, period)


@router.get("/periods/{period_id}/payout.csv", response_class=Response)
def payout(period_id: IdPath, p: OpsDep, db: SessionDep, reveal: bool = False) -> Response:
    """The payout batch for finance: one row per rider with a positive total. Accounts are masked unless
    `reveal=true` (audited either way)."""
    period = views.period_or_404(db, period_id)
    body, rows = export.payout_csv(db, period, reveal=reveal)
    audit.record(db, actor_id=p.user_id, actor_role=p.role, action="payroll.payout_export",
                 target=f"pay_period:{period.id}", details={"rows": len(rows), "reveal": reveal,
                                                            "total_fen": sum(r.amount_fen for r in rows)})
    return _csv(body, f"payout-{period.kind}-{period.start_date.isoformat()}.csv")


@router.post("/adjustments", response_model=AdjustmentOut, status_code=201)
def add_adjustment(body: AdjustmentIn, p: OpsDep, db: SessionDep) -> PayAdjustment:
    """A manual adjustment with a reason (tips: kind `tip` and the order). It counts in the period of its date,
    or the first open one after it when that period is closed."""
    adj = service.add_adjustment(db, rider_id=body.rider_id, amount_fen=body.amount_fen, reason=body.reason,
                                 kind=body.kind, order_id=body.order_id, on=body.date, actor_id=p.user_id,
                                 actor_role=p.role)
    return adj
