"""Wire resilience into the app: the shared breaker store, one Dependency per outbound target, the
OpenFeature switches provider, the switch middleware, the automatic switches and their jobs."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI

from waimai.config import Settings
from waimai.core import uow
from waimai.core.background import Job
from waimai.core.database import Database
from waimai.core.leader import identity
from waimai.core.outbound.breakers import BreakerStore
from waimai.core.outbound.policy import Policy, Resilience
from waimai.core.outbox import emit
from waimai.core.roles import EVERY_PROCESS
from waimai.firewall.resilience.automation import DbDelay, DbLatencyWatch, PaymentGuard
from waimai.firewall.resilience.stores import BackgroundWriter, DatabaseStore, RedisStore
from waimai.firewall.switches import flags
from waimai.firewall.switches.fence import Fence
from waimai.firewall.switches.middleware import SwitchGuard

log = structlog.get_logger(__name__)


def policies(settings: Settings) -> dict[str, Policy]:
    """Per dependency (or family, `name.*`): timeouts, attempts, budget, bulkhead, breaker."""
    threshold = settings.breaker_failure_threshold
    return {
        # Payments are idempotent on our order number, so a second try is safe; the customer waits.
        "payment_gateway": Policy(timeout_s=settings.gateway_timeout_s, attempts=2, wait_initial_s=0.05,
                                  wait_max_s=0.5, wait_jitter_s=0.1, deadline_s=2 * settings.gateway_timeout_s + 1,
                                  max_concurrent=16, failure_threshold=threshold, open_s=settings.breaker_open_s),
        # WeChat Pay and Alipay (WAIMAI_PAYMENT_RAILS): one breaker each, so checkout can offer the other.
        "payment.*": Policy(timeout_s=settings.gateway_timeout_s, attempts=2, wait_initial_s=0.05, wait_max_s=0.5,
                            wait_jitter_s=0.1, deadline_s=2 * settings.gateway_timeout_s + 1, max_concurrent=16,
                            failure_threshold=threshold, open_s=settings.breaker_open_s),
        # Notification channels keep their own configured retry policy (ManagedChannel); this adds the
        # budget, bulkhead and breaker. Alerts are few and precious: a generous budget.
        "channel.*": Policy(timeout_s=5.0, attempts=4, retry_ratio=0.5, min_retries_per_s=2.0, max_concurrent=4,
                            failure_threshold=threshold, open_s=30.0),
        # Platform callbacks are retried by their outbox (with backoff and jitter), not inline.
        "platform.*": Policy(timeout_s=5.0, attempts=1, max_concurrent=4,
                             failure_threshold=threshold, open_s=30.0),
    }


def build_store(settings: Settings, database: Database) -> BreakerStore:
    if settings.redis_url:
        return RedisStore(settings.redis_url)
    return DatabaseStore(database)


def install(app: FastAPI, settings: Settings) -> list[Job]:
    """Call after the payment providers, callback sender and alerting exist; returns the periodic jobs."""
    db: Database = app.state.db
    events = BackgroundWriter("breaker-events")

    def record_event(name: str, previous: str, state: str, actor: str) -> None:
        def write() -> None:
            with uow.unit_of_work(db) as s:
                emit(s, "breaker.state_changed", key=name, dependency=name, previous=previous, state=state,
                     actor=actor)
        events.submit(write)

    resilience = Resilience(build_store(settings, db), policies=policies(settings), on_change=[record_event])
    app.state.resilience = resilience
    app.state.breaker_events = events
    flags.install(db, ttl_s=settings.switch_cache_ttl_s)

    # Every outbound target gets its Dependency (objects built before this had a private one).
    gateway = app.state.payment_providers.get("gateway")
    if gateway is not None and hasattr(gateway, "dependency"):
        gateway.dependency = resilience.dependency("payment_gateway")
    from waimai.platform.payments.rails import online

    for name in ("wechat", "alipay"):
        rail = app.state.payment_providers.get(name)
        if rail is not None:
            rail.dependency = resilience.dependency(f"payment.{name}")
    # payment.cod_only watches the providers checkout offers: the rails when configured, else the gateway.
    guarded = [app.state.payment_providers[n] for n in online(app.state) if n in app.state.payment_providers]
    app.state.callback_sender.resilience = resilience
    alerting: Any = getattr(app.state, "alerting", None)
    if alerting is not None:
        for chans in alerting.channels.values():
            for ch in chans:
                if hasattr(ch, "use_dependency"):
                    ch.use_dependency(resilience.dependency(f"channel.{ch.name}"))

    if settings.chaos:
        delay = DbDelay()
        delay.install(db)
        app.state.db_delay = delay
        log.warning("chaos_enabled", hint="PUT /api/v1/chaos/db slows every statement; never in production")

    from waimai.firewall.resilience.routes import router

    app.include_router(router)
    fence = Fence()  # a restore waits for every process's heartbeat to confirm it is fenced (fence.py)
    app.state.fence = fence
    app.add_middleware(SwitchGuard, fence=fence)

    jobs: list[Job] = [Job("replica_heartbeat", 1.0, lambda: fence.beat(db, identity(), settings.roles),
                           role=EVERY_PROCESS)]
    if guarded and all(hasattr(p, "dependency") for p in guarded):
        guard = PaymentGuard(db, guarded[0].dependency, guarded[0], recovery_s=settings.cod_recovery_s,
                             others=[(p.dependency, p) for p in guarded[1:]])
        app.state.payment_guard = guard

        def watch_breakers() -> None:
            resilience.refresh()
            guard.run()

        # Every process: its gauge shows the shared state, and the guard's flips are idempotent.
        jobs.append(Job("breaker_watch", 1.0, watch_breakers, role=EVERY_PROCESS))
    watch = DbLatencyWatch(db, threshold_ms=settings.simple_mode_db_latency_ms,
                           recovery_s=settings.simple_mode_recovery_s, outage_after_s=settings.db_outage_after_s,
                           deadline_s=2.0)
    app.state.db_latency = watch
    # Every process needs to know when the database is slow (its own work then leaves the event loop).
    jobs.append(Job("db_latency_watch", 5.0, lambda: watch.ensure_running(
        lambda: bool(getattr(app.state, "draining", False))), role=EVERY_PROCESS))
    return jobs
