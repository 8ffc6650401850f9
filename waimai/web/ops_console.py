"""Ops console pages: dispatch (live campus map, unassigned queue, manual assign), switches, settings."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import SecretStr
from sqlalchemy import select

from waimai.core import uow
from waimai.core.errors import AppError
from waimai.firewall.switches import service as switches
from waimai.firewall.switches.catalog import CATALOG
from waimai.platform.accounts.models import User
from waimai.platform.catalog.models import Campus, DeliveryPoint, Merchant
from waimai.platform.delivery import service as delivery
from waimai.platform.delivery.models import Rider
from waimai.platform.ordering import service as ordering
from waimai.platform.ordering.models import Order
from waimai.platform.ordering.state import Status
from waimai.web.campus_map import load_map
from waimai.web.i18n import gettext, say
from waimai.web.routes import TEMPLATES, _need, back, render

router = APIRouter(include_in_schema=False)

# Orders dispatch still has to care about: paid or confirmed, in the kitchen, or on the way.
OPEN = (Status.paid.value, Status.cod_confirmed.value, Status.accepted.value, Status.preparing.value,
        Status.ready.value, Status.picked_up.value)
ASSIGNABLE = OPEN[:-1]


def _dispatch_view(db: Any) -> dict[str, Any]:
    campus = db.scalar(select(Campus).order_by(Campus.id).limit(1))
    cmap = load_map(db, campus.id) if campus else None
    riders = list(db.scalars(select(Rider).order_by(Rider.on_shift.desc(), Rider.id)))
    orders = list(db.scalars(select(Order).where(Order.status.in_(OPEN)).order_by(Order.promised_at, Order.id)))
    points = {d.id: d for d in db.scalars(select(DeliveryPoint))}
    shops = {m.id: m for m in db.scalars(select(Merchant))}
    load: dict[int, int] = {}
    for o in orders:
        if o.rider_id:
            load[o.rider_id] = load.get(o.rider_id, 0) + 1
    on_map = []
    for r in riders:
        at = cmap.flip(r.x, r.y) if cmap and r.on_shift else None
        on_map.append({"id": r.id, "name": r.name, "x": at[0] if at else None, "y": at[1] if at else None})
    marks = []
    for o in orders:
        d = points.get(o.delivery_point_id)
        at = cmap.flip(d.x, d.y) if cmap and d else None
        if at:
            marks.append({"id": o.id, "number": o.number, "rider_id": o.rider_id, "x": at[0], "y": at[1]})
    return {"cmap": cmap, "riders": riders, "map_riders": on_map, "orders": orders, "marks": marks,
            "unassigned": [o for o in orders if o.rider_id is None and o.status in ASSIGNABLE],
            "assigned": [o for o in orders if o.rider_id is not None], "points": points, "shops": shops,
            "load": load, "on_shift": [r for r in riders if r.on_shift],
            "rider_names": {r.id: r.name for r in riders}}


@router.get("/ops/dispatch", response_class=HTMLResponse)
def dispatch_page(request: Request) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    with request.app.state.db.read_session() as db:
        view = _dispatch_view(db)
    if request.query_params.get("part") == "live":
        # The page swaps this block in every few seconds: riders move, the queue changes.
        resp = TEMPLATES.TemplateResponse(request, "_dispatch_live.html", {"me": p, **view})
        resp.headers["Cache-Control"] = "no-store"
        return resp
    return render(request, "ops_dispatch.html", view)


@router.post("/ops/dispatch/assign")
def dispatch_assign(request: Request, order_id: int = Form(..., ge=1, le=2**31 - 1),
                    rider_id: int = Form(..., ge=1, le=2**31 - 1)) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    try:
        with uow.unit_of_work(request.app.state.db) as db:
            order = ordering.load_order(db, order_id, for_update=True)
            before = order.rider_id
            delivery.assign_by_hand(db, order=order, rider_id=rider_id, actor=p)
            number = order.number
            rider = db.get(Rider, rider_id)
            name = rider.name if rider else str(rider_id)
    except AppError as exc:
        return back("/ops/dispatch", err=say(exc))
    msg = gettext("Order %(number)s reassigned to %(rider)s.") if before else \
        gettext("Order %(number)s assigned to %(rider)s.")
    return back("/ops/dispatch", msg=msg % {"number": number, "rider": name})


# --- switches -----------------------------------------------------------------------------------

def _who(db: Any, updated_by: str) -> str:
    """`ops:9` → the person's name; the platform's own actors (`system:breaker`) in words."""
    role, _, uid = updated_by.partition(":")
    if role in ("ops", "support", "merchant") and uid.isdigit():
        user = db.get(User, int(uid))
        return user.name if user else updated_by
    if role == "system":
        return gettext("Automatic (%(what)s)") % {"what": uid or "system"}
    return updated_by


@router.get("/ops/switches", response_class=HTMLResponse)
def switches_page(request: Request) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    with request.app.state.db.read_session() as db:
        rows = switches.all_switches(db)
        listed = [{"name": s.name, "enabled": s.enabled, "reason": s.reason, "who": _who(db, s.updated_by),
                   "at": s.updated_at} for s in rows]
    known = [{"name": i.name, "effect": gettext("switch." + i.name), "automatic": bool(i.automatic)} for i in CATALOG]
    fixed = [i.name for i in CATALOG if "<" not in i.name]
    return render(request, "ops_switches.html", {"rows": listed, "known": known, "fixed": fixed})


@router.post("/ops/switches/set")
def switches_set(request: Request, name: str = Form(..., max_length=80), enabled: str = Form(...),
                 reason: str = Form("", max_length=200)) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    if not reason.strip():
        return back("/ops/switches", err=gettext("Say why: the reason is kept with the switch and in the audit log."))
    on = enabled == "1"
    try:
        with uow.unit_of_work(request.app.state.db) as db:
            switches.set_switch(db, name.strip(), enabled=on, actor_id=p.user_id, actor_role=p.role,
                                reason=reason.strip())
    except AppError as exc:
        return back("/ops/switches", err=say(exc))
    msg = gettext("Switch %(name)s is on.") if on else gettext("Switch %(name)s is off.")
    return back("/ops/switches", msg=msg % {"name": name.strip()})


# --- settings -----------------------------------------------------------------------------------

# Names whose values are secrets (token_ttl_minutes is not; alert_ingest_token and secret_key are).
_SECRET_NAME = re.compile(r"secret|password|passwd|credential|dsn|(^|_)token$|(^|_)key$|key_id$", re.I)
MASK = "••••••"


def _masked(name: str, value: Any) -> Any:
    """A setting as ops may see it: secrets never leave the process, URLs lose their passwords."""
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else ""
    if isinstance(value, dict):
        return {k: _masked(f"{name}.{k}", v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(name, v) for v in value]
    if isinstance(value, str) and "://" in value:
        parts = urlsplit(value)
        if parts.password:
            host = f"{parts.username}:{MASK}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
            return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
        return value
    if _SECRET_NAME.search(name.rsplit(".", 1)[-1]) and value not in (None, "", 0, False):
        return MASK
    return value


def effective_settings(settings: Any) -> list[dict[str, Any]]:
    out = []
    for name, field in type(settings).model_fields.items():
        value = _masked(name, getattr(settings, name))
        out.append({"name": name, "env": "WAIMAI_" + name.upper(), "value": value,
                    "default": value == _masked(name, field.get_default(call_default_factory=True))})
    return out


@router.get("/ops/settings", response_class=HTMLResponse)
def settings_page(request: Request) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    return render(request, "ops_settings.html", {"settings": effective_settings(request.app.state.settings)})
