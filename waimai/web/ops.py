"""Ops console pages (desktop): the overview with live charts of the key series and component health."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from waimai.core import audit, events, uow
from waimai.core.deps import IdPath
from waimai.core.messages import N_
from waimai.firewall.alerting.noise import rule_noise
from waimai.firewall.incidents.service import open_incidents
from waimai.firewall.monitoring.anomaly import stored_signals
from waimai.firewall.monitoring.sampler import SERIES
from waimai.firewall.switches.service import all_switches
from waimai.web.i18n import gettext, say
from waimai.web.routes import _need, back, render

router = APIRouter(include_in_schema=False)

CHARTS = [
    ("orders_placed_per_min", N_("Orders per minute")),
    ("payment_success_ratio", N_("Payment success rate")),
    ("http_latency_p95_ms", N_("p95 latency (ms)")),
    ("dispatch_backlog", N_("Dispatch backlog")),
    ("riders_on_shift", N_("Riders on shift")),
    ("http_error_ratio", N_("Server error rate")),
]


@router.get("/ops")
def overview(request: Request) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    probes = request.app.state.probes
    status = probes.last or probes.run()
    spooled = getattr(request.app.state, "order_spool", None)
    spool = {"counts": spooled.counts(), "pending": [r.public() for r in spooled.pending(20)]} if spooled else None
    active, switches_on, event_counts = [], [], None
    if request.app.state.db.reachable:  # during an outage the console still shows the spool and the probes
        with request.app.state.db.read_session() as db:
            active = open_incidents(db)
            switches_on = [sw for sw in all_switches(db) if sw.enabled]
            event_counts = events.counts(db)
    return render(request, "ops_overview.html", {"charts": CHARTS, "probes": list(status.values()),
                                                 "spool": spool, "db_reachable": request.app.state.db.reachable,
                                                 "active_incidents": active, "switches_on": switches_on,
                                                 "event_counts": event_counts,
                                                 "series": SERIES,
                                                 "forecast": getattr(request.app.state, "forecast", None),
                                                 "anomalies": stored_signals(request.app.state.metric_store,
                                                                             limit=5)[::-1]})


@router.get("/ops/alerts")
def alerts_page(request: Request) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    svc = getattr(request.app.state, "alerting", None)
    groups, silences, noise = [], [], {}
    if svc is not None:
        pl = svc.view()  # the shared state in the database: the same page on every replica
        now = pl.clock()
        for g in pl.groups.values():
            alerts = [pl.alerts[f] for f in g.members]
            state = "resolved" if all(a.alert.status == "resolved" for a in alerts) else (
                "acknowledged" if g.acked_by else "firing")
            groups.append({"key": g.key, "labels": g.labels, "state": state, "acked_by": g.acked_by,
                           "escalation": g.escalation_step, "receiver": g.route.receiver,
                           "alerts": [{"name": a.alert.name, "severity": a.alert.severity,
                                       "summary": a.alert.annotations.get("summary", ""), "status": a.alert.status,
                                       "since": a.alert.starts_at, "muted": pl.muted_by(a.alert, now)}
                                      for a in alerts]})
        with request.app.state.db.read_session() as db:
            by_fp = {fp: inc.id for inc in open_incidents(db) for fp in inc.alerts}
        for g, grp in zip(groups, pl.groups.values(), strict=True):
            g["incident"] = next((by_fp[f] for f in grp.members if f in by_fp), None)
        order = {"firing": 0, "acknowledged": 1, "resolved": 2}
        groups.sort(key=lambda g: (order[g["state"]], min((a["severity"] for a in g["alerts"]), default="P9")))
        silences = [s for s in pl.silences.values() if s.active(now)]
        noise = svc.noise()
        oncall = [{"name": name, "now": sch.on_call(now),
                   "contact": svc.config.contacts.get(sch.on_call(now)).name  # type: ignore[union-attr]
                   if sch.on_call(now) in svc.config.contacts else "",
                   "members": sch.members, "every": sch.handoff_every}
                  for name, sch in svc.config.schedules.items()]
        history = svc.history(30)
        silent_receivers = svc.receivers_without_channels()
        with request.app.state.db.read_session() as db:
            week = rule_noise(db, since=now - dt.timedelta(days=7),
                              for_by_rule={r.alert: r.for_ for g in svc.rules.groups for r in g.rules})
    else:
        oncall, history, silent_receivers, week = [], [], [], []
    return render(request, "ops_alerts.html", {"groups": groups, "silences": silences, "noise": noise,
                                               "oncall": oncall, "history": history, "week": week,
                                               "silent_receivers": silent_receivers})


@router.get("/ops/alerts/rules")
def rules_page(request: Request) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    svc = getattr(request.app.state, "alerting", None)
    return render(request, "ops_rules.html", {"text": svc.rules_text if svc else "",
                                              "rules": [r for g in svc.rules.groups for r in g.rules] if svc else []})


@router.post("/ops/alerts/rules")
def rules_save(request: Request, text: str = Form(..., max_length=200_000)) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    svc = getattr(request.app.state, "alerting", None)
    if svc is None:
        return back("/ops/alerts/rules", err=gettext("Alerting is not running."))
    from pydantic import ValidationError
    from yaml import YAMLError

    try:
        parsed = svc.update_rules(text, by=f"user:{p.user_id}")
    except (ValidationError, YAMLError, TypeError, AttributeError) as exc:
        return render(request, "ops_rules.html", {"text": text, "rules": [], "problem": str(exc)[:2000]}, 422)
    with uow.unit_of_work(request.app.state.db) as db:
        audit.record(db, actor_id=p.user_id, actor_role=p.role, action="alert.rules", target="rules",
                     details={"rules": [r.alert for g in parsed.groups for r in g.rules]})
    return back("/ops/alerts/rules", msg=gettext("Rules saved and active."))


@router.post("/ops/alerts/ack")
def alerts_ack(request: Request, group: str = Form(...)) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    svc = getattr(request.app.state, "alerting", None)
    try:
        if svc is None:
            raise KeyError(group)
        svc.acknowledge(group, by=f"user:{p.user_id}")
    except KeyError:
        return back("/ops/alerts", err=gettext("No such alert group."))
    with uow.unit_of_work(request.app.state.db) as db:
        audit.record(db, actor_id=p.user_id, actor_role=p.role, action="alert.ack", target=group[:120])
    return back("/ops/alerts", msg=gettext("Acknowledged: repeats and escalation stop."))


@router.post("/ops/alerts/silence")
def alerts_silence(request: Request, alertname: str = Form(..., max_length=120),
                   minutes: int = Form(60, ge=1, le=10080), comment: str = Form("", max_length=300)) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    svc = getattr(request.app.state, "alerting", None)
    if svc is None:
        return back("/ops/alerts", err=gettext("Alerting is not running."))
    import datetime as dt

    s = svc.add_silence({"alertname": alertname}, ends_at=svc.clock() + dt.timedelta(minutes=minutes),
                        created_by=f"user:{p.user_id}", comment=comment)
    with uow.unit_of_work(request.app.state.db) as db:
        audit.record(db, actor_id=p.user_id, actor_role=p.role, action="alert.silence", target=s.id,
                     details={"alertname": alertname, "minutes": minutes, "comment": comment})
    return back("/ops/alerts", msg=gettext("Silenced."))


@router.get("/ops/intake")
def intake_page(request: Request) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    import datetime as dt
    from zoneinfo import ZoneInfo

    from waimai.firewall.switches import service as switches
    from waimai.platform.integrations import service as intake

    with request.app.state.db.read_session() as db:
        report = intake.reconcile(db, dt.datetime.now(ZoneInfo("Asia/Shanghai")).date())
        paused = {pf: switches.is_on(db, f"intake.{pf}.paused") for pf in intake.PLATFORMS}
        dead = intake.dead_letters(db)
        from sqlalchemy import select

        from waimai.platform.ordering.models import Order

        source = request.query_params.get("source")
        q = select(Order).where(Order.source != "app").order_by(Order.id.desc()).limit(30)
        if source in intake.PLATFORMS:
            q = q.where(Order.source == source)
        recent = list(db.scalars(q))
    return render(request, "ops_intake.html", {"report": report, "paused": paused, "dead": dead, "recent": recent,
                                               "configured": set(request.app.state.platform_adapters)})


@router.post("/ops/intake/{platform}/pause")
def intake_pause(request: Request, platform: str, paused: str = Form(...)) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    from waimai.core.errors import AppError
    from waimai.firewall.switches import service as switches

    try:
        with uow.unit_of_work(request.app.state.db) as db:
            switches.set_switch(db, f"intake.{platform}.paused", enabled=paused == "1", actor_id=p.user_id,
                                actor_role=p.role, reason="from the intake page")
    except AppError as exc:
        return back("/ops/intake", err=say(exc))
    return back("/ops/intake", msg=gettext("Intake switch updated."))


@router.get("/ops/events")
def events_page(request: Request) -> Response:
    """The one event path: what waits, the subscribers, and the dead letters with retry and purge."""
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    with request.app.state.db.read_session() as db:
        counts, dead = events.counts(db), events.dead_letters(db)
    return render(request, "ops_events.html", {"counts": counts, "dead": dead,
                                               "status": request.app.state.events.status()})


def _dead_letter_action(request: Request, event_id: int, act: Callable[..., Any], done: str) -> Response:
    """Retry or purge a dead letter from the console: the same audited service call as the API."""
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    from waimai.core.errors import AppError

    try:
        with uow.unit_of_work(request.app.state.db) as db:
            act(db, event_id, actor_id=p.user_id, actor_role=p.role)
    except AppError as exc:
        return back("/ops/events", err=say(exc))
    request.app.state.events.wake()
    return back("/ops/events", msg=done % {"id": event_id})


@router.post("/ops/events/{event_id}/retry")
def events_retry(request: Request, event_id: IdPath) -> Response:
    return _dead_letter_action(request, event_id, events.retry,
                               gettext("Event %(id)s goes to its failed subscribers again."))


@router.post("/ops/events/{event_id}/purge")
def events_purge(request: Request, event_id: IdPath) -> Response:
    return _dead_letter_action(request, event_id, events.discard, gettext("Event %(id)s purged."))


@router.get("/ops/logs")
def logs_page(request: Request) -> Response:
    """Search the log lines by request id, order id, text and time window (newest first)."""
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    import datetime as dt
    from pathlib import Path
    from zoneinfo import ZoneInfo

    from waimai.firewall.monitoring import logsearch

    q = request.query_params
    tz = ZoneInfo("Asia/Shanghai")

    def when(name: str) -> dt.datetime | None:
        raw = q.get(name) or ""
        try:
            t = dt.datetime.fromisoformat(raw) if raw else None
        except ValueError:
            return None
        return t.replace(tzinfo=tz) if t is not None and t.tzinfo is None else t

    order_id = int(q["order_id"]) if q.get("order_id", "").isdigit() and len(q["order_id"]) < 10 else None
    file = request.app.state.settings.log_file
    rows = logsearch.search(Path(file), request_id=(q.get("request_id") or None), order_id=order_id,
                            text=(q.get("text") or None), since=when("since"), until=when("until"),
                            limit=300) if file and any(q.get(k) for k in ("request_id", "order_id", "text", "since")) \
        else []
    return render(request, "ops_logs.html", {"rows": rows, "q": dict(q), "searched": bool(q)})
