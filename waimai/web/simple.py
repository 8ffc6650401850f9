"""The light ordering page (`ordering.simple_mode`): menus from memory, one plain form, cash on delivery.

When the database is slow (simple mode turns itself on, see firewall/resilience/automation.py) the
shop list and menu pages send customers here. `GET /simple` never touches the database: menus and
delivery points come from a per-process copy refreshed every 30 s in the background, the customer
from the signed token. Latency budget: 300 ms at the 95th percentile end to end, whatever the
database does (the reliability test checks it with every statement slowed). Placing the order does
write to the database, once, through the same idempotent placement as everywhere else.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from waimai.core.background import Job
from waimai.core.database import is_connection_error
from waimai.core.deps import optional_principal, principal_from
from waimai.core.errors import AppError
from waimai.firewall.switches import flags
from waimai.platform.catalog import service as catalog
from waimai.platform.catalog.schemas import MerchantDetail
from waimai.platform.ordering import idempotency, spool
from waimai.platform.ordering.schemas import LineIn, PlaceOrderIn
from waimai.web.i18n import gettext, negotiate, say

router = APIRouter(include_in_schema=False)
MAX_AGE_S = 30.0


@dataclass
class MenuCache:
    merchants: list[MerchantDetail] = field(default_factory=list)
    points: list[dict[str, Any]] = field(default_factory=list)
    loaded_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _cache(app: Any) -> MenuCache:
    cache = getattr(app.state, "menu_cache", None)
    if cache is None:
        cache = app.state.menu_cache = MenuCache()
    return cache  # type: ignore[no-any-return]


def refresh_menus(app: Any) -> MenuCache:
    """Reload open merchants' menus and the delivery points (the background job, or a cold cache)."""
    cache = _cache(app)
    with app.state.db.read_session() as db:
        merchants = [catalog.merchant_detail(db, m.id) for m in catalog.list_merchants(db)]
        points = [{"id": p.id, "name": p.name, "kind": p.kind} for p in catalog.list_delivery_points(db)]
    cache.merchants, cache.points, cache.loaded_at = merchants, points, time.monotonic()
    return cache


def install(app: FastAPI) -> list[Job]:
    """Serve /simple and keep its menu copy fresh. The page layer registers itself (create_app calls this);
    the firewall only decides when customers are sent here (the `ordering.simple_mode` switch)."""
    app.include_router(router)
    db = app.state.db

    def menus() -> None:
        if not db.slow:  # while the database is slow, the copy we have is what simple mode serves
            refresh_menus(app)

    return [Job("simple_menu_cache", 30.0, menus, role="api")]  # the processes that serve /simple


def _menus(app: Any) -> MenuCache:
    cache = _cache(app)
    if not cache.loaded_at:
        with cache.lock:
            if not cache.loaded_at:
                refresh_menus(app)
    return cache


def _page(request: Request, ctx: dict[str, Any], status: int = 200) -> HTMLResponse:
    from waimai.web.i18n import current_locale
    from waimai.web.routes import TEMPLATES

    loc = negotiate(request.query_params.get("lang"), request.cookies.get("waimai_lang"),
                    request.headers.get("accept-language"), request.app.state.settings.default_locale)
    current_locale.set(loc)
    cache = _menus(request.app)
    pickup = flags.enabled("delivery.pickup_points")
    points = [p for p in cache.points if p["kind"] == "locker"] if pickup else cache.points
    return TEMPLATES.TemplateResponse(request, "simple.html", {
        "me": principal_from(request), "lang_attr": "zh-CN" if loc == "zh_CN" else "en", "idem": str(uuid.uuid4()),
        "merchants": [m for m in cache.merchants if m.open_now], "points": points, "pickup": pickup,
        "simple_mode": flags.enabled("ordering.simple_mode"),
        "age_s": int(time.monotonic() - cache.loaded_at), **ctx}, status_code=status)


@router.get("/simple", response_class=HTMLResponse)
def simple_page(request: Request) -> HTMLResponse:
    return _page(request, {})


@router.post("/simple/order")
async def simple_order(request: Request) -> Response:
    p = await optional_principal(request)  # the database read, if any, off the event loop (simple mode: slow DB)
    if p is None or p.role != "customer":
        return RedirectResponse("/login?next=/simple", status_code=303)
    form = await request.form()
    try:
        merchant_id = int(str(form.get("merchant_id", "0")))
        point_id = int(str(form.get("delivery_point_id", "0")))
        lines = [LineIn(item_id=int(k[4:]), quantity=int(str(v)))
                 for k, v in form.items() if k.startswith("qty_") and str(v).strip() not in ("", "0")]
        if not lines:
            return _page(request, {"error": gettext("Choose at least one dish.")}, 422)
        body = PlaceOrderIn(merchant_id=merchant_id, delivery_point_id=point_id, items=lines, payment_method="cod",
                            note=str(form.get("note", ""))[:200])
        key = idempotency.validate_key(str(form.get("idem", "")))
    except (ValueError, ValidationError, AppError):
        return _page(request, {"error": gettext("Please check the quantities: whole numbers from 1 to 99.")}, 422)
    database = request.app.state.db
    fp = idempotency.request_fingerprint(body.model_dump(mode="json"))
    ttl = dt.timedelta(hours=request.app.state.settings.idempotency_ttl_hours)
    try:
        if not database.reachable:
            raise _Unreachable
        _status, (payload, _oid), _replayed = await idempotency.place(database, p, body, key, fp, ttl)
    except AppError as exc:
        return _page(request, {"error": say(exc)}, exc.status)
    except Exception as exc:
        if not isinstance(exc, _Unreachable) and not is_connection_error(exc):
            raise
        try:  # no database accepts writes: the order waits in this replica's spool, honestly marked
            row, _again = spool.take(request.app.state, customer=p, body=body, key=key, fingerprint=fp)
        except AppError as refused:
            return _page(request, {"error": refused.message}, refused.status)
        return _page(request, {"spooled": row.public()}, 202)
    return _page(request, {"placed": json.loads(payload)}, 201)


class _Unreachable(Exception):
    """The database watch already knows: do not wait for a connect timeout."""
