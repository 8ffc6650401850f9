"""Background jobs of the payment rails: settle payments whose callback is overdue, reconcile daily bills."""

from __future__ import annotations

from typing import Any

from waimai.core.background import Job
from waimai.core.database import Database
from waimai.core.metrics import BILL_MISMATCHES_OPEN
from waimai.platform.payments import reconcile, service
from waimai.platform.payments.models import Payment

CALLBACK_OVERDUE_S = 30.0


def settle_overdue(database: Database, providers: Any, *, older_than_s: float = CALLBACK_OVERDUE_S) -> list[str]:
    """Ask the provider about every open payment whose callback is late (a lost callback is settled here),
    and about every refund whose notification is late."""
    with database.read_session() as db:
        ids = service.stale_pending(db, older_than_s=older_than_s, providers=providers)
    out = []
    for pid in ids:
        with database.read_session() as db:
            p = db.get(Payment, pid)
            name = p.provider if p is not None else ""
        outcome = service.settle_by_query(database, provider=providers[name], payment_id=pid)
        if outcome == "refund_needed":
            with database.read_session() as db:
                p = db.get(Payment, pid)
                oid = p.order_id if p is not None else 0
            service.refund_order(database, providers=providers, order_id=oid)
        out.append(outcome)
    with database.read_session() as db:
        refunding = [(pid, db.get(Payment, pid)) for pid in service.stale_refunding(db, older_than_s=older_than_s)]
        refunding_named = [(pid, p.provider) for pid, p in refunding if p is not None]
    for pid, name in refunding_named:
        if name in providers:
            out.append(service.settle_refund_by_query(database, provider=providers[name], payment_id=pid))
    return out


def payment_jobs(app: Any) -> list[Job]:
    db: Database = app.state.db
    providers = app.state.payment_providers
    if not any(n in providers for n in ("wechat", "alipay")):
        return []

    def bills() -> None:
        reconcile.run_daily(db, providers)
        counts = reconcile.open_count(db)
        for name in ("wechat", "alipay"):
            BILL_MISMATCHES_OPEN.labels(name).set(counts.get(name, 0))

    return [Job("payment_settle", 10.0, lambda: settle_overdue(db, providers), role="worker", singleton=True),
            Job("payment_reconcile", 3600.0, bills, role="worker", singleton=True)]
