"""Cost of the web edge's middleware per request: the same tiny app with and without it, same run.

    python bench/edge_overhead.py [--requests 20000] [--rounds 3]

The edge is what create_app puts in front of every route: NUL-byte refusal (reads url-encoded and JSON bodies),
the cross-site request guard, and the security headers with a fresh CSP nonce. Requests are driven as direct
ASGI calls (no sockets, no server), so the figure is the middleware's own cost, not the network's: a GET with a
cookie, and a same-origin form POST. Rounds alternate bare/edge to spread machine noise; the best round of
each is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from waimai.core.benchenv import environment, header  # noqa: E402
from waimai.core.csrf import CrossSiteRequestGuard  # noqa: E402
from waimai.core.edge import RefuseNulBytes, SecurityHeaders  # noqa: E402

GET = {"type": "http", "method": "GET", "path": "/shops/1", "query_string": b"lang=en", "scheme": "http",
       "headers": [(b"host", b"127.0.0.1:8000"), (b"cookie", b"waimai_token=abc; waimai_lang=zh_CN"),
                   (b"sec-fetch-site", b"same-origin"), (b"accept", b"text/html")]}
POST = {"type": "http", "method": "POST", "path": "/cart/add", "query_string": b"", "scheme": "http",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1:8000"),
                    (b"content-type", b"application/x-www-form-urlencoded"), (b"content-length", b"27")]}
BODY = b"item_id=5&quantity=2&opt=ok"


async def app(scope: Any, receive: Any, send: Any) -> None:
    """The smallest ASGI app that reads its body and answers, as a route does."""
    more = scope["method"] == "POST"
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def edge(inner: Any) -> Any:
    return SecurityHeaders(CrossSiteRequestGuard(RefuseNulBytes(inner), trusted_origins=["http://127.0.0.1:8000"]),
                           hsts=False, form_targets=["http://127.0.0.1:8100"])


async def drive(asgi: Any, scope: dict[str, Any], n: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY if scope["method"] == "POST" else b"", "more_body": False}

    async def send(_msg: dict[str, Any]) -> None:
        return None

    t0 = time.perf_counter()
    for _ in range(n):
        await asgi(dict(scope), receive, send)
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="200 requests, one round: only checks the bench works")
    args = ap.parse_args()
    if args.smoke:
        args.requests, args.rounds = 200, 1
    Console().print(header(environment(extra={"requests": f"{args.requests:,} × {args.rounds} rounds"})))
    best: dict[tuple[str, str], float] = {}
    for _ in range(args.rounds):
        for name, asgi in (("bare", app), ("edge", edge(app))):
            for kind, scope in (("GET", GET), ("POST form", POST)):
                us = asyncio.run(drive(asgi, scope, args.requests))
                best[(name, kind)] = min(us, best.get((name, kind), us))
    t = Table(title=f"Web edge middleware, µs per request (best of {args.rounds} rounds of {args.requests})")
    for col in ("request", "bare app", "with the edge", "edge adds"):
        t.add_column(col)
    for kind in ("GET", "POST form"):
        bare, with_edge = best[("bare", kind)], best[("edge", kind)]
        t.add_row(kind, f"{bare:.1f}", f"{with_edge:.1f}", f"{with_edge - bare:.1f} µs")
    Console().print(t)


if __name__ == "__main__":
    main()
