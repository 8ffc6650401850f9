"""Rider pay pages: the rider's earnings (today and this week, order by order), payslips, and /ops/payroll
(compute, close and pay periods, reconciliation, adjustments, rules, CSV downloads).

The forms call the payroll service exactly as the API does, with the same audit entries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from waimai.core import uow
from waimai.core.deps import IdPath, Principal
from waimai.core.errors import AppError
from waimai.platform.catalog.models import Campus
from waimai.platform.delivery.models import Rider
from waimai.platform.payroll import service
from waimai.platform.payroll import views as pay_views
from waimai.platform.payroll.models import PayPeriod, Payslip, PeriodStatus
from waimai.platform.payroll.rules import Rules
from waimai.platform.payroll.schemas import FIRST_DAY, LAST_DAY
from waimai.web.i18n import gettext, say
from waimai.web.routes import _locale, _need, back, render

router = APIRouter(include_in_schema=False)
PAGE = "/ops/payroll"


def _date(text: str | None, default: dt.date) -> dt.date:
    try:
        day = dt.date.fromisoformat(text) if text else default
    except ValueError:
        return default
    return day if FIRST_DAY <= day <= LAST_DAY else default


def _view(slip: Any, period: PayPeriod | None, kind: str, start: dt.date, end: dt.date) -> dict[str, Any]:
    return {"slip": slip, "period": period, "kind": kind, "start": start, "last": end - dt.timedelta(days=1),
            "stored": isinstance(slip, Payslip)}


@router.get("/rider/earnings", response_class=HTMLResponse)
def earnings_page(request: Request) -> Response:
    p = _need(request, "rider")
    if isinstance(p, RedirectResponse):
        return p
    today = service.local_today()
    day = _date(request.query_params.get("date"), today)
    with request.app.state.db.read_session() as db:
        try:
            raw = request.query_params.get("rider_id")
            rider = pay_views.rider_in_scope(db, p, int(raw) if raw and raw.isdigit() else None)
        except AppError as exc:
            return render(request, "error.html", {"message": say(exc)}, 404)
        views = {}
        for kind in ("day", "week"):
            period, slip = service.statement(db, rider, kind, day)
            views[kind] = _view(slip, period, kind, *service.bounds(kind, day))
        # Payslips are the frozen documents of closed periods; an open (draft) period is the live figure above,
        # computed from the same data, so the page never shows two different amounts for one day.
        slips = [(s, per) for s, per in ((s, db.get(PayPeriod, s.period_id))
                                         for s in service.payslips(db, rider_id=rider.id, limit=60))
                 if per is not None and per.status != PeriodStatus.draft][:30]
    return render(request, "rider_earnings.html", {
        "rider": rider, "day": day, "today": today, "views": views, "payslips": slips,
        "prev": day - dt.timedelta(days=1), "next": day + dt.timedelta(days=1) if day < today else None,
        "suffix": f"&rider_id={rider.id}" if p.role == "ops" else ""})


@router.get("/payslips/{payslip_id}", response_class=HTMLResponse)
def payslip_page(request: Request, payslip_id: IdPath) -> Response:
    p = _need(request, "rider")
    if isinstance(p, RedirectResponse):
        return p
    _locale(request)
    with request.app.state.db.read_session() as db:
        try:
            slip, period = pay_views.visible_payslip(db, p, payslip_id)
        except AppError as exc:
            return render(request, "error.html", {"message": say(exc)}, 404)
        rider = db.get(Rider, slip.rider_id)
        campus = db.get(Campus, period.campus_id)
        ctx = {"rider": rider, "campus": campus, **_view(slip, period, period.kind, period.start_date, period.end_date)}
        ctx["lines"] = list(slip.lines)
    return render(request, "payslip.html", ctx)


# --- ops ---------------------------------------------------------------------------------------------------------

def _act(request: Request, fn: Callable[[Session, Principal], str], *, where: str = PAGE) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    _locale(request)
    try:
        with uow.unit_of_work(request.app.state.db) as db:
            msg = fn(db, p)
        return back(where, msg=msg)
    except AppError as exc:
        return back(where, err=say(exc))


@router.get(PAGE, response_class=HTMLResponse)
def ops_payroll(request: Request) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    q = request.query_params
    with request.app.state.db.read_session() as db:
        campus_id = pay_views.campus_id_or_first(db, int(q["campus_id"]) if q.get("campus_id", "").isdigit() else None)
        campus = db.get(Campus, campus_id)
        selected = None
        if q.get("period_id", "").isdigit():
            selected = db.get(PayPeriod, int(q["period_id"]))
        recent = service.periods(db, campus_id=campus_id, limit=40)
        if selected is None and recent:
            selected = recent[0]
        detail = None
        if selected is not None:
            riders = {r.id: r for r in db.scalars(select(Rider).where(Rider.campus_id == selected.campus_id))}
            detail = {"period": selected, "rec": service.reconcile(db, selected),
                      "last": selected.end_date - dt.timedelta(days=1),
                      "slips": [(s, riders.get(s.rider_id)) for s in service.payslips(db, period_id=selected.id,
                                                                                      limit=10_000)]}
        totals = {x.id: pay_views.period_out(db, x) for x in recent}
        ctx = {"campus": campus, "rules": service.rules_for(db, campus_id), "recent": recent, "totals": totals,
               "detail": detail, "today": service.local_today(),
               "riders": list(db.scalars(select(Rider).where(Rider.campus_id == campus_id).order_by(Rider.id))),
               "adjustments": service.adjustments(db, limit=20)}
    return render(request, "ops_payroll.html", ctx)


@router.post(PAGE + "/compute")
def ops_compute(request: Request, kind: str = Form("day"), date: str = Form(""),
                campus_id: int = Form(1, ge=1, le=2**31 - 1)) -> Response:
    def go(db: Session, p: Principal) -> str:
        r = service.compute(db, campus_id=campus_id, kind=kind, day=_date(date, service.local_today()),
                            actor_id=p.user_id, actor_role=p.role)
        if r.frozen:
            return gettext("That period is {status}: closed periods never change.").format(
                status=gettext("period." + r.status))
        return gettext("Computed: {w} payslip(s) written, {u} unchanged, {r} removed.").format(
            w=r.written, u=r.unchanged, r=r.removed)
    return _act(request, go)


@router.post(PAGE + "/{period_id}/close")
def ops_close(request: Request, period_id: IdPath) -> Response:
    def go(db: Session, p: Principal) -> str:
        period = service.close(db, period_id, actor_id=p.user_id, actor_role=p.role)
        return gettext("Period closed (payable: {payable}).").format(
            payable=gettext("yes") if period.payable else gettext("no"))
    return _act(request, go, where=f"{PAGE}?period_id={period_id}")


@router.post(PAGE + "/{period_id}/paid")
def ops_paid(request: Request, period_id: IdPath, batch_ref: str = Form("", max_length=64)) -> Response:
    def go(db: Session, p: Principal) -> str:
        period = db.get(PayPeriod, period_id)
        campus = db.get(Campus, period.campus_id) if period else None
        ref = batch_ref.strip() or (service.batch_reference(campus, period) if campus and period else "-")
        service.mark_paid(db, period_id, batch_ref=ref, actor_id=p.user_id, actor_role=p.role)
        return gettext("Marked paid.")
    return _act(request, go, where=f"{PAGE}?period_id={period_id}")


@router.post(PAGE + "/adjustments")
def ops_adjust(request: Request, rider_id: int = Form(..., ge=1, le=2**31 - 1), amount_yuan: str = Form(...),
               reason: str = Form("", max_length=200), kind: str = Form("bonus"), order_id: str = Form(""),
               date: str = Form("")) -> Response:
    def go(db: Session, p: Principal) -> str:
        fen = _fen(amount_yuan)
        adj = service.add_adjustment(db, rider_id=rider_id, amount_fen=fen, reason=reason, kind=kind,
                                     order_id=int(order_id) if order_id.strip().isdigit() else None,
                                     on=_date(date, service.local_today()) if date else None,
                                     actor_id=p.user_id, actor_role=p.role)
        return gettext("Adjustment recorded; it counts on {day}.").format(day=adj.applies_on.isoformat())
    return _act(request, go)


def _fen(text: str) -> int:
    """'12.5' / '-3' / '¥8.05' → fen, without float."""
    t = text.strip().replace("¥", "").replace(",", "")
    sign = -1 if t.startswith("-") else 1
    t = t.lstrip("+-")
    whole, _, frac = t.partition(".")
    if not (whole or frac) or not (whole.isdigit() or whole == "") or not (frac.isdigit() or frac == "") or len(frac) > 2:
        raise AppError(gettext("Give the amount in yuan, e.g. 12.50 or -5."))
    return sign * (int(whole or "0") * 100 + int((frac + "00")[:2]))


@router.post(PAGE + "/rules")
def ops_rules(request: Request, campus_id: int = Form(..., ge=1, le=2**31 - 1), base_fen: int = Form(..., ge=0),
              per_km_fen: int = Form(..., ge=0), free_m: int = Form(..., ge=0), peak_pct: int = Form(..., ge=100),
              peak_windows: str = Form(""), hourly_min_fen: int = Form(..., ge=0), late_grace_min: int = Form(..., ge=0),
              late_penalty_fen: int = Form(..., ge=0), pay_cycle: str = Form("week")) -> Response:
    def go(db: Session, p: Principal) -> str:
        try:
            rules = Rules(base_fen=base_fen, per_km_fen=per_km_fen, free_m=free_m, peak_pct=peak_pct,
                          peak_windows=tuple(w.strip() for w in peak_windows.replace("，", ",").split(",") if w.strip()),
                          hourly_min_fen=hourly_min_fen, late_grace_min=late_grace_min,
                          late_penalty_fen=late_penalty_fen, pay_cycle=pay_cycle)
        except ValueError as exc:
            raise AppError(str(exc)) from None
        service.set_rules(db, campus_id, rules, actor_id=p.user_id, actor_role=p.role)
        return gettext("Pay rules saved; drafts use them from the next computation.")
    return _act(request, go)
