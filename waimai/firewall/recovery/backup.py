"""Backups of the whole database: made on demand or on a cron schedule, kept in every configured target,
verified by restoring them into a scratch database, and pruned by a retention policy.

    cfg = BackupConfig.from_settings(settings)
    m = create_backup(cfg, settings.database_url)          # status "complete" once in ALL targets
    m = verify_backup(cfg, settings.database_url, m.id)    # integrity, schema version, row counts, newest order
    prune(cfg)                                             # 24 hourly, 14 daily, 8 weekly by default

Rollback lives in `restore.py`. Nothing here writes to the database being backed up.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog

from waimai.core.timeutil import LOCAL, utcnow
from waimai.firewall.recovery import artefact
from waimai.firewall.recovery.catalog import (
    Catalog,
    Check,
    Manifest,
    TargetState,
    Verification,
    file_lock,
)
from waimai.firewall.recovery.engines import Stats, compare, engine_for, scratch_dir
from waimai.firewall.recovery.errors import (
    BackupBusy,
    BackupError,
    ChecksumMismatch,
    KeyMissing,
    TargetError,
    driver_errors,
)
from waimai.firewall.recovery.schedule import Cron
from waimai.firewall.recovery.targets import LocalTarget, S3Config, S3Target, Target

log = structlog.get_logger(__name__)


class Reporter(Protocol):
    """Progress for people: `stage(name, total)` opens a step and returns a callback taking `done`."""

    def stage(self, name: str, total: int | None = None) -> Callable[[int], None]: ...


class _Silent:
    def stage(self, name: str, total: int | None = None) -> Callable[[int], None]:
        return lambda _n: None


SILENT: Reporter = _Silent()


@dataclass(frozen=True)
class Retention:
    hourly: int = 24
    daily: int = 14
    weekly: int = 8


@dataclass
class BackupConfig:
    directory: Path
    mirror: Path | None = None
    s3: S3Config | None = None
    compression: str = "zstd"
    key: bytes | None = field(default=None, repr=False)
    retention: Retention = field(default_factory=Retention)
    schedule: str = "0 * * * *"
    verify_after: bool = True
    pg_bindir: str | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> BackupConfig:
        s3 = None
        if settings.backup_s3_bucket:
            secret = settings.backup_s3_secret_access_key
            s3 = S3Config(bucket=settings.backup_s3_bucket, endpoint_url=settings.backup_s3_endpoint,
                          region=settings.backup_s3_region, prefix=settings.backup_s3_prefix,
                          access_key_id=settings.backup_s3_access_key_id,
                          secret_access_key=secret.get_secret_value() if secret else None,
                          addressing_style=settings.backup_s3_addressing_style)
        key = settings.backup_encryption_key
        return cls(directory=Path(settings.backup_dir),
                   mirror=Path(settings.backup_mirror_dir) if settings.backup_mirror_dir else None,
                   s3=s3, compression=settings.backup_compression,
                   key=artefact.parse_key(key.get_secret_value()) if key else None,
                   retention=Retention(settings.backup_keep_hourly, settings.backup_keep_daily,
                                       settings.backup_keep_weekly),
                   schedule=settings.backup_schedule, verify_after=settings.backup_verify,
                   pg_bindir=settings.backup_pg_bindir)

    def targets(self) -> list[Target]:
        out: list[Target] = [LocalTarget("local", self.directory)]
        if self.mirror is not None:
            out.append(LocalTarget("mirror", self.mirror))
        if self.s3 is not None:
            out.append(S3Target("s3", self.s3))
        return out

    def catalog(self) -> Catalog:
        return Catalog(self.directory, self.targets())


@contextlib.contextmanager
def exclusive(cfg: BackupConfig) -> Iterator[None]:
    """One backup, verification, prune or restore at a time (across processes)."""
    with file_lock(cfg.directory / ".busy.lock", blocking=False) as got:
        if not got:
            raise BackupBusy("Another backup, verification, prune or restore is running; try again when it ends.")
        yield


@contextlib.contextmanager
def _workdir(cfg: BackupConfig, size: int | None = None) -> Iterator[Path]:
    """A private scratch directory, removed afterwards; on the RAM disk for a small enough `size`."""
    base = cfg.directory / ".work"
    base.mkdir(parents=True, exist_ok=True)
    with scratch_dir(base, size) as work:
        yield work


def new_id(now: dt.datetime) -> str:
    return f"{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def check_key(cfg: BackupConfig, m: Manifest) -> bytes | None:
    if not m.encrypted:
        return None
    if cfg.key is None:
        raise KeyMissing(f"Backup {m.id} is encrypted (key {m.key_id}); set WAIMAI_BACKUP_ENCRYPTION_KEY to "
                         "that key to verify or restore it.")
    if m.key_id and artefact.key_id(cfg.key) != m.key_id:
        raise KeyMissing(f"Backup {m.id} was encrypted with key {m.key_id}, but the configured key is "
                         f"{artefact.key_id(cfg.key)}; set WAIMAI_BACKUP_ENCRYPTION_KEY to the key it was made with.")
    return cfg.key


# ------------------------------------------------------------------------------------------------ create
def create_backup(cfg: BackupConfig, database_url: str, *, kind: str = "manual",
                  reporter: Reporter = SILENT, note: str = "") -> Manifest:
    """Back up the whole database to every target; `status` is "complete" only if all of them hold it."""
    with exclusive(cfg):
        return make_backup(cfg, database_url, kind=kind, reporter=reporter, note=note)


# Drills make the backup disk look fuller than it is (WAIMAI_CHAOS only): directory -> bytes to pretend used.
CHAOS_FILL: dict[str, int] = {}
SPACE_MARGIN = 64 * 1024 * 1024  # never fill the disk to the last byte: the database and the logs live there too


def disk_free(path: Path) -> int:
    probe = path if path.exists() else path.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return max(0, shutil.disk_usage(probe).free - CHAOS_FILL.get(str(path), 0))


def space_needed(cfg: BackupConfig, database_url: str) -> int:
    """About what the next backup writes: the last complete artefact, or the database file; and a margin."""
    last = next((m for m in cfg.catalog().all() if m.status == "complete"), None)
    if last is not None:
        return int(last.size * 1.5) + SPACE_MARGIN
    if database_url.startswith("sqlite"):
        raw = Path(database_url.split("///", 1)[-1].split("?", 1)[0])
        return (raw.stat().st_size if raw.exists() else 0) + SPACE_MARGIN
    return SPACE_MARGIN


def disk_check(cfg: BackupConfig, database_url: str) -> list[tuple[str, int, int]]:
    """Local targets short of space: (directory, free bytes, bytes needed)."""
    need = space_needed(cfg, database_url)
    dirs = [cfg.directory] + ([cfg.mirror] if cfg.mirror is not None else [])
    return [(str(d), free, need) for d in dirs if (free := disk_free(d)) < need]


@driver_errors("The backup failed")
def make_backup(cfg: BackupConfig, database_url: str, *, kind: str = "manual",
                reporter: Reporter = SILENT, note: str = "") -> Manifest:
    """`create_backup` for callers already holding `exclusive(cfg)` (restore's safety backup).
    Refuses before writing anything when a local target lacks the space (`backup_disk_full`)."""
    short = disk_check(cfg, database_url)
    if short:
        d, free, need = short[0]
        raise BackupError(f"Not enough space for a backup in {d}: {free // 2**20} MB free, about {need // 2**20} MB "
                          "needed. Free some space or prune old backups (waimai backup prune).",
                          code="backup_disk_full", status=507)
    engine = engine_for(database_url, pg_bindir=cfg.pg_bindir)
    catalog = cfg.catalog()
    compression = artefact.best_compression(cfg.compression)
    created = utcnow()
    bid = new_id(created)
    name = f"{bid}.{engine.ext}.{'zst' if compression == 'zstd' else 'gz'}{'.aes' if cfg.key else ''}"
    cfg.directory.mkdir(parents=True, exist_ok=True)
    staged = cfg.directory / f".{name}.staging"  # beside the local target: it is renamed there, not copied
    t0 = time.perf_counter()
    durations: dict[str, float] = {}
    try:
        with _workdir(cfg) as work:
            reporter.stage("snapshot")(0)
            with engine.dump(work) as (stream, counting):
                durations["snapshot"] = time.perf_counter() - t0
                name_ = getattr(stream, "name", None)  # a file for SQLite (size known), a pipe for pg_dump
                total = Path(name_).stat().st_size if isinstance(name_, str) else None
                packed = artefact.pack(stream, staged, compression=compression, key=cfg.key,
                                       progress=reporter.stage("compress" + (" + encrypt" if cfg.key else ""), total))
                stats = counting.result()
            durations["dump"] = time.perf_counter() - t0
        m = Manifest(id=bid, kind=kind, created_at=created, engine=engine.name,  # type: ignore[arg-type]
                     database=engine.describe(), schema_version=stats.schema_version,
                     format=engine.format, compression=compression,  # type: ignore[arg-type]
                     encrypted=cfg.key is not None, key_id=artefact.key_id(cfg.key) if cfg.key else None,
                     artefact=name, size=packed.size, raw_size=packed.raw_size, sha256=packed.sha256,
                     tables=stats.tables, newest_order=stats.newest_order, max_ids=stats.max_ids,
                     order_id_gaps=stats.order_id_gaps, note=note)
        targets = catalog.targets
        for t in [t for t in targets if t.name != "local"] + [t for t in targets if t.name == "local"]:
            t1 = time.perf_counter()
            try:
                t.put_file(staged, name, reporter.stage(f"store in {t.name}", packed.size), sha256=packed.sha256)
                m.targets[t.name] = TargetState(status="stored", at=utcnow())
            except TargetError as exc:
                m.targets[t.name] = TargetState(status="failed", at=utcnow(), error=exc.message)
                log.warning("backup_target_failed", backup=bid, target=t.name, error=exc.message)
            durations[f"store:{t.name}"] = time.perf_counter() - t1
    finally:
        staged.unlink(missing_ok=True)
    m.status = "complete" if all(s.status == "stored" for s in m.targets.values()) else "incomplete"
    m.finished_at = utcnow()
    durations["total"] = time.perf_counter() - t0
    m.durations = {k: round(v, 3) for k, v in durations.items()}
    catalog.publish(m)
    log.info("backup_created", backup=bid, kind=kind, status=m.status, size=m.size, raw_size=m.raw_size,
             engine=m.engine, encrypted=m.encrypted, seconds=m.durations["total"],
             failed_targets=[k for k, s in m.targets.items() if s.status != "stored"])
    return m


# ------------------------------------------------------------------------------------------------ verify
def fetch(cfg: BackupConfig, m: Manifest, work: Path, reporter: Reporter = SILENT) -> tuple[Path, str, list[Check]]:
    """A copy of the artefact whose checksum matches, from the first target that has one.

    Returns the path, the target it came from and a check per target; raises ChecksumMismatch
    when no target holds an intact copy."""
    checks: list[Check] = []
    found: tuple[Path, str] | None = None
    for t in cfg.targets():
        if m.targets.get(t.name) is None or m.targets[t.name].status != "stored":
            continue
        if isinstance(t, LocalTarget):
            path = t.path(m.artefact)
        else:
            path = work / f"{t.name}-{m.artefact}"
            if found is not None:  # one intact copy is enough to read; the others are checked by size
                size = _quiet_size(t, m.artefact)
                checks.append(Check(name=f"copy in {t.name}", ok=size == m.size,
                                    detail="present" if size == m.size else f"size {size}, expected {m.size}"))
                continue
            try:
                t.get_file(m.artefact, path, reporter.stage(f"fetch from {t.name}", m.size))
            except TargetError as exc:
                checks.append(Check(name=f"copy in {t.name}", ok=False, detail=exc.message))
                continue
        try:
            if not path.is_file():
                raise ChecksumMismatch(f"{m.artefact} is missing")
            artefact.check(path, sha256=m.sha256, size=m.size)
            checks.append(Check(name=f"copy in {t.name}", ok=True, detail="sha256 matches"))
            if found is None:
                found = (path, t.name)
        except ChecksumMismatch as exc:
            checks.append(Check(name=f"copy in {t.name}", ok=False, detail=exc.message))
    if found is None:
        bad = "; ".join(c.detail for c in checks) or "no target holds it"
        raise ChecksumMismatch(f"No intact copy of backup {m.id}: {bad}", details=[c.model_dump() for c in checks])
    return found[0], found[1], checks


def _quiet_size(t: Target, key: str) -> int | None:
    try:
        return t.size(key)
    except TargetError:
        return None


def unpack_to(cfg: BackupConfig, m: Manifest, work: Path, reporter: Reporter = SILENT
              ) -> tuple[Path, str, list[Check]]:
    """Fetch an intact copy and turn it back into the raw dump (decrypted, decompressed)."""
    key = check_key(cfg, m)
    src, source, checks = fetch(cfg, m, work, reporter)
    raw = work / f"{m.id}.{'sqlite' if m.engine == 'sqlite' else 'pgdump'}"
    artefact.unpack(src, raw, compression=m.compression, key=key,
                    progress=reporter.stage("decompress" + (" + decrypt" if key else ""), m.raw_size))
    return raw, source, checks


def verify_backup(cfg: BackupConfig, database_url: str, ref: str, *, reporter: Reporter = SILENT) -> Manifest:
    with exclusive(cfg):
        return check_backup(cfg, database_url, ref, reporter=reporter)


@driver_errors("The verification could not run")
def check_backup(cfg: BackupConfig, database_url: str, ref: str, *, reporter: Reporter = SILENT) -> Manifest:
    """Restore the backup into a scratch database and check it; the result goes into its manifest."""
    catalog = cfg.catalog()
    m = catalog.get(ref)
    check_key(cfg, m)  # a missing key is the operator's to fix, not a fault of the backup
    engine = engine_for(database_url, pg_bindir=cfg.pg_bindir)
    if engine.name != m.engine:
        raise BackupError(f"Backup {m.id} is of a {m.engine} database; verifying it needs a {m.engine} server "
                          f"(this installation runs {engine.name}).")
    t0 = time.perf_counter()
    checks: list[Check] = []
    source = None
    with _workdir(cfg, m.raw_size + m.size) as work:
        try:
            raw, source, checks = unpack_to(cfg, m, work, reporter)
            reporter.stage("restore into scratch database")(0)
            more, actual = engine.verify_scratch(raw)
            checks += more
            if all(c.ok for c in more):
                checks += compare(Stats(schema_version=m.schema_version, tables=m.tables,
                                        newest_order=m.newest_order), actual)
        except ChecksumMismatch as exc:
            checks = [Check(**c) for c in (exc.details or [])] or [Check(name="checksum", ok=False,
                                                                          detail=exc.message)]
        except BackupError as exc:
            if isinstance(exc, KeyMissing):
                raise
            checks.append(Check(name="readable", ok=False, detail=exc.message))
    ok = bool(checks) and all(c.ok for c in checks)
    m.verification = Verification(status="passed" if ok else "failed", at=utcnow(),
                                  duration_s=round(time.perf_counter() - t0, 3), source=source, checks=checks)
    catalog.publish(m)
    log.info("backup_verified", backup=m.id, result=m.verification.status, seconds=m.verification.duration_s,
             failed=[c.name for c in checks if not c.ok])
    return m


# ------------------------------------------------------------------------------------------------- prune
@dataclass
class PruneResult:
    kept: dict[str, list[str]]  # id -> the rules that keep it
    deleted: list[str]
    errors: list[str]


def select_keep(items: list[Manifest], policy: Retention) -> dict[str, list[str]]:
    """Which backups the policy keeps, and why: the newest backup of each of the last N hours, days
    and ISO weeks (campus time) that have one, plus the newest verified backup. Only complete backups
    count; incomplete ones are kept only while there is no complete backup at all."""
    complete = sorted((m for m in items if m.status == "complete"), key=lambda m: m.created_at, reverse=True)
    keep: dict[str, list[str]] = {}
    rules: list[tuple[str, int, Callable[[dt.datetime], object]]] = [
        ("hourly", policy.hourly, lambda t: (t.date(), t.hour)),
        ("daily", policy.daily, lambda t: t.date()),
        ("weekly", policy.weekly, lambda t: t.isocalendar()[:2]),
    ]
    for rule, n, bucket in rules:
        seen: set[object] = set()
        for m in complete:
            b = bucket(m.created_at.astimezone(LOCAL))
            if b in seen:
                continue
            if len(seen) >= n:
                break
            seen.add(b)
            keep.setdefault(m.id, []).append(rule)
    verified = [m for m in complete if m.verification.status == "passed"]
    if verified:
        keep.setdefault(verified[0].id, []).append("newest verified")
    if not complete:
        for m in items:
            keep.setdefault(m.id, []).append("no complete backup yet")
    return keep


def prune(cfg: BackupConfig, *, dry_run: bool = False) -> PruneResult:
    with exclusive(cfg):
        return prune_now(cfg, dry_run=dry_run)


def prune_now(cfg: BackupConfig, *, dry_run: bool = False) -> PruneResult:
    catalog = cfg.catalog()
    items = catalog.all()
    keep = select_keep(items, cfg.retention)
    result = PruneResult(kept=keep, deleted=[], errors=[])
    for m in items:
        if m.id in keep:
            continue
        if not dry_run:
            failed = False
            for t in catalog.targets:
                try:
                    t.delete(m.artefact)
                    t.delete(m.manifest_key)
                except TargetError as exc:
                    failed = True
                    result.errors.append(exc.message)
            if failed:  # try again at the next prune; the index still lists it
                continue
            catalog.forget(m.id)
        result.deleted.append(m.id)
    if result.deleted:
        log.info("backups_pruned", deleted=result.deleted, kept=len(keep), dry_run=dry_run)
    return result


# --------------------------------------------------------------------------------------------- scheduler
class BackupScheduler:
    """The housekeeping job: when the cron schedule is due, back up, verify and prune in a thread of
    its own (so the job loop is never held up by a long backup). Several processes agree through the
    catalog (the newest scheduled backup) and the busy lock."""

    def __init__(self, cfg: BackupConfig, database_url: str, *, now: Callable[[], dt.datetime] = utcnow) -> None:
        self.cfg = cfg
        self.url = database_url
        self.cron = Cron.parse(cfg.schedule)
        self.now = now
        self.last_attempt = now()
        self.thread: threading.Thread | None = None
        self.last_result: str | None = None

    def due(self) -> bool:
        latest = [m.created_at for m in self.cfg.catalog().all() if m.kind == "scheduled"]
        since = max([self.last_attempt, *latest])
        return self.now() >= self.cron.next_after(since)

    def tick(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            return
        if not self.due():
            return
        self.last_attempt = self.now()
        self.thread = threading.Thread(target=self.run_once, name="waimai-backup", daemon=True)
        self.thread.start()

    def run_once(self) -> Manifest | None:
        try:
            with exclusive(self.cfg):
                m = make_backup(self.cfg, self.url, kind="scheduled")
                if self.cfg.verify_after and m.status == "complete":
                    m = check_backup(self.cfg, self.url, m.id)
                prune_now(self.cfg)
                self.last_result = f"{m.id}: {m.status}, {m.verification.status}"
                return m
        except BackupBusy:
            self.last_result = "skipped: another backup operation was running"
            return None
        except Exception as exc:  # noqa: BLE001 - logged; the next slot tries again
            self.last_result = f"failed: {exc}"
            log.exception("scheduled_backup_failed")
            return None
