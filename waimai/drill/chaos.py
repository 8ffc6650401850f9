"""Chaos Toolkit extension: the drills' fault injections and probes as Python activities.

Experiments in `drills/experiments/*.json` call these through the `python` provider
(`"module": "waimai.drill.chaos"`), so `chaos run drills/experiments/payment-outage.json` works
against a running Waimai (`WAIMAI_URL`) and its stand-in gateway (`WAIMAI_GATEWAY_URL`), and
`waimai drill` uses the same functions for its own timeline.
"""

from __future__ import annotations

from typing import Any

import httpx

from waimai.drill.faults import gateway_config, standin_fail, standin_heal

__all__ = ["component_status", "component_up", "database_delay", "gateway_failure", "gateway_latency", "incident_open",
           "standin_down", "standin_up", "switch_enabled"]


def _ops(base_url: str, phone: str, password: str) -> dict[str, str]:
    r = httpx.post(f"{base_url}/api/v1/auth/login", json={"phone": phone, "password": password}, timeout=10)
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


# --- actions ---------------------------------------------------------------------------------------------

def gateway_failure(gateway_url: str, rate: float = 1.0) -> dict[str, Any]:
    """Share of payment-gateway calls answered 503 (0 heals it)."""
    gateway_config(gateway_url, failure_rate=float(rate))
    return {"failure_rate": rate}


def gateway_latency(gateway_url: str, ms: int = 5000) -> dict[str, Any]:
    """Added latency per payment-gateway call (0 heals it)."""
    gateway_config(gateway_url, latency_ms=int(ms))
    return {"latency_ms": ms}


def database_delay(base_url: str, ms: int = 300, ops_phone: str = "13800000009",
                   ops_password: str = "waimai-demo") -> dict[str, Any]:  # noqa: S107 - the demo campus's password
    """Slow every database statement (needs WAIMAI_CHAOS=true on the service)."""
    r = httpx.put(f"{base_url}/api/v1/chaos/db", json={"delay_ms": int(ms)}, headers=_ops(base_url, ops_phone,
                                                                                             ops_password), timeout=10)
    r.raise_for_status()
    return dict(r.json())


def standin_down(url: str) -> dict[str, Any]:
    """A stand-in provider (SMS, DingTalk, …) answers 503 until `standin_up`."""
    standin_fail(url)
    return {"down": url}


def standin_up(url: str) -> dict[str, Any]:
    standin_heal(url)
    return {"up": url}


# --- probes ----------------------------------------------------------------------------------------------

def component_status(base_url: str, component: str) -> str:
    """The public status page's status of one component (no login)."""
    comps = httpx.get(f"{base_url}/api/v1/status", timeout=10).json()["components"]
    return str(next(c["status"] for c in comps if c["id"] == component))


def component_up(base_url: str, component: str) -> bool:
    """Not in an outage: operational, or recovering (degraded while its incident is monitored)."""
    return component_status(base_url, component) in ("operational", "degraded_performance", "under_maintenance")


def switch_enabled(base_url: str, name: str, ops_phone: str = "13800000009",
                   ops_password: str = "waimai-demo") -> bool:  # noqa: S107 - the demo campus's password
    rows = httpx.get(f"{base_url}/api/v1/switches", headers=_ops(base_url, ops_phone, ops_password), timeout=10).json()
    return any(r["name"] == name and r["enabled"] for r in rows)


def incident_open(base_url: str, component: str, ops_phone: str = "13800000009",
                  ops_password: str = "waimai-demo") -> bool:  # noqa: S107 - the demo campus's password
    rows = httpx.get(f"{base_url}/api/v1/incidents", headers=_ops(base_url, ops_phone, ops_password), timeout=10).json()
    return any(component in r["components"] for r in rows)
