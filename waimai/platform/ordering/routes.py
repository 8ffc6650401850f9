from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from waimai.core import audit, uow
from waimai.core.database import is_connection_error
from waimai.core.deps import (
    API_PREFIX,
    CustomerDep,
    IdPath,
    MerchantDep,
    OpsDep,
    Principal,
    PrincipalDep,
    ReadSessionDep,
    RiderDep,
    SessionDep,
    SettingsDep,
    SupportDep,
)
from waimai.core.errors import Forbidden, NotFound, Unprocessable
from waimai.platform.delivery import proof
from waimai.platform.delivery import service as delivery
from waimai.platform.ordering import idempotency, service, spool
from waimai.platform.ordering.models import Order, OrderTransition
from waimai.platform.ordering.schemas import (
    AssignIn,
    DeliverIn,
    OrderOut,
    PayOut,
    PlaceOrderIn,
    QuoteOut,
    ReasonIn,
    TransitionOut,
)
from waimai.platform.ordering.state import Status
from waimai.platform.payments import service as payments

router = APIRouter(prefix=API_PREFIX, tags=["orders"])
log = structlog.get_logger(__name__)


@router.post("/orders/quote", response_model=QuoteOut)
def quote(body: PlaceOrderIn, _p: CustomerDep, db: ReadSessionDep) -> QuoteOut:
    return service.price(db, body).quote


@router.post("/orders", response_model=OrderOut, status_code=201,
             responses={200: {"description": "a replay of the first response for this Idempotency-Key"},
                        202: {"description": "no database accepts writes: a cash-on-delivery order was spooled on "
                                             "this replica and will be confirmed or refused (status "
                                             "pending_confirmation, 待确认; see /api/v1/orders/pending/{reference})"},
                        503: {"description": "no database accepts writes and the order is not cash on delivery"},
                        409: {"description": "in progress, illegal, sold out or closed"},
                        422: {"description": "invalid body, or the key was used with another body"}})
async def place_order(body: PlaceOrderIn, request: Request, p: CustomerDep, settings: SettingsDep,
                      idempotency_key: Annotated[str | None, Header(max_length=300)] = None) -> Response:
    """Place an order. Requires `Idempotency-Key`: a retry with the same key returns the first response."""
    database = request.app.state.db
    key = idempotency.validate_key(idempotency_key)
    fp = idempotency.request_fingerprint(body.model_dump(mode="json"))
    ttl = dt.timedelta(hours=settings.idempotency_ttl_hours)
    if not database.reachable:  # known outage: do not make the customer wait for a timeout
        return _spool(request, p, body, key, fp)
    try:
        status, payload, replayed = await idempotency.place(database, p, body, key, fp, ttl)
    except Exception as exc:
        if not is_connection_error(exc):
            raise
        return _spool(request, p, body, key, fp)
    if not replayed:
        log.info("order_placed", order_id=payload[1], merchant_id=body.merchant_id,
                 payment_method=body.payment_method)
    headers = {"Idempotent-Replayed": "true"} if replayed else {"Location": f"/api/v1/orders/{payload[1]}"}
    return Response(payload[0], status_code=status, media_type="application/json", headers=headers)


def _spool(request: Request, p: Principal, body: PlaceOrderIn, key: str, fp: str) -> Response:
    row, replayed = spool.take(request.app.state, customer=p, body=body, key=key, fingerprint=fp)
    headers = {"Location": f"/api/v1/orders/pending/{row.ref}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(row.public(), status_code=202, headers=headers)


@router.get("/orders/pending", tags=["orders"])
def my_pending(request: Request, p: CustomerDep) -> list[dict[str, Any]]:
    """Your orders received while the database was down, on this replica (待确认 until confirmed or refused)."""
    spooled = getattr(request.app.state, "order_spool", None)
    return [r.public() for r in spooled.for_user(p.user_id)] if spooled is not None else []


@router.get("/orders/pending/{reference}", tags=["orders"])
def pending_order(reference: Annotated[str, Path(pattern=r"^S-[0-9A-F]{10}$")], request: Request,
                  p: PrincipalDep) -> dict[str, Any]:
    """One spooled order: pending_confirmation, then confirmed (with its order id) or refused (with why)."""
    spooled = getattr(request.app.state, "order_spool", None)
    row = spooled.get(reference) if spooled is not None else None
    if row is None or (row.user_id != p.user_id and p.role not in ("ops", "support")):
        raise NotFound("No such pending order on this server.")
    return row.public()


@router.get("/orders", response_model=list[OrderOut])
def list_orders(p: PrincipalDep, db: ReadSessionDep, status: Annotated[Status | None, Query()] = None,
                source: Annotated[str | None, Query(max_length=16, description="app, meituan, eleme, jd")] = None,
                limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[OrderOut]:
    """Your orders: a customer's own, a merchant's shop's, a rider's tasks; ops and support see all."""
    scope = service.order_scope(db, p)
    q = scope.where(select(Order).order_by(Order.id.desc()).limit(limit))
    if status is not None:
        q = q.where(Order.status == status.value)
    if source is not None:
        q = q.where(Order.source == source)
    return [service.to_out(o, viewer=p, viewer_is_carrier=scope.carries(o)) for o in db.scalars(q)]


@router.get("/orders/{order_id}", response_model=OrderOut)
def get_order(order_id: IdPath, p: PrincipalDep, db: ReadSessionDep) -> OrderOut:
    order, carrier = service.viewable(db, p, order_id)
    return service.to_out(order, viewer=p, viewer_is_carrier=carrier)


@router.get("/orders/{order_id}/transitions", response_model=list[TransitionOut])
def transitions(order_id: IdPath, p: PrincipalDep, db: ReadSessionDep) -> list[TransitionOut]:
    service.viewable(db, p, order_id)
    rows = db.scalars(select(OrderTransition).where(OrderTransition.order_id == order_id)
                      .order_by(OrderTransition.id))
    return [TransitionOut(from_status=r.from_status, to_status=r.to_status, actor_role=r.actor_role,
                          reason=r.reason, at=r.at) for r in rows]


@router.post("/orders/{order_id}/pay", response_model=PayOut)
def pay(order_id: IdPath, request: Request, p: CustomerDep, settings: SettingsDep,
        method: Annotated[str, Query(pattern="^(gateway|cod)$")] = "gateway",
        provider: Annotated[str | None, Query(pattern="^(gateway|wechat|alipay)$",
                                              description="which online provider (default: the first offered)")]
        = None,
        channel: Annotated[str | None, Query(pattern="^(native|h5|jsapi|wap|page)$")] = None,
        openid: Annotated[str | None, Query(max_length=128, pattern="^[A-Za-z0-9_-]+$",
                                            description="WeChat JSAPI: the payer's openid (from WeChat's OAuth)")]
        = None) -> PayOut:
    """Start online payment (returns the cashier URL), or switch the order to cash on delivery."""
    database = request.app.state.db
    if method == "cod":
        with uow.unit_of_work(database) as db:
            order, _ = service.viewable(db, p, order_id)
            payments.switch_to_cod(db, order=order, actor=p)
            pay_row = payments.latest_payment(db, order_id)
            assert pay_row is not None
            return PayOut(order_id=order_id, payment_id=pay_row.id, status=order.status, pay_url=None, provider="cod")
    chosen = payments.choose_provider(request.app.state, provider, channel,
                                      user_agent=request.headers.get("user-agent", ""))
    payment = payments.start_payment(
        database, provider=chosen.provider, order_id=order_id, payer=p, channel=chosen.channel,
        client_ip=request.client.host if request.client else "", providers=request.app.state.payment_providers,
        payer_openid=openid,
        notify_url=f"{settings.public_url}/api/v1/payments/callbacks/{chosen.provider.name}",
        return_url=f"{settings.public_url}/orders/{order_id}?returned=1")
    return PayOut(order_id=order_id, payment_id=payment.id, status=payment.status, pay_url=payment.pay_url,
                  provider=payment.provider)


def _act(request: Request, order_id: IdPath, p, to: Status, reason: str | None = None,  # type: ignore[no-untyped-def]
         check=None) -> OrderOut:
    database = request.app.state.db
    with uow.unit_of_work(database) as db:
        order, carrier = service.viewable(db, p, order_id, for_update=True)
        if check is not None:
            check(db, order)
        service.transition(db, order, to, actor=p, reason=reason)
        if p.role == "ops":
            audit.record(db, actor_id=p.user_id, actor_role=p.role, action=f"order.{to.value}",
                         target=f"order:{order_id}", details={"reason": reason})
        out = service.to_out(order, viewer=p, viewer_is_carrier=carrier)
    if to in (Status.cancelled, Status.rejected, Status.failed):
        payments.refund_order(database, providers=request.app.state.payment_providers, order_id=order_id)
        with database.read_session() as db:
            out = service.to_out(service.load_order(db, order_id), viewer=p, viewer_is_carrier=carrier)
    return out


@router.post("/orders/{order_id}/cancel", response_model=OrderOut)
def cancel(order_id: IdPath, body: ReasonIn, request: Request, p: PrincipalDep) -> OrderOut:
    return _act(request, order_id, p, Status.cancelled, body.reason or f"cancelled by {p.role}")


@router.post("/orders/{order_id}/accept", response_model=OrderOut)
def accept(order_id: IdPath, request: Request, p: MerchantDep) -> OrderOut:
    return _act(request, order_id, p, Status.accepted)


@router.post("/orders/{order_id}/reject", response_model=OrderOut)
def reject(order_id: IdPath, body: ReasonIn, request: Request, p: MerchantDep) -> OrderOut:
    return _act(request, order_id, p, Status.rejected, body.reason or "rejected by merchant")


@router.post("/orders/{order_id}/preparing", response_model=OrderOut)
def preparing(order_id: IdPath, request: Request, p: MerchantDep) -> OrderOut:
    return _act(request, order_id, p, Status.preparing)


@router.post("/orders/{order_id}/ready", response_model=OrderOut)
def ready(order_id: IdPath, request: Request, p: MerchantDep) -> OrderOut:
    return _act(request, order_id, p, Status.ready)


def _must_carry(p):  # type: ignore[no-untyped-def]
    def check(db, order: Order) -> None:  # type: ignore[no-untyped-def]
        if p.role == "ops":
            return
        rider = delivery.rider_for_user(db, p.user_id)
        if order.rider_id != rider.id:
            raise Forbidden("This order is assigned to another rider.")
    return check


@router.post("/orders/{order_id}/pickup", response_model=OrderOut)
def pickup(order_id: IdPath, request: Request, p: RiderDep) -> OrderOut:
    return _act(request, order_id, p, Status.picked_up, check=_must_carry(p))


@router.post("/orders/{order_id}/deliver", response_model=OrderOut)
def deliver(order_id: IdPath, body: DeliverIn, request: Request, p: RiderDep) -> OrderOut:
    carry = _must_carry(p)
    # Counted and limited in its own transaction first (a wrong code must stay counted).
    proof.check(request.app.state.db, request.app.state.settings, p, order_id, body.proof_code,
                client=request.client.host if request.client else "")

    def check(db, order: Order) -> None:  # type: ignore[no-untyped-def]
        carry(db, order)
        if not proof.matches(order, body.proof_code):
            raise Unprocessable(proof.MISMATCH, code="proof_code_mismatch")
    return _act(request, order_id, p, Status.delivered, check=check)


@router.post("/orders/{order_id}/proof/unlock", response_model=OrderOut)
def unlock_proof(order_id: IdPath, p: SupportDep, db: SessionDep) -> OrderOut:
    """Support, having reached the customer, clears an order's wrong proof codes so the rider can try again."""
    order = service.load_order(db, order_id, for_update=True)
    cleared = proof.unlock(db, order_id)
    audit.record(db, actor_id=p.user_id, actor_role=p.role, action="order.proof_unlock", target=f"order:{order_id}",
                 details={"cleared": cleared})
    return service.to_out(order, viewer=p)


@router.post("/orders/{order_id}/fail", response_model=OrderOut)
def fail(order_id: IdPath, body: ReasonIn, request: Request, p: RiderDep) -> OrderOut:
    return _act(request, order_id, p, Status.failed, body.reason or "delivery failed", check=_must_carry(p))


@router.post("/orders/{order_id}/assign", response_model=OrderOut)
def assign(order_id: IdPath, body: AssignIn, p: OpsDep, db: SessionDep) -> OrderOut:
    """Ops assign (or reassign) an order by hand: the fallback when automatic dispatch is off."""
    order = service.load_order(db, order_id, for_update=True)
    delivery.assign_by_hand(db, order=order, rider_id=body.rider_id, actor=p)
    return service.to_out(order, viewer=p)
