"""Reconciliation (对账): each provider's daily bill against our payments and refunds.

WeChat Pay's trade bill (`GET /v3/bill/tradebill`, then its download_url; CSV, every cell prefixed with a
backtick, a two-line summary at the end) and Alipay's (`alipay.data.dataservice.bill.downloadurl.query`,
a zip holding a GBK CSV whose comment lines start with `#`) are parsed into lines, matched on our order
number (out_trade_no), and every disagreement is stored once in `bill_mismatches`:

* paid_not_recorded — the provider took the money, we have the payment as pending or failed (a lost
  callback, or a payment closed too late). Recovered at once by asking the provider (settle_by_query):
  the order becomes paid, or — if it was cancelled or paid another way meanwhile — refunded.
* unknown_trade — money for an order number we never issued: left open for ops.
* amount_mismatch, not_in_bill, refund_not_recorded: left open for ops.

Open mismatches are a gauge (`waimai_payment_bill_mismatches_open`) the `PaymentBillMismatch` alert
rule watches, and the list is on /ops/payments.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from waimai.core import uow
from waimai.core.database import Database
from waimai.core.outbox import emit
from waimai.platform.payments import service
from waimai.platform.payments.base import PaymentError, PaymentProvider
from waimai.platform.payments.models import BillMismatch, Payment

log = structlog.get_logger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")
PAID = ("succeeded", "refunding", "refund_pending", "refunded")


@dataclass(frozen=True)
class BillLine:
    kind: str  # payment | refund
    out_trade_no: str
    amount_fen: int
    trade_no: str = ""
    refund_no: str = ""


def _fen(amount: str) -> int:
    return int((Decimal(amount.strip().lstrip("-")) * 100).to_integral_value())


def parse_wechat_bill(text: str) -> list[BillLine]:
    """Rows of a `bill_type=ALL` trade bill: SUCCESS rows are payments, REFUND rows refunds."""
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    if not rows:
        return []
    header = [h.strip() for h in rows[0]]
    col = {name: i for i, name in enumerate(header)}
    out: list[BillLine] = []
    for row in rows[1:]:
        cells = [c.lstrip("`").strip() for c in row]
        if not cells or cells[0].startswith("总") or len(cells) < len(header):
            break  # the summary block
        state = cells[col["交易状态"]]
        if state == "SUCCESS":
            out.append(BillLine("payment", cells[col["商户订单号"]], _fen(cells[col["应结订单金额"]]),
                                trade_no=cells[col["微信订单号"]]))
        elif state == "REFUND":
            out.append(BillLine("refund", cells[col["商户订单号"]], _fen(cells[col["退款金额"]]),
                                trade_no=cells[col["微信订单号"]], refund_no=cells[col["商户退款单号"]]))
    return out


def parse_alipay_bill(raw: bytes) -> list[BillLine]:
    """The 业务明细 CSV inside the zip (GBK); 业务类型 交易 is a payment, 退款 a refund."""
    out: list[BillLine] = []
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        for name in z.namelist():
            if "汇总" in name or not name.endswith(".csv"):
                continue
            text = z.read(name).decode("gbk")
            lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
            rows = list(csv.reader(lines))
            if not rows:
                continue
            col = {h.strip(): i for i, h in enumerate(rows[0])}
            for row in rows[1:]:
                kind = row[col["业务类型"]].strip()
                if kind not in ("交易", "退款"):
                    continue
                out.append(BillLine("payment" if kind == "交易" else "refund", row[col["商户订单号"]].strip(),
                                    _fen(row[col["订单金额（元）"]]), trade_no=row[col["支付宝交易号"]].strip(),
                                    refund_no=row[col["退款批次号/请求号"]].strip()))
    return out


def fetch_bill(provider: PaymentProvider, day: dt.date) -> list[BillLine]:
    if provider.name == "wechat":
        return parse_wechat_bill(provider.trade_bill(day.isoformat()).decode("utf-8"))  # type: ignore[attr-defined]
    if provider.name == "alipay":
        import httpx

        url = provider.bill_url(day.isoformat())  # type: ignore[attr-defined]
        r = httpx.get(url, timeout=10)
        r.raise_for_status()
        return parse_alipay_bill(r.content)
    raise ValueError(f"{provider.name} has no daily bill")


def _record(database: Database, *, provider: str, day: dt.date, kind: str, no: str, bill_fen: int | None,
            ours_fen: int | None, detail: str) -> BillMismatch | None:
    with uow.unit_of_work(database) as db:
        m = BillMismatch(provider=provider, bill_date=day, kind=kind, out_trade_no=no[:64], bill_amount_fen=bill_fen,
                         our_amount_fen=ours_fen, detail=detail[:200])
        try:
            with db.begin_nested():
                db.add(m)
        except IntegrityError:
            return None  # found by an earlier run of the same day
        emit(db, "payment.bill_mismatch", key=no, provider=provider, kind=kind, bill_date=day.isoformat())
        db.flush()
        db.refresh(m)
    return m


def _resolve(database: Database, mismatch_id: int, status: str, detail: str) -> None:
    with uow.unit_of_work(database) as db:
        m = db.get(BillMismatch, mismatch_id)
        if m is not None:
            m.status, m.detail = status, detail[:200]


def reconcile(database: Database, *, provider: PaymentProvider, providers: Mapping[str, PaymentProvider],
              day: dt.date) -> list[str]:
    """Fetch `day`'s bill and match it; returns the kinds of mismatch found (new ones only)."""
    lines = fetch_bill(provider, day)
    found: list[str] = []
    start = dt.datetime.combine(day, dt.time(), SHANGHAI).astimezone(dt.UTC)
    with database.read_session() as db:
        ours = {p.provider_ref: (p.id, p.status, p.amount_fen, p.order_id) for p in db.scalars(
            select(Payment).where(Payment.provider == provider.name, Payment.provider_ref.is_not(None))
            .order_by(Payment.id))}
        ours_that_day = {p.provider_ref: p.amount_fen for p in db.scalars(
            select(Payment).where(Payment.provider == provider.name, Payment.status.in_(PAID),
                                  Payment.created_at >= start, Payment.created_at < start + dt.timedelta(days=1)))}
    billed = {ln.out_trade_no for ln in lines if ln.kind == "payment"}
    refunded = {ln.out_trade_no for ln in lines if ln.kind == "refund"}
    for ln in lines:
        mine = ours.get(ln.out_trade_no)
        if ln.kind == "refund":
            if mine is not None and mine[1] not in ("refunded", "refunding", "refund_pending"):
                if _record(database, provider=provider.name, day=day, kind="refund_not_recorded", no=ln.out_trade_no,
                           bill_fen=ln.amount_fen, ours_fen=mine[2], detail=f"refund {ln.refund_no} not ours"):
                    found.append("refund_not_recorded")
            continue
        if mine is None:
            if _record(database, provider=provider.name, day=day, kind="unknown_trade", no=ln.out_trade_no,
                       bill_fen=ln.amount_fen, ours_fen=None, detail=f"trade {ln.trade_no}: no such order of ours"):
                found.append("unknown_trade")
            continue
        pid, status, amount, order_id = mine
        if ln.amount_fen != amount:
            if _record(database, provider=provider.name, day=day, kind="amount_mismatch", no=ln.out_trade_no,
                       bill_fen=ln.amount_fen, ours_fen=amount, detail="bill and payment amounts differ"):
                found.append("amount_mismatch")
            continue
        if status in ("pending", "failed"):
            m = _record(database, provider=provider.name, day=day, kind="paid_not_recorded", no=ln.out_trade_no,
                        bill_fen=ln.amount_fen, ours_fen=amount, detail=f"our payment was {status}")
            if m is None:
                continue
            found.append("paid_not_recorded")
            _recover(database, provider=provider, providers=providers, mismatch_id=m.id, payment_id=pid,
                     order_id=order_id, was=status)
    for no, amount in ours_that_day.items():
        if no not in billed and no not in refunded:
            if _record(database, provider=provider.name, day=day, kind="not_in_bill", no=no or "", bill_fen=None,
                       ours_fen=amount, detail="recorded as paid, absent from the provider's bill"):
                found.append("not_in_bill")
    log.info("bill_reconciled", provider=provider.name, day=day.isoformat(), lines=len(lines), new=len(found))
    return found


def _recover(database: Database, *, provider: PaymentProvider, providers: Mapping[str, PaymentProvider],
             mismatch_id: int, payment_id: int, order_id: int, was: str) -> None:
    """A payment the provider holds as paid: settle it by query; money for an order no longer payable goes back."""
    if was == "failed":  # closed on our side (paid another way): reopen it so the query can apply
        with uow.unit_of_work(database) as db:
            p = db.get(Payment, payment_id)
            if p is not None and p.status == "failed":
                p.status = "pending"
    outcome = service.settle_by_query(database, provider=provider, payment_id=payment_id)
    if outcome == "paid":
        _resolve(database, mismatch_id, "recovered", "settled by query: order paid")
    elif outcome == "refund_needed":
        result = service.refund_order(database, providers=providers, order_id=order_id)
        _resolve(database, mismatch_id, "refunded" if result in ("refunded", "refunding") else "open",
                 f"order no longer payable: refund {result}")
    else:
        _resolve(database, mismatch_id, "open", f"query said {outcome}")


def open_count(database: Database) -> dict[str, int]:
    with database.read_session() as db:
        return {p: int(n) for p, n in db.execute(select(BillMismatch.provider, func.count())
                                                 .where(BillMismatch.status == "open")
                                                 .group_by(BillMismatch.provider))}


def run_daily(database: Database, providers: Mapping[str, PaymentProvider], *, day: dt.date | None = None) -> None:
    """Yesterday's bills (Asia/Shanghai), for every provider that has one; a failing download is retried later."""
    day = day or (dt.datetime.now(SHANGHAI).date() - dt.timedelta(days=1))
    for p in providers.values():
        if p.name in ("wechat", "alipay"):
            try:
                reconcile(database, provider=p, providers=providers, day=day)
            except (PaymentError, OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
                log.warning("bill_reconcile_failed", provider=p.name, error=exc.__class__.__name__)
