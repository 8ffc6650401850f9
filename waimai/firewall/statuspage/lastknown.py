"""Last-known state: what the status page, its API, the banners and the inbox show while the database is gone.

Every successful read of those pages leaves a copy in this process's memory; while the database watch
says the database is unreachable (or a read fails on a connection error) the copy is served instead,
marked as such (`stale`, `as_of`), with the outage itself laid over it: 下单 and the merchant console
are shown as a partial outage (orders are still taken, into the spool, and confirmed later), with an
incident entry that says so. The real incident is opened in the database by the alert rules as soon
as it answers again (`DatabaseUnreachable`, from the probe series kept in the separate metrics store),
so nothing here writes to the database.
"""

from __future__ import annotations

import contextvars
import copy
import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from waimai.core.database import Database, is_connection_error

T = TypeVar("T")
_WORKERS = 4
_READS = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="status-read")
OUTAGE_COMPONENTS = ("ordering", "merchant_console")
OUTAGE_STATUS = "partial_outage"
TEXT = {
    "title": {"zh": "数据库故障：订单暂存待确认", "en": "Database outage: orders are received and confirmed later"},
    "body": {"zh": "我们的数据库暂时不可用。货到付款订单仍可提交，显示为“待确认”，数据库恢复后逐一确认或致歉退回；"
                   "在线支付暂停。本页为最近一次已知状态。",
             "en": "Our database is unavailable. Cash-on-delivery orders are still taken and shown as "
                   "\"received, confirming\"; each is confirmed, or refused with an apology, once it is back. Online "
                   "payment is paused. This page shows the last known state."},
    "workaround": {"zh": "可选择货到付款下单，订单将在恢复后确认。",
                   "en": "Order with cash on delivery; it is confirmed when service is back."},
}


def _lang(locale: str) -> str:
    return "zh" if locale.startswith("zh") else "en"


class LastKnown:
    """Per-process copies of the status summary (per language), the banner snapshot and each user's inbox."""

    def __init__(self, database: Database, max_inboxes: int = 20_000) -> None:
        self.database = database
        self._lock = threading.Lock()
        self.summaries: dict[str, tuple[dt.datetime, dict[str, Any]]] = {}
        self.pages: dict[str, tuple[dt.datetime, bytes]] = {}
        self.inboxes: OrderedDict[int, tuple[dt.datetime, list[Any]]] = OrderedDict()
        self.max_inboxes = max_inboxes

    def within(self, fn: Callable[[], T], timeout_s: float = 1.5) -> T:
        """Run a read with a deadline: a database that hangs (before the watch has called it an outage)
        must not hold the status page. Raises `TimeoutError` when the read did not answer in time; the
        read itself finishes (or fails) on its worker thread later, and while reads are stuck no new ones
        are started."""
        if _READS._work_queue.qsize() >= _WORKERS:  # noqa: SLF001 - reads queued behind stuck ones
            raise TimeoutError("database reads are stuck")
        fut = _READS.submit(contextvars.copy_context().run, fn)  # the request's locale goes along
        try:
            return fut.result(timeout=timeout_s)
        except FutureTimeout:
            raise TimeoutError("database read took too long") from None

    @property
    def outage(self) -> bool:
        return not self.database.reachable

    def outage_since(self) -> dt.datetime | None:
        since = self.database.unreachable_since
        return dt.datetime.fromtimestamp(since, dt.UTC) if since is not None else None

    # --- the status summary (API) ----------------------------------------------------------------------

    def remember_summary(self, locale: str, value: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.summaries[locale] = (dt.datetime.now(dt.UTC), value)
        return value

    def summary(self, locale: str, *, public_url: str, names: dict[str, str]) -> dict[str, Any]:
        """The last summary read, with the outage laid over it (or a bare one if there is none yet)."""
        with self._lock:
            at, value = self.summaries.get(locale) or self.summaries.get("en") or (None, None)  # type: ignore[assignment]
        out: dict[str, Any] = copy.deepcopy(value) if value is not None else {
            "page": {"name": "Waimai", "url": public_url + "/status", "time_zone": "Asia/Shanghai", "updated_at": None},
            "status": {}, "components": [{"id": c, "name": n, "status": "operational", "updated_at": None}
                                         for c, n in names.items()],
            "incidents": [], "scheduled_maintenances": []}
        since = self.outage_since() or dt.datetime.now(dt.UTC)
        for c in out["components"]:
            if c["id"] in OUTAGE_COMPONENTS and c["status"] in ("operational", "degraded_performance"):
                c["status"], c["updated_at"] = OUTAGE_STATUS, since
        lang = _lang(locale)
        out["status"] = {"indicator": "major", "description": "Partial System Outage"}
        out["incidents"] = [{"id": None, "name": TEXT["title"][lang], "status": "investigating", "impact": "major",
                             "created_at": since, "updated_at": since, "eta": None, "progress": 25,
                             "components": list(OUTAGE_COMPONENTS), "shortlink": public_url + "/status",
                             "incident_updates": [{"id": None, "status": "investigating", "body": TEXT["body"][lang],
                                                   "created_at": since}]}, *out["incidents"]]
        out["stale"] = True
        out["as_of"] = at
        out["database"] = "unreachable"
        return out

    # --- the rendered status page ------------------------------------------------------------------------

    def remember_page(self, locale: str, body: bytes) -> None:
        with self._lock:
            self.pages[locale] = (dt.datetime.now(dt.UTC), body)

    def page(self, locale: str) -> tuple[dt.datetime, bytes] | None:
        with self._lock:
            return self.pages.get(locale)

    # --- the banner snapshot -----------------------------------------------------------------------------

    def overlay_snapshot(self, snap: Any) -> Any:
        """The banners' snapshot with the outage laid over it (a copy; the cache keeps the real one)."""
        from waimai.firewall.statuspage.service import Snapshot

        comps = dict(snap.components) if snap is not None else {}
        for c in OUTAGE_COMPONENTS:
            if c in comps or snap is None:
                comps[c] = OUTAGE_STATUS
        inc = {"id": None, "title": TEXT["title"]["zh"], "status": "investigating", "components": list(OUTAGE_COMPONENTS),
               "eta": None, "workaround": TEXT["workaround"], "impact": "P2"}
        return Snapshot(components=comps, incidents=[inc, *(snap.incidents if snap is not None else [])])

    # --- inboxes -----------------------------------------------------------------------------------------

    def remember_inbox(self, user_id: int, notices: list[Any]) -> list[Any]:
        with self._lock:
            self.inboxes[user_id] = (dt.datetime.now(dt.UTC), list(notices))
            self.inboxes.move_to_end(user_id)
            while len(self.inboxes) > self.max_inboxes:
                self.inboxes.popitem(last=False)
        return notices

    def inbox(self, user_id: int) -> tuple[dt.datetime | None, list[Any]]:
        with self._lock:
            at, items = self.inboxes.get(user_id, (None, []))
        return at, list(items)


def unreachable(database: Database, exc: BaseException | None = None) -> bool:
    """Serve the last-known copy: the watch knows the database is gone, or this read just failed to reach it
    (or did not answer within its deadline)."""
    return not database.reachable or isinstance(exc, TimeoutError) or (exc is not None and is_connection_error(exc))
