"""Customer pages of online payment: choosing WeChat Pay or Alipay, the Native QR code, the return from a cashier.

The page after a cashier never believes the redirect: it asks the provider (settle_by_query) and shows
what the order is now — paid by a signed callback or by that query, or still awaiting payment."""

from __future__ import annotations

from typing import Any

import segno
import structlog
from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from waimai.core.deps import Principal
from waimai.core.errors import AppError
from waimai.platform.payments import rails
from waimai.platform.payments import service as payments
from waimai.web.i18n import gettext

log = structlog.get_logger(__name__)


def sandboxed(request: Request, name: str) -> bool:
    """True while a rail runs on the sandbox identities (no merchant account configured)."""
    s = request.app.state.settings
    return {"wechat": s.wechatpay_mchid is None, "alipay": s.alipay_appid is None}.get(name, False)


def choices(request: Request) -> list[dict[str, Any]]:
    """The online providers checkout offers now (a provider whose breaker is open is left out)."""
    out = []
    for name in rails.offerable(request.app.state):
        en, zh = rails.LABELS.get(name, ("Pay online", "在线支付"))
        out.append({"name": name, "label": gettext(en), "sandbox": sandboxed(request, name)})
    return out


def start(request: Request, order_id: int, p: Principal, render: Any) -> Response:
    """Start (or reopen) the payment with the provider asked for and send the customer to its cashier."""
    s = request.app.state.settings
    name = request.query_params.get("provider") or None
    try:
        chosen = payments.choose_provider(request.app.state, name, None,
                                          user_agent=request.headers.get("user-agent", ""))
        payment = payments.start_payment(
            request.app.state.db, provider=chosen.provider, order_id=order_id, payer=p, channel=chosen.channel,
            client_ip=request.client.host if request.client else "", providers=request.app.state.payment_providers,
            notify_url=f"{s.public_url}/api/v1/payments/callbacks/{chosen.provider.name}",
            return_url=f"{s.public_url}/orders/{order_id}?from=pay")
    except AppError as exc:
        from waimai.web.routes import back

        return back(f"/orders/{order_id}", err=gettext(exc.message))
    url = payment.pay_url or ""
    if url.startswith("weixin://"):  # Native: a QR code the customer scans with WeChat
        qr = segno.make(url, error="m")
        scan = None
        if sandboxed(request, "wechat"):
            from urllib.parse import quote

            scan = f"{s.wechatpay_url}/cashier/scan?code_url={quote(url, safe='')}"
        return render(request, "pay_qr.html", {"order_id": order_id, "amount_fen": payment.amount_fen,
                                               "qr_svg": qr.svg_inline(scale=6, dark="#111"), "scan_url": scan})
    if not url or url.startswith("jsapi:"):
        return RedirectResponse(f"/orders/{order_id}?from=pay", status_code=303)
    return RedirectResponse(url, status_code=303)


def settle_on_return(request: Request, order_id: int) -> None:
    """Back from a cashier: ask the provider how the open payment stands (the redirect proves nothing)."""
    provs = request.app.state.payment_providers
    alipay = provs.get("alipay")
    if alipay is not None and request.query_params.get("sign"):
        # Alipay's synchronous return is signed; a forged one is only logged — it is never acted on either way.
        if not alipay.verify_return(dict(request.query_params)):
            log.warning("payment_return_unsigned", order_id=order_id)
    with request.app.state.db.read_session() as db:
        pay = payments.latest_payment(db, order_id)
        if pay is None or pay.status != "pending" or pay.provider not in provs:
            return
        pid, name = pay.id, pay.provider
    payments.settle_by_query(request.app.state.db, provider=provs[name], payment_id=pid)
