"""Cron schedules, evaluated in campus time (Asia/Shanghai), so `0 4 * * *` is four in the morning on campus.

Parsing and iteration are croniter's: five fields with names (`MON-FRI`, `JAN`), steps, ranges,
`L` (last day of the month), `#` (the n-th weekday) and the aliases `@hourly` … `@yearly`.
Waimai adds only the campus time zone and its own error message.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from croniter import croniter

from waimai.core.timeutil import LOCAL

FIELDS = "minute hour day-of-month month day-of-week"


@dataclass(frozen=True)
class Cron:
    text: str

    @classmethod
    def parse(cls, text: str) -> Cron:
        expr = text.strip()
        # croniter also takes a sixth (seconds) field; a backup schedule has five, or an alias
        if not (expr.startswith("@") or len(expr.split()) == 5) or not croniter.is_valid(expr):
            raise ValueError(f"cron schedule {text!r} is not valid: five fields ({FIELDS}) or an alias "
                             f"such as @hourly, @daily, @weekly")
        return cls(expr)

    def next_after(self, after: dt.datetime, tz: ZoneInfo = LOCAL) -> dt.datetime:
        """The first scheduled minute strictly after `after` (returned in UTC)."""
        nxt: dt.datetime = croniter(self.text, after.astimezone(tz)).get_next(dt.datetime)
        return nxt.astimezone(dt.UTC)
