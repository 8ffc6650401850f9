"""create_app(settings) -> FastAPI: wires routers, middleware, plug-ins and background jobs."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from waimai.config import Settings, get_settings
from waimai.core import logging as wlogging
from waimai.core import uow
from waimai.core.background import Job, ttl
from waimai.core.csrf import CrossSiteRequestGuard
from waimai.core.database import Database
from waimai.core.edge import RefuseNulBytes, SecurityHeaders
from waimai.core.errors import install_error_handlers
from waimai.core.middleware import BodySizeLimit
from waimai.core.migrate import is_current
from waimai.core.opsonly import install_ops_docs, scraper_or_ops
from waimai.core.roles import EVERY_PROCESS, ROLES, BackgroundOnly, ordered
from waimai.firewall.monitoring import setup as monitoring
from waimai.firewall.monitoring.middleware import RequestMonitor, token_signed_in
from waimai.platform.payments.base import CashOnDelivery, PaymentProvider
from waimai.platform.payments.gateway import GatewayProvider

WEB = Path(__file__).resolve().parent / "web"


def build_providers(settings: Settings) -> dict[str, PaymentProvider]:
    from waimai.platform.payments.rails import build_rails

    return {
        "gateway": GatewayProvider(base_url=settings.gateway_url, app_id=settings.gateway_app_id,
                                   secret=settings.gateway_secret, timeout_s=settings.gateway_timeout_s),
        "cod": CashOnDelivery(),
        **build_rails(settings),
    }


def build_platform_adapters(settings: Settings) -> dict[str, Any]:
    """Intake adapters for the platforms configured in WAIMAI_PLATFORMS (none by default)."""
    from waimai.platform.integrations.eleme import ElemeAdapter
    from waimai.platform.integrations.jd import JdDaojiaAdapter
    from waimai.platform.integrations.meituan import MeituanAdapter

    out: dict[str, Any] = {}
    for name, cfg in settings.platforms.items():
        push_url = f"{settings.public_url}/api/v1/intake/{name}/orders"
        if name == "meituan":
            out[name] = MeituanAdapter(push_url=push_url, **cfg)
        elif name == "eleme":
            out[name] = ElemeAdapter(**cfg)
        elif name == "jd":
            out[name] = JdDaojiaAdapter(**cfg)
        else:
            raise ValueError(f"unknown platform {name!r} in WAIMAI_PLATFORMS")
    return out


def housekeeping_jobs(app: FastAPI) -> list[Job]:
    from waimai.firewall.recovery.setup import backup_jobs
    from waimai.platform.delivery.service import dispatch_round, waiting_for_rider
    from waimai.platform.ordering.idempotency import purge_expired
    from waimai.platform.payments import service as payments
    from waimai.platform.payments.jobs import payment_jobs

    db: Database = app.state.db
    settings: Settings = app.state.settings

    def assign() -> None:
        with db.read_session() as s:  # most rounds find nothing: look before taking the write lock
            if not waiting_for_rider(s):
                return
        with uow.unit_of_work(db) as s:
            dispatch_round(s)

    def refunds() -> None:
        with db.read_session() as s:
            ids = payments.pending_refunds(s)
        for oid in ids:
            payments.refund_order(db, providers=app.state.payment_providers, order_id=oid)

    def expire_keys() -> None:
        with uow.unit_of_work(db) as s:
            purge_expired(s, ttl=ttl(settings.idempotency_ttl_hours))

    def forget_login_failures() -> None:
        from waimai.platform.accounts import throttle

        with uow.unit_of_work(db) as s:
            throttle.prune(s, settings)

    def callbacks() -> None:
        if app.state.platform_adapters:
            app.state.callback_sender.run_once()

    # Each job names its role; singleton ones run only in the process that leads that role.
    return [Job("dispatch", 5.0, assign, role="dispatcher", singleton=True),
            Job("intake_callbacks", 2.0, callbacks, role="notifier", singleton=True),
            Job("refund_retry", 30.0, refunds, role="worker", singleton=True),
            Job("idempotency_expiry", 600.0, expire_keys, role="worker", singleton=True),
            Job("login_failures_expiry", 600.0, forget_login_failures, role="worker", singleton=True),
            Job("outbox_purge", 600.0, app.state.events.purge, role="worker", singleton=True),
            Job("sqlite_checkpoint", 1.0, db.checkpoint, role=EVERY_PROCESS), *backup_jobs(app), *payment_jobs(app)]


def create_app(settings: Settings | None = None, *, background: bool = True) -> FastAPI:
    settings = settings or get_settings()
    wlogging.configure(json_lines=settings.log_json if settings.log_json is not None
                       else settings.env != "development", level=settings.log_level,
                       file=Path(settings.log_file) if settings.log_file else None,
                       role="all" if settings.role_set == frozenset(ROLES) else settings.roles)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.draining = False
        # Everything built at start-up lives as long as the process: move it out of the collector's
        # way, and collect young objects less often (fewer, shorter pauses under load).
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        from waimai.core.drain import Drain
        from waimai.core.scheduler import Scheduler

        scheduler = Scheduler([*housekeeping_jobs(app), *monitoring_jobs], settings.role_set, settings.database_url,
                              retry_s=settings.leader_retry_s, run_jobs=background)
        app.state.scheduler = scheduler
        scheduler.start()
        if background:
            app.state.events.start(leads=lambda: scheduler.is_leader("worker"))
        bus = app.state.broker.bus
        if bus is not None:
            bus.start()
        drain = Drain(settings.drain_delay_s, before_stop=app.state.broker.close_threadsafe)
        app.state.drain = drain
        drain.install()
        app.state.loop_lag.start()
        yield
        drain.uninstall()
        app.state.draining = True
        app.state.broker.close()
        await app.state.loop_lag.stop()
        await scheduler.stop()
        app.state.events.stop()
        if bus is not None:
            bus.stop()
        app.state.metric_store.dispose()
        if getattr(app.state, "alerting", None) is not None:
            app.state.alerting.close()
        app.state.notices_close()
        app.state.push_sender.close()
        app.state.order_spool.close()
        for p in app.state.payment_providers.values():
            if hasattr(p, "close"):
                p.close()
        app.state.db.dispose()

    prod = settings.env == "production"
    # Swagger UI and ReDoc are served by waimai/web/docs.py from vendored files; in production they, and the
    # OpenAPI document (waimai/core/opsonly.py), are for ops only.
    app = FastAPI(title="Waimai", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None if prod else "/openapi.json",
                  description="Campus food delivery with a built-in fault firewall.")
    if prod:
        install_ops_docs(app)
    app.state.settings = settings
    app.state.db = Database(settings.database_url, timeouts=settings.db_timeouts())
    app.state.payment_providers = build_providers(settings)
    app.state.platform_adapters = build_platform_adapters(settings)
    from waimai.platform.integrations.service import CallbackSender
    from waimai.platform.tracking.broker import Broker

    app.state.broker = Broker()
    if settings.tracking_bus == "postgres" or (settings.tracking_bus == "auto" and not settings.is_sqlite):
        from waimai.platform.tracking.bus import PgBus

        # Every replica hears every event (LISTEN only where SSE clients are served: the api role).
        app.state.broker.bus = PgBus(settings.database_url, app.state.broker.ingest_remote,
                                     listen="api" in settings.role_set)
    app.state.callback_sender = CallbackSender(app.state.db, app.state.platform_adapters)
    from waimai.web.errors import error_page

    install_error_handlers(app, page=error_page)
    from waimai.platform.ordering.fastpath import PlaceOrderFastPath

    # Added first, so it sits inside every other middleware (metrics, size limit, switches): the plain
    # order placement skips FastAPI's router; anything unusual falls through to the route.
    app.add_middleware(PlaceOrderFastPath)
    monitoring_jobs = monitoring.install(app, settings)
    from waimai.firewall.resilience import setup as resilience

    # Breakers, switches (OpenFeature), module kill switches and the automatic switches' jobs.
    monitoring_jobs += resilience.install(app, settings)
    from waimai.web import simple as simple_pages

    monitoring_jobs += simple_pages.install(app)  # /simple, where simple mode sends customers, and its menu copy
    from waimai.firewall.incidents import setup as incident_setup

    monitoring_jobs += incident_setup.install(app, settings)
    from waimai.core.events import Dispatcher
    from waimai.subscribers import build_registry, incident_plugins

    # The one event path: every cross-domain reaction is a subscriber in waimai/subscribers.py, delivered from
    # the outbox by the worker leader; report and compensation plug-ins are composed there too.
    app.state.events = Dispatcher(app.state.db, build_registry(broker=app.state.broker, sop=app.state.sop),
                                  max_attempts=settings.events_max_attempts,
                                  retention=ttl(settings.events_retention_hours), poll_s=settings.events_poll_s,
                                  database_url=settings.database_url)
    app.state.incident_plugins = incident_plugins()
    from waimai.platform.ordering import spool as order_spool

    monitoring_jobs += order_spool.install(app, settings)  # orders taken while no database accepts writes
    from waimai.platform.support import setup as support_setup

    monitoring_jobs += support_setup.install(app, settings)  # customer service: re-delivery
    from waimai.firewall.incidents import complaints

    monitoring_jobs += complaints.install(app, settings)  # tickets as alert series, report section, compensation
    from waimai.platform.payroll import setup as payroll_setup

    monitoring_jobs += payroll_setup.install(app, settings)  # rider pay: the shift log, draft pay periods
    from waimai.platform.push import setup as push_setup

    monitoring_jobs += push_setup.install(app, settings)  # Web Push: order updates and incident notices
    from waimai.web.pwa import router as pwa_pages

    app.include_router(pwa_pages)  # the web app manifest, the service worker, the offline page

    from waimai.firewall.alerting.routes import router as alerting_routes
    from waimai.firewall.incidents.routes import ops_status
    from waimai.firewall.incidents.routes import router as incident_routes
    from waimai.firewall.monitoring.routes import api as monitoring_api
    from waimai.firewall.monitoring.routes import router as metrics_router
    from waimai.firewall.runbook_routes import router as runbook_routes
    from waimai.firewall.statuspage.routes import feed as status_feed
    from waimai.firewall.statuspage.routes import notices as notice_routes
    from waimai.firewall.statuspage.routes import public as status_api
    from waimai.firewall.switches.routes import router as switches
    from waimai.platform.accounts.routes import router as accounts
    from waimai.platform.catalog.routes import router as catalog
    from waimai.platform.coupons.routes import router as coupon_routes
    from waimai.platform.delivery.routes import router as delivery
    from waimai.platform.integrations.routes import router as intake
    from waimai.platform.ops.routes import router as ops
    from waimai.platform.ordering.routes import router as ordering
    from waimai.platform.payments.routes import router as payments
    from waimai.platform.tracking.routes import router as tracking
    from waimai.web.ops import router as ops_pages
    from waimai.web.ops_incidents import router as incident_pages
    from waimai.web.ops_runbooks import router as runbook_pages
    from waimai.web.routes import router as web
    from waimai.web.status import router as status_pages

    # Routers carry the /api/v1 prefix themselves, so each route's template is its full path
    # (what the metrics label shows).
    for r in (accounts, catalog, ordering, payments, delivery, ops, monitoring_api, metrics_router, alerting_routes,
              intake, switches, tracking, incident_routes, ops_status, status_api, status_feed, notice_routes,
              coupon_routes, runbook_routes):
        app.include_router(r)
    app.include_router(web)
    app.include_router(ops_pages)
    app.include_router(incident_pages)
    app.include_router(runbook_pages)
    app.include_router(status_pages)
    from waimai.platform.support.routes import router as support_api
    from waimai.web.support import router as support_pages

    app.include_router(support_api)
    app.include_router(support_pages)
    from waimai.firewall.recovery.routes import chaos as disk_chaos
    from waimai.firewall.recovery.routes import router as backup_routes
    from waimai.web.ops_backups import router as backup_pages

    app.include_router(backup_routes)
    app.include_router(disk_chaos)
    app.include_router(backup_pages)
    from waimai.web.ops_payments import router as payment_pages

    app.include_router(payment_pages)
    from waimai.platform.payroll.routes import router as payroll_api
    from waimai.web.payroll import router as payroll_pages

    app.include_router(payroll_api)
    app.include_router(payroll_pages)
    from waimai.web.docs import router as api_docs
    from waimai.web.ops_console import router as ops_console

    app.include_router(api_docs)
    app.include_router(ops_console)
    app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")

    roles = ordered(settings.role_set)

    def role_health() -> dict[str, Any]:
        sched = getattr(app.state, "scheduler", None)
        return sched.status() if sched is not None else {r: {"status": "starting"} for r in roles}

    @app.get("/livez", tags=["health"])
    async def livez() -> JSONResponse:
        """Alive: the event loop answers, its lag watcher beats and no role's job loop is stalled. A loop
        stalled while the database is unreachable is waiting on it: a restart would not help, so the
        process stays alive (and keeps serving its degraded pages)."""
        stuck = app.state.loop_lag.stuck_for() if background else 0.0
        sched = getattr(app.state, "scheduler", None)
        stalled = sched.stalled() if sched is not None else []
        waiting = bool(stalled) and not app.state.db.reachable
        ok = stuck < 5.0 and (not stalled or waiting)
        status = "alive" if ok and not waiting else "waiting_on_database" if ok else \
            ("stuck" if stuck >= 5.0 else "stalled")
        return JSONResponse({"status": status, "event_loop_lag_ms": round(app.state.loop_lag.lag * 1000, 1),
                             "roles": roles, "stalled": stalled}, status_code=200 if ok else 503)

    migrations_ok: list[bool] = []  # once current, they stay current for this process's life

    def database_state() -> str:
        db: Database = app.state.db
        if not db.reachable:
            return "unreachable"
        if migrations_ok:
            return "ok"
        try:
            ok = is_current(db.engine)
        except Exception as exc:  # noqa: BLE001 - any database failure means unreachable
            return f"unreachable: {exc.__class__.__name__}"
        if ok:
            migrations_ok.append(True)
        return "ok" if ok else "migrations pending"

    @app.get("/readyz", tags=["health"])
    def readyz(request: Request) -> JSONResponse:
        """Ready for traffic: not draining, and either the database is reachable with current migrations or
        it is unreachable and this replica serves what it can without it (status page, banners, /simple,
        notices from its last-known copy; orders into its spool): balancers keep it, because every replica
        is in the same position. `/readyz/database` is the separate "database reachable" signal. In production
        only ops and the metrics scraper see the detail; everyone gets the status and its code."""
        body, code = _readyz()
        return JSONResponse(body if scraper_or_ops(request) else {"status": body["status"]}, status_code=code)

    def _readyz() -> tuple[dict[str, Any], int]:
        body: dict[str, Any] = {"roles": role_health()}
        drain = getattr(app.state, "drain", None)
        if getattr(app.state, "draining", False) or (drain is not None and drain.draining):
            return {"status": "draining", **body}, 503
        detail = database_state()
        if detail == "ok":
            return {"status": "ready", "database": detail, **body}, 200
        if detail.startswith("unreachable") and app.state.db.unreachable_since is not None:
            return {"status": "degraded", "database": detail, **body}, 200
        # not yet known as an outage (a start-up without a database, pending migrations): not ready
        return {"status": "not_ready", "database": detail, **body}, 503

    @app.get("/readyz/database", tags=["health"])
    def readyz_database(request: Request) -> JSONResponse:
        """Whether this replica reaches the database (what the outage alerts and an operator watch)."""
        detail = database_state()
        if not scraper_or_ops(request):
            return JSONResponse({"database": "ok" if detail == "ok" else "unreachable"},
                                status_code=200 if detail == "ok" else 503)
        since = app.state.db.unreachable_since
        spool = getattr(app.state, "order_spool", None)
        return JSONResponse({"database": detail, "unreachable_since": since,
                             "spool": spool.counts() if spool is not None else None},
                            status_code=200 if detail == "ok" else 503)

    if "api" not in settings.role_set:  # background roles only: health and /metrics answer, the rest is 404
        app.add_middleware(BackgroundOnly, roles=settings.roles)

    # Inside out: NUL bytes and cross-site requests are refused within the body-size limit; every answer,
    # refusals included, carries the security headers.
    app.add_middleware(RefuseNulBytes)
    app.add_middleware(CrossSiteRequestGuard, trusted_origins=[settings.public_url])
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, larger=support_setup.UPLOADS)
    # A checkout form is redirected to the gateway's or a rail's cashier, and form-action covers redirects.
    cashiers = {"wechat": [settings.wechatpay_url, "https://wx.tenpay.com"], "alipay": [settings.alipay_url]}
    rail_targets = [u for r in settings.payment_rails.split(",") for u in cashiers.get(r.strip(), [])]
    app.add_middleware(SecurityHeaders, hsts=settings.env == "production",
                       form_targets=[settings.gateway_url, *rail_targets])
    app.add_middleware(RequestMonitor, metrics=settings.monitoring, access_log=settings.monitoring,
                       errors_only=settings.access_log == "errors", signed_in=token_signed_in(settings.secret_key),
                       on_anonymous_error=lambda addr: app.state.security_events.note("anonymous_server_error", addr))
    if settings.trusted_proxy_list:  # outermost: every layer sees the real client (core.proxies)
        from waimai.core.proxies import install as trust_proxies

        trust_proxies(app, settings.trusted_proxy_list)
    return app
