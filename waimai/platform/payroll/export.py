"""CSV files: a payslip (one line per order, penalty, top-up, tip and adjustment, then the total) and the payout
batch finance imports (one row per rider with something to pay in a closed, payable period).

UTF-8 with a byte-order mark so spreadsheet programs show Chinese names; amounts both in fen (exact) and yuan
("12.50", never through float); dates and times in campus local time.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from waimai.core import csvsafe
from waimai.core.errors import Conflict
from waimai.core.security import mask_phone
from waimai.core.timeutil import LOCAL
from waimai.platform.accounts.models import User
from waimai.platform.catalog.models import Campus
from waimai.platform.delivery.models import Rider
from waimai.platform.payroll import service
from waimai.platform.payroll.models import PayPeriod, Payslip, PeriodStatus

PAYSLIP_COLUMNS = ["reference", "rider_id", "rider_name", "period", "period_start", "day", "time", "kind", "order_id",
                   "distance_m", "base_fen", "distance_fen", "peak_fen", "amount_fen", "amount_yuan", "note"]
PAYOUT_COLUMNS = ["batch_ref", "reference", "rider_id", "rider_name", "account", "amount_fen", "amount_yuan",
                  "currency", "period", "period_start", "period_end", "campus"]


def yuan_plain(fen: int) -> str:
    """'12.50' / '-3.05' from fen, exactly."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _csv(header: list[str], rows: Iterable[list[Any]]) -> str:
    buf = io.StringIO()
    w = csvsafe.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    return "\ufeff" + buf.getvalue()


def payslip_rows(*, reference: str, rider: Rider, kind: str, start: str, slip: Any) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for ln in slip.lines:
        rows.append([reference, rider.id, rider.name, kind, start, ln.day.isoformat(),
                     ln.at.astimezone(LOCAL).strftime("%H:%M") if ln.at else "", ln.kind, ln.order_id or "",
                     ln.distance_m or "", ln.base_fen or "", ln.distance_fen or "", ln.peak_fen or "", ln.amount_fen,
                     yuan_plain(ln.amount_fen), ln.note])
    rows.append([reference, rider.id, rider.name, kind, start, "", "", "total", "", "", "", "", "", slip.total_fen,
                 yuan_plain(slip.total_fen), f"{slip.orders} orders, {slip.shift_seconds / 3600:.2f} h on shift"])
    return rows


def payslip_csv(db: Session, slip: Payslip) -> str:
    period = db.get(PayPeriod, slip.period_id)
    rider = db.get(Rider, slip.rider_id)
    assert period is not None and rider is not None
    return _csv(PAYSLIP_COLUMNS, payslip_rows(reference=slip.reference, rider=rider, kind=period.kind,
                                              start=period.start_date.isoformat(), slip=slip))


@dataclass
class PayoutRow:
    reference: str
    rider_id: int
    rider_name: str
    phone: str
    amount_fen: int


def payout_rows(db: Session, period: PayPeriod) -> list[PayoutRow]:
    if period.status == PeriodStatus.draft or not period.payable:
        raise Conflict("Only a closed, payable period goes into a payout batch (close it first; statements of "
                       "the other period kind are never paid).", code="not_payable",
                       details={"status": period.status, "payable": period.payable})
    q = (select(Payslip, Rider, User).join(Rider, Rider.id == Payslip.rider_id).join(User, User.id == Rider.user_id)
         .where(Payslip.period_id == period.id, Payslip.total_fen > 0).order_by(Payslip.rider_id))
    return [PayoutRow(reference=s.reference, rider_id=r.id, rider_name=r.name, phone=u.phone, amount_fen=s.total_fen)
            for s, r, u in db.execute(q)]


def payout_csv(db: Session, period: PayPeriod, *, reveal: bool = False) -> tuple[str, list[PayoutRow]]:
    """The batch file; the account (the rider's phone, which is their Alipay / WeChat Pay account) is masked
    unless `reveal` (the caller audits that)."""
    campus = db.get(Campus, period.campus_id)
    assert campus is not None
    batch = service.batch_reference(campus, period)
    rows = payout_rows(db, period)
    last = period.end_date.toordinal() - 1
    end = type(period.end_date).fromordinal(last).isoformat()
    return _csv(PAYOUT_COLUMNS, ([batch, r.reference, r.rider_id, r.rider_name, r.phone if reveal else mask_phone(r.phone),
                                 r.amount_fen, yuan_plain(r.amount_fen), "CNY", period.kind,
                                 period.start_date.isoformat(), end, campus.code] for r in rows)), rows
