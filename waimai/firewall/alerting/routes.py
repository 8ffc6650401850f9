from __future__ import annotations

import datetime as dt
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from waimai.core import audit, uow
from waimai.core.deps import API_PREFIX, OpsDep
from waimai.core.errors import AppError, NotFound, Unauthorized, Unprocessable
from waimai.firewall.alerting.service import AlertingService, from_alertmanager, from_pagerduty_event

router = APIRouter(prefix=API_PREFIX + "/alerts", tags=["alerting"])


def _svc(request: Request) -> AlertingService:
    svc = getattr(request.app.state, "alerting", None)
    if svc is None:
        raise AppError("Alerting is not running (monitoring is off).", status=503, code="unavailable")
    return svc  # type: ignore[no-any-return]


def _check_ingest(request: Request, authorization: str | None) -> None:
    token = request.app.state.settings.alert_ingest_token
    if not token:
        raise NotFound("Alert intake is off: set WAIMAI_ALERT_INGEST_TOKEN to receive alerts.")
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise Unauthorized("Wrong or missing intake token.")


@router.get("")
def list_alerts(request: Request, _p: OpsDep) -> list[dict[str, Any]]:
    """Alert groups with their alerts: firing, acknowledged or resolved, with escalation state."""
    p = _svc(request).view()  # the shared state: the same on every replica
    out = []
    for g in p.groups.values():
        alerts = [p.alerts[f] for f in g.members]
        out.append({"group": g.key, "receiver": g.route.receiver, "labels": g.labels,
                    "acknowledged_by": g.acked_by, "acknowledged_at": g.acked_at, "escalation_step": g.escalation_step,
                    "alerts": [{"name": s.alert.name, "status": s.alert.status, "severity": s.alert.severity,
                                "labels": s.alert.labels, "summary": s.alert.annotations.get("summary", ""),
                                "starts_at": s.alert.starts_at, "muted": p.muted_by(s.alert, p.clock()),
                                "flaps": s.flaps} for s in alerts]})
    return out


@router.post("/ack")
def ack(request: Request, p: OpsDep, group: Annotated[str, Query(max_length=500)]) -> dict[str, Any]:
    svc = _svc(request)
    try:
        g = svc.acknowledge(group, by=f"user:{p.user_id}")
    except KeyError:
        raise NotFound("No such alert group.") from None
    with uow.unit_of_work(request.app.state.db) as db:
        audit.record(db, actor_id=p.user_id, actor_role=p.role, action="alert.ack", target=group[:120])
    return {"group": g.key, "acknowledged_by": g.acked_by}


@router.get("/ack", include_in_schema=False)
def ack_link(request: Request, token: Annotated[str, Query(max_length=2000)]) -> dict[str, Any]:
    """The signed link in a notification: acknowledges without signing in, until it expires."""
    svc = _svc(request)
    key = svc.view().verify_ack_token(token)
    if key is None:
        raise Unauthorized("This acknowledgement link is invalid or has expired.")
    try:
        g = svc.acknowledge(key, by="signed-link")
    except KeyError:  # pruned between the check and the acknowledgement
        raise Unauthorized("This acknowledgement link is invalid or has expired.") from None
    return {"group": g.key, "acknowledged_by": g.acked_by}


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    matchers: dict[str, str] = Field(min_length=1)
    minutes: int = Field(ge=1, le=7 * 24 * 60)
    comment: str = Field(default="", max_length=300)


@router.post("/silences", status_code=201)
def add_silence(request: Request, body: SilenceIn, p: OpsDep) -> dict[str, Any]:
    svc = _svc(request)
    s = svc.add_silence(body.matchers, ends_at=svc.clock() + dt.timedelta(minutes=body.minutes),
                        created_by=f"user:{p.user_id}", comment=body.comment)
    with uow.unit_of_work(request.app.state.db) as db:
        audit.record(db, actor_id=p.user_id, actor_role=p.role, action="alert.silence", target=s.id,
                     details={"matchers": body.matchers, "minutes": body.minutes, "comment": body.comment})
    return {"id": s.id, "ends_at": s.ends_at}


@router.get("/silences")
def list_silences(request: Request, _p: OpsDep) -> list[dict[str, Any]]:
    """Active silences (shared by every replica)."""
    return [{"id": s.id, "matchers": s.matchers, "starts_at": s.starts_at, "ends_at": s.ends_at,
             "created_by": s.created_by, "comment": s.comment} for s in _svc(request).silences()]


@router.delete("/silences/{sid}")
def expire_silence(request: Request, sid: Annotated[str, Path(max_length=40)], p: OpsDep) -> dict[str, Any]:
    if not _svc(request).expire_silence(sid):
        raise NotFound("No such active silence.")
    with uow.unit_of_work(request.app.state.db) as db:
        audit.record(db, actor_id=p.user_id, actor_role=p.role, action="alert.unsilence", target=sid)
    return {"id": sid, "expired": True}


class RulesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    yaml: str = Field(min_length=1, max_length=200_000)


@router.get("/rules")
def get_rules(request: Request, _p: OpsDep) -> dict[str, Any]:
    svc = _svc(request)
    return {"yaml": svc.rules_text, "rules": [r.alert for g in svc.rules.groups for r in g.rules]}


@router.put("/rules")
def put_rules(request: Request, body: RulesIn, p: OpsDep) -> dict[str, Any]:
    """Replace the rule set (validated first; kept in the database, so it survives restarts)."""
    from pydantic import ValidationError
    from yaml import YAMLError

    try:
        parsed = _svc(request).update_rules(body.yaml, by=f"user:{p.user_id}")
    except (ValidationError, YAMLError, TypeError, AttributeError) as exc:
        raise Unprocessable(f"The rules are not valid: {str(exc)[:500]}") from exc
    with uow.unit_of_work(request.app.state.db) as db:
        audit.record(db, actor_id=p.user_id, actor_role=p.role, action="alert.rules", target="rules",
                     details={"rules": [r.alert for g in parsed.groups for r in g.rules]})
    return {"rules": [r.alert for g in parsed.groups for r in g.rules]}


@router.get("/history")
def history(request: Request, _p: OpsDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    return [{"at": h.at, "event": h.event, "group": h.group_key, "title": h.title, "severity": h.severity,
             "status": h.status, "details": h.details} for h in _svc(request).history(limit)]


@router.get("/noise")
def noise(request: Request, _p: OpsDep) -> dict[str, dict[str, int]]:
    """Per rule: notifications sent and flaps — where the pager is too loud."""
    svc = _svc(request)
    svc.view()
    return svc.noise()


@router.post("/ingest/alertmanager", include_in_schema=False)
def ingest_alertmanager(request: Request, payload: dict[str, Any],
                        authorization: Annotated[str | None, Header()] = None) -> dict[str, int]:
    """Prometheus Alertmanager webhook (v4): teams that run Prometheus keep it, on-call lives here."""
    _check_ingest(request, authorization)
    try:
        alerts = from_alertmanager(payload)
    except (ValueError, TypeError, AttributeError) as exc:
        raise Unprocessable(str(exc)) from exc
    _svc(request).ingest(alerts)
    return {"received": len(alerts)}


@router.post("/ingest/events", include_in_schema=False)
def ingest_event(request: Request, payload: dict[str, Any],
                 authorization: Annotated[str | None, Header()] = None) -> dict[str, str]:
    """PagerDuty-style Events API v2 (trigger / acknowledge / resolve by dedup_key)."""
    _check_ingest(request, authorization)
    try:
        action, alert = from_pagerduty_event(payload)
    except (ValueError, TypeError, AttributeError) as exc:
        raise Unprocessable(str(exc)) from exc
    svc = _svc(request)
    key = str(payload.get("dedup_key") or "")
    if alert is not None:
        svc.ingest([alert])
    elif not svc.event(action, key):
        raise NotFound("No alert with that dedup_key.")
    return {"status": "success", "dedup_key": key or (alert.labels["alertname"] if alert else "")}
