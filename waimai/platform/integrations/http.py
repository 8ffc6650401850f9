"""Glue between the pure adapters and the web stack: Starlette request -> InboundRequest, OutboundResponse ->
Response, OutboundRequest -> httpx call. The webhook route and the outbox worker use these."""

from __future__ import annotations

import datetime as dt

import httpx
from starlette.requests import Request
from starlette.responses import Response

from waimai.platform.integrations.base import (
    InboundRequest,
    OutboundRequest,
    OutboundResponse,
    PlatformAdapter,
)


async def to_inbound(request: Request, *, received_at: dt.datetime | None = None) -> InboundRequest:
    return InboundRequest(method=request.method, path=request.url.path, query=dict(request.query_params),
                          headers=dict(request.headers), body=await request.body(),
                          received_at=received_at or dt.datetime.now(dt.UTC))


def to_response(out: OutboundResponse) -> Response:
    return Response(content=out.body, status_code=out.status_code, headers=dict(out.headers))


async def deliver(adapter: PlatformAdapter, out: OutboundRequest, client: httpx.AsyncClient) -> bool:
    """Send one status callback; True only when the platform accepted it (network errors are False: retry)."""
    try:
        r = await client.request(out.method, out.url, headers=dict(out.headers), content=out.body)
    except httpx.HTTPError:
        return False
    return adapter.parse_callback_response(r.status_code, r.content)
