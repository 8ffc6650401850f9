"""Ops console pages (desktop): the overview with live charts of the key series and component health."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from waimai.firewall.monitoring.sampler import SERIES
from waimai.web.routes import _need, render

router = APIRouter(include_in_schema=False)

CHARTS = [
    ("orders_placed_per_min", "Orders per minute"),
    ("payment_success_ratio", "Payment success rate"),
    ("http_latency_p95_ms", "p95 latency (ms)"),
    ("dispatch_backlog", "Dispatch backlog"),
    ("riders_on_shift", "Riders on shift"),
    ("http_error_ratio", "Server error rate"),
]


@router.get("/ops")
def overview(request: Request) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    probes = request.app.state.probes
    status = probes.last or probes.run()
    return render(request, "ops_overview.html", {"charts": CHARTS, "probes": list(status.values()),
                                                 "series": SERIES})
