"""Pay periods computed from the delivered orders, shifts and adjustments; closing, payouts, reconciliation.

Idempotence: a period is unique per (campus, kind, first day) and a payslip per (period, rider). Computing a
draft builds every rider's lines from the data and compares their digest with the stored one: equal means no
write at all, different means the lines are replaced and the revision goes up. A closed or paid period is
never recomputed; an adjustment aimed at a closed period goes to the first day after it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from waimai.core import audit
from waimai.core.database import utcnow
from waimai.core.errors import AppError, Conflict, NotFound, Unprocessable
from waimai.core.messages import N_
from waimai.core.timeutil import LOCAL
from waimai.platform.catalog.models import Campus, DeliveryPoint, Merchant
from waimai.platform.delivery.models import Rider
from waimai.platform.ordering.models import Order
from waimai.platform.ordering.state import Status
from waimai.platform.payroll import shifts
from waimai.platform.payroll.models import (
    AdjustmentKind,
    LineKind,
    PayAdjustment,
    PayLine,
    PayPeriod,
    PayRules,
    PeriodKind,
    PeriodStatus,
)
from waimai.platform.payroll.models import Payslip as PayslipRow
from waimai.platform.payroll.rules import DEFAULT, Rules, distance_m

log = structlog.get_logger(__name__)
MAX_ADJUSTMENT_FEN = 1_000_000  # ¥10,000: anything larger is a typo


# --- dates ---------------------------------------------------------------------------------------------------

def bounds(kind: str, day: dt.date) -> tuple[dt.date, dt.date]:
    """[first day, first day after) of the day or ISO week (Monday first) containing `day`."""
    if kind == PeriodKind.day:
        return day, day + dt.timedelta(days=1)
    if kind == PeriodKind.week:
        monday = day - dt.timedelta(days=day.weekday())
        return monday, monday + dt.timedelta(days=7)
    raise Unprocessable(f"Unknown period {kind!r}: day or week.", code="bad_period")


def local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=LOCAL).astimezone(dt.UTC)


def local_today(now: dt.datetime | None = None) -> dt.date:
    return (now or utcnow()).astimezone(LOCAL).date()


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days)]


# --- rules ---------------------------------------------------------------------------------------------------

def rules_for(db: Session, campus_id: int) -> Rules:
    row = db.scalar(select(PayRules).where(PayRules.campus_id == campus_id))
    if row is None:
        return DEFAULT
    return Rules(base_fen=row.base_fen, per_km_fen=row.per_km_fen, free_m=row.free_m, peak_pct=row.peak_pct,
                 peak_windows=tuple(row.peak_windows), hourly_min_fen=row.hourly_min_fen,
                 late_grace_min=row.late_grace_min, late_penalty_fen=row.late_penalty_fen, pay_cycle=row.pay_cycle)


def set_rules(db: Session, campus_id: int, rules: Rules, *, actor_id: int | None, actor_role: str) -> Rules:
    """Replace a campus's rules (audited with before and after). Drafts pick them up when next computed;
    closed periods keep the rules they were closed with."""
    if db.get(Campus, campus_id) is None:
        raise NotFound("No such campus.")
    before = rules_for(db, campus_id)
    row = db.scalar(select(PayRules).where(PayRules.campus_id == campus_id))
    if row is None:
        row = PayRules(campus_id=campus_id)
        db.add(row)
    d = rules.as_dict()
    for k, v in d.items():
        setattr(row, k, v)
    row.updated_by = actor_id
    audit.record(db, actor_id=actor_id, actor_role=actor_role, action="payroll.rules", target=f"campus:{campus_id}",
                 details={"before": before.as_dict(), "after": d})
    return rules


# --- computing lines ---------------------------------------------------------------------------------------------

@dataclass
class Line:
    """One payslip line, the same fields as a stored PayLine (templates and CSV take either)."""

    kind: str
    day: dt.date
    amount_fen: int
    at: dt.datetime | None = None
    order_id: int | None = None
    adjustment_id: int | None = None
    distance_m: int = 0
    base_fen: int = 0
    distance_fen: int = 0
    peak_fen: int = 0
    note: str = ""

    def key(self) -> list[Any]:
        return [self.kind, self.day.isoformat(), self.amount_fen, self.at.isoformat() if self.at else None,
                self.order_id, self.adjustment_id, self.distance_m, self.base_fen, self.distance_fen, self.peak_fen,
                self.note]


@dataclass
class Slip:
    """One rider's pay in one period as computed (a preview, or what a draft payslip is written from)."""

    rider_id: int
    lines: list[Line] = field(default_factory=list)
    shift_seconds: int = 0
    orders: int = 0
    delivery_fen: int = 0
    guarantee_fen: int = 0
    late_fen: int = 0
    tips_fen: int = 0
    adjustments_fen: int = 0
    total_fen: int = 0

    def tally(self) -> Slip:
        by: dict[str, int] = defaultdict(int)
        for ln in self.lines:
            by[ln.kind] += ln.amount_fen
        self.orders = sum(ln.kind == LineKind.order for ln in self.lines)
        self.delivery_fen, self.guarantee_fen = by[LineKind.order], by[LineKind.guarantee]
        self.late_fen, self.tips_fen, self.adjustments_fen = by[LineKind.late], by[LineKind.tip], by[LineKind.adjustment]
        self.total_fen = sum(by.values())
        return self

    def digest(self) -> str:
        body = json.dumps([self.shift_seconds, [ln.key() for ln in self.lines]], separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()


def _campus_riders(db: Session, campus_id: int) -> dict[int, Rider]:
    return {r.id: r for r in db.scalars(select(Rider).where(Rider.campus_id == campus_id).order_by(Rider.id))}


def delivered_orders(db: Session, rider_ids: list[int], start: dt.datetime, end: dt.datetime) -> list[Any]:
    """The delivered orders of these riders with delivered_at in [start, end), with what pay needs."""
    if not rider_ids:
        return []
    q = (select(Order.id, Order.number, Order.rider_id, Order.delivered_at, Order.promised_at,
                Merchant.x.label("mx"), Merchant.y.label("my"), Merchant.name.label("merchant"),
                DeliveryPoint.x.label("px"), DeliveryPoint.y.label("py"), DeliveryPoint.name.label("point"))
         .join(Merchant, Merchant.id == Order.merchant_id)
         .join(DeliveryPoint, DeliveryPoint.id == Order.delivery_point_id)
         .where(Order.rider_id.in_(rider_ids), Order.status == Status.delivered.value,
                Order.delivered_at >= start, Order.delivered_at < end)
         .order_by(Order.delivered_at, Order.id))
    return list(db.execute(q))


def compute_slips(db: Session, campus_id: int, start: dt.date, end: dt.date, rules: Rules,
                  now: dt.datetime, rider_ids: list[int] | None = None) -> dict[int, Slip]:
    """Every rider's lines for the campus days [start, end): per order, late penalties, the daily hourly
    top-up, tips and adjustments. Riders with nothing to show are left out."""
    riders = _campus_riders(db, campus_id)
    ids = [r for r in riders if rider_ids is None or r in rider_ids]
    t0, t1 = local_midnight(start), local_midnight(end)
    spans = shifts.intervals(db, ids, t0, t1, now)
    per_day: dict[tuple[int, dt.date], list[Line]] = defaultdict(list)
    for o in delivered_orders(db, ids, t0, t1):
        local_at = o.delivered_at.astimezone(LOCAL)
        dist = distance_m(o.mx, o.my, o.px, o.py)
        base, dfen, peak = rules.order_pay(dist, peak=rules.is_peak(local_at))
        day = local_at.date()
        per_day[(o.rider_id, day)].append(Line(
            kind=LineKind.order, day=day, at=o.delivered_at, order_id=o.id, distance_m=dist, base_fen=base,
            distance_fen=dfen, peak_fen=peak, amount_fen=base + dfen + peak,
            note=f"{o.number} {o.merchant} → {o.point}"[:200]))
        penalty = rules.late_penalty(o.delivered_at, o.promised_at)
        if penalty:
            minutes = int((o.delivered_at - o.promised_at).total_seconds() // 60)
            per_day[(o.rider_id, day)].append(Line(kind=LineKind.late, day=day, at=o.delivered_at, order_id=o.id,
                                                   amount_fen=penalty, note=f"{minutes} min"))
    adjustments: dict[int, list[PayAdjustment]] = defaultdict(list)
    if ids:
        for a in db.scalars(select(PayAdjustment).where(PayAdjustment.rider_id.in_(ids), PayAdjustment.applies_on >= start,
                                                        PayAdjustment.applies_on < end)
                            .order_by(PayAdjustment.applies_on, PayAdjustment.id)):
            adjustments[a.rider_id].append(a)
    out: dict[int, Slip] = {}
    for rid in ids:
        slip = Slip(rider_id=rid)
        for day in _days(start, end):
            lines = per_day.get((rid, day), [])
            slip.lines += lines
            secs = shifts.seconds_in(spans[rid], local_midnight(day), local_midnight(day + dt.timedelta(days=1)))
            slip.shift_seconds += secs
            earned = sum(ln.amount_fen for ln in lines if ln.kind == LineKind.order)
            top = rules.top_up(earned, secs)
            if top:
                slip.lines.append(Line(kind=LineKind.guarantee, day=day, amount_fen=top,
                                       note=f"{secs / 3600:.2f} h"))
        for a in adjustments.get(rid, []):
            slip.lines.append(Line(kind=LineKind.tip if a.kind == AdjustmentKind.tip else LineKind.adjustment,
                                   day=a.applies_on, at=a.created_at, order_id=a.order_id, adjustment_id=a.id,
                                   amount_fen=a.amount_fen, note=a.reason))
        if slip.lines or slip.shift_seconds:
            out[rid] = slip.tally()
    return out


# --- periods -----------------------------------------------------------------------------------------------------

@dataclass
class ComputeResult:
    period_id: int
    campus_id: int
    kind: str
    start: dt.date
    status: str
    created: bool = False  # the period row is new
    frozen: bool = False  # closed or paid: nothing was recomputed
    written: int = 0  # payslips created or whose lines changed
    unchanged: int = 0
    removed: int = 0  # draft payslips of riders who no longer have anything in the period

    @property
    def changed(self) -> bool:
        return self.created or self.written > 0 or self.removed > 0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["start"] = self.start.isoformat()
        d["changed"] = self.changed
        return d


def _lock(db: Session, campus_id: int) -> None:
    """Serialise a campus's payroll writes across processes (SQLite writers are serialised already)."""
    if db.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(f"payroll:{campus_id}".encode()).digest()[:8], "big", signed=True)
        db.execute(select(func.pg_advisory_xact_lock(key)))


def reference(campus: Campus, period: PayPeriod, rider_id: int) -> str:
    return f"WM-{campus.code}-{period.kind[0].upper()}{period.start_date:%Y%m%d}-R{rider_id}"[:48]


def batch_reference(campus: Campus, period: PayPeriod) -> str:
    return f"WM-{campus.code}-{period.kind[0].upper()}{period.start_date:%Y%m%d}"


def find_period(db: Session, campus_id: int, kind: str, day: dt.date) -> PayPeriod | None:
    start, _ = bounds(kind, day)
    return db.scalar(select(PayPeriod).where(PayPeriod.campus_id == campus_id, PayPeriod.kind == kind,
                                             PayPeriod.start_date == start))


def compute(db: Session, *, campus_id: int, kind: str, day: dt.date, now: dt.datetime | None = None,
            actor_id: int | None = None, actor_role: str = "system") -> ComputeResult:
    """Compute (or recompute) a period's draft payslips; the caller commits. Running it again on the same
    data writes nothing; on a closed or paid period it writes nothing and says so (`frozen`)."""
    now = now or utcnow()
    campus = db.get(Campus, campus_id)
    if campus is None:
        raise NotFound("No such campus.")
    start, end = bounds(kind, day)
    if local_midnight(start) > now:
        raise Unprocessable("That period has not started yet.", code="period_in_future")
    _lock(db, campus_id)
    period = find_period(db, campus_id, kind, start)
    created = period is None
    rules = rules_for(db, campus_id)
    if period is None:
        period = PayPeriod(campus_id=campus_id, kind=kind, start_date=start, end_date=end,
                           status=PeriodStatus.draft.value, rules=rules.as_dict(), computed_at=now)
        db.add(period)
        db.flush()
    res = ComputeResult(period_id=period.id, campus_id=campus_id, kind=kind, start=start, status=period.status,
                        created=created)
    if period.status != PeriodStatus.draft:
        res.frozen = True
        return res
    slips = compute_slips(db, campus_id, start, end, rules, now)
    existing = {p.rider_id: p for p in db.scalars(select(PayslipRow).where(PayslipRow.period_id == period.id))}
    for rid, slip in slips.items():
        digest = slip.digest()
        row = existing.pop(rid, None)
        if row is not None and row.digest == digest:
            res.unchanged += 1
            continue
        if row is None:
            row = PayslipRow(period_id=period.id, rider_id=rid, reference=reference(campus, period, rid), revision=1)
            db.add(row)
        else:
            row.revision += 1
        _fill(row, slip, digest, now)
        res.written += 1
    for row in existing.values():
        db.delete(row)
        res.removed += 1
    if res.changed or period.rules != rules.as_dict():
        period.rules, period.computed_at = rules.as_dict(), now
    if actor_id is not None or actor_role != "system":
        audit.record(db, actor_id=actor_id, actor_role=actor_role, action="payroll.compute",
                     target=f"pay_period:{period.id}", details=res.as_dict())
    return res


def _fill(row: PayslipRow, slip: Slip, digest: str, now: dt.datetime) -> None:
    row.lines = [PayLine(position=i, **{k: v for k, v in asdict(ln).items()}) for i, ln in enumerate(slip.lines)]
    for k in ("orders", "shift_seconds", "delivery_fen", "guarantee_fen", "late_fen", "tips_fen", "adjustments_fen",
              "total_fen"):
        setattr(row, k, getattr(slip, k))
    row.digest, row.updated_at = digest, now


def _overlapping_payable(db: Session, period: PayPeriod) -> PayPeriod | None:
    return db.scalar(select(PayPeriod).where(PayPeriod.campus_id == period.campus_id, PayPeriod.id != period.id,
                                             PayPeriod.payable.is_(True), PayPeriod.start_date < period.end_date,
                                             PayPeriod.end_date > period.start_date).limit(1))


def close(db: Session, period_id: int, *, now: dt.datetime | None = None, actor_id: int | None = None,
          actor_role: str = "system") -> PayPeriod:
    """Recompute a finished draft one last time, check it reconciles, and freeze it. It is payable when its
    kind is the campus's pay cycle and no other payable period covers any of its days."""
    now = now or utcnow()
    period = db.get(PayPeriod, period_id)
    if period is None:
        raise NotFound("No such pay period.")
    if period.status != PeriodStatus.draft:
        raise Conflict(f"The period is already {period.status}; closed periods never change.",
                       code="period_closed", details={"status": period.status})
    if local_midnight(period.end_date) > now:
        raise Conflict("The period has not ended yet: orders delivered later would be left out.",
                       code="period_open", details={"ends": local_midnight(period.end_date).isoformat()})
    compute(db, campus_id=period.campus_id, kind=period.kind, day=period.start_date, now=now)
    rec = reconcile(db, period)
    if not rec.ok:
        raise Conflict("The period does not reconcile with the delivered orders.", code="not_reconciled",
                       details=rec.as_dict())
    rules = rules_for(db, period.campus_id)
    other = _overlapping_payable(db, period)
    period.payable = period.kind == rules.pay_cycle and other is None
    period.status, period.closed_at, period.closed_by = PeriodStatus.closed.value, now, actor_id
    db.flush()
    slips = list(db.scalars(select(PayslipRow).where(PayslipRow.period_id == period.id)))
    audit.record(db, actor_id=actor_id, actor_role=actor_role, action="payroll.close", target=f"pay_period:{period.id}",
                 details={"kind": period.kind, "start": period.start_date.isoformat(), "payable": period.payable,
                          "payslips": len(slips), "total_fen": sum(s.total_fen for s in slips),
                          "orders": rec.orders, "overlaps": other.id if other else None})
    return period


def mark_paid(db: Session, period_id: int, *, batch_ref: str, now: dt.datetime | None = None,
              actor_id: int | None, actor_role: str) -> PayPeriod:
    period = db.get(PayPeriod, period_id)
    if period is None:
        raise NotFound("No such pay period.")
    if period.status != PeriodStatus.closed or not period.payable:
        raise Conflict("Only a closed, payable period can be marked paid.", code="not_payable",
                       details={"status": period.status, "payable": period.payable})
    period.status, period.paid_at, period.batch_ref = PeriodStatus.paid.value, now or utcnow(), batch_ref
    audit.record(db, actor_id=actor_id, actor_role=actor_role, action="payroll.paid", target=f"pay_period:{period.id}",
                 details={"batch_ref": batch_ref})
    return period


# --- adjustments -------------------------------------------------------------------------------------------------

def _closed_containing(db: Session, campus_id: int, day: dt.date) -> PayPeriod | None:
    return db.scalar(select(PayPeriod).where(PayPeriod.campus_id == campus_id,
                                             PayPeriod.status != PeriodStatus.draft.value,
                                             PayPeriod.start_date <= day, PayPeriod.end_date > day)
                     .order_by(PayPeriod.end_date.desc()).limit(1))


def add_adjustment(db: Session, *, rider_id: int, amount_fen: int, reason: str, kind: str = AdjustmentKind.bonus,
                   order_id: int | None = None, on: dt.date | None = None, actor_id: int | None,
                   actor_role: str, now: dt.datetime | None = None) -> PayAdjustment:
    """A manual adjustment (tips: kind `tip` with the delivered order). It counts on `on` (default: the order's
    delivery day for tips, else today), or, when a closed period covers that day, on the first day after it."""
    now = now or utcnow()
    rider = db.get(Rider, rider_id)
    if rider is None:
        raise NotFound("No such rider.")
    reason = reason.strip()
    if len(reason) < 3:
        raise Unprocessable("Give a reason (at least 3 characters).", code="reason_required")
    try:
        kind = AdjustmentKind(kind).value
    except ValueError:
        raise Unprocessable(f"Unknown adjustment kind {kind!r}.", code="bad_kind",
                            details={"kinds": [k.value for k in AdjustmentKind]}) from None
    if amount_fen == 0 or abs(amount_fen) > MAX_ADJUSTMENT_FEN:
        raise Unprocessable(f"The amount must be non-zero and at most {MAX_ADJUSTMENT_FEN} fen either way.",
                            code="bad_amount")
    if kind in (AdjustmentKind.tip, AdjustmentKind.bonus) and amount_fen < 0:
        raise Unprocessable("Tips and bonuses are positive; use a deduction.", code="bad_amount")
    if kind == AdjustmentKind.deduction and amount_fen > 0:
        raise Unprocessable("A deduction is negative.", code="bad_amount")
    if order_id is not None or kind == AdjustmentKind.tip:
        order = db.get(Order, order_id) if order_id is not None else None
        if order is None or order.rider_id != rider_id or order.status != Status.delivered:
            raise Unprocessable(N_("A tip needs an order this rider delivered.") if kind == AdjustmentKind.tip else
                                N_("The order is not one this rider delivered."), code="bad_order")
        if on is None and order.delivered_at is not None:
            on = order.delivered_at.astimezone(LOCAL).date()
    requested = on or local_today(now)
    _lock(db, rider.campus_id)
    applies = requested
    for _ in range(400):  # walk past closed periods (a year of closed days at most)
        closed = _closed_containing(db, rider.campus_id, applies)
        if closed is None:
            break
        applies = closed.end_date
    adj = PayAdjustment(rider_id=rider_id, kind=kind, amount_fen=amount_fen, reason=reason[:200], order_id=order_id,
                        requested_on=requested, applies_on=applies, created_by=actor_id, created_at=now)
    db.add(adj)
    db.flush()
    audit.record(db, actor_id=actor_id, actor_role=actor_role, action="payroll.adjustment",
                 target=f"rider:{rider_id}", details={"adjustment_id": adj.id, "kind": kind, "amount_fen": amount_fen,
                                                      "reason": adj.reason, "order_id": order_id,
                                                      "requested_on": requested.isoformat(),
                                                      "applies_on": applies.isoformat()})
    return adj


# --- reconciliation ----------------------------------------------------------------------------------------------

@dataclass
class RiderCheck:
    rider_id: int
    delivered: int
    paid: int
    missing: list[int]  # delivered in the period, no order line
    extra: list[int]  # an order line for an order that was not delivered by this rider in the period
    duplicated: list[int]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.duplicated)


@dataclass
class Reconciliation:
    period_id: int
    orders: int  # delivered orders in the period
    lines: int  # order lines on its payslips
    riders: list[RiderCheck]
    adjustments_missing: list[int]
    adjustments_extra: list[int]
    bad_totals: list[int]  # payslips whose total is not the sum of their lines

    @property
    def ok(self) -> bool:
        return (all(r.ok for r in self.riders) and not self.adjustments_missing and not self.adjustments_extra
                and not self.bad_totals and self.orders == self.lines)

    @property
    def behind(self) -> bool:
        """Not reconciled only because work was added after the last compute (orders delivered, adjustments
        made): nothing paid twice or wrongly. For a draft that is not a failure, it is a recompute away."""
        return (not self.ok and not self.adjustments_extra and not self.bad_totals
                and all(not (r.extra or r.duplicated) for r in self.riders))

    def as_dict(self) -> dict[str, Any]:
        return {"period_id": self.period_id, "ok": self.ok, "orders": self.orders, "lines": self.lines,
                "riders": [{**asdict(r), "ok": r.ok} for r in self.riders if not r.ok],
                "adjustments_missing": self.adjustments_missing, "adjustments_extra": self.adjustments_extra,
                "bad_totals": self.bad_totals}


def reconcile(db: Session, period: PayPeriod) -> Reconciliation:
    """Do the period's order lines match, order for order, the delivered orders of each rider in it (and its
    adjustment lines the adjustments that apply in it)?"""
    riders = _campus_riders(db, period.campus_id)
    t0, t1 = local_midnight(period.start_date), local_midnight(period.end_date)
    expected: dict[int, set[int]] = defaultdict(set)
    for o in delivered_orders(db, list(riders), t0, t1):
        expected[o.rider_id].add(o.id)
    slips = list(db.scalars(select(PayslipRow).where(PayslipRow.period_id == period.id)))
    paid: dict[int, list[int]] = defaultdict(list)
    adj_lines: set[int] = set()
    bad_totals = []
    for s in slips:
        if s.total_fen != sum(ln.amount_fen for ln in s.lines):
            bad_totals.append(s.id)
        for ln in s.lines:
            if ln.kind == LineKind.order and ln.order_id is not None:
                paid[s.rider_id].append(ln.order_id)
            elif ln.adjustment_id is not None:
                adj_lines.add(ln.adjustment_id)
    checks = []
    for rid in sorted(set(expected) | set(paid)):
        got = paid.get(rid, [])
        want = expected.get(rid, set())
        dup = sorted({i for i in got if got.count(i) > 1})
        checks.append(RiderCheck(rider_id=rid, delivered=len(want), paid=len(got), missing=sorted(want - set(got)),
                                 extra=sorted(set(got) - want), duplicated=dup))
    adj_want = set(db.scalars(select(PayAdjustment.id).where(PayAdjustment.rider_id.in_(list(riders)),
                                                             PayAdjustment.applies_on >= period.start_date,
                                                             PayAdjustment.applies_on < period.end_date))) \
        if riders else set()
    return Reconciliation(period_id=period.id, orders=sum(len(v) for v in expected.values()),
                          lines=sum(len(v) for v in paid.values()), riders=checks,
                          adjustments_missing=sorted(adj_want - adj_lines), adjustments_extra=sorted(adj_lines - adj_want),
                          bad_totals=bad_totals)


# --- reading -----------------------------------------------------------------------------------------------------

def statement(db: Session, rider: Rider, kind: str, day: dt.date, now: dt.datetime | None = None
              ) -> tuple[PayPeriod | None, PayslipRow | Slip]:
    """A rider's pay for the period containing `day`: the frozen payslip of a closed period, otherwise
    computed now from the data (what the draft will say)."""
    now = now or utcnow()
    period = find_period(db, rider.campus_id, kind, day)
    if period is not None and period.status != PeriodStatus.draft:
        row = db.scalar(select(PayslipRow).where(PayslipRow.period_id == period.id, PayslipRow.rider_id == rider.id))
        return period, row if row is not None else Slip(rider_id=rider.id)
    start, end = bounds(kind, day)
    slips = compute_slips(db, rider.campus_id, start, end, rules_for(db, rider.campus_id), now, rider_ids=[rider.id])
    return period, slips.get(rider.id, Slip(rider_id=rider.id))


def periods(db: Session, *, campus_id: int | None = None, kind: str | None = None, limit: int = 60) -> list[PayPeriod]:
    q = select(PayPeriod).order_by(PayPeriod.start_date.desc(), PayPeriod.kind).limit(limit)
    if campus_id is not None:
        q = q.where(PayPeriod.campus_id == campus_id)
    if kind is not None:
        q = q.where(PayPeriod.kind == kind)
    return list(db.scalars(q))


def payslips(db: Session, *, period_id: int | None = None, rider_id: int | None = None,
             limit: int = 200) -> list[PayslipRow]:
    q = select(PayslipRow).join(PayPeriod, PayPeriod.id == PayslipRow.period_id).order_by(
        PayPeriod.start_date.desc(), PayPeriod.kind, PayslipRow.rider_id).limit(limit)
    if period_id is not None:
        q = q.where(PayslipRow.period_id == period_id)
    if rider_id is not None:
        q = q.where(PayslipRow.rider_id == rider_id)
    return list(db.scalars(q))


def adjustments(db: Session, *, rider_id: int | None = None, limit: int = 200) -> list[PayAdjustment]:
    q = select(PayAdjustment).order_by(PayAdjustment.id.desc()).limit(limit)
    if rider_id is not None:
        q = q.where(PayAdjustment.rider_id == rider_id)
    return list(db.scalars(q))


def auto_run(db: Session, *, now: dt.datetime | None = None, close_after_h: float | None = None) -> list[ComputeResult]:
    """The background job: keep today's and this week's drafts (and the previous ones, until closed) current,
    and close drafts that ended more than `close_after_h` hours ago when that is set."""
    now = now or utcnow()
    today = local_today(now)
    out = []
    for campus_id in db.scalars(select(Campus.id).order_by(Campus.id)):
        for kind in (PeriodKind.day, PeriodKind.week):
            cur, _ = bounds(kind, today)
            prev, _ = bounds(kind, cur - dt.timedelta(days=1))
            for start in (prev, cur):
                p = find_period(db, campus_id, kind, start)
                if p is None or p.status == PeriodStatus.draft:
                    out.append(compute(db, campus_id=campus_id, kind=kind, day=start, now=now))
        if close_after_h is not None:
            cutoff = now - dt.timedelta(hours=close_after_h)
            for p in db.scalars(select(PayPeriod).where(PayPeriod.campus_id == campus_id,
                                                        PayPeriod.status == PeriodStatus.draft.value)
                                .order_by(PayPeriod.start_date, PayPeriod.kind)):
                if local_midnight(p.end_date) <= cutoff:
                    try:
                        with db.begin_nested():
                            close(db, p.id, now=now, actor_role="system")
                    except AppError as exc:  # left as a draft for ops, who see why on /ops/payroll
                        log.warning("payroll_auto_close_failed", period_id=p.id, error=exc.message)
    return out
