"""Incidents: open, group, update, acknowledge, resolve; the timeline; component status.

Model (after Netflix Dispatch and Atlassian Statuspage): an incident has a severity, the public
components it affects and the status it puts them in (`impact`), roles (commander, communications,
operations, scribe), a status that moves investigating → identified → monitoring → resolved, and a
timeline of events. Public events are the updates users see on the status page and are notified of.

Times kept per incident: onset (the fault began: the alert condition first held, or set by hand),
detected (the first alert fired, or the incident was opened), acknowledged (a person took it),
resolved. MTTD = detected − onset, MTTA = acknowledged − detected, MTTR = resolved − onset.

Every function here works inside the caller's transaction; the caller commits.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from waimai.core.database import utcnow
from waimai.core.errors import Conflict, NotFound, Unprocessable
from waimai.core.messages import Msg, as_data, msg
from waimai.core.outbox import emit
from waimai.firewall.incidents.models import (
    ComponentStatus,
    ComponentStatusChange,
    Incident,
    IncidentEvent,
    Maintenance,
)

SOP_FILE = Path(__file__).with_name("sop.yml")
STATUSES = ("investigating", "identified", "monitoring", "resolved")
OPEN = STATUSES[:3]
COMPONENT_STATUSES = ("operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage")
RANK = {s: i for i, s in enumerate(COMPONENT_STATUSES)}  # worse is higher
ROLES = ("commander", "communications", "operations", "scribe")
SEVERITIES = ("P1", "P2", "P3", "P4")
Severity = Literal["P1", "P2", "P3", "P4"]


class Text2(BaseModel):
    """A text in both languages of the UI."""

    model_config = ConfigDict(extra="forbid")
    en: str
    zh: str

    def get(self, locale: str) -> str:
        return self.zh if locale.startswith("zh") else self.en


class ComponentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text2
    needed_by: list[str] = []
    workaround: Text2 | None = None


class ChecklistItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    en: str
    zh: str


class Sop(BaseModel):
    model_config = ConfigDict(extra="forbid")
    components: dict[str, ComponentSpec]
    alert_components: dict[str, list[str]] = {}
    impact: dict[str, str]
    update_cadence_minutes: float = Field(default=30, gt=0)
    auto_resolve_minutes: float = Field(default=10, ge=0)
    default_eta_minutes: dict[str, int] = {}
    checklists: dict[str, list[ChecklistItem]] = {}

    def public_components(self, alert_component: str) -> list[str]:
        if alert_component in self.alert_components:
            return list(self.alert_components[alert_component])
        return [alert_component] if alert_component in self.components else []


@lru_cache(maxsize=4)
def load_sop(path: str | None = None) -> Sop:
    import yaml

    sop = Sop.model_validate(yaml.safe_load(Path(path or SOP_FILE).read_text(encoding="utf-8")))
    for name, targets in sop.alert_components.items():
        unknown = set(targets) - set(sop.components)
        if unknown:
            raise ValueError(f"sop: alert component {name!r} maps to unknown components {sorted(unknown)}")
    return sop


# --- texts users read (both languages, generated when nobody wrote one) -------------------------------

STATUS_TEXT = {
    "investigating": ("We are investigating problems with {c}.", "我们正在排查{c}的问题。"),
    "identified": ("We found the cause of the problems with {c} and are fixing it.", "已找到{c}问题的原因，正在修复。"),
    "monitoring": ("A fix is in place for {c}; we are watching that it holds.", "{c}已修复，正在观察是否稳定。"),
    "resolved": ("{c} works normally again. Thank you for your patience.", "{c}已恢复正常，感谢耐心等待。"),
}


def component_names(sop: Sop, components: list[str], locale: str) -> str:
    names = [sop.components[c].name.get(locale) if c in sop.components else c for c in components]
    if not names:
        return "the service" if not locale.startswith("zh") else "服务"
    return ("、" if locale.startswith("zh") else ", ").join(names)


PROBLEM = ("{c} problems", "{c}异常")


def public_title(sop: Sop, inc: Incident, locale: str) -> str:
    """What users read as the incident's name: the commander's title for incidents opened by hand;
    for incidents opened by alerts (whose title is the alert's internal summary), the components."""
    if inc.source == "manual":
        return inc.title
    en, zh = PROBLEM
    return (zh if locale.startswith("zh") else en).format(c=component_names(sop, list(inc.components), locale))


def default_text(sop: Sop, status: str, components: list[str]) -> dict[str, str]:
    en, zh = STATUS_TEXT[status]
    return {"en": en.format(c=component_names(sop, components, "en")),
            "zh": zh.format(c=component_names(sop, components, "zh"))}


# --- the timeline ---------------------------------------------------------------------------------------

def _names(sop: Sop, components: list[str]) -> dict[str, str]:
    """Components by their public names, in both languages (a timeline line is worded when it is read)."""
    return {"en": component_names(sop, components, "en"), "zh": component_names(sop, components, "zh_CN")}


def record(db: Session, inc: Incident, kind: str, text: str | list[Msg], *, actor: str = "system",
           public: bool = False, details: dict[str, Any] | None = None, at: dt.datetime | None = None
           ) -> IncidentEvent:
    """One timeline line. A text the system wrote is a `msg` (or a list of them): its msgids and values are
    kept in `details["msg"]` beside the English text, so the commander's page words it in the reader's
    language. A text a person wrote is a plain string, shown as written."""
    if isinstance(text, Msg | list):
        details = {**(details or {}), "msg": as_data(text)}
        text = "; ".join(text) if isinstance(text, list) else text
    ev = IncidentEvent(incident_id=inc.id, at=at or utcnow(), kind=kind, text=text[:1000], actor=actor[:40],
                       public=public, status=inc.status, details=details or {})
    db.add(ev)
    inc.updated_at = ev.at
    return ev


def open_incidents(db: Session) -> list[Incident]:
    return list(db.scalars(select(Incident).where(Incident.status.in_(OPEN)).order_by(Incident.id)))


def record_on_open(db: Session, kind: str, text: str | list[Msg], *, components: list[str] | None = None,
                   actor: str = "system", details: dict[str, Any] | None = None,
                   at: dt.datetime | None = None) -> list[IncidentEvent]:
    """Put an event (a switch flipped, a runbook ran, a backup restored …) on every open incident,
    or only those touching `components`."""
    out = []
    for inc in open_incidents(db):
        if components is None or set(components) & set(inc.components or []) or not inc.components:
            out.append(record(db, inc, kind, text, actor=actor, details=details, at=at))
    return out


def get(db: Session, incident_id: int) -> Incident:
    inc = db.get(Incident, incident_id)
    if inc is None:
        raise NotFound("No such incident.")
    return inc


def timeline(db: Session, incident_id: int) -> list[IncidentEvent]:
    return list(db.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                           .order_by(IncidentEvent.at, IncidentEvent.id)))


def metrics(inc: Incident) -> dict[str, float | None]:
    def secs(a: dt.datetime | None, b: dt.datetime | None) -> float | None:
        return None if a is None or b is None else round(max(0.0, (b - a).total_seconds()), 1)

    return {"mttd_s": secs(inc.onset_at, inc.detected_at), "mtta_s": secs(inc.detected_at, inc.acknowledged_at),
            "mttr_s": secs(inc.onset_at, inc.resolved_at)}


# --- lifecycle --------------------------------------------------------------------------------------------

def check_components(sop: Sop, components: list[str]) -> list[str]:
    unknown = [c for c in components if c not in sop.components]
    if unknown:
        raise Unprocessable(f"Unknown components {unknown}; known: {sorted(sop.components)}.", code="component_unknown")
    return list(dict.fromkeys(components))


def open_incident(db: Session, sop: Sop, *, title: str, severity: str, components: list[str], actor: str,
                  source: str = "manual", public: bool = True, summary: str = "", workaround: str = "",
                  fault_key: str = "", onset_at: dt.datetime | None = None, now: dt.datetime | None = None,
                  text: dict[str, str] | None = None) -> Incident:
    if severity not in SEVERITIES:
        raise Unprocessable("Severity must be P1, P2, P3 or P4.", code="severity_invalid")
    components = check_components(sop, components)
    now = now or utcnow()
    eta = now + dt.timedelta(minutes=sop.default_eta_minutes.get(severity, 60))
    inc = Incident(title=title[:200], severity=severity, status="investigating", public=public, components=components,
                   impact=sop.impact.get(severity, "partial_outage"), fault_key=fault_key[:120], source=source,
                   summary=summary, workaround=workaround[:300], eta=eta, roles={}, checklist={}, alerts={},
                   opened_by=actor[:40], onset_at=min(onset_at or now, now), detected_at=now, created_at=now,
                   updated_at=now, last_public_update_at=now if public else None)
    db.add(inc)
    db.flush()
    text = text or default_text(sop, "investigating", components)
    record(db, inc, "opened", text["zh"], actor=actor, public=public, at=now,
           details={"text": text, "severity": severity, "components": components, "source": source,
                    "eta": eta.isoformat()})
    emit(db, "incident.opened", key=str(inc.id), incident_id=inc.id, severity=severity, components=components)
    recompute_components(db, sop, now=now)
    return inc


def acknowledge(db: Session, inc: Incident, *, actor: str, now: dt.datetime | None = None) -> bool:
    """First acknowledgement stops the MTTA clock; later ones are only noted."""
    now = now or utcnow()
    first = inc.acknowledged_at is None
    if first:
        inc.acknowledged_at = now
        if not inc.roles.get("commander") and not actor.startswith(("system", "signed-link")):
            inc.roles = {**inc.roles, "commander": actor}
    record(db, inc, "ack", msg("acknowledged by %(actor)s", actor=actor), actor=actor, at=now, details={"first": first})
    return first


def post_update(db: Session, sop: Sop, inc: Incident, *, actor: str, status: str | None = None,
                text: dict[str, str] | None = None, public: bool | None = None, eta: dt.datetime | None = None,
                workaround: str | None = None, impact: str | None = None, now: dt.datetime | None = None
                ) -> IncidentEvent:
    """A status change and/or a message. Public updates reach the status page and the users."""
    now = now or utcnow()
    if status is not None and status not in STATUSES:
        raise Unprocessable(f"Status must be one of {', '.join(STATUSES)}.", code="status_invalid")
    if impact is not None and impact not in COMPONENT_STATUSES:
        raise Unprocessable(f"Impact must be one of {', '.join(COMPONENT_STATUSES)}.", code="impact_invalid")
    if inc.status == "resolved" and status not in (None, "investigating", "identified"):
        raise Conflict("The incident is resolved; reopen it as investigating or identified first.",
                       code="incident_resolved")
    previous = inc.status
    if status and status != previous:
        inc.status = status
        if status == "resolved":
            inc.resolved_at = now
        elif previous == "resolved":
            inc.resolved_at = None
        if status in ("investigating", "identified"):
            inc.quiet_since = None  # back to work: the quiet period starts again when the alerts resolve
    if eta is not None:
        inc.eta = eta
    if workaround is not None:
        inc.workaround = workaround[:300]
    if impact is not None:
        inc.impact = impact
    if public is not None and public and not inc.public:
        inc.public = True
    is_public = inc.public if public is None else public
    text = text or default_text(sop, inc.status, inc.components)
    if not text.get("zh"):
        text["zh"] = text.get("en", "")
    if not text.get("en"):
        text["en"] = text["zh"]
    ev = record(db, inc, "update" if status in (None, previous) else "status", text["zh"], actor=actor,
                public=is_public, at=now,
                details={"text": text, "from": previous, "to": inc.status,
                         "eta": inc.eta.isoformat() if inc.eta else None, "workaround": inc.workaround})
    if is_public:
        inc.last_public_update_at = now
    emit(db, "incident.updated", key=str(inc.id), incident_id=inc.id, status=inc.status, public=is_public)
    recompute_components(db, sop, now=now)
    return ev


def set_roles(db: Session, inc: Incident, roles: dict[str, str], *, actor: str) -> None:
    bad = set(roles) - set(ROLES)
    if bad:
        raise Unprocessable(f"Unknown roles {sorted(bad)}; roles are {', '.join(ROLES)}.", code="role_unknown")
    inc.roles = {**inc.roles, **{k: v[:40] for k, v in roles.items() if v}}
    for k, v in roles.items():
        if not v:
            inc.roles.pop(k, None)
    record(db, inc, "role", [msg("%(role)s: %(who)s", role=msg(f"role.{k}"), who=v or "—") for k, v in roles.items()],
           actor=actor, details=roles)


def tick_checklist(db: Session, sop: Sop, inc: Incident, item: str, *, done: bool, actor: str) -> None:
    items = {i.id: i for i in sop.checklists.get(inc.severity, [])}
    if item not in items:
        raise NotFound(f"No checklist item {item!r} for {inc.severity}.")
    checklist = dict(inc.checklist)
    if done:
        checklist[item] = {"by": actor, "at": utcnow().isoformat()}
    else:
        checklist.pop(item, None)
    inc.checklist = checklist
    words = {"en": items[item].en, "zh": items[item].zh}
    record(db, inc, "checklist", msg("✓ %(item)s", item=words) if done else msg("✗ %(item)s", item=words),
           actor=actor, details={"item": item, "done": done})


def change(db: Session, sop: Sop, inc: Incident, *, actor: str, severity: str | None = None,
           components: list[str] | None = None, title: str | None = None, summary: str | None = None,
           onset_at: dt.datetime | None = None, public: bool | None = None) -> None:
    """Edit the incident's facts; each change is a timeline line."""
    notes: list[Msg] = []
    if severity is not None and severity != inc.severity:
        if severity not in SEVERITIES:
            raise Unprocessable("Severity must be P1, P2, P3 or P4.", code="severity_invalid")
        notes.append(msg("severity %(old)s → %(new)s", old=inc.severity, new=severity))
        inc.severity, inc.impact = severity, sop.impact.get(severity, inc.impact)
    if components is not None and list(components) != list(inc.components):
        notes.append(msg("components %(old)s → %(new)s", old=_names(sop, list(inc.components)),
                         new=_names(sop, list(components))))
        inc.components = check_components(sop, components)
    if title is not None and title != inc.title:
        notes.append(msg("title changed"))
        inc.title = title[:200]
    if summary is not None and summary != inc.summary:
        notes.append(msg("cause updated"))
        inc.summary = summary
    if onset_at is not None:
        if onset_at > inc.detected_at:
            raise Unprocessable("The onset cannot be after detection.", code="onset_invalid")
        notes.append(msg("onset set to %(at)s", at=onset_at.isoformat()))
        inc.onset_at = onset_at
    if public is not None and public != inc.public:
        notes.append(msg("made public") if public else msg("made private"))
        inc.public = public
    if notes:
        record(db, inc, "changed", notes, actor=actor)
        recompute_components(db, sop)


# --- component status ---------------------------------------------------------------------------------------

def _active_maintenance(db: Session, now: dt.datetime) -> list[Maintenance]:
    return list(db.scalars(select(Maintenance).where(Maintenance.starts_at <= now, Maintenance.ends_at > now)))


def derived_statuses(db: Session, sop: Sop, now: dt.datetime | None = None) -> dict[str, tuple[str, int | None]]:
    """What each component's status follows from: the worst active public incident, else maintenance."""
    now = now or utcnow()
    out: dict[str, tuple[str, int | None]] = {c: ("operational", None) for c in sop.components}
    for m in _active_maintenance(db, now):
        for c in m.components:
            if c in out:
                out[c] = ("under_maintenance", None)
    for inc in open_incidents(db):
        if not inc.public:
            continue
        st = inc.impact if inc.status in ("investigating", "identified") else "degraded_performance"
        for c in inc.components:
            if c in out and RANK[st] > RANK[out[c][0]]:
                out[c] = (st, inc.id)
    return out


def recompute_components(db: Session, sop: Sop, *, now: dt.datetime | None = None) -> dict[str, str]:
    now = now or utcnow()
    db.flush()
    rows = {r.name: r for r in db.scalars(select(ComponentStatus))}
    out = {}
    for name, (status, incident_id) in derived_statuses(db, sop, now).items():
        row = rows.get(name)
        if row is None:  # first sight of this component: its history (and uptime) starts now
            row = ComponentStatus(name=name, status="operational", updated_at=now)
            db.add(row)
            db.add(ComponentStatusChange(component=name, status="operational", at=now))
        effective = row.override or status
        if effective != row.status:
            db.add(ComponentStatusChange(component=name, status=effective, at=now, incident_id=incident_id))
            row.status, row.updated_at = effective, now
        out[name] = effective
    return out


def set_override(db: Session, sop: Sop, name: str, status: str | None, *, actor: str, reason: str = "") -> None:
    if name not in sop.components:
        raise NotFound(f"No component {name!r}.")
    if status is not None and status not in COMPONENT_STATUSES:
        raise Unprocessable(f"Status must be one of {', '.join(COMPONENT_STATUSES)}.", code="status_invalid")
    row = db.get(ComponentStatus, name)
    if row is None:
        row = ComponentStatus(name=name, status="operational")
        db.add(row)
    row.override, row.override_reason, row.updated_by = status, reason[:200], actor[:40]
    record_on_open(db, "component", msg("%(component)s: override %(status)s", component=_names(sop, [name]),
                                        status=msg(f"component.{status}")) if status
                   else msg("%(component)s: override cleared", component=_names(sop, [name])),
                   components=[name], actor=actor, details={"component": name, "override": status})
    recompute_components(db, sop)


def component_rows(db: Session, sop: Sop) -> dict[str, ComponentStatus]:
    rows = {r.name: r for r in db.scalars(select(ComponentStatus))}
    return {c: rows.get(c) or ComponentStatus(name=c, status="operational", updated_at=None) for c in sop.components}
