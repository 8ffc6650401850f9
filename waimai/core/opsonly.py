"""What only ops (or the Prometheus scraper) may read in production: the API docs, /metrics, a detailed /readyz.

Outside production they stay open (development and tests read them freely). In production:
- `/docs`, `/redoc` and `/openapi.json` answer ops only (their session cookie or bearer token);
- `/metrics` and the detailed `/readyz` answer ops, or a scraper sending `Authorization: Bearer
  <WAIMAI_METRICS_TOKEN>` (deploy/prometheus/prometheus.yml reads it from a credentials file); anyone else
  gets 401 from /metrics and only `{"status": ...}` (with the same status code) from /readyz, which is all a
  load balancer needs.
"""

from __future__ import annotations

import hmac

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from waimai.core.deps import OpsDep, principal_from
from waimai.core.errors import Forbidden, Unauthorized


def production(request: Request) -> bool:
    return request.app.state.settings.env == "production"  # type: ignore[no-any-return]


def scraper_or_ops(request: Request) -> bool:
    """Whether the caller may read monitoring detail (always outside production)."""
    if not production(request):
        return True
    token = request.app.state.settings.metrics_token
    auth = request.headers.get("authorization", "")
    if token is not None and auth[:7].lower() == "bearer " and hmac.compare_digest(
            auth[7:].strip().encode(), token.get_secret_value().encode()):
        return True
    p = principal_from(request)
    return p is not None and p.role == "ops"


def install_ops_docs(app: FastAPI) -> None:
    """In production, /openapi.json for ops only (create_app turns FastAPI's public one off; the vendored
    Swagger UI and ReDoc pages in waimai/web/docs.py call `require_docs_reader` themselves)."""

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_for_ops(_p: OpsDep) -> JSONResponse:
        return JSONResponse(app.openapi())


def require_docs_reader(request: Request) -> None:
    """The API docs pages: anyone outside production, ops only in production. As with /openapi.json (OpsDep):
    no one signed in is 401 (sign in first), a signed-in non-ops user is 403."""
    if not production(request):
        return
    p = principal_from(request)
    if p is None:
        raise Unauthorized("Sign in as ops to read the API documentation.")
    if p.role != "ops":
        raise Forbidden("The API documentation is for ops in production.")
