"""Who the client is: X-Forwarded-For and X-Forwarded-Proto are believed from configured proxies only.

With no `WAIMAI_TRUSTED_PROXIES` (the default) the TCP peer is the client and forwarded headers are
ignored, so nobody can pick their own address to dodge the sign-in limits. With proxies configured,
uvicorn's ProxyHeadersMiddleware (the server's own, here run inside the app) takes the right-most
X-Forwarded-For entry that is not a trusted proxy. `waimai serve` turns uvicorn's server-level handling off
(it trusts any local peer by default) so this is the one place the decision is made; run plain `uvicorn`
with `--no-proxy-headers` for the same.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware


def normalise(entries: list[str]) -> list[str]:
    """Addresses as they are, networks in canonical form (uvicorn refuses `10.0.0.1/8`)."""
    return [str(ipaddress.ip_network(e, strict=False)) if "/" in e else str(ipaddress.ip_address(e))
            for e in entries]


def install(app: Any, trusted: list[str]) -> None:
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=normalise(trusted))
