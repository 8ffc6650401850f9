"""Dependency probes and the business gauges, refreshed by the housekeeping loop."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import httpx
from sqlalchemy import text

from waimai.core.database import Database, utcnow
from waimai.core.metrics import (
    DEPENDENCY_LATENCY,
    DEPENDENCY_UP,
    DISPATCH_BACKLOG,
    ORDERS_BY_STATE,
    RIDERS_ON_SHIFT,
)
from waimai.platform.delivery import read as delivery
from waimai.platform.ordering import read as orders
from waimai.platform.payments.base import PaymentProvider


@dataclass
class ProbeStatus:
    name: str
    ok: bool
    latency_ms: float
    detail: str = ""
    checked_at: dt.datetime = field(default_factory=utcnow)


class Probes:
    """Runs each probe, keeps the last result for the ops page, and sets the gauges."""

    def __init__(self, db: Database, providers: dict[str, PaymentProvider], *, sms_url: str | None = None) -> None:
        self.db = db
        self.providers = providers
        self.sms_url = sms_url
        self.last: dict[str, ProbeStatus] = {}

    def _record(self, st: ProbeStatus) -> None:
        self.last[st.name] = st
        DEPENDENCY_UP.labels(st.name).set(1 if st.ok else 0)
        DEPENDENCY_LATENCY.labels(st.name).set(st.latency_ms / 1000)

    def run(self) -> dict[str, ProbeStatus]:
        t0 = time.perf_counter()
        try:
            with self.db.read_session() as s:  # read-only: never queue behind writers
                s.execute(text("SELECT 1"))
            self._record(ProbeStatus("database", True, (time.perf_counter() - t0) * 1000))
        except Exception as exc:  # noqa: BLE001 - any failure is "down"
            self._record(ProbeStatus("database", False, (time.perf_counter() - t0) * 1000, exc.__class__.__name__))
        gw = self.providers.get("gateway")
        if gw is not None:
            r = gw.health()
            self._record(ProbeStatus("payment_gateway", r.ok, r.latency_ms, r.detail))
        if self.sms_url:
            self._record(self._http_probe("sms", self.sms_url))
        return self.last

    @staticmethod
    def _http_probe(name: str, url: str) -> ProbeStatus:
        """Reachable and not failing: any answer below 500 counts (an API root may well say 404)."""
        t0 = time.perf_counter()
        try:
            r = httpx.get(url, timeout=3.0)
            ok, detail = r.status_code < 500, f"status {r.status_code}"
        except httpx.HTTPError as exc:
            ok, detail = False, exc.__class__.__name__
        return ProbeStatus(name, ok, (time.perf_counter() - t0) * 1000, detail)


def refresh_business_gauges(db: Database) -> None:
    """Orders per non-final state, riders on shift, and the dispatch backlog."""
    with db.read_session() as s:
        counts = orders.active_counts(s)
        riders = delivery.riders_on_shift(s)
        backlog = orders.dispatch_backlog(s)
    for status, n in counts.items():
        ORDERS_BY_STATE.labels(status).set(n)
    RIDERS_ON_SHIFT.set(riders)
    DISPATCH_BACKLOG.set(backlog)
