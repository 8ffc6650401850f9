"""Customer-service pages: the support console (assisted ordering, the ticket queue), "report a problem"
on an order, the ticket pages every role shares, one-tap ratings, and the ops satisfaction page.

Forms work without JavaScript; every action goes through the same services as the API."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select

from waimai.core import audit, uow
from waimai.core.deps import IdPath, Principal
from waimai.core.errors import AppError
from waimai.core.messages import N_
from waimai.firewall.incidents.service import component_names
from waimai.firewall.switches.service import is_on
from waimai.platform.accounts.models import User
from waimai.platform.catalog import service as catalog
from waimai.platform.catalog.models import DeliveryPoint, Merchant
from waimai.platform.ordering import service as ordering
from waimai.platform.ordering.schemas import LineIn, PlaceOrderIn
from waimai.platform.payments import service as payments
from waimai.platform.support import assisted, photos, ratings, resolutions
from waimai.platform.support import service as tickets
from waimai.platform.support.models import Ticket
from waimai.platform.support.schemas import ResolveIn
from waimai.web.i18n import current_locale, gettext, say
from waimai.web.routes import _locale, _need, back, render

router = APIRouter(include_in_schema=False)
STAFF = tickets.STAFF
SOURCES = {"app": N_("Ordered in the app"), "assisted": N_("Taken by support"), "redelivery": N_("Re-delivery")}


def _fen(yuan: str) -> int | None:
    """'12.5' → 1250; blank → None; anything else is a 422 the form shows."""
    if not yuan.strip():
        return None
    try:
        v = Decimal(yuan.strip())
    except InvalidOperation as exc:
        raise AppError(N_("Enter an amount in yuan, e.g. 12.50."), status=422, code="amount_invalid") from exc
    if v <= 0 or v > 10_000 or v != v.quantize(Decimal("0.01")):
        raise AppError(N_("Enter an amount in yuan, e.g. 12.50."), status=422, code="amount_invalid")
    return int(v * 100)


def _page(request: Request, *roles: str) -> Principal | RedirectResponse:
    """The signed-in user (or the redirect to sign in), with the page's language set."""
    p = _need(request, *roles)
    _locale(request)
    return p


def _order(db: Any, p: Principal, order_id: int) -> Any:
    """The order if `p` may see it, else None (the page answers 404)."""
    try:
        order = ordering.load_order(db, order_id)
        ordering.check_can_view(db, p, order)
    except AppError:
        return None
    return order


def _labels() -> dict[str, str]:
    return {k: gettext(c.label) for k, c in tickets.CATEGORIES.items()}


# --- the support console: assisted ordering --------------------------------------------------------------------

@router.get("/support", response_class=HTMLResponse)
def console(request: Request) -> Response:
    p = _page(request, "support")
    if isinstance(p, RedirectResponse):
        return p
    phone = request.query_params.get("phone", "").strip()[:24]
    mid = request.query_params.get("m", "")
    database = request.app.state.db
    customer, lookup_err, menu = None, None, None
    if phone:
        with uow.unit_of_work(database) as db:
            try:
                customer = assisted.find_customer(db, phone)
            except AppError as exc:
                lookup_err = say(exc)
            audit.record(db, actor_id=p.user_id, actor_role=p.role, action="support.customer_lookup",
                         target=f"user:{customer.id}" if customer else "", details={"found": customer is not None})
    with database.read_session() as db:
        flags = {n: is_on(db, n) for n in ("payment.cod_only", "ordering.simple_mode", "delivery.pickup_points")}
        merchants = catalog.list_merchants(db)
        points = [d for d in catalog.list_delivery_points(db)
                  if not flags["delivery.pickup_points"] or d.kind == "locker"]
        recent = assisted.recent_orders(db, customer.id) if customer else []
        if customer and mid.isdigit():
            try:
                menu = catalog.merchant_detail(db, int(mid))
            except AppError:
                menu = None
        queue = dict(db.execute(select(Ticket.status, func.count()).where(Ticket.status != "resolved")
                                .group_by(Ticket.status)).all())
        overdue = len(tickets.breached(db))
    return render(request, "support.html", {
        "phone": phone, "customer": customer, "lookup_err": lookup_err, "recent": recent, "merchants": merchants,
        "menu": menu, "points": points, "flags": flags, "idem": str(uuid.uuid4()), "queue": queue,
        "overdue": overdue})


@router.post("/support/customers")
def console_customer(request: Request, phone: str = Form(...), name: str = Form("")) -> Response:
    p = _page(request, "support")
    if isinstance(p, RedirectResponse):
        return p
    try:
        with uow.unit_of_work(request.app.state.db) as db:
            user, created = assisted.find_or_create_customer(db, p, phone=phone, name=name)
            phone = user.phone
    except AppError as exc:
        return back(f"/support?phone={phone[:24]}", err=say(exc))
    return back(f"/support?phone={phone}", msg=gettext("Customer created.") if created else None)


@router.post("/support/orders")
def console_place(request: Request, customer_id: int = Form(..., ge=1, le=2**31 - 1),
                  merchant_id: int = Form(..., ge=1, le=2**31 - 1), delivery_point_id: int = Form(..., ge=1, le=2**31 - 1),
                  payment_method: str = Form("cod"), note: str = Form(""), idem: str = Form(...), phone: str = Form(""),
                  coupon_code: str = Form(""), item_id: list[int] = Form(default=[]), qty: list[int] = Form(default=[]),
                  opt: list[str] = Form(default=[])) -> Response:
    p = _page(request, "support")
    if isinstance(p, RedirectResponse):
        return p
    here = f"/support?phone={phone[:24]}&m={merchant_id}"
    chosen: dict[int, list[str]] = {}
    for o in opt:  # "<item id>:<choice>" from each option select
        iid, _, name = o.partition(":")
        if iid.isdigit() and name:
            chosen.setdefault(int(iid), []).append(name)
    try:
        items = [LineIn(item_id=i, quantity=q, options=chosen.get(i, [])) for i, q in zip(item_id, qty, strict=False)
                 if q > 0]
        if not items:
            return back(here, err=gettext("Choose at least one item."))
        body = PlaceOrderIn(merchant_id=merchant_id, delivery_point_id=delivery_point_id, items=items,
                            payment_method=payment_method, note=note[:200],  # type: ignore[arg-type]
                            coupon_code=coupon_code.strip() or None)
        s = request.app.state.settings
        placed = assisted.place(request.app.state.db, p, customer_id=customer_id, body=body, key=idem,
                                ttl=dt.timedelta(hours=s.idempotency_ttl_hours),
                                provider=request.app.state.payment_providers.get("gateway"), public_url=s.public_url)
    except AppError as exc:
        return back(here, err=say(exc))
    except ValidationError:
        return back(here, err=gettext("Please check the order: a quantity or option is not valid."))
    target = f"/support/orders/{placed.order['id']}"
    if placed.pay_error:
        return back(target, err=gettext(placed.pay_error))
    return back(target, msg=gettext("Order placed."))


@router.get("/support/orders/{order_id}", response_class=HTMLResponse)
def console_order(request: Request, order_id: IdPath) -> Response:
    """What the agent reads out: number, total, the proof code of an order they placed, the payment link."""
    p = _page(request, "support")
    if isinstance(p, RedirectResponse):
        return p
    with request.app.state.db.read_session() as db:
        if (order := _order(db, p, order_id)) is None:
            return render(request, "error.html", {"message": gettext("Order not found.")}, 404)
        pay = payments.latest_payment(db, order_id)
        merchant = db.get(Merchant, order.merchant_id)
        point = db.get(DeliveryPoint, order.delivery_point_id)
        customer = db.get(User, order.customer_id)
    return render(request, "support_order.html", {
        "o": order, "payment": pay, "merchant": merchant, "point": point, "customer": customer,
        "show_code": order.source in ("assisted", "redelivery") or p.role == "ops",
        "source": gettext(SOURCES.get(order.source, order.source))})


@router.post("/support/orders/{order_id}/cod")
def console_cod(request: Request, order_id: IdPath) -> Response:
    p = _page(request, "support")
    if isinstance(p, RedirectResponse):
        return p
    try:
        assisted.switch_to_cod(request.app.state.db, p, order_id)
    except AppError as exc:
        return back(f"/support/orders/{order_id}", err=say(exc))
    return back(f"/support/orders/{order_id}", msg=gettext("Switched to cash on delivery."))


# --- reporting a problem, tickets ------------------------------------------------------------------------------

@router.get("/orders/{order_id}/problem", response_class=HTMLResponse)
def problem_form(request: Request, order_id: IdPath) -> Response:
    p = _page(request)
    if isinstance(p, RedirectResponse):
        return p
    with request.app.state.db.read_session() as db:
        if (order := _order(db, p, order_id)) is None:
            return render(request, "error.html", {"message": gettext("Order not found.")}, 404)
        existing = tickets.list_tickets(db, p, order_id=order_id)
    labels = _labels()
    return render(request, "problem.html", {"o": order, "categories": [(c, labels[c]) for c in
                                                                         tickets.categories_for(p.role)],
                                            "existing": existing, "labels": labels,
                                            "max_mb": photos.MAX_BYTES // (1024 * 1024)})


@router.post("/orders/{order_id}/problem")
def problem_submit(request: Request, order_id: IdPath, category: str = Form(...), description: str = Form(""),
                   photo: UploadFile | None = File(None)) -> Response:
    p = _page(request)
    if isinstance(p, RedirectResponse):
        return p
    data = photo.file.read(photos.MAX_BYTES + 1) if photo is not None else b""
    try:
        with uow.unit_of_work(request.app.state.db) as db:  # the ticket and its photo, or neither
            t = tickets.create(db, p, order_id=order_id, category=category, description=description[:1000])
            if data:
                photos.add(db, p, t, data)
            tid = t.id
    except AppError as exc:
        return back(f"/orders/{order_id}/problem", err=say(exc))
    return back(f"/tickets/{tid}", msg=gettext("Thank you: we have your report and will answer soon."))


@router.get("/tickets", response_class=HTMLResponse)
def ticket_list(request: Request) -> Response:
    p = _page(request)
    if isinstance(p, RedirectResponse):
        return p
    q = request.query_params
    status = q.get("status") if q.get("status") in tickets.STATUSES else None
    category = q.get("category") if q.get("category") in tickets.CATEGORIES else None
    with request.app.state.db.read_session() as db:
        if p.role in STAFF and q.get("overdue"):
            rows = tickets.breached(db)
        else:
            rows = tickets.list_tickets(db, p, status=status, category=category, limit=200)
    now = dt.datetime.now(dt.UTC)
    return render(request, "tickets.html", {"tickets": rows, "sla": {t.id: tickets.sla(t, now) for t in rows},
                                            "labels": _labels(), "status": status, "category": category,
                                            "staff": p.role in STAFF, "overdue": bool(q.get("overdue"))})


@router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
def ticket_page(request: Request, ticket_id: IdPath) -> Response:
    p = _page(request)
    if isinstance(p, RedirectResponse):
        return p
    with request.app.state.db.read_session() as db:
        try:
            t = tickets.get_visible(db, p, ticket_id)
        except AppError:
            return render(request, "error.html", {"message": gettext("Ticket not found.")}, 404)
        order = ordering.load_order(db, t.order_id)
        history = tickets.events(db, p, t)
        photo_ids = photos.ids(db, t.id)
        stars = ratings.mine(db, p.user_id, [f"ticket:{t.id}"]).get(f"ticket:{t.id}")
    return render(request, "ticket.html", {"t": t, "o": order, "history": history, "photos": photo_ids,
                                           "labels": _labels(), "sla": tickets.sla(t), "staff": p.role in STAFF,
                                           "stars": stars, "max_mb": photos.MAX_BYTES // (1024 * 1024),
                                           "coupon_max": assisted_coupon_max(p)})


def assisted_coupon_max(p: Principal) -> str:
    from waimai.platform.support.resolutions import COUPON_MAX_FEN

    return f"{COUPON_MAX_FEN.get(p.role, 0) / 100:.2f}"


def _ticket_action(request: Request, ticket_id: int, fn: Any, done: str) -> Response:
    p = _page(request)
    if isinstance(p, RedirectResponse):
        return p
    try:
        fn(p)
    except AppError as exc:
        return back(f"/tickets/{ticket_id}", err=say(exc))
    return back(f"/tickets/{ticket_id}", msg=gettext(done))


def _in_session(request: Request, ticket_id: int, act: Any) -> Any:
    def run(p: Principal) -> None:
        with uow.unit_of_work(request.app.state.db) as db:
            act(db, p, tickets.get_visible(db, p, ticket_id))
    return run


@router.post("/tickets/{ticket_id}/reply")
def ticket_reply(request: Request, ticket_id: IdPath, text: str = Form(""), internal: str = Form("")) -> Response:
    return _ticket_action(request, ticket_id, _in_session(
        request, ticket_id, lambda db, p, t: tickets.reply(db, p, t, text[:1000], internal=internal == "1")), N_("Sent."))


@router.post("/tickets/{ticket_id}/take")
def ticket_take(request: Request, ticket_id: IdPath) -> Response:
    return _ticket_action(request, ticket_id, _in_session(request, ticket_id, tickets.take), N_("Ticket taken."))


@router.post("/tickets/{ticket_id}/reopen")
def ticket_reopen(request: Request, ticket_id: IdPath, reason: str = Form("")) -> Response:
    return _ticket_action(request, ticket_id, _in_session(
        request, ticket_id, lambda db, p, t: tickets.reopen(db, p, t, reason[:200])), N_("Ticket reopened."))


@router.post("/tickets/{ticket_id}/resolve")
def ticket_resolve(request: Request, ticket_id: IdPath, resolution: str = Form(...), note: str = Form(""),
                   amount: str = Form(""), min_spend: str = Form(""), item_ids: list[int] = Form(default=[])) -> Response:
    def run(p: Principal) -> None:
        if p.role not in STAFF:
            raise AppError(gettext("Only support staff can do this."), status=403, code="forbidden")
        try:
            body = ResolveIn(resolution=resolution, note=note[:500], amount_fen=_fen(amount),  # type: ignore[arg-type]
                             min_spend_fen=_fen(min_spend) or 0, item_ids=item_ids or None)
        except ValidationError as exc:
            raise AppError(gettext("Please check the resolution's fields."), status=422, code="invalid") from exc
        resolutions.resolve(request.app.state.db, request.app.state.payment_providers, p, ticket_id, body,
                            ttl=dt.timedelta(hours=request.app.state.settings.idempotency_ttl_hours))
    return _ticket_action(request, ticket_id, run, N_("Ticket resolved."))


@router.post("/tickets/{ticket_id}/photos")
def ticket_photo(request: Request, ticket_id: IdPath, photo: UploadFile = File(...)) -> Response:
    data = photo.file.read(photos.MAX_BYTES + 1)
    return _ticket_action(request, ticket_id, _in_session(
        request, ticket_id, lambda db, p, t: photos.add(db, p, t, data)), N_("Photo added."))


@router.get("/tickets/{ticket_id}/photos/{photo_id}")
def ticket_photo_file(request: Request, ticket_id: IdPath, photo_id: IdPath) -> Response:
    p = _need(request)
    if isinstance(p, RedirectResponse):
        return p
    with request.app.state.db.read_session() as db:
        try:
            return photos.http_response(photos.get(db, p, ticket_id, photo_id))
        except AppError:
            return Response(status_code=404)


# --- one-tap ratings ---------------------------------------------------------------------------------------------

@router.post("/orders/{order_id}/rate")
def rate_order(request: Request, order_id: IdPath, stars: int = Form(..., ge=1, le=5)) -> Response:
    return _rate(request, order_id, None, stars, f"/orders/{order_id}")


@router.post("/tickets/{ticket_id}/rate")
def rate_ticket(request: Request, ticket_id: IdPath, stars: int = Form(..., ge=1, le=5)) -> Response:
    with request.app.state.db.read_session() as db:
        t = db.get(Ticket, ticket_id)
        order_id = t.order_id if t else 0
    return _rate(request, order_id, ticket_id, stars, f"/tickets/{ticket_id}")


def _rate(request: Request, order_id: int, ticket_id: int | None, stars: int, target: str) -> Response:
    p = _page(request, "customer")
    if isinstance(p, RedirectResponse):
        return p
    try:
        with uow.unit_of_work(request.app.state.db) as db:
            ratings.rate(db, p, order_id=order_id, ticket_id=ticket_id, stars=stars)
    except AppError as exc:
        return back(target, err=say(exc))
    return back(target, msg=gettext("Thank you for rating: %(n)s ★") % {"n": stars})


# --- ops -----------------------------------------------------------------------------------------------------------

@router.get("/ops/satisfaction", response_class=HTMLResponse)
def satisfaction_page(request: Request) -> Response:
    p = _page(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    days = request.query_params.get("days", "14")
    n = int(days) if days.isdigit() and 1 <= int(days) <= 90 else 14
    with request.app.state.db.read_session() as db:
        data = ratings.satisfaction(db, days=n)
    peak = max(data["hourly"]["counts"] or [0]) or 1
    # Components by the names the status page gives them, in the reader's language (never `payment_gateway`).
    sop = request.app.state.sop
    names = {i["id"]: component_names(sop, list(i["components"]), current_locale.get()) if i["components"] else "—"
             for i in data["incidents"]}
    return render(request, "ops_satisfaction.html", {"d": data, "days": n, "peak": peak, "names": names})
