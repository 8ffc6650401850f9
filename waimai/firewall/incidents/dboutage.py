"""The incident for a database outage, written when the database is back.

While the database is unreachable nothing can be written to it: each replica's database watch notes the
outage in memory (the status page, banners and notices show it from there, see statuspage/lastknown.py).
When the watch sees the database again it writes what was queued: one incident on 下单 and the merchant
console, with the real onset and detection times, and its first update (the database is back, the orders
taken meanwhile are being confirmed). Several replicas see the same outage: a transaction-scoped advisory
lock (PostgreSQL) and the fault key make the first one open the incident and the others add a line to it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import structlog
from sqlalchemy import select, text

from waimai.core import uow
from waimai.core.database import Database
from waimai.core.messages import msg
from waimai.firewall.incidents import service as incidents
from waimai.firewall.incidents.models import Incident

log = structlog.get_logger(__name__)
FAULT_KEY = "database-unreachable"
ACTOR = "system:db_watch"
COMPONENTS = ["ordering", "merchant_console"]
TITLE = "数据库不可用 / Database unavailable"
OPENED = {"zh": "数据库暂时不可用。货到付款订单仍可提交并显示为“待确认”，恢复后逐一确认；在线支付暂停。",
          "en": "Our database is unavailable. Cash-on-delivery orders are still taken and shown as \"received, "
                "confirming\"; each is confirmed when it is back. Online payment is paused."}
BACK = {"zh": "数据库已恢复（中断 {down} 秒）。故障期间收到的订单正在逐一确认，结果会通知到每位顾客。",
        "en": "The database is back (down {down} s). Orders received meanwhile are being confirmed; every customer "
              "is told the outcome."}


def record_outage(database: Database, sop: Any, *, onset: float, detected: float, back: float,
                  replica: str = "") -> int | None:
    """Open (or join) the outage's incident and post that the database is back. Returns its id."""
    onset_at, detected_at, back_at = (dt.datetime.fromtimestamp(t, dt.UTC) for t in (onset, detected, back))
    down = round(back - onset)
    with uow.unit_of_work(database) as s:
        if database.dialect == "postgresql":
            key = int.from_bytes(hashlib.sha256(FAULT_KEY.encode()).digest()[:8], "big", signed=True)
            s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        inc = s.scalar(select(Incident).where(Incident.fault_key == FAULT_KEY,
                                              Incident.onset_at >= onset_at - dt.timedelta(seconds=120))
                       .order_by(Incident.id.desc()).limit(1))
        if inc is None:
            inc = incidents.open_incident(s, sop, title=TITLE, severity="P2", components=COMPONENTS, actor=ACTOR,
                                          source="database", fault_key=FAULT_KEY, onset_at=onset_at,
                                          now=detected_at, text=OPENED,
                                          summary="The database could not be reached; orders were spooled.")
            incidents.post_update(s, sop, inc, actor=ACTOR, status="monitoring", now=max(back_at, detected_at),
                                  text={k: v.format(down=down) for k, v in BACK.items()})
        else:
            incidents.record(s, inc, "note", msg("replica %(replica)s saw the database back after %(s)s s",
                                                 replica=replica, s=down),
                             actor=ACTOR, at=back_at)
        log.warning("database_outage_recorded", incident_id=inc.id, down_s=down)
        return inc.id


def install(app: Any, sop: Any) -> None:
    """Hook the outage into the database watch of this process (resilience/setup.py builds it)."""
    import socket
    import time

    watch = getattr(app.state, "db_latency", None)
    if watch is None:
        return
    seen: dict[str, float] = {}

    def on_outage(since: float) -> None:
        seen["onset"], seen["detected"] = since, time.time()

    def on_return(since: float) -> None:
        record_outage(app.state.db, sop, onset=seen.get("onset", since), detected=seen.get("detected", since),
                      back=time.time(), replica=f"{socket.gethostname()}:{app.state.settings.port}")
        cache = getattr(app.state, "status_cache", None)
        if cache is not None:
            cache.invalidate()

    watch.on_outage.append(on_outage)
    watch.on_return.append(on_return)


__all__ = ["install", "record_outage"]
