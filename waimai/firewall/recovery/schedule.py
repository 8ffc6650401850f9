"""Cron-style schedules (`minute hour day-of-month month day-of-week`, or @hourly/@daily/@weekly),
evaluated in campus time (Asia/Shanghai), so `0 4 * * *` is four in the morning on campus."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from waimai.core.timeutil import LOCAL

ALIASES = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0"}
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_NAMES = ("minute", "hour", "day of month", "month", "day of week")


def _field(text: str, lo: int, hi: int, what: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        rng, _, step_s = part.partition("/")
        try:
            step = int(step_s) if step_s else 1
            if rng == "*":
                a, b = lo, hi
            elif "-" in rng:
                a, b = (int(x) for x in rng.split("-", 1))
            else:
                a = int(rng)
                b = hi if step_s else a
        except ValueError:
            raise ValueError(f"cron {what}: {part!r} is not a number, range or step") from None
        if step < 1 or not (lo <= a <= hi and lo <= b <= hi) or a > b:
            raise ValueError(f"cron {what}: {part!r} is outside {lo}-{hi}")
        out.update(range(a, b + 1, step))
    return frozenset(out)


@dataclass(frozen=True)
class Cron:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        expr = ALIASES.get(text.strip(), text.strip())
        parts = expr.split()
        if len(parts) != 5:
            raise ValueError(f"cron schedule {text!r} needs five fields: minute hour day-of-month month day-of-week")
        f = [_field(p, lo, hi, name) for p, (lo, hi), name in zip(parts, _BOUNDS, _NAMES, strict=True)]
        weekdays = frozenset(d % 7 for d in f[4])
        return cls(text, f[0], f[1], f[2], f[3], weekdays, parts[2] == "*", parts[4] == "*")

    def _day_ok(self, t: dt.datetime) -> bool:
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:  # cron: both restricted means either one will do
            return dom and dow
        return dom or dow

    def next_after(self, after: dt.datetime, tz: ZoneInfo = LOCAL) -> dt.datetime:
        """The first scheduled minute strictly after `after` (returned in UTC)."""
        t = after.astimezone(tz).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        for _ in range(5 * 366 * 24 + 60):  # hours searched at most (minutes are found within an hour)
            if t.month not in self.months or not self._day_ok(t):
                t = (t + dt.timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if t.hour not in self.hours:
                t = (t + dt.timedelta(hours=1)).replace(minute=0)
                continue
            later = [m for m in sorted(self.minutes) if m >= t.minute]
            if later:
                return t.replace(minute=later[0]).astimezone(dt.UTC)
            t = (t + dt.timedelta(hours=1)).replace(minute=0)
        raise ValueError(f"cron schedule {self.text!r} never fires")
