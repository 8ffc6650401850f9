"""The shift log pay's hourly minimum is computed from.

The riders table holds only the current shift (`shift_started_at`, `shift_ends_at`, `on_shift`), and the
delivery service overwrites it. A `before_flush` listener on every ORM session writes each shift into
`rider_shifts` in the same transaction as the change, whoever makes it (the rider's page and API, ops, the
seed, tests): a new `shift_started_at` opens a row, a new end or going off shift closes it. Delivery code
does not know pay exists. A rider whose current shift predates the log (the seeded demo rider) is covered
by `intervals`, which also reads the riders table.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import event, inspect, or_, select
from sqlalchemy.orm import Session

from waimai.core.database import utcnow
from waimai.platform.delivery.models import Rider
from waimai.platform.payroll.models import RiderShift

_SHIFT_ATTRS = ("on_shift", "shift_started_at", "shift_ends_at")


def _effective_end(r: Rider, now: dt.datetime) -> dt.datetime | None:
    if r.on_shift:
        return r.shift_ends_at
    return min(r.shift_ends_at, now) if r.shift_ends_at is not None else now


def _log_shifts(session: Session, _ctx: Any, _instances: Any) -> None:
    riders = [o for o in (*session.new, *session.dirty) if isinstance(o, Rider)]
    if not riders:
        return
    now = utcnow()
    with session.no_autoflush:
        for r in riders:
            state = inspect(r)
            if r.shift_started_at is None or not (state.pending or any(
                    state.attrs[a].history.has_changes() for a in _SHIFT_ATTRS)):
                continue
            if state.pending and not r.on_shift:
                continue  # a new rider who is not on shift has no shift to log
            row = None
            if not state.pending:
                row = session.scalar(select(RiderShift).where(RiderShift.rider_id == r.id,
                                                              RiderShift.started_at == r.shift_started_at))
            if row is None:
                if not state.pending:  # a new shift ends any earlier one still running
                    for prev in session.scalars(select(RiderShift).where(
                            RiderShift.rider_id == r.id, RiderShift.started_at < r.shift_started_at,
                            or_(RiderShift.ends_at.is_(None), RiderShift.ends_at > r.shift_started_at))):
                        prev.ends_at = r.shift_started_at
                row = RiderShift(rider=r, started_at=r.shift_started_at)
                session.add(row)
            row.ends_at = _effective_end(r, now)


def install() -> None:
    """Idempotent: the listener is process-wide (every Session), registered once."""
    if not event.contains(Session, "before_flush", _log_shifts):
        event.listen(Session, "before_flush", _log_shifts)


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
