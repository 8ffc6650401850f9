"""Turns the Prometheus instruments into the key series the firewall reasons about.

Every few seconds it reads the registry (aggregated across worker processes in multiprocess
mode), differences the counters against the previous read, and writes rates, ratios and
percentiles to the embedded store under stable names (`SERIES`).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from waimai.firewall.monitoring.store import MetricStore

# name -> (unit, what it means); the ops console, detectors and alert rules use these names.
SERIES: dict[str, tuple[str, str]] = {
    "orders_placed_per_min": ("orders/min", "orders placed per minute"),
    "orders_active": ("orders", "orders not yet delivered, cancelled or failed"),
    "payment_attempts_per_min": ("calls/min", "calls to the online payment gateway per minute"),
    "payment_success_ratio": ("ratio", "share of gateway calls that succeeded (no data without calls)"),
    "payment_latency_p95_ms": ("ms", "95th percentile of gateway call time"),
    "http_requests_per_min": ("req/min", "HTTP requests per minute"),
    "http_error_ratio": ("ratio", "share of HTTP answers that were 5xx"),
    "http_user_error_ratio": ("ratio", "share of signed-in users' requests answered 5xx (user-facing errors)"),
    "http_anonymous_errors_per_min": ("errors/min", "5xx answered to requests without a sign-in (an attack "
                                                    "symptom until users see errors too)"),
    "http_latency_p95_ms": ("ms", "95th percentile of HTTP answer time (pages and API; streams excluded)"),
    "http_latency_p95_ms.api": ("ms", "95th percentile of API answer time"),
    "http_latency_p95_ms.page": ("ms", "95th percentile of page answer time"),
    "db_query_p95_ms": ("ms", "95th percentile of database statement time"),
    "dispatch_backlog": ("orders", "kitchen orders waiting for a rider"),
    "riders_on_shift": ("riders", "riders on shift"),
    "event_loop_lag_ms": ("ms", "event loop lag"),
    "dependency_up.database": ("0/1", "database probe"),
    "dependency_up.payment_gateway": ("0/1", "payment gateway probe"),
    "dependency_latency_ms.database": ("ms", "database probe time"),
    "dependency_latency_ms.payment_gateway": ("ms", "payment gateway probe time"),
    **{f"intake_orders_per_min.{p}": ("orders/min", f"orders taken in from {p}") for p in ("meituan", "eleme", "jd")},
    **{f"intake_rejected_per_min.{p}": ("pushes/min", f"{p} pushes refused for a bad signature")
       for p in ("meituan", "eleme", "jd")},
    **{f"intake_callback_backlog.{p}": ("callbacks", f"status callbacks {p} has not acknowledged")
       for p in ("meituan", "eleme", "jd")},
    "bill_mismatches_open": ("lines", "daily-bill lines (对账单) that disagree with our payments, unresolved"),
    "dependency_up.watchdog": ("0/1", "the outside watchdog takes our heartbeats (when WAIMAI_WATCHDOG_URL is set)"),
    "dependency_up.sms": ("0/1", "SMS provider probe (when WAIMAI_SMS_PROVIDER_URL is set)"),
    "dependency_latency_ms.sms": ("ms", "SMS provider probe time"),
}


def registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        reg = CollectorRegistry()
        MultiProcessCollector(reg)
        return reg
    return REGISTRY


@dataclass
class Snapshot:
    t: float
    counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)
    gauges: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)


def read(reg: CollectorRegistry, now: float | None = None) -> Snapshot:
    snap = Snapshot(t=time.time() if now is None else now)
    for metric in reg.collect():
        if not metric.name.startswith("waimai_"):
            continue
        for s in metric.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            if metric.type in ("counter", "histogram"):
                snap.counters[key] = s.value
            elif metric.type == "gauge":
                snap.gauges[key] = s.value
    return snap


def _sum(snap: dict, name: str, **match: str) -> float:  # type: ignore[type-arg]
    total = 0.0
    for (n, labels), v in snap.items():
        if n == name and all(dict(labels).get(k) == want for k, want in match.items()):
            total += v
    return total


def _delta(cur: Snapshot, prev: Snapshot, name: str, **match: str) -> float:
    return max(0.0, _sum(cur.counters, name, **match) - _sum(prev.counters, name, **match))


def route_class(route: str) -> str:
    """What kind of answer a route template gives: ``stream`` (a long-lived SSE connection, whose
    "duration" is how long the customer watched), ``static``, ``api`` or ``page``."""
    if route.endswith("/events") or route in STREAMING_ROUTES:
        return "stream"
    if route.startswith("/static") or route in ("/metrics", "<unmatched>"):
        return "static"
    return "api" if route.startswith("/api/") else "page"


# long-lived responses kept out of latency percentiles (besides every route ending in /events)
STREAMING_ROUTES: frozenset[str] = frozenset({"/api/v1/orders/{order_id}/events"})


def _of_class(cls: str) -> Callable[[dict[str, str]], bool]:
    return lambda d: route_class(d.get("route", "")) == cls


def _quantile_delta(cur: Snapshot, prev: Snapshot, name: str, q: float,
                    keep: Callable[[dict[str, str]], bool] | None = None, **match: str) -> float:
    """histogram_quantile over the counts that arrived between two reads (linear in a bucket)."""
    buckets: dict[float, float] = defaultdict(float)
    for (n, labels), v in cur.counters.items():
        if n != f"{name}_bucket":
            continue
        d = dict(labels)
        if not all(d.get(k) == want for k, want in match.items()) or (keep is not None and not keep(d)):
            continue
        le = float(d["le"])
        buckets[le] += v - prev.counters.get((n, labels), 0.0)
    if not buckets:
        return math.nan
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return math.nan
    rank = q * total
    lower, below = 0.0, 0.0
    for b in bounds:
        if buckets[b] >= rank:
            if math.isinf(b):
                return lower
            inside = buckets[b] - below
            return lower + (b - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = b, buckets[b]
    return lower


def derive(cur: Snapshot, prev: Snapshot) -> dict[str, float]:
    dt_min = max(1e-6, (cur.t - prev.t) / 60.0)
    out: dict[str, float] = {}
    out["orders_placed_per_min"] = _delta(cur, prev, "waimai_orders_placed_total") / dt_min
    gw_ok = _delta(cur, prev, "waimai_payment_attempts_total", provider="gateway", outcome="succeeded")
    gw_all = _delta(cur, prev, "waimai_payment_attempts_total", provider="gateway")
    out["payment_attempts_per_min"] = gw_all / dt_min
    out["payment_success_ratio"] = gw_ok / gw_all if gw_all else math.nan
    out["payment_latency_p95_ms"] = _quantile_delta(cur, prev, "waimai_payment_request_duration_seconds", 0.95,
                                                    provider="gateway") * 1000
    reqs = _delta(cur, prev, "waimai_http_requests_total")
    errors = sum(_delta(cur, prev, "waimai_http_requests_total", status=str(code)) for code in
                 {dict(lbl).get("status", "") for (n, lbl) in cur.counters if n == "waimai_http_requests_total"}
                 if code.startswith("5"))
    out["http_requests_per_min"] = reqs / dt_min
    out["http_error_ratio"] = errors / reqs if reqs else math.nan
    signed = _delta(cur, prev, "waimai_http_signed_in_requests_total")
    signed_errors = _delta(cur, prev, "waimai_http_signed_in_requests_total", status_class="5xx")
    out["http_user_error_ratio"] = signed_errors / signed if signed else math.nan
    out["http_anonymous_errors_per_min"] = max(0.0, errors - signed_errors) / dt_min
    # streaming answers (SSE) last as long as someone watches: they are not latency
    out["http_latency_p95_ms"] = _quantile_delta(
        cur, prev, "waimai_http_request_duration_seconds", 0.95,
        keep=lambda d: route_class(d.get("route", "")) in ("api", "page")) * 1000
    for cls in ("api", "page"):
        out[f"http_latency_p95_ms.{cls}"] = _quantile_delta(
            cur, prev, "waimai_http_request_duration_seconds", 0.95, keep=_of_class(cls)) * 1000
    out["db_query_p95_ms"] = _quantile_delta(cur, prev, "waimai_db_query_duration_seconds", 0.95) * 1000
    g = cur.gauges
    active = [v for (n, _lbl), v in g.items() if n == "waimai_orders"]
    if active:
        out["orders_active"] = sum(active)
    for name, gauge in (("dispatch_backlog", "waimai_dispatch_backlog_orders"),
                        ("riders_on_shift", "waimai_riders_on_shift")):
        if any(n == gauge for n, _ in g):
            out[name] = _sum(g, gauge)
    out["bill_mismatches_open"] = _sum(g, "waimai_payment_bill_mismatches_open")  # 0 until a bill disagrees
    if any(n == "waimai_event_loop_lag_seconds" for n, _ in g):
        out["event_loop_lag_ms"] = max(v for (n, _), v in g.items() if n == "waimai_event_loop_lag_seconds") * 1000
    for platform in ("meituan", "eleme", "jd"):
        accepted = _delta(cur, prev, "waimai_intake_pushes_total", platform=platform, outcome="accepted")
        rejected = sum(v - prev.counters.get((n, lbl), 0.0) for (n, lbl), v in cur.counters.items()
                       if n == "waimai_intake_pushes_total" and dict(lbl).get("platform") == platform
                       and dict(lbl).get("outcome", "").startswith("rejected_"))
        out[f"intake_orders_per_min.{platform}"] = accepted / dt_min
        out[f"intake_rejected_per_min.{platform}"] = max(0.0, rejected) / dt_min
        backlog = [v for (n, lbl), v in g.items()
                   if n == "waimai_intake_callback_backlog" and dict(lbl).get("platform") == platform]
        if backlog:
            out[f"intake_callback_backlog.{platform}"] = sum(backlog)
    for (n, labels), v in g.items():
        dep = dict(labels).get("dependency")
        if n == "waimai_dependency_up" and dep:
            out[f"dependency_up.{dep}"] = v
        elif n == "waimai_dependency_probe_duration_seconds" and dep:
            out[f"dependency_latency_ms.{dep}"] = v * 1000
    return out


class Sampler:
    def __init__(self, store: MetricStore, reg: CollectorRegistry | None = None) -> None:
        self.store = store
        self.reg = reg or registry()
        self._prev: Snapshot | None = None

    def sample(self, now: float | None = None) -> dict[str, float]:
        """Read, derive and store one sample (`now` lets tests and simulations set the clock)."""
        cur = read(self.reg, now)
        if self._prev is None:
            self._prev = cur
            return {}
        values = derive(cur, self._prev)
        self._prev = cur
        self.store.write(cur.t, values)
        return values


# --- the deployment, not one process ---------------------------------------------------------------------
# Gauges that say something about a process rather than the business: merged across processes (worst wins).
_WORST = {"waimai_event_loop_lag_seconds": max, "waimai_dependency_up": min,
          "waimai_dependency_probe_duration_seconds": max}


def _key(name: str, labels: tuple[tuple[str, str], ...]) -> str:
    return json.dumps([name, labels])


def dump(snap: Snapshot) -> str:
    return json.dumps({"t": snap.t, "c": [[_key(*k), v] for k, v in snap.counters.items()],
                       "g": [[_key(*k), v] for k, v in snap.gauges.items() if k[0] in _WORST]})


def load(text: str) -> Snapshot:
    d = json.loads(text)

    def keys(items: list[list[Any]]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        out = {}
        for k, v in items:
            name, labels = json.loads(k)
            out[(name, tuple((a, b) for a, b in labels))] = float(v)
        return out

    return Snapshot(t=float(d["t"]), counters=keys(d["c"]), gauges=keys(d["g"]))


class Contributor:
    """Every process, every sample interval: its instrument readings into the shared store."""

    def __init__(self, store: MetricStore, process: str, reg: CollectorRegistry | None = None) -> None:
        self.store, self.process = store, process
        self.reg = reg or registry()

    def contribute(self, now: float | None = None) -> None:
        snap = read(self.reg, now)
        self.store.contribute(self.process, snap.t, dump(snap))


class FleetSampler:
    """The worker leader's sampler: adds up what every process counted since the last round (each process's
    counters differenced against its own previous reading, so a replica that starts, dies or restarts does
    not bend the sums), takes the business gauges from this process (the leader refreshes them from the
    database) and the worst of the per-process health gauges, and writes the series once per deployment."""

    def __init__(self, store: MetricStore, process: str, reg: CollectorRegistry | None = None, *,
                 stale_s: float = 30.0) -> None:
        self.store, self.process = store, process
        self.reg = reg or registry()
        self.stale_s = stale_s
        self._prev: dict[str, Snapshot] = {}
        self._last: float | None = None
        self.processes = 0

    def sample(self, now: float | None = None) -> dict[str, float]:
        local = read(self.reg, now)
        self.store.contribute(self.process, local.t, dump(local))  # the leader's own share, read now
        counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        worst: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        seen: dict[str, Snapshot] = {}
        for process, _ts, data in self.store.contributions(local.t - self.stale_s):
            snap = load(data)
            seen[process] = snap
            for k, v in snap.gauges.items():
                worst[k] = _WORST[k[0]](worst[k], v) if k in worst else v
            prev = self._prev.get(process)
            if prev is None:
                continue  # its first reading is the baseline
            for k, v in snap.counters.items():
                d = v - prev.counters.get(k, 0.0)
                counters[k] += d if d >= 0 else v  # a counter that went back: the process restarted
        self._prev = seen
        self.processes = len(seen)
        last, self._last = self._last, local.t
        if last is None:
            return {}
        gauges = {k: v for k, v in local.gauges.items() if k[0] not in _WORST}
        gauges.update(worst)
        values = derive(Snapshot(t=local.t, counters=dict(counters), gauges=gauges), Snapshot(t=last))
        self.store.write(local.t, values)
        return values
