"""Wires monitoring into the app: DB timing, loop-lag watcher, sampler, probes, heartbeat jobs."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import structlog
from fastapi import FastAPI
from sqlalchemy import event

from waimai.config import Settings
from waimai.core.background import Job
from waimai.core.database import Database
from waimai.core.leader import identity
from waimai.core.metrics import (
    DB_QUERY_LATENCY,
    DEPENDENCY_LATENCY,
    DEPENDENCY_UP,
    EVENT_LOOP_LAG,
)
from waimai.core.roles import EVERY_PROCESS
from waimai.firewall.monitoring.anomaly import AnomalyWatcher
from waimai.firewall.monitoring.probes import Probes, refresh_business_gauges
from waimai.firewall.monitoring.sampler import Contributor, FleetSampler
from waimai.firewall.monitoring.store import MetricStore

log = structlog.get_logger(__name__)
_OPS = {"SELECT": "select", "INSERT": "insert", "UPDATE": "update", "DELETE": "delete", "BEGIN": "begin"}


def time_queries(db: Database) -> None:
    """Histogram of statement time by kind, measured around the driver call."""
    observers = {k: DB_QUERY_LATENCY.labels(v) for k, v in _OPS.items()}
    other = DB_QUERY_LATENCY.labels("other")

    @event.listens_for(db.engine, "before_cursor_execute")
    def _before(conn: Any, _cur: Any, _stmt: str, _params: Any, ctx: Any, _many: bool) -> None:
        conn.info["q_t0"] = time.perf_counter()

    @event.listens_for(db.engine, "after_cursor_execute")
    def _after(conn: Any, _cur: Any, stmt: str, _params: Any, ctx: Any, _many: bool) -> None:
        t0 = conn.info.pop("q_t0", None)
        if t0 is not None:
            observers.get(stmt[:6].upper().strip(), other).observe(time.perf_counter() - t0)


class LoopLag:
    """Wakes every 0.5 s and records how late it woke: a blocked event loop shows up here first."""

    interval = 0.5

    def __init__(self) -> None:
        self.last_beat = time.monotonic()
        self.lag = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(self.interval)
            now = time.monotonic()
            self.lag = max(0.0, now - t0 - self.interval)
            self.last_beat = now
            EVENT_LOOP_LAG.set(self.lag)

    def stuck_for(self) -> float:
        return time.monotonic() - self.last_beat


def metrics_url(settings: Settings) -> str:
    """Where the store lives. Left at its default with PostgreSQL (several replicas), it is the database
    itself, so every replica reads the same samples and signals; a SQLite file on one machine is shared by
    the processes beside it. Set WAIMAI_METRICS_URL to keep it apart (another PostgreSQL database)."""
    if "metrics_url" in settings.model_fields_set or settings.is_sqlite:
        return settings.metrics_url
    return settings.database_url


def leads_role(app: FastAPI, role: str) -> bool:
    """Does this process run `role`'s singleton work now? Without running job loops (an embedded app in a
    test, a CLI) the process is alone and leads; with them, the elected leader does."""
    if role not in app.state.settings.role_set:
        return False
    sched = getattr(app.state, "scheduler", None)
    return sched is None or not sched.run_jobs or sched.is_leader(role)


def _holidays(settings: Settings) -> frozenset[Any]:
    """Chinese public holidays of this year and the next, plus the campus's own days off."""
    import datetime as dt

    import holidays

    year = dt.datetime.now(dt.UTC).year
    return frozenset(holidays.China(years=[year, year + 1])) | frozenset(settings.forecast_extra_holidays)


def install(app: FastAPI, settings: Settings) -> list[Job]:
    """Set up monitoring on `app`; returns the periodic jobs for the housekeeping loop."""
    db: Database = app.state.db
    app.state.loop_lag = LoopLag()
    store = MetricStore(metrics_url(settings))
    app.state.metric_store = store
    probes = Probes(db, app.state.payment_providers, sms_url=settings.sms_provider_url)
    app.state.probes = probes
    from waimai.firewall.alerting.security import SecurityEvents

    app.state.security_events = SecurityEvents()  # attack symptoms per source address (the edge notes them)
    if not settings.monitoring:
        return []
    time_queries(db)
    sampler = FleetSampler(store, identity())
    app.state.sampler = sampler
    contributor = Contributor(store, identity())
    watcher = AnomalyWatcher(store, interval_s=settings.sample_interval_s, holidays=_holidays(settings))
    app.state.anomalies = watcher

    def sample() -> None:
        refresh_business_gauges(db)
        now = time.time()
        sampler.sample(now)
        watcher.step(now)

    from pathlib import Path

    from waimai.firewall.alerting.service import AlertingService

    alerting = AlertingService(
        source=store, rules_file=Path(settings.alert_rules_file) if settings.alert_rules_file else None,
        config_file=Path(settings.alerting_config_file) if settings.alerting_config_file else None,
        link_secret=settings.secret_key + ":alert-links", public_url=settings.public_url, database=db,
        leads=lambda: leads_role(app, "notifier"))
    app.state.alerting = alerting
    alerting.sources.append(app.state.security_events.alerts)
    from waimai.firewall.monitoring.forecasting import forecast_orders

    app.state.forecast = None

    def forecast() -> None:
        app.state.forecast = forecast_orders(store, extra_holidays=frozenset(settings.forecast_extra_holidays))

    # Roles (waimai/core/roles.py): one leader samples, watches for anomalies, rolls up and evaluates alerts;
    # the forecast only reads the store for the ops page, so every api process computes its own; each process
    # probes its own dependencies.
    jobs = [Job("order_forecast", 300.0, forecast, role="api"),
            Job("metrics_contribute", settings.sample_interval_s, contributor.contribute, role=EVERY_PROCESS),
            Job("metrics_sample", settings.sample_interval_s, sample, role="worker", singleton=True),
            Job("probes", 10.0, probes.run, role=EVERY_PROCESS),
            Job("metrics_rollup", 60.0, store.rollup, role="worker", singleton=True),
            Job("alert_evaluation", settings.alert_eval_interval_s, alerting.evaluate, role="notifier", singleton=True),
            Job("alert_retention", 600.0, alerting.prune, role="notifier", singleton=True)]
    if settings.watchdog_url:
        client = httpx.Client(timeout=2.0)
        url = settings.watchdog_url.rstrip("/") + "/heartbeat"

        def heartbeat() -> None:
            # The watchdog answering our heartbeat is itself a dependency: if it is down, nobody
            # would notice this service dying (alert rule WatchdogDown).
            t0 = time.perf_counter()
            try:
                ok = client.post(url, json={"service": "waimai", "public_url": settings.public_url}).status_code < 300
            except httpx.HTTPError as exc:
                ok = False
                log.warning("heartbeat_failed", error=exc.__class__.__name__)
            DEPENDENCY_UP.labels("watchdog").set(1 if ok else 0)
            DEPENDENCY_LATENCY.labels("watchdog").set(time.perf_counter() - t0)

        jobs.append(Job("watchdog_heartbeat", 5.0, heartbeat, role=EVERY_PROCESS))
    if settings.zabbix_server:
        from waimai.firewall.monitoring.zabbix import ZabbixSender

        host, _, port = settings.zabbix_server.partition(":")
        sender = ZabbixSender(host, int(port or 10051))

        def push() -> None:
            latest = {n: p.value for n in store.names() if (p := store.latest(n)) is not None}
            sender.send_values(settings.zabbix_host, {f"waimai.{k}": v for k, v in latest.items()})

        jobs.append(Job("zabbix_push", 60.0, push, role="notifier", singleton=True))
    return jobs
