"""The shift log pay's hourly minimum is computed from.

The riders table holds only the current shift (`shift_started_at`, `shift_ends_at`, `on_shift`), and the
delivery service overwrites it. Every change goes out as a `rider.shift` event (written with the change), and
`log_shift` — a subscriber in waimai/subscribers.py — keeps each shift as a row of `rider_shifts`: a new start
opens a row (and ends an earlier one still running), a new end or going off shift closes it. Delivery code does
not know pay exists. A rider whose current shift is not in the log yet (the seeded demo rider, or a change the
dispatcher has not delivered) is covered by `intervals`, which also reads the riders table.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from waimai.core.events import Event
from waimai.platform.delivery.models import Rider
from waimai.platform.payroll.models import RiderShift


def _effective_end(r: Rider, now: dt.datetime) -> dt.datetime | None:
    if r.on_shift:
        return r.shift_ends_at
    return min(r.shift_ends_at, now) if r.shift_ends_at is not None else now


def _when(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def log_shift(db: Session, ev: Event) -> None:
    """Subscriber of `rider.shift`: the shift as the change left it, in the log (idempotent: the row is keyed by
    rider and start)."""
    started, ends = _when(ev.payload.get("started_at")), _when(ev.payload.get("ends_at"))
    if started is None:
        return  # off shift without ever having been on: nothing to log
    rider_id = int(ev.payload["rider_id"])
    row = db.scalar(select(RiderShift).where(RiderShift.rider_id == rider_id, RiderShift.started_at == started))
    if row is None:
        for prev in db.scalars(select(RiderShift).where(  # a new shift ends any earlier one still running
                RiderShift.rider_id == rider_id, RiderShift.started_at < started,
                or_(RiderShift.ends_at.is_(None), RiderShift.ends_at > started))):
            prev.ends_at = started
        row = RiderShift(rider_id=rider_id, started_at=started)
        db.add(row)
    row.ends_at = ends


def intervals(db: Session, rider_ids: list[int], start: dt.datetime, end: dt.datetime,
              now: dt.datetime) -> dict[int, list[tuple[dt.datetime, dt.datetime]]]:
    """Each rider's time on shift inside [start, end), never past `now`, overlapping shifts merged. A shift
    still open counts in whole minutes, so computing twice within a minute gives the same pay."""
    now = now.replace(second=0, microsecond=0)
    out: dict[int, list[tuple[dt.datetime, dt.datetime]]] = {r: [] for r in rider_ids}
    if not rider_ids:
        return out
    stop = min(end, now)
    raw: dict[int, list[tuple[dt.datetime, dt.datetime]]] = {r: [] for r in rider_ids}
    seen: set[tuple[int, dt.datetime]] = set()
    for s in db.scalars(select(RiderShift).where(RiderShift.rider_id.in_(rider_ids), RiderShift.started_at < stop,
                                                 or_(RiderShift.ends_at.is_(None), RiderShift.ends_at > start))):
        raw[s.rider_id].append((s.started_at, s.ends_at or stop))
        seen.add((s.rider_id, s.started_at))
    for r in db.scalars(select(Rider).where(Rider.id.in_(rider_ids), Rider.shift_started_at.is_not(None))):
        assert r.shift_started_at is not None
        if (r.id, r.shift_started_at) not in seen:
            raw[r.id].append((r.shift_started_at, _effective_end(r, now) or stop))
    for rid, spans in raw.items():
        clipped = sorted((max(a, start), min(b, stop)) for a, b in spans)
        merged: list[tuple[dt.datetime, dt.datetime]] = []
        for a, b in clipped:
            if b <= a:
                continue
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        out[rid] = merged
    return out


def seconds_in(spans: list[tuple[dt.datetime, dt.datetime]], start: dt.datetime, end: dt.datetime) -> int:
    """Whole seconds of `spans` inside [start, end)."""
    total = 0.0
    for a, b in spans:
        lo, hi = max(a, start), min(b, end)
        if hi > lo:
            total += (hi - lo).total_seconds()
    return int(total)
