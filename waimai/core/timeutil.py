"""UTC in storage, campus local time (Asia/Shanghai by default) on screens."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

LOCAL = ZoneInfo("Asia/Shanghai")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(t: dt.datetime) -> dt.datetime:
    """A time from outside (a query string, an ISO text without offset): naive means UTC."""
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def parse_iso(text: str) -> dt.datetime:
    """ISO 8601 as people and tools write it ('Z' included) → an aware time; ValueError if it is not one."""
    return as_utc(dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")))


def local(t: dt.datetime | None, tz: ZoneInfo = LOCAL) -> dt.datetime | None:
    return None if t is None else t.astimezone(tz)


def hhmm(t: dt.datetime | None, tz: ZoneInfo = LOCAL) -> str:
    """'12:40' for people; never an ISO string on a page."""
    return "" if t is None else t.astimezone(tz).strftime("%H:%M")


def yuan(fen: int) -> str:
    """¥12.50 from integer fen, without ever going through float."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}¥{fen // 100}.{fen % 100:02d}"


def is_open_at(opens_at: str, closes_at: str, when: dt.datetime, tz: ZoneInfo = LOCAL) -> bool:
    t = when.astimezone(tz).strftime("%H:%M")
    if opens_at <= closes_at:
        return opens_at <= t < closes_at
    return t >= opens_at or t < closes_at
