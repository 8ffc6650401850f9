"""The customer-service API: assisted ordering (support), tickets (everyone, scoped), ratings (customers)
and the satisfaction figures (ops)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, File, Header, Query, Request, Response, UploadFile
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from waimai.core import audit, uow
from waimai.core.deps import (
    API_PREFIX,
    CustomerDep,
    IdPath,
    OpsDep,
    Principal,
    PrincipalDep,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    SupportDep,
)
from waimai.core.errors import NotFound
from waimai.core.security import mask_phone
from waimai.platform.ordering.schemas import PlaceOrderIn
from waimai.platform.support import assisted, photos, ratings, resolutions
from waimai.platform.support import service as tickets
from waimai.platform.support.models import Ticket
from waimai.platform.support.schemas import (
    AssistedOrderIn,
    AssistedOrderOut,
    CustomerIn,
    CustomerOut,
    IncidentLinkIn,
    RatingIn,
    RatingOut,
    ReopenIn,
    ReplyIn,
    ResolveIn,
    TicketEventOut,
    TicketIn,
    TicketOut,
)

router = APIRouter(prefix=API_PREFIX, tags=["support"])


def ticket_out(db: Session, p: Principal, t: Ticket, *, detail: bool = True) -> TicketOut:
    staff = p.role in tickets.STAFF
    evs = [TicketEventOut(at=e.at, kind=e.kind, actor_role=e.actor_role, text=e.text, public=e.public)
           for e in tickets.events(db, p, t)] if detail else []
    return TicketOut(id=t.id, order_id=t.order_id, category=t.category, description=t.description, status=t.status,
                     source=t.source, reporter_role=t.reporter_role, created_at=t.created_at,
                     first_response_due=t.first_response_due, first_response_at=t.first_response_at,
                     resolution_due=t.resolution_due, resolved_at=t.resolved_at, sla=tickets.sla(t),
                     resolution=t.resolution, resolution_note=t.resolution_note, refund_fen=t.refund_fen,
                     coupon_id=t.coupon_id, redelivery_order_id=t.redelivery_order_id,
                     incident_id=t.incident_id if staff else None,
                     photos=photos.ids(db, t.id) if detail else [], events=evs)


def _customer_out(db: Session, user: Any, created: bool = False) -> CustomerOut:
    return CustomerOut(id=user.id, name=user.name, phone_masked=mask_phone(user.phone), created=created,
                       recent_orders=[{"id": o.id, "number": o.number, "status": o.status, "total_fen": o.total_fen,
                                       "created_at": o.created_at.isoformat()}
                                      for o in assisted.recent_orders(db, user.id)])


# --- assisted ordering -------------------------------------------------------------------------------------------

@router.get("/support/customers", response_model=CustomerOut)
def find_customer(p: SupportDep, db: SessionDep,
                  phone: Annotated[str, Query(min_length=6, max_length=24)]) -> CustomerOut:
    """Find a customer by phone number (a 404 if there is none: create them)."""
    user = assisted.find_customer(db, phone)
    audit.record(db, actor_id=p.user_id, actor_role=p.role, action="support.customer_lookup",
                 target=f"user:{user.id}" if user else "", details={"found": user is not None})
    if user is None:
        uow.checkpoint(db, why="a lookup is audited even when it finds no one and the request ends in a 404")
        raise NotFound("No customer has this phone number.", code="customer_unknown")
    return _customer_out(db, user)


@router.post("/support/customers", response_model=CustomerOut, status_code=201,
             responses={200: {"description": "the customer already exists"}})
def find_or_create_customer(body: CustomerIn, p: SupportDep, db: SessionDep, response: Response) -> CustomerOut:
    user, created = assisted.find_or_create_customer(db, p, phone=body.phone, name=body.name)
    if not created:
        response.status_code = 200
    return _customer_out(db, user, created)


@router.post("/support/orders", response_model=AssistedOrderOut, status_code=201,
             responses={200: {"description": "a replay of the first response for this Idempotency-Key"}})
def place_assisted(body: AssistedOrderIn, request: Request, p: SupportDep, settings: SettingsDep, response: Response,
                   idempotency_key: Annotated[str | None, Header(max_length=300)] = None) -> AssistedOrderOut:
    """Place an order on a customer's behalf (cash on delivery, or a payment link). Needs `Idempotency-Key`."""
    order = PlaceOrderIn(**body.model_dump(exclude={"customer_id"}))
    placed = assisted.place(request.app.state.db, p, customer_id=body.customer_id, body=order,
                            key=idempotency_key or "", ttl=dt.timedelta(hours=settings.idempotency_ttl_hours),
                            provider=request.app.state.payment_providers.get("gateway"),
                            public_url=settings.public_url)
    if placed.replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return AssistedOrderOut(order=placed.order, replayed=placed.replayed, pay_url=placed.pay_url,
                            pay_error=placed.pay_error)


@router.post("/support/orders/{order_id}/cod")
def assisted_cod(order_id: IdPath, request: Request, p: SupportDep) -> dict[str, Any]:
    """Switch an order waiting for online payment to cash on delivery."""
    order = assisted.switch_to_cod(request.app.state.db, p, order_id)
    return {"order_id": order.id, "status": order.status, "payment_method": order.payment_method}


# --- tickets ---------------------------------------------------------------------------------------------------

@router.post("/tickets", response_model=TicketOut, status_code=201)
def create_ticket(body: TicketIn, p: PrincipalDep, db: SessionDep) -> TicketOut:
    """Report a problem on an order (support: on the customer's behalf)."""
    t = tickets.create(db, p, order_id=body.order_id, category=body.category, description=body.description)
    return ticket_out(db, p, t)


@router.get("/tickets", response_model=list[TicketOut])
def list_tickets(p: PrincipalDep, db: ReadSessionDep,
                 status: Annotated[str | None, Query(pattern="^(open|in_progress|resolved)$")] = None,
                 category: Annotated[str | None, Query(max_length=24)] = None,
                 order_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
                 incident_id: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="staff only")] = None,
                 limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[TicketOut]:
    """Your tickets: a customer's own, a merchant's shop's, a rider's orders'; support and ops see all."""
    if incident_id is not None:
        tickets.require_staff(p)
    return [ticket_out(db, p, t, detail=False)
            for t in tickets.list_tickets(db, p, status=status, category=category, order_id=order_id,
                                          incident_id=incident_id, limit=limit)]


@router.get("/tickets/{ticket_id}", response_model=TicketOut)
def get_ticket(ticket_id: IdPath, p: PrincipalDep, db: ReadSessionDep) -> TicketOut:
    return ticket_out(db, p, tickets.get_visible(db, p, ticket_id))


@router.post("/tickets/{ticket_id}/photos", status_code=201)
async def add_photo(ticket_id: IdPath, request: Request, p: PrincipalDep,
                    file: Annotated[UploadFile, File(description="JPEG, PNG or WebP, up to 5 MB")]) -> dict[str, Any]:
    data = await file.read(photos.MAX_BYTES + 1)

    def store() -> dict[str, Any]:
        with uow.unit_of_work(request.app.state.db) as db:
            t = tickets.get_visible(db, p, ticket_id)
            photo = photos.add(db, p, t, data)
            return {"id": photo.id, "content_type": photo.content_type, "size": photo.size}

    return await run_in_threadpool(store)


@router.get("/tickets/{ticket_id}/photos/{photo_id}", response_class=Response)
def get_photo(ticket_id: IdPath, photo_id: IdPath, p: PrincipalDep, db: ReadSessionDep) -> Response:
    photo = photos.get(db, p, ticket_id, photo_id)
    return photos.http_response(photo)


@router.post("/tickets/{ticket_id}/replies", response_model=TicketOut, status_code=201)
def add_reply(ticket_id: IdPath, body: ReplyIn, p: PrincipalDep, db: SessionDep) -> TicketOut:
    t = tickets.get_visible(db, p, ticket_id)
    tickets.reply(db, p, t, body.text, internal=body.internal)
    return ticket_out(db, p, t)


@router.post("/tickets/{ticket_id}/take", response_model=TicketOut)
def take(ticket_id: IdPath, p: SupportDep, db: SessionDep) -> TicketOut:
    t = tickets.take(db, p, tickets.get_visible(db, p, ticket_id))
    return ticket_out(db, p, t)


@router.post("/tickets/{ticket_id}/reopen", response_model=TicketOut)
def reopen(ticket_id: IdPath, body: ReopenIn, p: SupportDep, db: SessionDep) -> TicketOut:
    t = tickets.reopen(db, p, tickets.get_visible(db, p, ticket_id), body.reason)
    return ticket_out(db, p, t)


@router.post("/tickets/{ticket_id}/resolve", response_model=TicketOut)
def resolve(ticket_id: IdPath, body: ResolveIn, request: Request, p: SupportDep) -> TicketOut:
    """Resolve with a refund (through the payment gateway), a re-delivery (a new order paid by the platform),
    a coupon (through the coupon service) or no action (say why in `note`)."""
    resolutions.resolve(request.app.state.db, request.app.state.payment_providers, p, ticket_id, body,
                        ttl=dt.timedelta(hours=request.app.state.settings.idempotency_ttl_hours))
    with request.app.state.db.read_session() as db:
        return ticket_out(db, p, tickets.get_visible(db, p, ticket_id))


@router.put("/tickets/{ticket_id}/incident", response_model=TicketOut)
def link_incident(ticket_id: IdPath, body: IncidentLinkIn, p: OpsDep, db: SessionDep) -> TicketOut:
    """Ops correct which incident a ticket belongs to (null: none)."""
    t = tickets.get_visible(db, p, ticket_id)
    tickets.set_incident(db, p, t, body.incident_id)
    return ticket_out(db, p, t)


# --- ratings and satisfaction ---------------------------------------------------------------------------------------

@router.put("/orders/{order_id}/rating", response_model=RatingOut)
def rate_order(order_id: IdPath, body: RatingIn, p: CustomerDep, db: SessionDep) -> RatingOut:
    r = ratings.rate(db, p, order_id=order_id, stars=body.stars, comment=body.comment)
    return RatingOut(subject=r.subject, stars=r.stars, comment=r.comment)


@router.put("/tickets/{ticket_id}/rating", response_model=RatingOut)
def rate_ticket(ticket_id: IdPath, body: RatingIn, p: CustomerDep, db: SessionDep) -> RatingOut:
    t = tickets.get_visible(db, p, ticket_id)
    r = ratings.rate(db, p, order_id=t.order_id, ticket_id=t.id, stars=body.stars, comment=body.comment)
    return RatingOut(subject=r.subject, stars=r.stars, comment=r.comment)


@router.get("/ops/satisfaction")
def satisfaction(p: OpsDep, db: ReadSessionDep, days: Annotated[int, Query(ge=1, le=90)] = 14) -> dict[str, Any]:
    """Ratings and complaint rates per day, merchant and rider, and complaints around each incident."""
    return ratings.satisfaction(db, days=days)
