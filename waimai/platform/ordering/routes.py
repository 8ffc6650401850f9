from __future__ import annotations

import datetime as dt
from typing import Annotated

import structlog
from fastapi import APIRouter, Header, Query, Request, Response
from sqlalchemy import select

from waimai.core import audit
from waimai.core.deps import (
    API_PREFIX,
    CustomerDep,
    IdPath,
    MerchantDep,
    OpsDep,
    PrincipalDep,
    ReadSessionDep,
    RiderDep,
    SessionDep,
    SettingsDep,
)
from waimai.core.errors import Forbidden, NotFound
from waimai.core.outbox import emit
from waimai.platform.accounts.models import User
from waimai.platform.delivery import service as delivery
from waimai.platform.delivery.models import Rider
from waimai.platform.ordering import idempotency, service
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
                        409: {"description": "in progress, illegal, sold out or closed"},
                        422: {"description": "invalid body, or the key was used with another body"}})
async def place_order(body: PlaceOrderIn, request: Request, p: CustomerDep, settings: SettingsDep,
                      idempotency_key: Annotated[str | None, Header(max_length=300)] = None) -> Response:
    """Place an order. Requires `Idempotency-Key`: a retry with the same key returns the first response."""
    database = request.app.state.db
    key = idempotency.validate_key(idempotency_key)
    fp = idempotency.request_fingerprint(body.model_dump(mode="json"))
    ttl = dt.timedelta(hours=settings.idempotency_ttl_hours)
    status, payload, replayed = await idempotency.place(database, p, body, key, fp, ttl)
    if not replayed:
        log.info("order_placed", order_id=payload[1], merchant_id=body.merchant_id,
                 payment_method=body.payment_method)
    headers = {"Idempotent-Replayed": "true"} if replayed else {"Location": f"/api/v1/orders/{payload[1]}"}
    return Response(payload[0], status_code=status, media_type="application/json", headers=headers)


@router.get("/orders", response_model=list[OrderOut])
def list_orders(p: PrincipalDep, db: ReadSessionDep, status: Annotated[Status | None, Query()] = None,
                source: Annotated[str | None, Query(max_length=16, description="app, meituan, eleme, jd")] = None,
                limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[OrderOut]:
    """Your orders: a customer's own, a merchant's shop's, a rider's tasks; ops and support see all."""
    q = select(Order).order_by(Order.id.desc()).limit(limit)
    carrier = False
    if p.role == "customer":
        q = q.where(Order.customer_id == p.user_id)
    elif p.role == "merchant":
        staff = db.get(User, p.user_id)
        q = q.where(Order.merchant_id == (staff.merchant_id if staff else -1))
    elif p.role == "rider":
        rider = delivery.rider_for_user(db, p.user_id)
        q = q.where(Order.rider_id == rider.id)
        carrier = True
    if status is not None:
        q = q.where(Order.status == status.value)
    if source is not None:
        q = q.where(Order.source == source)
    return [service.to_out(o, viewer=p, viewer_is_carrier=carrier) for o in db.scalars(q)]


def _viewable(db, p, order_id: IdPath) -> tuple[Order, bool]:  # type: ignore[no-untyped-def]
    order = service.load_order(db, order_id)
    service.check_can_view(db, p, order)
    carrier = p.role == "rider" and order.rider_id is not None and \
        service.rider_user_id(db, order.rider_id) == p.user_id
    return order, carrier


@router.get("/orders/{order_id}", response_model=OrderOut)
def get_order(order_id: IdPath, p: PrincipalDep, db: ReadSessionDep) -> OrderOut:
    order, carrier = _viewable(db, p, order_id)
    return service.to_out(order, viewer=p, viewer_is_carrier=carrier)


@router.get("/orders/{order_id}/transitions", response_model=list[TransitionOut])
def transitions(order_id: IdPath, p: PrincipalDep, db: ReadSessionDep) -> list[TransitionOut]:
    _viewable(db, p, order_id)
    rows = db.scalars(select(OrderTransition).where(OrderTransition.order_id == order_id)
                      .order_by(OrderTransition.id))
    return [TransitionOut(from_status=r.from_status, to_status=r.to_status, actor_role=r.actor_role,
                          reason=r.reason, at=r.at) for r in rows]


@router.post("/orders/{order_id}/pay", response_model=PayOut)
def pay(order_id: IdPath, request: Request, p: CustomerDep, settings: SettingsDep,
        method: Annotated[str, Query(pattern="^(gateway|cod)$")] = "gateway") -> PayOut:
    """Start online payment (returns the cashier URL), or switch the order to cash on delivery."""
    database = request.app.state.db
    if method == "cod":
        with database.session() as db:
            order, _ = _viewable(db, p, order_id)
            payments.switch_to_cod(db, order=order, actor=p)
            db.commit()
            pay_row = payments.latest_payment(db, order_id)
            assert pay_row is not None
            return PayOut(order_id=order_id, payment_id=pay_row.id, status=order.status, pay_url=None)
    provider = request.app.state.payment_providers["gateway"]
    payment = payments.start_payment(
        database, provider=provider, order_id=order_id, payer=p,
        notify_url=f"{settings.public_url}/api/v1/payments/callbacks/gateway",
        return_url=f"{settings.public_url}/orders/{order_id}")
    return PayOut(order_id=order_id, payment_id=payment.id, status=payment.status, pay_url=payment.pay_url)


def _act(request: Request, order_id: IdPath, p, to: Status, reason: str | None = None,  # type: ignore[no-untyped-def]
         check=None) -> OrderOut:
    database = request.app.state.db
    with database.session() as db:
        order, carrier = _viewable(db, p, service.load_order(db, order_id, for_update=True).id)
        if check is not None:
            check(db, order)
        service.transition(db, order, to, actor=p, reason=reason)
        if p.role == "ops":
            audit.record(db, actor_id=p.user_id, actor_role=p.role, action=f"order.{to.value}",
                         target=f"order:{order_id}", details={"reason": reason})
        db.commit()
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

    def check(db, order: Order) -> None:  # type: ignore[no-untyped-def]
        carry(db, order)
        if body.proof_code != order.proof_code:
            from waimai.core.errors import Unprocessable

            raise Unprocessable("The proof code does not match; ask the customer for the 4 digits on their "
                                "order page.", code="proof_code_mismatch")
    return _act(request, order_id, p, Status.delivered, check=check)


@router.post("/orders/{order_id}/fail", response_model=OrderOut)
def fail(order_id: IdPath, body: ReasonIn, request: Request, p: RiderDep) -> OrderOut:
    return _act(request, order_id, p, Status.failed, body.reason or "delivery failed", check=_must_carry(p))


@router.post("/orders/{order_id}/assign", response_model=OrderOut)
def assign(order_id: IdPath, body: AssignIn, p: OpsDep, db: SessionDep) -> OrderOut:
    """Ops assign (or reassign) an order by hand: the fallback when automatic dispatch is off."""
    order = service.load_order(db, order_id, for_update=True)
    rider = db.get(Rider, body.rider_id)
    if rider is None:
        raise NotFound(f"Rider {body.rider_id} does not exist.")
    delivery.assign(db, order, rider, actor=p, reason="manual")
    audit.record(db, actor_id=p.user_id, actor_role=p.role, action="order.assign", target=f"order:{order_id}",
                 details={"rider_id": rider.id})
    emit(db, "ops.action", key=str(order_id), action="order.assign")
    db.commit()
    return service.to_out(order, viewer=p)
