"""What the status page, the JSON API, the Atom feed and the in-app banners show.

The page's summary follows Atlassian Statuspage's `summary.json` shape (page, status indicator,
components, incidents, scheduled maintenances) so existing tools can read it.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from waimai.core.database import Database, is_connection_error, utcnow
from waimai.firewall.incidents import service as incidents
from waimai.firewall.incidents.models import ComponentStatusChange, Incident, IncidentEvent, Maintenance

SHANGHAI = ZoneInfo("Asia/Shanghai")
STAGES = ("investigating", "identified", "monitoring", "resolved")
# Statuspage counts a major outage as fully down and a partial outage as 30% down.
DOWN_WEIGHT = {"major_outage": 1.0, "partial_outage": 0.3}
INDICATOR = {"operational": "none", "under_maintenance": "maintenance", "degraded_performance": "minor",
             "partial_outage": "major", "major_outage": "critical"}


def progress(status: str) -> int:
    """Percent through the incident stages (investigating 25 … resolved 100)."""
    return (STAGES.index(status) + 1) * 25 if status in STAGES else 0


def event_text(ev: IncidentEvent, locale: str) -> str:
    texts = (ev.details or {}).get("text") or {}
    return str(texts.get("zh" if locale.startswith("zh") else "en") or ev.text)


@dataclass
class Snapshot:
    """Everything the banners need, read once and shared for a couple of seconds."""

    components: dict[str, str]
    incidents: list[dict[str, Any]] = field(default_factory=list)

    def worst(self) -> str:
        return max(self.components.values(), key=lambda s: incidents.RANK[s], default="operational")


def snapshot(db: Session, sop: incidents.Sop) -> Snapshot:
    rows = incidents.component_rows(db, sop)
    active = []
    for inc in incidents.open_incidents(db):
        if inc.public:
            active.append({"id": inc.id, "title": inc.title, "status": inc.status, "components": list(inc.components),
                           "eta": inc.eta, "workaround": inc.workaround, "impact": inc.impact})
    return Snapshot(components={c: r.status for c, r in rows.items()}, incidents=active)


class SnapshotCache:
    """Per-process cache: the banners on hot pages read the database at most every `ttl_s`."""

    def __init__(self, database: Database, sop: incidents.Sop, ttl_s: float = 2.0, last_known: Any = None) -> None:
        self.database, self.sop, self.ttl_s = database, sop, ttl_s
        self.last_known = last_known  # lastknown.LastKnown: the outage laid over the last snapshot read
        self._value: Snapshot | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def get(self) -> Snapshot:
        if self.last_known is not None and self.last_known.outage:
            return self.last_known.overlay_snapshot(self._value)  # type: ignore[no-any-return]
        now = time.monotonic()
        if self._value is not None and now - self._at < self.ttl_s:
            return self._value
        with self._lock:
            if self._value is None or time.monotonic() - self._at >= self.ttl_s:
                try:
                    with self.database.read_session() as db:
                        self._value = snapshot(db, self.sop)
                except Exception as exc:
                    if self.last_known is None or not is_connection_error(exc):
                        raise
                    return self.last_known.overlay_snapshot(self._value)  # type: ignore[no-any-return]
                self._at = time.monotonic()
        return self._value

    def invalidate(self) -> None:
        self._at = 0.0


def banners(snap: Snapshot, sop: incidents.Sop, role: str, locale: str) -> list[dict[str, Any]]:
    """The notices a user of `role` sees: one per degraded component they need, with the workaround
    and the expected recovery time in Shanghai time."""
    zh = locale.startswith("zh")
    out = []
    for comp, status in snap.components.items():
        spec = sop.components.get(comp)
        if status == "operational" or spec is None or role not in spec.needed_by:
            continue
        inc = next((i for i in snap.incidents if comp in i["components"]), None)
        name = spec.name.get(locale)
        what = {"under_maintenance": ("正在维护", "is under maintenance"),
                "degraded_performance": ("响应较慢", "is slower than usual"),
                "partial_outage": ("部分不可用", "is partly down"),
                "major_outage": ("暂时不可用", "is down")}[status]
        text = f"{name}{what[0]}" if zh else f"{name} {what[1]}"
        workaround = (inc or {}).get("workaround") or (spec.workaround.get(locale) if spec.workaround else "")
        if isinstance(workaround, dict):  # a text in both languages (the last-known outage overlay)
            workaround = workaround["zh" if zh else "en"]
        eta = (inc or {}).get("eta")
        eta_txt = ""
        if eta is not None and status != "under_maintenance":
            hhmm = eta.astimezone(SHANGHAI).strftime("%H:%M")
            eta_txt = f"预计 {hhmm} 左右恢复" if zh else f"expected back around {hhmm}"
        sep = "；" if zh else "; "
        line = text + (f" — {workaround.rstrip('。.')}" if workaround else "") + (sep + eta_txt if eta_txt else "")
        out.append({"component": comp, "status": status, "text": text, "workaround": workaround, "eta": eta_txt,
                    "line": line,
                    "incident_id": (inc or {}).get("id"), "stage": (inc or {}).get("status")})
    return out


def uptime_bars(db: Session, sop: incidents.Sop, days: int = 90, now: dt.datetime | None = None
                ) -> dict[str, list[dict[str, Any]]]:
    """Per component, one bar per Shanghai calendar day: uptime % and the worst status that day.
    Days before the first record are `no_data`."""
    now = now or utcnow()
    today = now.astimezone(SHANGHAI).date()
    first_day = today - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first_day, dt.time(), SHANGHAI).astimezone(dt.UTC)
    changes = list(db.scalars(select(ComponentStatusChange).order_by(ComponentStatusChange.at,
                                                                     ComponentStatusChange.id)))
    out: dict[str, list[dict[str, Any]]] = {}
    for comp in sop.components:
        mine = [c for c in changes if c.component == comp]
        # the status in force at `start`, then each change after it
        state = "operational"
        known_from = mine[0].at if mine else None
        for c in mine:
            if c.at <= start:
                state = c.status
        timeline = [(start, state)] + [(c.at, c.status) for c in mine if c.at > start]
        bars: list[dict[str, Any]] = []
        for i in range(days):
            d = first_day + dt.timedelta(days=i)
            d0 = dt.datetime.combine(d, dt.time(), SHANGHAI).astimezone(dt.UTC)
            d1 = min(d0 + dt.timedelta(days=1), now)
            if known_from is None or d1 <= known_from or d0 >= now:
                bars.append({"day": d.isoformat(), "uptime": None, "worst": "no_data"})
                continue
            lo = max(d0, known_from)
            down, worst = 0.0, "operational"
            for j, (t, st) in enumerate(timeline):
                t_end = timeline[j + 1][0] if j + 1 < len(timeline) else now
                a, b = max(t, lo), min(t_end, d1)
                if b <= a:
                    continue
                down += (b - a).total_seconds() * DOWN_WEIGHT.get(st, 0.0)
                if incidents.RANK[st] > incidents.RANK[worst]:
                    worst = st
            span = max((d1 - lo).total_seconds(), 1.0)
            bars.append({"day": d.isoformat(), "uptime": round(100.0 * (1 - down / span), 3), "worst": worst})
        out[comp] = bars
    return out


def overall_uptime(bars: list[dict[str, Any]]) -> float | None:
    vals = [b["uptime"] for b in bars if b["uptime"] is not None]
    return round(sum(vals) / len(vals), 2) if vals else None


def public_updates(db: Session, incident_ids: list[int]) -> dict[int, list[IncidentEvent]]:
    if not incident_ids:
        return {}
    rows = db.scalars(select(IncidentEvent).where(IncidentEvent.incident_id.in_(incident_ids),
                                                  IncidentEvent.public.is_(True))
                      .order_by(IncidentEvent.at.desc(), IncidentEvent.id.desc()))
    out: dict[int, list[IncidentEvent]] = {i: [] for i in incident_ids}
    for ev in rows:
        out[ev.incident_id].append(ev)
    return out


def recent_public_incidents(db: Session, days: int = 14, limit: int = 20) -> list[Incident]:
    since = utcnow() - dt.timedelta(days=days)
    return list(db.scalars(select(Incident).where(Incident.public.is_(True), Incident.created_at >= since)
                           .order_by(Incident.created_at.desc()).limit(limit)))


def maintenances(db: Session, now: dt.datetime | None = None) -> list[Maintenance]:
    now = now or utcnow()
    return list(db.scalars(select(Maintenance).where(Maintenance.ends_at > now).order_by(Maintenance.starts_at)))


def summary(db: Session, sop: incidents.Sop, *, public_url: str, locale: str = "en") -> dict[str, Any]:
    """The Statuspage `summary.json` shape."""
    rows = incidents.component_rows(db, sop)
    worst = max((r.status for r in rows.values()), key=lambda s: incidents.RANK[s], default="operational")
    active = [i for i in incidents.open_incidents(db) if i.public]
    updates = public_updates(db, [i.id for i in active])
    desc = {"none": "All Systems Operational", "minor": "Minor Service Outage", "major": "Partial System Outage",
            "critical": "Major System Outage", "maintenance": "Service Under Maintenance"}
    return {
        "page": {"name": "Waimai", "url": public_url + "/status", "time_zone": "Asia/Shanghai",
                 "updated_at": max((r.updated_at for r in rows.values() if r.updated_at), default=None)},
        "status": {"indicator": INDICATOR[worst], "description": desc[INDICATOR[worst]]},
        "components": [{"id": c, "name": sop.components[c].name.get(locale), "status": r.status,
                        "updated_at": r.updated_at} for c, r in rows.items()],
        "incidents": [{"id": i.id, "name": incidents.public_title(sop, i, locale), "status": i.status, "impact": INDICATOR.get(i.impact, "minor"),
                       "created_at": i.created_at, "updated_at": i.updated_at, "eta": i.eta,
                       "progress": progress(i.status), "components": list(i.components),
                       "shortlink": f"{public_url}/status/incidents/{i.id}",
                       "incident_updates": [{"id": ev.id, "status": ev.status, "body": event_text(ev, locale),
                                             "created_at": ev.at} for ev in updates.get(i.id, [])]}
                      for i in active],
        "scheduled_maintenances": [{"id": m.id, "name": m.title, "description": m.description,
                                    "scheduled_for": m.starts_at, "scheduled_until": m.ends_at,
                                    "components": list(m.components)} for m in maintenances(db)],
    }


def atom_feed(db: Session, sop: incidents.Sop, *, public_url: str, locale: str = "zh_CN") -> bytes:
    """Public incident updates of the last 30 days as an Atom feed (newest first)."""
    from feedgen.feed import FeedGenerator

    fg = FeedGenerator()
    fg.id(f"{public_url}/status")
    fg.title("Waimai status" if not locale.startswith("zh") else "外卖服务状态")
    fg.link(href=f"{public_url}/status", rel="alternate")
    fg.link(href=f"{public_url}/status/feed.atom", rel="self")
    fg.language("zh-CN" if locale.startswith("zh") else "en")
    incs = recent_public_incidents(db, days=30, limit=50)
    updates = public_updates(db, [i.id for i in incs])
    newest = utcnow()
    entries = sorted(((i, ev) for i in incs for ev in updates.get(i.id, [])), key=lambda p: (p[1].at, p[1].id))
    for inc, ev in entries:  # feedgen prepends: add oldest first, the feed comes out newest first
        fe = fg.add_entry()
        fe.id(f"{public_url}/status/incidents/{inc.id}#update-{ev.id}")
        fe.title(f"{incidents.public_title(sop, inc, locale)} — {ev.status}")
        fe.link(href=f"{public_url}/status/incidents/{inc.id}")
        fe.updated(ev.at)
        fe.published(ev.at)
        fe.content(event_text(ev, locale), type="text")
    fg.updated(entries[-1][1].at if entries else newest)
    return fg.atom_str(pretty=True)  # type: ignore[no-any-return]
