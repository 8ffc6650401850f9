"""Rollback: put the live database back to a backup, losing nothing silently.

    result = restore_backup(cfg, db, "20260101T040000Z-ab12", actor_id=9, actor_role="ops")

In order: refuse what must not be restored (unknown id, damaged artefact, failed verification, a schema
newer than this code, a missing key); take a safety backup of the live database; turn the switch
`system.read_only` on and wait until every running replica confirms (its heartbeat row, fence.py) that
it refuses writes and has none in flight — only then can no order commit that neither the restored
database nor the export holds; export the orders the backup does not have (written after it) and the
orders that changed after it, to JSON and CSV in the backup directory; restore (one transaction); turn
read-only on again in the restored database (its switches are the backup's); run migrations if the
backup is older than the code; turn read-only off; record the restore on the audit log, as an outbox
event (`backup.restored` / `backup.restore_failed`: the incident timeline subscribes to it) and in
`restores/` beside the backups.

A restore refused or failed before the restore step leaves the database unchanged, turns read-only off
again and is reported the same way. A failure after it (migration) leaves the restored database
read-only, with status `incomplete` and the way out in `next_step`, in its event as well.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any, Literal

import structlog
from pydantic import BaseModel, Field
from sqlalchemy import select

from waimai.core import audit, csvsafe, uow
from waimai.core.database import Database, table_of
from waimai.core.migrate import current_revision, head_revision, upgrade
from waimai.core.outbox import emit
from waimai.core.timeutil import utcnow
from waimai.firewall.recovery.backup import (
    SILENT,
    BackupConfig,
    Reporter,
    _workdir,
    exclusive,
    make_backup,
    new_id,
    unpack_to,
)
from waimai.firewall.recovery.catalog import Manifest
from waimai.firewall.recovery.engines import engine_for
from waimai.firewall.recovery.errors import BackupError, BackupRefused, driver_errors
from waimai.firewall.switches.fence import current_version, wait_fenced
from waimai.firewall.switches.service import set_switch

log = structlog.get_logger(__name__)

READ_ONLY = "system.read_only"
FENCE_TIMEOUT_S = 15.0  # how long the replicas get to confirm read-only before the restore gives up
LISTED = 1000  # orders listed in the result itself; the export files have all of them


class OrderAfter(BaseModel):
    kind: Literal["new", "changed"] = Field(description="new: not in the backup; changed: its state moved on")
    id: int
    number: str
    status: str
    created_at: dt.datetime | None
    total_fen: int


class RestoreResult(BaseModel):
    id: str
    backup_id: str
    backup_created_at: dt.datetime
    status: Literal["restored", "failed", "incomplete"]
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    actor: str
    safety_backup_id: str | None = None
    schema_before: str | None = None
    schema_restored: str | None = None
    schema_after: str | None = None
    migrated: bool = False
    orders_after_backup: list[OrderAfter] = Field(default_factory=list)
    orders_new: int = 0
    orders_changed: int = 0
    orders_listed_all: bool = True
    restored_from: str | None = Field(default=None, description="the target the artefact was read from")
    audit_entries_kept: int = Field(default=0, description="audit entries written after the backup, carried over")
    export_json: str | None = None
    export_csv: str | None = None
    warnings: list[str] = Field(default_factory=list)
    error: str | None = None
    durations: dict[str, float] = Field(default_factory=dict)
    fenced_replicas: int = Field(default=0, description="replicas that confirmed read-only before the export")
    next_step: str | None = Field(default=None, description="what ops must do when the restore is incomplete")


class RestoreFailed(BackupError):
    status, code = 500, "restore_failed"

    def __init__(self, result: RestoreResult) -> None:
        super().__init__(f"Restore of backup {result.backup_id} failed: {result.error}",
                         details=result.model_dump(mode="json"))
        self.result = result


def _refuse_unless(cond: bool, force: bool, message: str, warnings: list[str]) -> None:
    if cond:
        return
    if not force:
        raise BackupRefused(message + " Pass force to restore it anyway.")
    warnings.append(message + " Restored anyway (forced).")


def _known_revision(rev: str | None) -> bool:
    from alembic.script import ScriptDirectory

    from waimai.core.migrate import alembic_config

    if rev is None:
        return True
    try:
        return ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(rev) is not None
    except Exception:  # noqa: BLE001 - alembic raises several kinds for an unknown revision
        return False


def check_restorable(cfg: BackupConfig, db: Database, m: Manifest, *, force: bool) -> list[str]:
    """Refusals (raised) and warnings (returned) before anything is touched."""
    warnings: list[str] = []
    if m.engine != db.dialect:
        raise BackupRefused(f"Backup {m.id} is of a {m.engine} database; this one is {db.dialect}.")
    if not _known_revision(m.schema_version):
        raise BackupRefused(f"Backup {m.id} has schema {m.schema_version}, which this version of Waimai does not "
                            "know (made by a newer version?): upgrade Waimai first.")
    _refuse_unless(m.verification.status != "failed", force,
                   f"Backup {m.id} failed verification ({_failed_checks(m)}).", warnings)
    _refuse_unless(m.status == "complete", force, f"Backup {m.id} is incomplete (not in every target).", warnings)
    if m.verification.status == "unverified":
        warnings.append(f"Backup {m.id} has not been verified; its checksum was checked before restoring.")
    return warnings


def _failed_checks(m: Manifest) -> str:
    return "; ".join(f"{c.name}: {c.detail}" for c in m.verification.checks if not c.ok) or "no detail"


# --------------------------------------------------------------------------------------- orders after it
def orders_after(db: Database, m: Manifest) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The live orders the backup lacks (new), and those it has in an earlier state (changed)."""
    from waimai.platform.ordering import read as orders

    return orders.orders_after(db, max_order_id=m.max_ids.get("orders", 0), order_id_gaps=list(m.order_id_gaps),
                               max_transition_id=m.max_ids.get("order_transitions", 0))


def audit_after(db: Database, m: Manifest) -> list[dict[str, Any]]:
    """Audit entries written after the backup: the audit trail is carried over the rollback."""
    if "audit_log" not in m.max_ids:
        return []
    t = table_of(audit.AuditEntry)
    with db.engine.connect() as c:
        return [dict(r) for r in c.execute(select(t).where(t.c.id > m.max_ids["audit_log"]).order_by(t.c.id))
                .mappings()]


def _carry_over(s: Any, rows: list[dict[str, Any]]) -> None:
    from waimai.platform.accounts import read as accounts

    users = accounts.existing(s, {r["actor_id"] for r in rows if r["actor_id"]})
    for r in rows:
        details = dict(r["details"] or {})
        details["carried_over_rollback"] = True
        if r["actor_id"] and r["actor_id"] not in users:  # an account created after the backup
            details["actor_id"] = r["actor_id"]
        s.add(audit.AuditEntry(at=r["at"], actor_id=r["actor_id"] if r["actor_id"] in users else None,
                               actor_role=r["actor_role"], action=r["action"], target=r["target"], details=details))


def _json_default(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.isoformat()
    return str(v)


def export_orders(directory: Path, restore_id: str, m: Manifest, new: list[dict[str, Any]],
                  changed: list[dict[str, Any]]) -> tuple[Path, Path]:
    """JSON (everything, for re-entry) and CSV (one line per order, for people) in `exports/`."""
    out = directory / "exports"
    out.mkdir(parents=True, exist_ok=True)
    stem = f"restore-{restore_id}-orders-after-{m.id}"
    jpath, cpath = out / f"{stem}.json", out / f"{stem}.csv"
    body = {"restore_id": restore_id, "backup_id": m.id, "backup_created_at": m.created_at.isoformat(),
            "exported_at": utcnow().isoformat(),
            "note": "orders_new are not in the restored database and need re-entering; orders_changed are in it "
                    "in the state they had at the backup, the transitions listed here came after it",
            "orders_new": new, "orders_changed": changed}
    jpath.write_text(json.dumps(body, default=_json_default, ensure_ascii=False, indent=1))
    jpath.chmod(0o600)  # customers' phone numbers: ops only
    with open(cpath, "w", newline="", encoding="utf-8") as f:
        w = csvsafe.writer(f)
        w.writerow(["kind", "order_id", "number", "created_at", "status_live", "customer_id", "merchant_id",
                    "delivery_point_id", "payment_method", "source", "total_fen", "contact_phone", "items", "note"])
        for kind, rows in (("new", new), ("changed", changed)):
            for r in rows:
                items = "; ".join(f"{x['name']} x{x['quantity']}" for x in r.get("lines", []))
                w.writerow([kind, r["id"], r["number"], _json_default(r["created_at"]), r["status"],
                            r["customer_id"], r["merchant_id"], r["delivery_point_id"], r["payment_method"],
                            r["source"], r["total_fen"], r["contact_phone"], items, r["note"]])
    cpath.chmod(0o600)
    return jpath, cpath


# -------------------------------------------------------------------------------------------- the restore
def _switch(db: Database, on: bool, actor_id: int | None, actor_role: str, reason: str) -> None:
    with uow.unit_of_work(db) as s:
        set_switch(s, READ_ONLY, enabled=on, actor_id=actor_id, actor_role=actor_role, reason=reason)


def restore_backup(cfg: BackupConfig, db: Database, ref: str, *, actor_id: int | None = None,
                   actor_role: str = "ops", force: bool = False, reporter: Reporter = SILENT) -> RestoreResult:
    """Roll the live database back to backup `ref`. Raises a BackupError before touching anything when
    the backup must not be restored, RestoreFailed (carrying the result) when the restore itself failed."""
    with exclusive(cfg):
        return _restore(cfg, db, ref, actor_id=actor_id, actor_role=actor_role, force=force, reporter=reporter)


@driver_errors("The restore failed")
def _restore(cfg: BackupConfig, db: Database, ref: str, *, actor_id: int | None, actor_role: str,
             force: bool, reporter: Reporter) -> RestoreResult:
    catalog = cfg.catalog()
    m = catalog.get(ref)
    warnings = check_restorable(cfg, db, m, force=force)
    engine = engine_for(db.url, pg_bindir=cfg.pg_bindir)
    started = utcnow()
    rid = new_id(started)
    actor = f"{actor_role}:{actor_id}" if actor_id else actor_role
    result = RestoreResult(id=rid, backup_id=m.id, backup_created_at=m.created_at, status="failed",
                           started_at=started, actor=actor, schema_restored=m.schema_version, warnings=warnings)
    t0 = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t0
        now = time.perf_counter()
        result.durations[name] = round(now - t0, 3)
        t0 = now

    with _workdir(cfg, m.raw_size + m.size) as work:
        raw, source, _checks = unpack_to(cfg, m, work, reporter)  # refuses a damaged artefact or a wrong key
        result.restored_from = source
        lap("fetch")
        reporter.stage("safety backup")(0)
        try:
            safety = make_backup(cfg, db.url, kind="safety", note=f"before restoring {m.id}")
        except BackupError as exc:
            raise BackupRefused(f"The safety backup failed, nothing was restored: {exc.message}") from None
        result.safety_backup_id = safety.id
        if safety.status != "complete":
            result.warnings.append(f"Safety backup {safety.id} is not in every target: "
                                   + ", ".join(k for k, s in safety.targets.items() if s.status != "stored"))
        lap("safety_backup")
        result.schema_before = current_revision(db.engine)
        _switch(db, True, actor_id, actor_role, f"restoring backup {m.id}")
        try:
            reporter.stage("wait for every replica to stop writing")(0)
            version = current_version(db)
            missing = wait_fenced(db, version, timeout_s=FENCE_TIMEOUT_S) if version else []
            if missing:
                raise BackupError(f"Replicas did not confirm read-only within {FENCE_TIMEOUT_S:.0f} s: "
                                  f"{', '.join(missing)[:200]}; nothing was restored.")
            result.fenced_replicas = _fenced_count(db, version)
            lap("fence")
            reporter.stage("export orders after the backup")(0)
            new, changed = orders_after(db, m)
            jpath, cpath = export_orders(cfg.directory, rid, m, new, changed)
            result.export_json, result.export_csv = str(jpath), str(cpath)
            result.orders_new, result.orders_changed = len(new), len(changed)
            listed = [OrderAfter(kind=k, id=r["id"], number=r["number"], status=r["status"],  # type: ignore[arg-type]
                                 created_at=r["created_at"], total_fen=r["total_fen"])
                      for k, rows in (("new", new), ("changed", changed)) for r in rows]
            result.orders_after_backup = listed[:LISTED]
            result.orders_listed_all = len(listed) <= LISTED
            kept_audit = audit_after(db, m)
            lap("export")
            reporter.stage(f"restore from {source}")(0)
            engine.restore_live(raw)
            lap("restore")
        except Exception as exc:  # noqa: BLE001 - the database is unchanged: leave read-only, report
            result.error = exc.message if isinstance(exc, BackupError) else f"{exc.__class__.__name__}: {exc}"
            _switch(db, False, actor_id, actor_role, f"restore of {m.id} failed; database unchanged")
            return _finish(cfg, db, m, result, actor_id, actor_role, [])
    db.engine.dispose()  # pooled connections may hold plans or pages of the old database
    try:
        engine.after_restore()
        _keep_read_only(db, m.id)  # the restored switches are the backup's: fence again until we are done
        head = head_revision()
        if current_revision(db.engine) != head:
            reporter.stage("migrate")(0)
            upgrade(db.engine)  # before any switch is written: switch hooks expect the current schema
            result.migrated = True
        result.schema_after = current_revision(db.engine)
        lap("migrate")
    except Exception as exc:  # noqa: BLE001 - restored but not finished: stay read-only, say how to finish
        result.status = "incomplete"
        result.error = f"after the restore: {exc.__class__.__name__}: {exc}"[:500]
        result.next_step = ("The backup is restored but the steps after it failed; Waimai stays read-only. Run "
                            "`waimai migrate`, check /readyz, then turn system.read_only off (switches page). "
                            f"To go back instead, restore the safety backup {result.safety_backup_id}.")
        log.error("restore_incomplete", restore=rid, error=result.error)
        return _finish(cfg, db, m, result, actor_id, actor_role, kept_audit)
    result.status = "restored"
    _switch(db, False, actor_id, actor_role, f"restored backup {m.id}")
    return _finish(cfg, db, m, result, actor_id, actor_role, kept_audit)


def _keep_read_only(db: Database, backup_id: str) -> None:
    """Straight after the restore, in the restored database, without hooks (its schema may be older)."""
    from sqlalchemy import update as sa_update

    from waimai.firewall.switches.models import Switch

    with uow.unit_of_work(db) as s:
        changed = s.execute(sa_update(Switch).where(Switch.name == READ_ONLY).values(
            enabled=True, reason=f"finishing the restore of {backup_id}"[:200], updated_by="system:restore",
            updated_at=utcnow()))
        if not getattr(changed, "rowcount", 0):
            s.add(Switch(name=READ_ONLY, enabled=True, reason=f"finishing the restore of {backup_id}"[:200],
                         updated_by="system:restore"))


def _fenced_count(db: Database, version: str | None) -> int:
    from waimai.firewall.switches.fence import ALIVE
    from waimai.firewall.switches.models import ReplicaBeat

    if version is None:
        return 0
    with db.read_session() as s:
        return len(s.scalars(select(ReplicaBeat).where(ReplicaBeat.beat_at >= utcnow() - ALIVE,
                                                       ReplicaBeat.read_only_seen == version)).all())


def _finish(cfg: BackupConfig, db: Database, m: Manifest, result: RestoreResult, actor_id: int | None,
            actor_role: str, kept_audit: list[dict[str, Any]]) -> RestoreResult:
    result.finished_at = utcnow()
    summary = {"backup": m.id, "status": result.status, "safety_backup": result.safety_backup_id,
               "orders_new": result.orders_new, "orders_changed": result.orders_changed,
               "export": Path(result.export_json).name if result.export_json else None,
               "migrated": result.migrated, "error": result.error}
    try:
        with uow.unit_of_work(db) as s:
            _carry_over(s, kept_audit)
            result.audit_entries_kept = len(kept_audit)
            audit.record(s, actor_id=actor_id, actor_role=actor_role, action="backup.restore", target=m.id,
                         details=summary)
            # The incident timeline subscribes to these (waimai.subscribers): a line on every open incident.
            emit(s, "backup.restored" if result.status == "restored" else "backup.restore_failed", key=m.id,
                 restore_id=result.id, backup_created_at=result.backup_created_at.isoformat(),
                 orders_after_backup=len(result.orders_after_backup), next_step=result.next_step,
                 actor=result.actor, **summary)
    except Exception as exc:  # noqa: BLE001 - the restore happened; say so even if the audit write fails
        result.warnings.append(f"could not write the audit entry: {exc.__class__.__name__}")
    out = cfg.directory / "restores"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{result.id}.json").write_text(result.model_dump_json(indent=1))
    log.info("backup_restored" if result.status == "restored" else "backup_restore_failed", restore=result.id,
             backup=m.id, safety_backup=result.safety_backup_id, orders_new=result.orders_new,
             orders_changed=result.orders_changed, error=result.error)
    if result.status != "restored":
        raise RestoreFailed(result)  # the result (with next_step when incomplete) travels in the error
    return result


def restores(cfg: BackupConfig) -> list[RestoreResult]:
    """Past restores, newest first (kept beside the backups, outside the database)."""
    out = cfg.directory / "restores"
    if not out.is_dir():
        return []
    items = [RestoreResult.model_validate_json(p.read_text()) for p in out.glob("*.json")]
    return sorted(items, key=lambda r: r.started_at, reverse=True)
