"""Server-rendered pages for customers, merchants and riders (no JavaScript build step)."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import func, select

from waimai.core import uow
from waimai.core.database import is_connection_error, utcnow
from waimai.core.deps import TOKEN_COOKIE, IdPath, Principal, authz_cache
from waimai.core.deps import principal_from as optional_principal
from waimai.core.errors import AppError
from waimai.core.inbox import Notice
from waimai.core.numbers import readable
from waimai.core.security import mask_phone
from waimai.core.timeutil import hhmm, local, yuan
from waimai.firewall.statuspage.service import banners as status_banners
from waimai.firewall.switches import flags
from waimai.platform.accounts import service as accounts
from waimai.platform.accounts.models import User
from waimai.platform.catalog import service as catalog
from waimai.platform.catalog.models import DeliveryPoint, MenuItem, Merchant
from waimai.platform.coupons import service as coupons
from waimai.platform.delivery import proof as delivery_proof
from waimai.platform.delivery import service as delivery
from waimai.platform.delivery.models import Rider
from waimai.platform.ordering import idempotency, spool
from waimai.platform.ordering import service as ordering
from waimai.platform.ordering.models import Order, OrderTransition
from waimai.platform.ordering.schemas import LineIn, PlaceOrderIn
from waimai.platform.ordering.state import ACTIVE, CUSTOMER_CANCELLABLE, Status
from waimai.platform.payments import service as payments
from waimai.web.campus_map import load_map
from waimai.web.cart import CART_COOKIE, MAX_LINES, MAX_OPTIONS, read_cart, write_cart
from waimai.web.i18n import current_locale, gettext, negotiate, ngettext, say, words
from waimai.web.i18n.keys import N_

_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
                          autoescape=True, extensions=["jinja2.ext.i18n"])
TEMPLATES = Jinja2Templates(env=_ENV)
TEMPLATES.env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
TEMPLATES.env.filters["yuan"] = yuan


def reason_text(reason: str | None) -> str:
    """A transition's reason: the system's own reasons are msgids; what a person typed is shown as typed."""
    return gettext(reason) if reason else ""


TEMPLATES.env.globals["reason_text"] = reason_text


def tr(key: str, fallback: str) -> str:
    """A keyed msgid (`runbook.<name>.title`) in the page's language, or `fallback` for a key not in the catalog."""
    text = gettext(key)
    return fallback if text == key else text


TEMPLATES.env.globals["tr"] = tr
# A system-written sentence (a msg, or its stored form) in the page's language, people's words in it marked.
TEMPLATES.env.globals["words"] = lambda value: words(value, html=True)
# A stored text (a notice written when it was sent) keeps the language it was written in: say so to readers.
TEMPLATES.env.filters["text_lang"] = lambda t: "zh-CN" if re.search(r"[\u3400-\u9fff]", t or "") else "en"
TEMPLATES.env.filters["hhmm"] = hhmm
TEMPLATES.env.filters["readable"] = readable
TEMPLATES.env.filters["mask"] = mask_phone
TEMPLATES.env.filters["hms"] = lambda t: "" if t is None else local(t).strftime("%H:%M:%S")  # type: ignore[union-attr]
TEMPLATES.env.filters["dur"] = lambda s: "–" if s is None else (
    f"{int(s)}s" if s < 60 else f"{int(s // 60)}m {int(s % 60):02d}s" if s < 3600 else f"{int(s // 3600)}h {int(s % 3600 // 60):02d}m")
TEMPLATES.env.filters["dt"] = lambda t: "" if t is None else local(t).strftime("%m-%d %H:%M")  # type: ignore[union-attr]

STEPS = [Status.created, Status.accepted, Status.preparing, Status.ready, Status.picked_up, Status.delivered]

router = APIRouter(include_in_schema=False)


def _locale(request: Request) -> str:
    loc = negotiate(request.query_params.get("lang"), request.cookies.get("waimai_lang"),
                    request.headers.get("accept-language"), request.app.state.settings.default_locale)
    current_locale.set(loc)
    return loc


def _notices(request: Request, p: Principal | None, loc: str) -> dict[str, Any]:
    """The banners for the user's role (a component they need is degraded) and their unread notices."""
    state = request.app.state
    cache = getattr(state, "status_cache", None)
    banners = status_banners(cache.get(), state.sop, p.role if p else "customer", loc) if cache else []
    unread = 0
    if p is not None and state.db.reachable:  # during an outage the header simply shows no count
        try:
            with state.db.read_session() as db:
                unread = db.scalar(select(func.count()).select_from(Notice).where(
                    Notice.user_id == p.user_id, Notice.read_at.is_(None))) or 0
        except Exception as exc:
            if not is_connection_error(exc):
                raise
    return {"banners": banners, "unread": unread}


def render(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> HTMLResponse:
    loc = _locale(request)
    p = optional_principal(request)
    resp = TEMPLATES.TemplateResponse(request, name, {
        "me": p, "locale": loc, "lang_attr": "zh-CN" if loc == "zh_CN" else "en",
        "flash": request.query_params.get("msg"), "error": request.query_params.get("err"),
        **_notices(request, p, loc), **ctx},
        status_code=status)
    if request.query_params.get("lang") in ("zh_CN", "en"):
        resp.set_cookie("waimai_lang", loc, max_age=365 * 86400, samesite="lax")
    return resp


def back(url: str, *, msg: str | None = None, err: str | None = None) -> RedirectResponse:
    sep = "&" if "?" in url else "?"
    if msg:
        url += f"{sep}msg={quote(msg)}"
    elif err:
        url += f"{sep}err={quote(err)}"
    return RedirectResponse(url, status_code=303)


def _need(request: Request, *roles: str) -> Principal | RedirectResponse:
    _locale(request)  # before the page builds its context: everything it words is in the page's language
    p = optional_principal(request)
    if p is None:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    if roles and p.role not in roles and p.role != "ops":
        return RedirectResponse("/login?err=" + quote(gettext("This page is for another role.")), status_code=303)
    return p


# --- sign in -----------------------------------------------------------------------------------------

@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return render(request, "login.html", {"next": request.query_params.get("next", "")})


# Where each role lands after signing in: its own console, never another role's page.
HOME = {"merchant": "/merchant", "rider": "/rider", "ops": "/ops", "support": "/support"}


@router.post("/login")
def login_submit(request: Request, phone: str = Form(""), password: str = Form(""),
                 next: str = Form("")) -> Response:  # noqa: A002 - the form field's name
    _locale(request)
    db = request.app.state.db
    try:
        with uow.unit_of_work(db) as s:
            token = accounts.login(s, settings=request.app.state.settings, phone=phone.strip(),
                                   password=password, client=request.client.host if request.client else "?")
    except AppError as exc:
        # The form comes back with the phone kept (not put in a URL), so only the password is typed again.
        return render(request, "login.html", {"next": next, "phone": phone.strip()[:20], "error": say(exc)},
                      status=exc.status if exc.status == 429 else 200)
    home = HOME.get(token.role, "/")
    target = next if next.startswith("/") and not next.startswith("//") else home
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(TOKEN_COOKIE, token.access_token, httponly=True, samesite="lax",
                    max_age=token.expires_in, secure=request.url.scheme == "https")
    return resp


@router.post("/logout")
def logout(request: Request) -> Response:
    p = optional_principal(request)
    if p is not None:  # revoke, not just forget: a copy of the cookie stops working too
        with uow.unit_of_work(request.app.state.db) as db:
            accounts.revoke_tokens(db, p.user_id)
        authz_cache(request.app).invalidate(p.user_id)
    resp = RedirectResponse("/", status_code=303)
    resp.delete_cookie(TOKEN_COOKIE)
    return resp


# --- customer ----------------------------------------------------------------------------------------

def _cart(request: Request) -> dict[str, Any]:
    return read_cart(request.cookies.get(CART_COOKIE), secret=request.app.state.settings.secret_key)


def _save_cart(request: Request, resp: Response, cart: dict[str, Any]) -> None:
    resp.set_cookie(CART_COOKIE, write_cart(cart, secret=request.app.state.settings.secret_key), max_age=86400,
                    samesite="lax", httponly=True, secure=request.url.scheme == "https")


def _simple_mode() -> RedirectResponse | None:
    """While `ordering.simple_mode` is on, browsing goes to the light page served from memory."""
    return RedirectResponse("/simple", status_code=303) if flags.enabled("ordering.simple_mode") else None


@router.get("/", response_class=HTMLResponse)
def shops(request: Request) -> Response:
    if (simple := _simple_mode()) is not None:
        return simple
    with request.app.state.db.read_session() as db:
        merchants = catalog.list_merchants(db)
    merchants.sort(key=lambda m: (not m.open_now, m.id))
    return render(request, "shops.html", {"merchants": merchants, "cart": _cart(request)})


@router.get("/shops/{merchant_id}", response_class=HTMLResponse)
def menu(request: Request, merchant_id: IdPath) -> Response:
    if (simple := _simple_mode()) is not None:
        return simple
    with request.app.state.db.read_session() as db:
        try:
            detail = catalog.merchant_detail(db, merchant_id)
        except AppError:
            return render(request, "error.html", {"message": gettext("This shop does not exist.")}, 404)
    return render(request, "menu.html", {"m": detail, "cart": _cart(request)})


@router.post("/cart/add")
def cart_add(request: Request, item_id: int = Form(..., ge=1, le=2**31 - 1), quantity: str = Form(""),
             options: list[str] = Form(default=[]), replace: str = Form("")) -> Response:
    _locale(request)
    with request.app.state.db.read_session() as db:
        item = db.get(MenuItem, item_id)
        if item is None:
            return back("/", err=gettext("That item no longer exists."))
        merchant_id = item.merchant_id
        name = item.name
        cart = _cart(request)
        other = db.get(Merchant, cart["merchant_id"]) if cart["lines"] and cart.get("merchant_id") != merchant_id \
            else None
    qty = quantity.strip()
    if not qty.isdigit() or not 1 <= int(qty) <= 99:
        return back(f"/shops/{merchant_id}", err=gettext("Enter a quantity from 1 to 99."))
    opts = [o[:40] for o in options if o][:MAX_OPTIONS]
    if other is not None and replace != "1":
        # One shop per order: say so and ask before the other shop's dishes are thrown away.
        return render(request, "cart_replace.html", {"item_id": item_id, "name": name, "quantity": int(qty),
                                                     "options": opts, "other": other, "merchant_id": merchant_id,
                                                     "cart": cart}, status=409)
    if cart.get("merchant_id") != merchant_id:
        cart = {"merchant_id": merchant_id, "lines": []}
    for line in cart["lines"]:
        if line[0] == item_id and line[2] == opts:
            line[1] = min(99, line[1] + int(qty))
            break
    else:
        if len(cart["lines"]) >= MAX_LINES:
            return back(f"/shops/{merchant_id}", err=gettext("Your cart is full."))
        cart["lines"].append([item_id, int(qty), opts])
    resp = back(f"/shops/{merchant_id}", msg=gettext("Added to cart: ") + name)
    _save_cart(request, resp, cart)
    return resp


@router.post("/cart/remove")
def cart_remove(request: Request, index: int = Form(...)) -> Response:
    cart = _cart(request)
    if 0 <= index < len(cart["lines"]):
        cart["lines"].pop(index)
    resp = back("/cart")
    _save_cart(request, resp, cart)
    return resp


@router.get("/cart", response_class=HTMLResponse)
def cart_page(request: Request) -> Response:
    p = _need(request, "customer")
    if isinstance(p, RedirectResponse):
        return p
    cart = _cart(request)
    if not cart["lines"]:
        return render(request, "cart.html", {"quote": None, "cart": cart})
    cod_only, pickup_only = flags.enabled("payment.cod_only"), flags.enabled("delivery.pickup_points")
    with request.app.state.db.read_session() as db:
        points = catalog.list_delivery_points(db)
        if pickup_only:  # riders are short: pick-up points (lockers) only
            points = [d for d in points if d.kind == "locker"]
        merchant = db.get(Merchant, cart["merchant_id"])
        quote_err = None
        quote = None
        try:
            body = _cart_body(cart, points[0].id if points else 1, "cod", "")
            quote = ordering.price(db, body).quote
        except (AppError, ValidationError) as exc:
            quote_err = say(exc) if isinstance(exc, AppError) else gettext("Please check the cart: a quantity or option is not valid.")
        usable = [c for c in coupons.mine(db, p.user_id, usable_only=True)
                  if quote and c.min_spend_fen <= quote.subtotal_fen and c.merchant_id in (None, cart["merchant_id"])]
    return render(request, "cart.html", {"quote": quote, "quote_err": quote_err, "cart": cart, "points": points,
                                         "merchant": merchant, "idem": str(uuid.uuid4()), "cod_only": cod_only,
                                         "pickup_only": pickup_only, "coupons": usable,
                                         "rails": pay_choices(request)})


def _cart_body(cart: dict[str, Any], point_id: int, method: str, note: str, coupon: str = "") -> PlaceOrderIn:
    return PlaceOrderIn(merchant_id=cart["merchant_id"], delivery_point_id=point_id,
                        items=[LineIn(item_id=i, quantity=q, options=o) for i, q, o in cart["lines"]],
                        payment_method=method, note=note, coupon_code=coupon or None)  # type: ignore[arg-type]


@router.post("/checkout")
def checkout(request: Request, delivery_point_id: int = Form(...), payment_method: str = Form("cod"),
             note: str = Form(""), idem: str = Form(...), coupon_code: str = Form("")) -> Response:
    p = _need(request, "customer")
    if isinstance(p, RedirectResponse):
        return p
    cart = _cart(request)
    if not cart["lines"]:
        return back("/cart", err=gettext("Your cart is empty."))
    database = request.app.state.db
    try:
        body = _cart_body(cart, delivery_point_id, "gateway" if payment_method in ("wechat", "alipay")
                          else payment_method, note[:200], coupon_code.strip()[:24])
        key = idempotency.validate_key(idem)
        fp = idempotency.request_fingerprint(body.model_dump(mode="json"))
        ttl = dt.timedelta(hours=request.app.state.settings.idempotency_ttl_hours)
        if not database.reachable:
            raise _Unreachable
        _status, (payload, _oid), _replayed = idempotency.place_once(database, p, body, key, fp, ttl)
        order_id = json.loads(payload)["id"]  # a double-submitted form shows the order already placed
    except AppError as exc:
        return back("/cart", err=say(exc))
    except ValidationError:
        return back("/cart", err=gettext("Please check the cart: a quantity or option is not valid."))
    except Exception as exc:
        if not isinstance(exc, _Unreachable) and not is_connection_error(exc):
            raise
        try:  # no database accepts writes: into this replica's spool, 待确认 until it is back
            row, _again = spool.take(request.app.state, customer=p, body=body, key=key, fingerprint=fp)
        except AppError as refused:
            return back("/cart", err=gettext("Our database is unavailable: choose cash on delivery, and we confirm "
                                             "the order as soon as it is back.") if refused.code ==
                        "database_unavailable" else refused.message)
        resp0 = back(f"/orders/pending/{row.ref}", msg=gettext("Order received, confirming"))
        _save_cart(request, resp0, {"merchant_id": None, "lines": []})
        return resp0
    if payment_method in ("gateway", "wechat", "alipay"):
        target = f"/orders/{order_id}/pay" + ("" if payment_method == "gateway" else f"?provider={payment_method}")
        resp: Response = RedirectResponse(target, status_code=303)
    else:
        resp = back(f"/orders/{order_id}", msg=gettext("Order placed. Pay the rider in cash on delivery."))
    _save_cart(request, resp, {"merchant_id": None, "lines": []})
    return resp


@router.get("/orders/{order_id}/pay")
def pay_redirect(request: Request, order_id: IdPath) -> Response:
    p = _need(request, "customer")
    if isinstance(p, RedirectResponse):
        return p
    _locale(request)
    from waimai.web import pay

    return pay.start(request, order_id, p, render)


@router.post("/orders/{order_id}/cod")
def pay_cod(request: Request, order_id: IdPath) -> Response:
    p = _need(request, "customer")
    if isinstance(p, RedirectResponse):
        return p
    _locale(request)
    try:
        with uow.unit_of_work(request.app.state.db) as db:
            order = ordering.load_order(db, order_id, for_update=True)
            ordering.check_can_view(db, p, order)
            payments.switch_to_cod(db, order=order, actor=p)
    except AppError as exc:
        return back(f"/orders/{order_id}", err=say(exc))
    return back(f"/orders/{order_id}", msg=gettext("Switched to cash on delivery."))


@router.post("/orders/{order_id}/cancel")
def cancel_order(request: Request, order_id: IdPath) -> Response:
    return _web_transition(request, order_id, Status.cancelled, "/orders/{id}", reason=N_("cancelled by customer"))


@router.get("/orders", response_class=HTMLResponse)
def my_orders(request: Request) -> Response:
    p = _need(request, "customer")
    if isinstance(p, RedirectResponse):
        return p
    with request.app.state.db.read_session() as db:
        orders = list(db.scalars(select(Order).where(Order.customer_id == p.user_id)
                                 .order_by(Order.id.desc()).limit(50)))
        names = {m.id: m.name for m in db.scalars(select(Merchant))}
    return render(request, "orders.html", {"orders": orders, "names": names})


class _Unreachable(Exception):
    """The database watch already knows: do not wait for a connect timeout."""


@router.get("/orders/pending/{reference}", response_class=HTMLResponse)
def pending_page(request: Request, reference: str) -> Response:
    """An order taken into this replica's spool while the database was down: 待确认 until confirmed or refused."""
    p = _need(request)
    if isinstance(p, RedirectResponse):
        return p
    spooled = getattr(request.app.state, "order_spool", None)
    row = spooled.get(reference) if spooled is not None and len(reference) <= 16 else None
    if row is None or (row.user_id != p.user_id and p.role not in ("ops", "support")):
        return render(request, "pending_order.html", {"row": None, "reference": reference[:16]}, 404)
    if row.state == "confirmed" and row.order_id is not None:
        return RedirectResponse(f"/orders/{row.order_id}", status_code=303)
    return render(request, "pending_order.html", {"row": row.public(), "reference": row.ref,
                                                  "received": dt.datetime.fromtimestamp(row.received_at, dt.UTC)})


def pay_choices(request: Request) -> list[dict[str, Any]]:
    from waimai.platform.payments.rails import rails as configured
    from waimai.web.pay import choices

    return choices(request) if configured(request.app.state.settings) else []


# A return from the cashier waits this long for the payment's callback before offering the buttons again.
PAYMENT_WAIT = dt.timedelta(minutes=2)


def _order_view(request: Request, p: Principal, order_id: int) -> dict[str, Any] | None:
    """What the order page shows, decided from the order's state: the actions it allows, nothing more."""
    _locale(request)
    with request.app.state.db.read_session() as db:
        try:
            order = ordering.load_order(db, order_id)
            ordering.check_can_view(db, p, order)
        except AppError:
            return None
        merchant = db.get(Merchant, order.merchant_id)
        point = db.get(DeliveryPoint, order.delivery_point_id)
        history = list(db.scalars(select(OrderTransition).where(OrderTransition.order_id == order_id)
                                  .order_by(OrderTransition.id)))
        pay = payments.latest_payment(db, order_id)
        out = ordering.to_out(order, viewer=p)
        cmap = load_map(db, merchant.campus_id) if merchant else None
        rider = db.get(Rider, order.rider_id) if order.rider_id else None
    status = Status(order.status)
    reached = {h.to_status for h in history}
    if status in (Status.paid, Status.cod_confirmed):
        reached.add(Status.created.value)
    customer = p.role == "customer" and order.customer_id == p.user_id
    unpaid_online = status is Status.created and order.payment_method == "gateway"
    pending = pay is not None and pay.provider == "gateway" and pay.status == "pending"
    waiting = (customer and unpaid_online and pending and request.query_params.get("from") == "pay"
               and pay is not None and pay.created_at is not None
               and utcnow() - pay.created_at < PAYMENT_WAIT)
    rider_at = cmap.flip(rider.x, rider.y) if cmap and rider else None
    last_reason = next((h.reason for h in reversed(history) if h.to_status == order.status and h.reason), None)
    return {
        "o": out, "order": order, "merchant": merchant, "point": point, "history": history, "payment": pay,
        "cmap": cmap, "rider_at": rider_at, "steps": STEPS, "reached": reached, "active": status in ACTIVE,
        "waiting_payment": waiting, "can_pay": customer and unpaid_online and not waiting,
        "rails": pay_choices(request) if status is Status.created else [],
        "rails_configured": bool(request.app.state.settings.payment_rails.strip()),
        "can_cancel": customer and status in CUSTOMER_CANCELLABLE and not waiting,
        "can_rate": customer and status is Status.delivered, "last_reason": reason_text(last_reason),
        "live_labels": {**{st.value: gettext("status." + st.value) for st in Status},
                        "__eta": gettext("arrives in %(n)s min")}}


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def order_page(request: Request, order_id: IdPath) -> Response:
    p = _need(request)
    if isinstance(p, RedirectResponse):
        return p
    if request.query_params.get("from") == "pay" and p.role == "customer":
        from waimai.web.pay import settle_on_return

        settle_on_return(request, order_id)  # back from a cashier: ask the provider, trust no redirect
    ctx = _order_view(request, p, order_id)
    if ctx is None:
        return render(request, "error.html", {"message": gettext("Order not found.")}, 404)
    return render(request, "order.html", ctx)


@router.get("/orders/{order_id}/live", response_class=HTMLResponse)
def order_live(request: Request, order_id: IdPath) -> Response:
    """The order page's state block alone: the page swaps it in on every live status change."""
    p = optional_principal(request)
    if p is None:
        return Response(status_code=401)
    ctx = _order_view(request, p, order_id)
    if ctx is None:
        return Response(status_code=404)
    resp = TEMPLATES.TemplateResponse(request, "_order_live.html", {"me": p, **ctx})
    resp.headers["Cache-Control"] = "no-store"
    return resp


# --- merchant ----------------------------------------------------------------------------------------

def _staff_merchant(db: Any, p: Principal, request: Request) -> Merchant | None:
    if p.role == "ops":
        mid = request.query_params.get("m")
        return db.get(Merchant, int(mid)) if mid and mid.isdigit() else db.scalar(select(Merchant).limit(1))
    user = db.get(User, p.user_id)
    return db.get(Merchant, user.merchant_id) if user and user.merchant_id else None


@router.get("/merchant", response_class=HTMLResponse)
def merchant_console(request: Request) -> Response:
    p = _need(request, "merchant")
    if isinstance(p, RedirectResponse):
        return p
    with request.app.state.db.read_session() as db:
        m = _staff_merchant(db, p, request)
        if m is None:
            return render(request, "error.html", {"message": gettext("No shop is linked to this account.")}, 404)
        live = [Status.paid.value, Status.cod_confirmed.value, Status.accepted.value, Status.preparing.value,
                Status.ready.value]
        orders = list(db.scalars(select(Order).where(Order.merchant_id == m.id, Order.status.in_(live))
                                 .order_by(Order.id)))
        detail = catalog.merchant_detail(db, m.id)
    return render(request, "merchant.html", {"m": detail, "orders": orders})


@router.post("/merchant/orders/{order_id}/{action}")
def merchant_action(request: Request, order_id: IdPath, action: str, reason: str = Form("")) -> Response:
    to = {"accept": Status.accepted, "reject": Status.rejected, "preparing": Status.preparing,
          "ready": Status.ready}.get(action)
    if to is None:
        _locale(request)
        return back("/merchant", err=gettext("That action does not exist."))
    return _web_transition(request, order_id, to, "/merchant", reason=reason or None)


@router.post("/merchant/items/{item_id}/toggle")
def merchant_toggle_item(request: Request, item_id: IdPath) -> Response:
    p = _need(request, "merchant")
    if isinstance(p, RedirectResponse):
        return p
    _locale(request)
    with uow.unit_of_work(request.app.state.db) as db:
        item = db.get(MenuItem, item_id)
        staff = db.get(User, p.user_id)
        try:
            if item is None:
                raise AppError(gettext("Item not found."))
            catalog.check_merchant_staff(p, item.merchant_id, staff.merchant_id if staff else None)
        except AppError as exc:
            return back("/merchant", err=say(exc))
        item.available = not item.available
    return back("/merchant", msg=gettext("Stock updated."))


@router.post("/merchant/status")
def merchant_status(request: Request, status: str = Form(...)) -> Response:
    p = _need(request, "merchant")
    if isinstance(p, RedirectResponse):
        return p
    _locale(request)
    if status not in ("open", "paused"):
        return back("/merchant", err=gettext("That shop status does not exist."))
    with uow.unit_of_work(request.app.state.db) as db:
        m = _staff_merchant(db, p, request)
        if m is None:
            return back("/merchant", err=gettext("No shop is linked to this account."))
        m.status = status
        hot, merchant_id = ordering.hot_reads(db.connection()), m.id
        uow.after_commit(db, lambda: hot.merchant.invalidate(merchant_id))
    return back("/merchant", msg=gettext("Shop status updated."))


# --- rider -------------------------------------------------------------------------------------------

@router.get("/rider", response_class=HTMLResponse)
def rider_page(request: Request) -> Response:
    p = _need(request, "rider")
    if isinstance(p, RedirectResponse):
        return p
    with request.app.state.db.read_session() as db:
        try:
            rider = delivery.rider_for_user(db, p.user_id)
        except AppError:
            return render(request, "error.html", {"message": gettext("No rider profile for this account.")}, 404)
        tasks = delivery.tasks(db, rider)
        merchants = {m.id: m for m in db.scalars(select(Merchant))}
        points = {d.id: d for d in db.scalars(select(DeliveryPoint))}
        delivered_today = [o for o in db.scalars(select(Order).where(Order.rider_id == rider.id,
                                                                        Order.status == Status.delivered.value))]
    return render(request, "rider.html", {"rider": rider, "tasks": tasks, "merchants": merchants,
                                          "points": points, "delivered": len(delivered_today)})


@router.post("/rider/shift")
def rider_shift(request: Request, on: str = Form(...)) -> Response:
    p = _need(request, "rider")
    if isinstance(p, RedirectResponse):
        return p
    _locale(request)
    with uow.unit_of_work(request.app.state.db) as db:
        try:
            rider = delivery.rider_for_user(db, p.user_id)
        except AppError as exc:
            return back("/rider", err=say(exc))
        delivery.set_shift(db, rider, on=on == "1")
    return back("/rider", msg=gettext("On shift.") if on == "1" else gettext("Off shift."))


@router.post("/rider/orders/{order_id}/pickup")
def rider_pickup(request: Request, order_id: IdPath) -> Response:
    return _web_transition(request, order_id, Status.picked_up, "/rider", carrier=True)


@router.post("/rider/orders/{order_id}/deliver")
def rider_deliver(request: Request, order_id: IdPath, proof_code: str = Form("")) -> Response:
    return _web_transition(request, order_id, Status.delivered, "/rider", carrier=True, proof=proof_code.strip())


def _web_transition(request: Request, order_id: IdPath, to: Status, target: str, *, reason: str | None = None,
                    carrier: bool = False, proof: str | None = None) -> Response:
    p = _need(request)
    if isinstance(p, RedirectResponse):
        return p
    _locale(request)
    target = target.replace("{id}", str(order_id))
    database = request.app.state.db
    try:
        if proof is not None:  # counted and limited on its own first, like the API
            delivery_proof.check(database, request.app.state.settings, p, order_id, proof,
                                 client=request.client.host if request.client else "")
        with uow.unit_of_work(database) as db:
            order = ordering.load_order(db, order_id, for_update=True)
            ordering.check_can_view(db, p, order)
            if carrier and p.role != "ops":
                rider = delivery.rider_for_user(db, p.user_id)
                if order.rider_id != rider.id:
                    raise AppError(N_("This order is assigned to another rider."))
            if proof is not None and not delivery_proof.matches(order, proof):
                raise AppError(N_("The proof code does not match; ask the customer for the 4 digits."))
            ordering.transition(db, order, to, actor=p, reason=reason)
            number = order.number
    except AppError as exc:
        return back(target, err=say(exc))
    if to in (Status.cancelled, Status.rejected):
        payments.refund_order(database, providers=request.app.state.payment_providers, order_id=order_id)
    # Each action says what it did, to which order, and what comes next.
    return back(target, msg=gettext(DONE[to]) % {"number": number})


# What each action says once done (msgids; %(number)s is the order's number).
DONE: dict[Status, str] = {
    Status.accepted: N_("Order %(number)s accepted. Start cooking when you are ready."),
    Status.rejected: N_("Order %(number)s rejected; the customer is told and refunded."),
    Status.preparing: N_("Order %(number)s is being prepared."),
    Status.ready: N_("Order %(number)s is ready; a rider is on the way to pick it up."),
    Status.picked_up: N_("Order %(number)s picked up. Deliver it and ask for the 4-digit code."),
    Status.delivered: N_("Order %(number)s delivered. Thank you!"),
    Status.cancelled: N_("Order %(number)s cancelled."),
}
