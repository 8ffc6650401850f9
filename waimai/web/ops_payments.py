"""Console: payment providers (offered at checkout or not, by breaker) and the daily-bill mismatches (对账差异)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from waimai.core import audit, uow
from waimai.platform.payments import rails, reconcile
from waimai.platform.payments.models import BillMismatch
from waimai.web.i18n import gettext
from waimai.web.routes import _need, back, render

router = APIRouter(include_in_schema=False)
PAGE = "/ops/payments"
SHANGHAI = ZoneInfo("Asia/Shanghai")


@router.get(PAGE)
def payments_page(request: Request) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    offered = set(rails.offerable(request.app.state))
    providers = []
    for name in rails.online(request.app.state):
        dep = getattr(request.app.state.payment_providers.get(name), "dependency", None)
        rec = dep.record() if dep is not None else None
        providers.append({"name": name, "offered": name in offered, "breaker": rec.state if rec else "closed"})
    with request.app.state.db.read_session() as db:
        rows = list(db.scalars(select(BillMismatch).order_by(BillMismatch.id.desc()).limit(200)))
    return render(request, "ops_payments.html", {"providers": providers, "mismatches": rows})


@router.post(PAGE + "/reconcile")
def reconcile_now(request: Request, day: str = Form("", max_length=10)) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    try:
        when = dt.date.fromisoformat(day) if day else dt.datetime.now(SHANGHAI).date() - dt.timedelta(days=1)
    except ValueError:
        return back(PAGE, err=gettext("Bill date"))
    db, provs = request.app.state.db, request.app.state.payment_providers
    found: list[str] = []
    for name in ("wechat", "alipay"):
        if name in provs:
            found += reconcile.reconcile(db, provider=provs[name], providers=provs, day=when)
    with uow.unit_of_work(db) as s:
        audit.record(s, actor_id=p.user_id, actor_role=p.role, action="payments.reconcile",
                     target=f"bill:{when.isoformat()}", details={"new_mismatches": len(found)})
    return back(PAGE, msg=gettext("Reconciled {provider} for {day}: {n} new mismatches.").format(
        provider="+".join(n for n in ("wechat", "alipay") if n in provs), day=when.isoformat(), n=len(found)))
