from __future__ import annotations

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from waimai.core import uow
from waimai.core.deps import API_PREFIX, PrincipalDep
from waimai.core.errors import NotFound, error_body
from waimai.platform.payments import service
from waimai.platform.payments.base import CallbackRejected

router = APIRouter(prefix=API_PREFIX, tags=["payments"])
log = structlog.get_logger(__name__)


@router.get("/payments/providers")
def offered_providers(request: Request, _p: PrincipalDep) -> dict[str, list[str]]:
    """The online providers checkout offers now (one whose breaker is open is left out) and all configured."""
    from waimai.platform.payments import rails

    return {"offered": rails.offerable(request.app.state), "online": rails.online(request.app.state)}


@router.post("/payments/callbacks/{provider}", include_in_schema=False)
async def callback(provider: str, request: Request) -> Response:
    """Provider notifications: verified by signature, applied exactly once."""
    providers = request.app.state.payment_providers
    if provider not in providers:
        raise NotFound("Unknown payment provider.")
    body = await request.body()
    try:
        event = providers[provider].verify_callback(request.headers, body)
    except CallbackRejected as exc:
        log.warning("payment_callback_rejected", provider=provider, reason=str(exc))
        return JSONResponse(error_body("bad_signature", str(exc)), status_code=401)
    from starlette.concurrency import run_in_threadpool

    def apply() -> str:
        with uow.unit_of_work(request.app.state.db) as db:
            return service.apply_callback(db, provider=providers[provider], event=event)

    outcome = await run_in_threadpool(apply)
    if outcome == "unknown_payment":  # not (yet) ours: ask for a redelivery rather than acknowledge it
        return JSONResponse(error_body("unknown_payment", "No such payment (yet); send it again later."),
                            status_code=503, headers={"Retry-After": "1"})
    if outcome == "refund_needed":
        await run_in_threadpool(service.refund_order, request.app.state.db, providers=providers,
                                order_id=_order_id_for(request, provider, event.provider_ref))
    ack = getattr(providers[provider], "ack", None)
    if ack is not None:  # each provider's own "received" answer (Alipay: the word `success`)
        status, text, media = ack(outcome)
        return Response(text, status_code=status, media_type=media)
    return JSONResponse({"result": outcome})


def _order_id_for(request: Request, provider: str, provider_ref: str) -> int:
    from sqlalchemy import select

    from waimai.platform.payments.models import Payment

    with request.app.state.db.read_session() as db:
        return int(db.scalar(select(Payment.order_id).where(Payment.provider == provider,
                                                            Payment.provider_ref == provider_ref)
                             .order_by(Payment.id.desc()).limit(1)) or 0)
