"""Pay periods on SQLite and PostgreSQL: exact lines, idempotent recompute, frozen closed periods, adjustments
that move past them, and a simulated campus day whose payslips reconcile order for order."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from waimai.core.audit import AuditEntry
from waimai.core.database import Database
from waimai.core.errors import Conflict, Unprocessable
from waimai.core.events import Dispatcher, Registry
from waimai.core.timeutil import LOCAL
from waimai.platform.accounts.models import User
from waimai.platform.delivery.models import Rider
from waimai.platform.delivery.service import set_shift
from waimai.platform.ordering.models import Order
from waimai.platform.payroll import export, service, shifts, simday
from waimai.platform.payroll.models import PayLine, PayPeriod, Payslip, RiderShift
from waimai.platform.payroll.rules import Rules

DAY = dt.date(2026, 3, 4)  # a Wednesday long past: the demo rider's seeded shift is not in it
_numbers = itertools.count(1)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    d = Database(db_url)
    yield d
    d.dispose()


def local(day: dt.date, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm), tzinfo=LOCAL).astimezone(dt.UTC)


def deliver(s, rider_id: int, at: dt.datetime, *, promised: dt.datetime | None = None, merchant: int = 1,  # type: ignore[no-untyped-def]
            point: int = 1) -> int:
    """A delivered order written straight into the table (what the rider's 'delivered' leaves behind)."""
    customer = s.scalar(select(User).where(User.phone == "13800000001"))
    o = Order(number=f"T{next(_numbers):08d}{rider_id:03d}{at:%H%M%S}", customer_id=customer.id, merchant_id=merchant,
              delivery_point_id=point, rider_id=rider_id, status="delivered", payment_method="cod", subtotal_fen=1500,
              delivery_fee_fen=300, total_fen=1800, proof_code="1234", contact_phone=customer.phone,
              promised_at=promised or at + dt.timedelta(minutes=10), picked_up_at=at - dt.timedelta(minutes=8),
              delivered_at=at, created_at=at - dt.timedelta(minutes=30))
    s.add(o)
    s.flush()
    return o.id


def on_shift(s, rider_id: int, start: dt.datetime, end: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    s.add(RiderShift(rider_id=rider_id, started_at=start, ends_at=end))
    s.flush()


def slip_of(s, kind: str, day: dt.date, rider_id: int) -> Payslip:  # type: ignore[no-untyped-def]
    p = service.find_period(s, 1, kind, day)
    assert p is not None
    row = s.scalar(select(Payslip).where(Payslip.period_id == p.id, Payslip.rider_id == rider_id))
    assert row is not None
    return row


def ops_id(s) -> int:  # type: ignore[no-untyped-def]
    return s.scalar(select(User.id).where(User.phone == "13800000009"))


def test_a_day_pays_orders_peak_penalty_tip_and_the_hourly_minimum(db: Database) -> None:
    with db.session() as s:
        on_shift(s, 1, local(DAY, 9), local(DAY, 13))
        calm = deliver(s, 1, local(DAY, 10))
        rush = deliver(s, 1, local(DAY, 12), promised=local(DAY, 11, 50))  # in the lunch peak, 10 min late
        service.add_adjustment(s, rider_id=1, amount_fen=500, reason="tip from the customer", kind="tip",
                               order_id=rush, actor_id=ops_id(s), actor_role="ops")
        r = service.compute(s, campus_id=1, kind="day", day=DAY)
        s.commit()
        assert r.created and r.written == 1
        slip = slip_of(s, "day", DAY, 1)
        got = [(ln.kind, ln.order_id, ln.distance_m, ln.base_fen, ln.distance_fen, ln.peak_fen, ln.amount_fen)
               for ln in slip.lines]
        assert got == [
            ("order", calm, 721, 400, 33, 0, 433),  # 721 m from 兰州拉面 to 北1栋: (721 - 500) × ¥1.50/km
            ("order", rush, 721, 400, 33, 217, 650),  # × 1.5 in the peak window
            ("late", rush, 0, 0, 0, 0, -200),
            ("guarantee", None, 0, 0, 0, 0, 6917),  # 4 h × ¥20 = ¥80 > ¥10.83 earned
            ("tip", rush, 0, 0, 0, 0, 500),
        ]
        assert (slip.orders, slip.shift_seconds, slip.delivery_fen, slip.guarantee_fen, slip.late_fen, slip.tips_fen,
                slip.total_fen) == (2, 4 * 3600, 1083, 6917, -200, 500, 8300)
        # Other campus rules: a busier rider earns more than the minimum, so no top-up.
        service.set_rules(s, 1, Rules(base_fen=5000), actor_id=ops_id(s), actor_role="ops")
        service.compute(s, campus_id=1, kind="day", day=DAY)
        s.commit()
        slip = slip_of(s, "day", DAY, 1)
        assert [ln.kind for ln in slip.lines] == ["order", "order", "late", "tip"]
        assert slip.total_fen == 5033 + (5033 + 2517) - 200 + 500
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action.in_(["payroll.rules", "payroll.adjustment"]))) == 2


def test_recomputing_changes_nothing_and_never_makes_a_second_payslip(db: Database) -> None:
    with db.session() as s:
        on_shift(s, 2, local(DAY, 10), local(DAY, 14))
        for h in (11, 12, 13):
            deliver(s, 2, local(DAY, h))
        first = service.compute(s, campus_id=1, kind="day", day=DAY)
        s.commit()
        slip = slip_of(s, "day", DAY, 2)
        before = (slip.id, slip.digest, slip.revision, slip.total_fen,
                  [(ln.id, ln.kind, ln.amount_fen) for ln in slip.lines])
        computed_at = service.find_period(s, 1, "day", DAY).computed_at  # type: ignore[union-attr]
    for _ in range(2):
        with db.session() as s:
            again = service.compute(s, campus_id=1, kind="day", day=DAY)
            assert not again.changed and (again.written, again.unchanged) == (0, first.written)
            assert not s.new and not s.dirty and not s.deleted  # nothing to write
            s.commit()
    with db.session() as s:
        slip = slip_of(s, "day", DAY, 2)
        assert (slip.id, slip.digest, slip.revision, slip.total_fen,
                [(ln.id, ln.kind, ln.amount_fen) for ln in slip.lines]) == before
        assert service.find_period(s, 1, "day", DAY).computed_at == computed_at  # type: ignore[union-attr]
        # A new delivery changes the draft in place: same payslip, next revision, one per rider and period.
        deliver(s, 2, local(DAY, 13, 30))
        r = service.compute(s, campus_id=1, kind="day", day=DAY)
        s.commit()
        assert (r.written, r.created) == (1, False)
        slip = slip_of(s, "day", DAY, 2)
        assert (slip.id, slip.revision, slip.orders) == (before[0], 2, 4)
        assert s.scalar(select(func.count()).select_from(Payslip).where(Payslip.rider_id == 2)) == 1
        assert s.scalar(select(func.count()).select_from(PayPeriod)) == 1
        assert s.scalar(select(func.count()).select_from(PayLine).where(PayLine.payslip_id == slip.id)) == len(slip.lines)


def test_closed_periods_are_frozen_and_adjustments_move_past_them(db: Database) -> None:
    with db.session() as s:
        ops = ops_id(s)
        on_shift(s, 3, local(DAY, 11), local(DAY, 13))
        deliver(s, 3, local(DAY, 12))
        period = service.close(s, service.compute(s, campus_id=1, kind="day", day=DAY).period_id,
                               actor_id=ops, actor_role="ops")
        s.commit()
        assert (period.status, period.payable) == ("closed", False)  # the campus pays weekly: a statement
        frozen = slip_of(s, "day", DAY, 3)
        before = (frozen.digest, frozen.revision, frozen.total_fen, len(frozen.lines))
        # An order that turns up afterwards for that day is not slipped into the closed period...
        late_comer = deliver(s, 3, local(DAY, 12, 30))
        r = service.compute(s, campus_id=1, kind="day", day=DAY)
        assert r.frozen and not r.changed
        s.commit()
        s.refresh(frozen)
        assert (frozen.digest, frozen.revision, frozen.total_fen, len(frozen.lines)) == before
        # ...and the reconciliation says so.
        rec = service.reconcile(s, period)
        assert not rec.ok and [(c.rider_id, c.missing) for c in rec.riders if not c.ok] == [(3, [late_comer])]
        with pytest.raises(Conflict):
            service.close(s, period.id, actor_id=ops, actor_role="ops")
        # An adjustment aimed at the closed day counts on the next one.
        adj = service.add_adjustment(s, rider_id=3, amount_fen=-300, reason="damaged bag", kind="deduction", on=DAY,
                                     actor_id=ops, actor_role="ops")
        assert (adj.requested_on, adj.applies_on) == (DAY, DAY + dt.timedelta(days=1))
        assert service.compute(s, campus_id=1, kind="day", day=DAY).frozen
        nxt = service.compute(s, campus_id=1, kind="day", day=DAY + dt.timedelta(days=1))
        s.commit()
        assert nxt.written == 1 and slip_of(s, "day", DAY + dt.timedelta(days=1), 3).adjustments_fen == -300
        # The week (the pay cycle) is payable; nothing else covering its days may be.
        week = service.close(s, service.compute(s, campus_id=1, kind="week", day=DAY).period_id, actor_id=ops,
                             actor_role="ops")
        s.commit()
        assert week.payable and slip_of(s, "week", DAY, 3).orders == 2
        service.set_rules(s, 1, Rules(pay_cycle="day"), actor_id=ops, actor_role="ops")
        thu = service.close(s, service.compute(s, campus_id=1, kind="day", day=DAY + dt.timedelta(days=1)).period_id,
                            actor_id=ops, actor_role="ops")
        assert not thu.payable  # its day is already in the payable week: never paid twice
        # A period still running cannot be closed; paid is final.
        today = service.compute(s, campus_id=1, kind="day", day=service.local_today())
        with pytest.raises(Conflict) as exc:
            service.close(s, today.period_id, actor_id=ops, actor_role="ops")
        assert exc.value.code == "period_open"
        with pytest.raises(Conflict):
            service.mark_paid(s, thu.id, batch_ref="X", actor_id=ops, actor_role="ops")
        service.mark_paid(s, week.id, batch_ref="BANK-1", actor_id=ops, actor_role="ops")
        with pytest.raises(Conflict):
            service.mark_paid(s, week.id, batch_ref="BANK-2", actor_id=ops, actor_role="ops")
        assert service.compute(s, campus_id=1, kind="week", day=DAY).frozen
        s.commit()
        actions = Counter(s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("payroll.%"))))
        assert actions == {"payroll.close": 3, "payroll.adjustment": 1, "payroll.rules": 1, "payroll.paid": 1}


def test_adjustments_need_a_reason_a_sane_amount_and_a_real_order_for_tips(db: Database) -> None:
    with db.session() as s:
        ops = ops_id(s)
        mine = deliver(s, 4, local(DAY, 12))
        theirs = deliver(s, 5, local(DAY, 12))
        for kw in ({"reason": "  "}, {"amount_fen": 0}, {"amount_fen": 10**8}, {"kind": "tip", "order_id": theirs},
                   {"kind": "tip"}, {"kind": "bonus", "amount_fen": -100}, {"kind": "deduction", "amount_fen": 100},
                   {"kind": "salary"}):
            with pytest.raises(Unprocessable):
                service.add_adjustment(s, **{"rider_id": 4, "amount_fen": 100, "reason": "because", **kw},  # type: ignore[arg-type]
                                       actor_id=ops, actor_role="ops")
        tip = service.add_adjustment(s, rider_id=4, amount_fen=300, reason="thanks", kind="tip", order_id=mine,
                                     actor_id=ops, actor_role="ops")
        assert tip.applies_on == DAY  # a tip counts on the day of its delivery


def test_shift_log_follows_the_riders_table(db: Database) -> None:
    registry = Registry()  # the subscriber as waimai/subscribers.py registers it, on this test's database
    registry.add("payroll.shift_log", ("rider.shift",), shifts.log_shift)
    dispatcher = Dispatcher(db, registry)
    with db.session() as s:
        rider = s.get(Rider, 6)
        set_shift(s, rider, on=True, hours=4)  # type: ignore[arg-type]
        s.commit()
        started = rider.shift_started_at  # type: ignore[union-attr]
        set_shift(s, rider, on=False)  # type: ignore[arg-type]
        s.commit()
        dispatcher.run_once()
        dispatcher.run_once()  # delivered once: a second round changes nothing
        rows = list(s.scalars(select(RiderShift).where(RiderShift.rider_id == 6)))
        assert [(r.started_at, r.ends_at) for r in rows] == [(started, rider.shift_ends_at)]  # type: ignore[union-attr]
        assert rows[0].ends_at - rows[0].started_at < dt.timedelta(minutes=1)  # type: ignore[operator]
        # A shift started over a running one ends the running one.
        set_shift(s, rider, on=True, hours=4)  # type: ignore[arg-type]
        s.commit()
        set_shift(s, rider, on=True, hours=2)  # type: ignore[arg-type]
        s.commit()
        dispatcher.run_once()
        rows = list(s.scalars(select(RiderShift).where(RiderShift.rider_id == 6).order_by(RiderShift.started_at)))
        assert len(rows) == 3 and rows[1].ends_at == rows[2].started_at
    # Overlaps merge, and time is clipped to the window and to now.
    with db.session() as s:
        on_shift(s, 7, local(DAY, 9), local(DAY, 12))
        on_shift(s, 7, local(DAY, 11), local(DAY, 14))
        on_shift(s, 7, local(DAY, 23), local(DAY + dt.timedelta(days=1), 2))
        spans = shifts.intervals(s, [7], local(DAY, 0), local(DAY + dt.timedelta(days=1), 0), now=local(DAY, 23, 30))
        assert spans[7] == [(local(DAY, 9), local(DAY, 14)), (local(DAY, 23), local(DAY, 23, 30))]


def test_a_simulated_day_reconciles_exactly_and_pays_out_once(db: Database) -> None:
    day = dt.date(2026, 3, 11)
    with db.session() as s:
        sim = simday.simulate_day(s, campus_id=1, day=day, orders=240, seed=3)
        s.commit()
        assert sim.delivered >= 0.85 * sim.orders and sim.delivered + sim.cancelled == sim.orders
        with pytest.raises(Conflict):
            simday.simulate_day(s, campus_id=1, day=day, orders=10)
        s.rollback()
    with db.session() as s:
        service.set_rules(s, 1, Rules(pay_cycle="day"), actor_id=None, actor_role="cli")
        day_r = service.compute(s, campus_id=1, kind="day", day=day)
        week_r = service.compute(s, campus_id=1, kind="week", day=day)
        s.commit()
    with db.session() as s:  # re-running the periods changes nothing
        assert not service.compute(s, campus_id=1, kind="day", day=day).changed
        assert not service.compute(s, campus_id=1, kind="week", day=day).changed
        s.commit()
    with db.read_session() as s:
        delivered = {(o.rider_id, o.id) for o in s.scalars(select(Order).where(
            Order.status == "delivered", Order.source == "sim"))}
        assert len(delivered) == sim.delivered
        for r in (day_r, week_r):
            period = s.get(PayPeriod, r.period_id)
            rec = service.reconcile(s, period)  # type: ignore[arg-type]
            assert rec.ok and rec.orders == rec.lines == sim.delivered, rec.as_dict()
            lines = {(p.rider_id, ln.order_id) for p in service.payslips(s, period_id=r.period_id) for ln in p.lines
                     if ln.kind == "order"}
            assert lines == delivered  # order for order, rider for rider
        day_slips = {p.rider_id: p.total_fen for p in service.payslips(s, period_id=day_r.period_id)}
        week_slips = {p.rider_id: p.total_fen for p in service.payslips(s, period_id=week_r.period_id)}
        assert day_slips == week_slips  # the only day with work: the week is that day
        assert sum(p.orders for p in service.payslips(s, period_id=day_r.period_id)) == sim.delivered
    with db.session() as s:
        period = service.close(s, day_r.period_id, actor_id=None, actor_role="cli")
        s.commit()
        assert period.payable
        body, rows = export.payout_csv(s, period)
        again, _ = export.payout_csv(s, period)
        assert body == again  # the same batch, the same file
    parsed = list(csv.DictReader(io.StringIO(body.removeprefix("\ufeff"))))
    assert [list(parsed[0])] == [export.PAYOUT_COLUMNS]
    assert sum(int(r["amount_fen"]) for r in parsed) == sum(v for v in day_slips.values() if v > 0)
    assert all(r["amount_yuan"] == f"{int(r['amount_fen']) // 100}.{int(r['amount_fen']) % 100:02d}" for r in parsed)
    assert len({r["reference"] for r in parsed}) == len(parsed) and all("****" in r["account"] for r in parsed)
    assert {r["batch_ref"] for r in parsed} == {f"WM-demo-D{day:%Y%m%d}"}


def test_the_job_keeps_drafts_current_and_closes_finished_periods_when_told(db: Database) -> None:
    now = local(DAY + dt.timedelta(days=1), 9)  # Thursday morning
    with db.session() as s:
        on_shift(s, 8, local(DAY, 11), local(DAY, 13))
        deliver(s, 8, local(DAY, 12))
        s.commit()
        out = service.auto_run(s, now=now)
        s.commit()
        assert {(r.kind, r.start) for r in out} == {("day", DAY), ("day", DAY + dt.timedelta(days=1)),
                                                    ("week", dt.date(2026, 3, 2)), ("week", dt.date(2026, 2, 23))}
        assert all(r.status == "draft" for r in out)
        assert not any(r.changed for r in service.auto_run(s, now=now))  # the next run writes nothing
        service.auto_run(s, now=now, close_after_h=6)  # Wednesday ended 9 h ago; the weeks have not
        s.commit()
        status = {(p.kind, p.start_date): p.status for p in service.periods(s)}
        assert status[("day", DAY)] == "closed" and status[("week", dt.date(2026, 3, 2))] == "draft"
        assert status[("week", dt.date(2026, 2, 23))] == "closed"  # an empty week long over
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "payroll.close")) == 2
