"""The switches Waimai knows: what each does and what flips it by itself (docs, ops pages, validation)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Module kill switches (`module.<name>.off`): the routes each one covers, first match wins. Ops pages,
# the switch API, health and metrics belong to no module, so they keep working whatever is off.
MODULE_ROUTES: tuple[tuple[str, str], ...] = (
    ("tracking", r"/api/v1/orders/\d+/events$"),
    ("payments", r"/api/v1/payments/|/api/v1/orders/\d+/pay$|/orders/\d+/(pay|cod)$"),
    ("delivery", r"/api/v1/riders(/|$)|/api/v1/orders/\d+/(assign|pickup|deliver|fail)$|/rider(/|$)"),
    ("catalog", r"/api/v1/(merchants|delivery-points|items)(/|$)|/$|/shops/|/merchant/(items|status)"),
    ("ordering", r"/api/v1/orders(/|$)|/(cart|checkout|orders|simple|merchant)(/|$)"),
    ("intake", r"/api/v1/intake/"),
    ("alert_intake", r"/api/v1/alerts/ingest/"),
)
MODULES = tuple(m for m, _ in MODULE_ROUTES)
_MODULE_RE = re.compile("|".join(f"(?P<{m}>{rx})" for m, rx in MODULE_ROUTES))


def module_of(path: str) -> str | None:
    """The module a request path belongs to, or None (ops, switches, health: never switched off)."""
    m = _MODULE_RE.match(path)
    return m.lastgroup if m else None


@dataclass(frozen=True)
class SwitchInfo:
    name: str  # a name, or a pattern with <id> / <platform> / <name>
    effect: str
    automatic: str = ""


CATALOG: tuple[SwitchInfo, ...] = (
    SwitchInfo("payment.cod_only",
               "New orders are offered cash on delivery only: online payment is refused with an error naming "
               "this switch, and the checkout page explains why.",
               "On when the payment gateway's circuit breaker opens; off again once the gateway has been healthy "
               "for WAIMAI_COD_RECOVERY_S (actor system:breaker). A switch ops set stays as they set it."),
    SwitchInfo("ordering.simple_mode",
               "Customers are sent to the light ordering page (/simple): menus from memory, one plain form.",
               "On when database latency stays above WAIMAI_SIMPLE_MODE_DB_LATENCY_MS; off again after "
               "WAIMAI_SIMPLE_MODE_RECOVERY_S below it (actor system:db_latency)."),
    SwitchInfo("dispatch.manual",
               "The automatic dispatcher skips its rounds; ops assign riders by hand "
               "(POST /api/v1/orders/{id}/assign)."),
    SwitchInfo("delivery.pickup_points",
               "New orders are delivered to a campus pick-up point (locker) instead of the door; the checkout "
               "page offers only pick-up points."),
    SwitchInfo("merchant.<id>.paused", "That merchant takes no new orders; its menu stays visible."),
    SwitchInfo("intake.<platform>.paused",
               "Pushes from that platform are refused in the platform's own format (it retries later)."),
    SwitchInfo("coupons.paused",
               "Checkout accepts no coupon (a clear 503 names the switch); coupons keep their value and work again "
               "when it is off. For a coupon bug or abuse."),
    SwitchInfo("system.read_only",
               "Every write (POST, PUT, PATCH, DELETE) answers 503 with Retry-After, except sign-in and the ops, "
               "switch, breaker, incident, alert-acknowledgement and backup endpoints; reads keep working."),
    SwitchInfo("module.<name>.off",
               "Kill switch for one module: its routes answer a JSON 503 with Retry-After, everything else keeps "
               "working. Modules: " + ", ".join(MODULES) + "."),
)

_PATTERNS = (
    re.compile(r"^(payment\.cod_only|ordering\.simple_mode|dispatch\.manual|delivery\.pickup_points|"
               r"coupons\.paused|system\.read_only)$"),
    re.compile(r"^merchant\.\d{1,9}\.paused$"),
    re.compile(r"^intake\.[a-z0-9_]+\.paused$"),
    re.compile(r"^module\.(" + "|".join(MODULES) + r")\.off$"),
)


def is_known(name: str) -> bool:
    return any(p.match(name) for p in _PATTERNS)
