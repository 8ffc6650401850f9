"""The pay rules and their arithmetic, in integer fen, with no database in sight.

Per delivered order: a base, a distance component (merchant → delivery point, beyond the first `free_m`
metres), and a peak bonus when the delivery falls in a peak window (campus local time). Late deliveries
(after the promised time plus a grace) carry a penalty. Per campus day the rider is paid at least the hourly
minimum over the hours on shift that day — MDRP's max(order pay, hourly × hours on shift) — as a top-up line;
tips, penalties and manual adjustments come on top of that comparison.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half away from zero, in integers (no float near money)."""
    q, r = divmod(abs(numerator), denominator)
    q += 2 * r >= denominator
    return q if numerator >= 0 else -q


def parse_window(text: str) -> tuple[int, int]:
    """'11:00-13:00' → (660, 780) minutes after local midnight; the end is exclusive and may be 24:00."""
    m = _WINDOW.match(text.strip())
    if not m:
        raise ValueError(f"peak window {text!r} is not HH:MM-HH:MM")
    start, end = int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])
    if end <= start or end > 24 * 60:
        raise ValueError(f"peak window {text!r} must end after it starts, by 24:00")
    return start, end


@dataclass(frozen=True)
class Rules:
    base_fen: int = 400  # ¥4.00 per delivered order
    per_km_fen: int = 150  # ¥1.50 per km beyond free_m
    free_m: int = 500
    peak_pct: int = 150  # order pay × 1.5 inside a peak window (100 = no bonus)
    peak_windows: tuple[str, ...] = ("11:00-13:00", "17:00-19:00")
    hourly_min_fen: int = 2000  # ¥20 per hour on shift, at least
    late_grace_min: int = 5
    late_penalty_fen: int = 200
    pay_cycle: str = "week"  # which periods are paid out: day or week
    _windows: tuple[tuple[int, int], ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("base_fen", "per_km_fen", "free_m", "hourly_min_fen", "late_grace_min", "late_penalty_fen"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if not 100 <= self.peak_pct <= 500:
            raise ValueError("peak_pct must be 100..500 (100 = no peak bonus)")
        if self.pay_cycle not in ("day", "week"):
            raise ValueError("pay_cycle must be day or week")
        object.__setattr__(self, "_windows", tuple(parse_window(w) for w in self.peak_windows))

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("_windows")
        d["peak_windows"] = list(self.peak_windows)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rules:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__ and not k.startswith("_")}
        if "peak_windows" in known:
            known["peak_windows"] = tuple(known["peak_windows"])
        return cls(**known)

    # --- per order --------------------------------------------------------------------------------------

    def is_peak(self, local_time: dt.datetime) -> bool:
        minute = local_time.hour * 60 + local_time.minute
        return any(a <= minute < b for a, b in self._windows)

    def distance_fen(self, distance_m: int) -> int:
        return half_up(self.per_km_fen * max(0, distance_m - self.free_m), 1000)

    def order_pay(self, distance_m: int, *, peak: bool) -> tuple[int, int, int]:
        """(base, distance, peak bonus) in fen for one delivered order."""
        base, dist = self.base_fen, self.distance_fen(distance_m)
        bonus = half_up((base + dist) * (self.peak_pct - 100), 100) if peak else 0
        return base, dist, bonus

    def late_penalty(self, delivered_at: dt.datetime, promised_at: dt.datetime | None) -> int:
        """The penalty (a negative amount, or 0) for one delivery."""
        if promised_at is None or self.late_penalty_fen == 0:
            return 0
        late = delivered_at - promised_at > dt.timedelta(minutes=self.late_grace_min)
        return -self.late_penalty_fen if late else 0

    # --- per day ----------------------------------------------------------------------------------------

    def guaranteed(self, shift_seconds: int) -> int:
        return half_up(self.hourly_min_fen * shift_seconds, 3600)

    def top_up(self, delivery_fen: int, shift_seconds: int) -> int:
        """What the hourly minimum adds to one day's delivery pay: max(order pay, hourly × hours) − order pay."""
        return max(0, self.guaranteed(shift_seconds) - delivery_fen)


DEFAULT = Rules()


def distance_m(x1: float, y1: float, x2: float, y2: float) -> int:
    """Straight-line campus metres, rounded (the dispatcher's travel model is the same straight line)."""
    return round(math.hypot(x2 - x1, y2 - y1))
