"""The embedded time-series store: key series sampled every few seconds, rolled up and expired.

It lives in its own SQLite file by default (`WAIMAI_METRICS_URL`), so the firewall keeps its
memory when the main database is the thing failing, and needs no Prometheus. Three resolutions:
raw samples (kept 2 days), 1-minute rollups (kept 14 days) and 15-minute rollups (kept 400 days),
each rollup keeping mean, min, max and count.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

RAW, MINUTE, QUARTER = 0, 60, 900
_DDL_LOCK = 0x7761696D6169  # "waimai": serialises the store's CREATE TABLEs across processes
RETENTION = {RAW: dt.timedelta(days=2), MINUTE: dt.timedelta(days=14), QUARTER: dt.timedelta(days=400)}

metadata = MetaData()
series_t = Table("metric_series", metadata, Column("id", Integer, primary_key=True),
                 Column("name", String(120), unique=True, nullable=False))
samples_t = Table("metric_samples", metadata,
                  Column("series_id", Integer, primary_key=True),
                  Column("resolution", Integer, primary_key=True),
                  Column("ts", Integer, primary_key=True),
                  Column("value", Float, nullable=False),
                  Column("vmin", Float, nullable=False),
                  Column("vmax", Float, nullable=False),
                  Column("n", Integer, nullable=False))
# Shared by every process that points at this store (the default on PostgreSQL and on one machine's
# SQLite file): each process's latest instrument readings, summed by the worker leader into the samples
# above, and the anomaly signals the leader's watcher opened — so /ops shows the deployment on any replica.
contributions_t = Table("metric_contributions", metadata,
                        Column("process", String(120), primary_key=True),
                        Column("ts", Float, nullable=False),
                        Column("data", Text, nullable=False))
signals_t = Table("anomaly_signals", metadata,
                  Column("id", Integer, primary_key=True),
                  Column("series", String(120), nullable=False),
                  Column("onset", Float, nullable=False, index=True),
                  Column("score", Float, nullable=False),
                  Column("value", Float, nullable=False),
                  Column("expected_low", Float, nullable=False),
                  Column("expected_high", Float, nullable=False),
                  Column("closed_at", Float))
CONTRIBUTION_TTL_S = 3600  # a process that has not contributed for an hour is gone
SIGNALS_KEPT_S = 30 * 86400


@dataclass(frozen=True)
class Point:
    ts: float
    value: float


class MetricSource(Protocol):
    """Where detection, alerting and charts read series from: this store, or a Prometheus server."""

    def query_range(self, name: str, start: dt.datetime, end: dt.datetime, step_s: int) -> list[Point]: ...


def _epoch(t: dt.datetime | float) -> int:
    return int(t.timestamp()) if isinstance(t, dt.datetime) else int(t)


class MetricStore:
    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.engine: Engine = create_engine(url, connect_args={"check_same_thread": False}
                                            if url.startswith("sqlite") else {})
        if url.startswith("sqlite"):
            @event.listens_for(self.engine, "connect")
            def _pragmas(conn, _rec):  # type: ignore[no-untyped-def]
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA busy_timeout=10000")
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":  # replicas starting together: one creates the tables
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _DDL_LOCK})
            metadata.create_all(conn)
        self._ids: dict[str, int] = {}
        self._lock = threading.Lock()
        ins = sqlite_insert if self.engine.dialect.name == "sqlite" else pg_insert
        stmt = ins(samples_t)
        self._upsert = stmt.on_conflict_do_update(
            index_elements=["series_id", "resolution", "ts"],
            set_={"value": stmt.excluded.value, "vmin": stmt.excluded.vmin, "vmax": stmt.excluded.vmax,
                  "n": stmt.excluded.n})

    def _series_id(self, conn, name: str) -> int:  # type: ignore[no-untyped-def]
        sid = self._ids.get(name)
        if sid is None:
            sid = conn.execute(select(series_t.c.id).where(series_t.c.name == name)).scalar()
            if sid is None:
                sid = conn.execute(series_t.insert().values(name=name)).inserted_primary_key[0]
            self._ids[name] = int(sid)
        return int(sid)

    def write(self, ts: dt.datetime | float, values: Mapping[str, float]) -> int:
        """Store one raw sample per series at `ts`; NaN and infinities are skipped (no data)."""
        t = _epoch(ts)
        with self._lock, self.engine.begin() as conn:
            rows = [{"series_id": self._series_id(conn, k), "resolution": RAW, "ts": t, "value": float(v),
                     "vmin": float(v), "vmax": float(v), "n": 1}
                    for k, v in values.items() if v is not None and math.isfinite(v)]
            if rows:
                conn.execute(self._upsert, rows)
        return len(rows)

    def names(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(series_t.c.name).order_by(series_t.c.name)).scalars())

    def query(self, name: str, start: dt.datetime | float, end: dt.datetime | float, step_s: int | None = None,
              *, agg: str = "mean") -> list[Point]:
        """Points in [start, end], bucketed to `step_s` (default: the stored resolution that fits)."""
        s, e = _epoch(start), _epoch(end)
        span = max(1, e - s)
        res = RAW if span <= 6 * 3600 else MINUTE if span <= 7 * 86400 else QUARTER
        if step_s is not None and step_s >= QUARTER:
            res = QUARTER
        elif step_s is not None and step_s >= MINUTE and res == RAW:
            res = MINUTE
        with self.engine.connect() as conn:
            sid = conn.execute(select(series_t.c.id).where(series_t.c.name == name)).scalar()
            if sid is None:
                return []
            col = {"mean": samples_t.c.value, "min": samples_t.c.vmin, "max": samples_t.c.vmax}[agg]
            rows = conn.execute(select(samples_t.c.ts, col).where(
                samples_t.c.series_id == sid, samples_t.c.resolution == res,
                samples_t.c.ts >= s, samples_t.c.ts <= e).order_by(samples_t.c.ts)).all()
            if not rows and res != RAW:  # young store: rollups not there yet, fall back to raw
                rows = conn.execute(select(samples_t.c.ts, samples_t.c.value).where(
                    samples_t.c.series_id == sid, samples_t.c.resolution == RAW,
                    samples_t.c.ts >= s, samples_t.c.ts <= e).order_by(samples_t.c.ts)).all()
        if not step_s or step_s <= (res or 1):
            return [Point(float(t), float(v)) for t, v in rows]
        buckets: dict[int, list[float]] = {}
        for t, v in rows:
            buckets.setdefault(int(t) // step_s * step_s, []).append(float(v))
        return [Point(float(b), _agg(vs, agg)) for b, vs in sorted(buckets.items())]

    def query_range(self, name: str, start: dt.datetime, end: dt.datetime, step_s: int) -> list[Point]:
        return self.query(name, start, end, step_s)

    def latest(self, name: str) -> Point | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(samples_t.c.ts, samples_t.c.value)
                               .join(series_t, series_t.c.id == samples_t.c.series_id)
                               .where(series_t.c.name == name, samples_t.c.resolution == RAW)
                               .order_by(samples_t.c.ts.desc()).limit(1)).first()
        return Point(float(row[0]), float(row[1])) if row else None

    def rollup(self, now: dt.datetime | float | None = None) -> None:
        """Fold complete minutes of raw samples into 1-minute rows, minutes into quarters; expire."""
        n = _epoch(now if now is not None else dt.datetime.now(dt.UTC))
        with self._lock, self.engine.begin() as conn:
            for src, dst in ((RAW, MINUTE), (MINUTE, QUARTER)):
                last = conn.execute(select(func.max(samples_t.c.ts)).where(samples_t.c.resolution == dst)).scalar()
                lo = (int(last) + dst) if last is not None else 0
                hi = n // dst * dst  # only complete buckets
                bucket = (samples_t.c.ts // dst) * dst
                rows = conn.execute(select(
                    samples_t.c.series_id, bucket.label("b"),
                    (func.sum(samples_t.c.value * samples_t.c.n) / func.sum(samples_t.c.n)).label("v"),
                    func.min(samples_t.c.vmin), func.max(samples_t.c.vmax), func.sum(samples_t.c.n),
                ).where(samples_t.c.resolution == src, samples_t.c.ts >= lo, samples_t.c.ts < hi)
                    .group_by(samples_t.c.series_id, bucket.label("b"))).all()
                if rows:
                    conn.execute(self._upsert, [
                        {"series_id": r[0], "resolution": dst, "ts": int(r[1]), "value": float(r[2]),
                         "vmin": float(r[3]), "vmax": float(r[4]), "n": int(r[5])} for r in rows])
            for res, keep in RETENTION.items():
                conn.execute(delete(samples_t).where(samples_t.c.resolution == res,
                                                     samples_t.c.ts < n - int(keep.total_seconds())))
            conn.execute(delete(contributions_t).where(contributions_t.c.ts < n - CONTRIBUTION_TTL_S))
            conn.execute(delete(signals_t).where(signals_t.c.onset < n - SIGNALS_KEPT_S))

    # --- per-process contributions and anomaly signals (see the tables above) ---------------------------
    def contribute(self, process: str, ts: float, data: str) -> None:
        """This process's latest instrument readings (one row per process, overwritten)."""
        ins = sqlite_insert if self.engine.dialect.name == "sqlite" else pg_insert
        stmt = ins(contributions_t).values(process=process[:120], ts=ts, data=data)
        with self.engine.begin() as conn:
            conn.execute(stmt.on_conflict_do_update(index_elements=["process"],
                                                    set_={"ts": stmt.excluded.ts, "data": stmt.excluded.data}))

    def contributions(self, since: float) -> list[tuple[str, float, str]]:
        with self.engine.connect() as conn:
            return [(str(p), float(t), str(d)) for p, t, d in conn.execute(
                select(contributions_t.c.process, contributions_t.c.ts, contributions_t.c.data)
                .where(contributions_t.c.ts >= since).order_by(contributions_t.c.process))]

    def save_signal(self, row: Mapping[str, float | str | None], sid: int | None = None) -> int:
        """Insert a signal (sid None) or update it; returns its id."""
        with self.engine.begin() as conn:
            if sid is None:
                key = conn.execute(signals_t.insert().values(**row)).inserted_primary_key
                assert key is not None
                return int(key[0])
            conn.execute(signals_t.update().where(signals_t.c.id == sid).values(**row))
            return sid

    def signals(self, *, limit: int = 500, active: bool = False) -> list[dict[str, float | str | None]]:
        """Signals newest first, as stored (epoch seconds)."""
        q = select(signals_t).order_by(signals_t.c.onset.desc(), signals_t.c.id.desc()).limit(limit)
        if active:
            q = q.where(signals_t.c.closed_at.is_(None))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def count(self, resolution: int | None = None) -> int:
        with self.engine.connect() as conn:
            q = select(func.count()).select_from(samples_t)
            if resolution is not None:
                q = q.where(samples_t.c.resolution == resolution)
            return int(conn.execute(q).scalar() or 0)

    def footprint_bytes(self) -> int | None:
        if not self.url.startswith("sqlite:///"):
            return None
        p = Path(self.url.removeprefix("sqlite:///"))
        return sum(f.stat().st_size for f in (p, p.with_name(p.name + "-wal")) if f.exists())

    def dispose(self) -> None:
        self.engine.dispose()


def _agg(values: Iterable[float], agg: str) -> float:
    vs = list(values)
    if agg == "min":
        return min(vs)
    if agg == "max":
        return max(vs)
    return sum(vs) / len(vs)



class PrometheusMetricSource:
    """Read the key series from a Prometheus server's HTTP API instead of the embedded store.

    `queries` maps our series names to PromQL (e.g. "payment_success_ratio" →
    "waimai:payment_success:ratio_rate5m", the recording rule in deploy/prometheus).
    """

    def __init__(self, base_url: str, queries: Mapping[str, str], *, timeout_s: float = 5.0) -> None:
        import httpx

        self.queries = dict(queries)
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s)

    def query_range(self, name: str, start: dt.datetime, end: dt.datetime, step_s: int) -> list[Point]:
        promql = self.queries.get(name)
        if promql is None:
            return []
        r = self._client.get("/api/v1/query_range", params={
            "query": promql, "start": start.timestamp(), "end": end.timestamp(), "step": max(1, step_s)})
        r.raise_for_status()
        result = r.json()["data"]["result"]
        if not result:
            return []
        return [Point(float(t), float(v)) for t, v in result[0]["values"] if v not in ("NaN", "+Inf", "-Inf")]

    def close(self) -> None:
        self._client.close()
