"""What ops do to backups, each action (and each refusal) on the audit log: called by the JSON API (routes.py) and
the console page (web/ops_backups.py) alike.

The audit rows are written in units of work of their own: a refusal is recorded although the action fails, and
a restore replaces the database the request started on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from waimai.core import audit, uow
from waimai.core.database import Database
from waimai.core.deps import Principal
from waimai.core.errors import AppError, Unprocessable
from waimai.firewall.recovery.backup import (
    BackupConfig,
    PruneResult,
    check_backup,
    exclusive,
    make_backup,
    prune,
)
from waimai.firewall.recovery.catalog import Manifest
from waimai.firewall.recovery.restore import RestoreResult, restore_backup

T = TypeVar("T")
BACKUP_ID = r"^(latest|[0-9A-Za-z-]{4,40})$"  # an id, a unique start of one, or `latest`


def config(app_state: Any) -> BackupConfig:
    cfg: BackupConfig | None = getattr(app_state, "backup_config", None)
    if cfg is None:
        cfg = BackupConfig.from_settings(app_state.settings)
        app_state.backup_config = cfg
    return cfg


def _audited(db: Database, p: Principal, action: str, target: str, fn: Callable[[], T],
             details: Callable[[T], dict[str, Any]]) -> T:
    """Run the action; put it (or its refusal) on the audit log."""
    try:
        out = fn()
    except AppError as exc:
        _record(db, p, action + "_refused", target, {"error": exc.message, "code": exc.code})
        raise
    _record(db, p, action, target, details(out))
    return out


def _record(db: Database, p: Principal, action: str, target: str, details: dict[str, Any]) -> None:
    with uow.unit_of_work(db) as s:
        audit.record(s, actor_id=p.user_id, actor_role=p.role, action=action, target=target, details=details)


def _summary(m: Manifest) -> dict[str, Any]:
    return {"status": m.status, "verification": m.verification.status, "size": m.size,
            "targets": {k: v.status for k, v in m.targets.items()}}


def create(app_state: Any, p: Principal, *, note: str = "", verify: bool | None = None) -> Manifest:
    """Back up now (to every target) and, by default, verify it by restoring it into a scratch database."""
    cfg, url = config(app_state), app_state.settings.database_url

    def run() -> Manifest:
        with exclusive(cfg):
            m = make_backup(cfg, url, kind="manual", note=note)
            if (cfg.verify_after if verify is None else verify) and m.status == "complete":
                m = check_backup(cfg, url, m.id)
            return m

    return _audited(app_state.db, p, "backup.create", "new", run, _summary)


def apply_retention(app_state: Any, p: Principal, *, dry_run: bool) -> PruneResult:
    return _audited(app_state.db, p, "backup.prune", "retention", lambda: prune(config(app_state), dry_run=dry_run),
                    lambda r: {"deleted": r.deleted, "kept": len(r.kept), "dry_run": dry_run})


def verify(app_state: Any, p: Principal, backup_id: str) -> Manifest:
    cfg, url = config(app_state), app_state.settings.database_url

    def run() -> Manifest:
        with exclusive(cfg):
            return check_backup(cfg, url, backup_id)

    return _audited(app_state.db, p, "backup.verify", backup_id, run, _summary)


def restore(app_state: Any, p: Principal, backup_id: str, *, confirm: str, force: bool = False) -> RestoreResult:
    """Roll the database back to a backup; `confirm` must repeat its full id."""
    cfg = config(app_state)
    db: Database = app_state.db
    try:
        m = cfg.catalog().get(backup_id)
        if confirm.strip() != m.id:
            raise Unprocessable(f"To restore, confirm must repeat the backup id {m.id}.", code="confirmation_required")
    except AppError as exc:
        _record(db, p, "backup.restore_refused", backup_id, {"error": exc.message, "code": exc.code})
        raise
    try:
        # restore_backup puts the restore itself on the audit log of the restored database
        return restore_backup(cfg, db, m.id, actor_id=p.user_id, actor_role=p.role, force=force)
    except AppError as exc:
        if exc.code != "restore_failed":  # refused before anything was touched
            _record(db, p, "backup.restore_refused", m.id, {"error": exc.message, "code": exc.code})
        raise
