from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from waimai.core.deps import API_PREFIX, OpsDep
from waimai.core.errors import Unauthorized, Unprocessable
from waimai.core.opsonly import scraper_or_ops
from waimai.core.timeutil import as_utc
from waimai.firewall.monitoring import logsearch
from waimai.firewall.monitoring.anomaly import stored_signals
from waimai.firewall.monitoring.sampler import SERIES, registry

router = APIRouter(tags=["monitoring"])
api = APIRouter(prefix=API_PREFIX, tags=["monitoring"])


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text exposition (all worker processes in multiprocess mode); in production for the scraper's
    bearer token (WAIMAI_METRICS_TOKEN) or ops only."""
    if not scraper_or_ops(request):
        raise Unauthorized("Metrics are for the Prometheus scraper (bearer token) or ops.",
                           headers={"WWW-Authenticate": "Bearer"})
    return Response(generate_latest(registry()), media_type=CONTENT_TYPE_LATEST)


class SeriesOut(BaseModel):
    name: str
    unit: str
    description: str


class QueryOut(BaseModel):
    name: str
    step: int | None
    points: list[tuple[float, float]]


@api.get("/metrics/series", response_model=list[SeriesOut])
def series(request: Request, _p: OpsDep) -> list[SeriesOut]:
    names = set(request.app.state.metric_store.names()) | set(SERIES)
    return [SeriesOut(name=n, unit=SERIES.get(n, ("", ""))[0], description=SERIES.get(n, ("", ""))[1])
            for n in sorted(names)]


@api.get("/metrics/query", response_model=QueryOut)
def query(request: Request, _p: OpsDep, name: Annotated[str, Query(min_length=1, max_length=120)],
          from_: Annotated[dt.datetime | None, Query(alias="from")] = None,
          to: Annotated[dt.datetime | None, Query()] = None,
          step: Annotated[int | None, Query(ge=1, le=86400)] = None) -> QueryOut:
    """Points of one series; `from`/`to` are ISO times (default: the last hour)."""
    end = as_utc(to) if to else dt.datetime.now(dt.UTC)
    start = as_utc(from_) if from_ else end - dt.timedelta(hours=1)
    if start >= end:
        raise Unprocessable("`from` must be before `to`.")
    if end - start > dt.timedelta(days=400):
        raise Unprocessable("At most 400 days per query.")
    pts = request.app.state.metric_store.query(name, start, end, step)
    return QueryOut(name=name, step=step, points=[(p.ts, p.value) for p in pts])




class DependencyOut(BaseModel):
    name: str
    ok: bool
    latency_ms: float
    detail: str
    checked_at: dt.datetime


@api.get("/health/dependencies", response_model=list[DependencyOut])
def dependencies(request: Request, _p: OpsDep, fresh: bool = False) -> list[DependencyOut]:
    probes = request.app.state.probes
    last = probes.run() if fresh or not probes.last else probes.last
    return [DependencyOut(name=s.name, ok=s.ok, latency_ms=round(s.latency_ms, 2), detail=s.detail,
                          checked_at=s.checked_at) for s in last.values()]


@api.get("/logs")
def logs(request: Request, _p: OpsDep,
         request_id: Annotated[str | None, Query(max_length=64)] = None,
         order_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
         text: Annotated[str | None, Query(max_length=200)] = None,
         since: dt.datetime | None = None, until: dt.datetime | None = None,
         level: Annotated[str | None, Query(pattern="^(debug|info|warning|error|critical)$")] = None,
         limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[dict[str, Any]]:
    """Log lines (ECS documents, newest first) by request id, order id, text and time window."""
    file = request.app.state.settings.log_file
    if not file:
        return []
    return logsearch.search(Path(file), request_id=request_id, order_id=order_id, text=text,
                            since=as_utc(since) if since else None, until=as_utc(until) if until else None,
                            level=level, limit=limit)


@api.get("/anomalies")
def anomalies(request: Request, _p: OpsDep, active: bool = False) -> list[dict[str, Any]]:
    """Anomaly signals on the key series, newest first (series, onset, score, expected range)."""
    if getattr(request.app.state, "anomalies", None) is None:
        return []
    # The deployment's signals from the shared store: the same answer on every replica.
    sigs = stored_signals(request.app.state.metric_store, active=active)
    return [s.as_dict() for s in reversed(sigs)]
