"""Ops API for backups: list, create, verify, prune, and restore with an explicit confirmation.
Ops role only; every action (and every refusal) lands on the audit log."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from waimai.core.deps import API_PREFIX, OpsDep
from waimai.core.errors import NotFound
from waimai.firewall.recovery import flows
from waimai.firewall.recovery.backup import BackupConfig
from waimai.firewall.recovery.catalog import Manifest
from waimai.firewall.recovery.restore import RestoreResult, restores

router = APIRouter(prefix=API_PREFIX + "/backups", tags=["backups"])
T = TypeVar("T")
BackupId = Annotated[str, Path(pattern=flows.BACKUP_ID, description="id, unique start, or latest")]


class CreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verify: bool | None = Field(default=None, description="verify it at once (default: WAIMAI_BACKUP_VERIFY)")
    note: str = Field(default="", max_length=200)


class RestoreIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confirm: str = Field(min_length=1, max_length=60, description="the full id of the backup again, to confirm")
    force: bool = Field(default=False, description="restore even a backup that failed verification or is incomplete")


class PruneOut(BaseModel):
    dry_run: bool
    kept: dict[str, list[str]]
    deleted: list[str]
    errors: list[str]


def config(request: Request) -> BackupConfig:
    return flows.config(request.app.state)


@router.get("", response_model=list[Manifest])
def list_backups(request: Request, _p: OpsDep) -> list[Manifest]:
    """Backups, newest first, with where they are and whether they were verified."""
    return config(request).catalog().all()


@router.get("/restores", response_model=list[RestoreResult])
def list_restores(request: Request, _p: OpsDep) -> list[RestoreResult]:
    """Past restores (kept beside the backups, so they survive the rollback itself)."""
    return restores(config(request))


@router.get("/{backup_id}", response_model=Manifest)
def get_backup(backup_id: BackupId, request: Request, _p: OpsDep) -> Manifest:
    return config(request).catalog().get(backup_id)


@router.post("", response_model=Manifest, status_code=201)
def create(body: CreateIn, request: Request, p: OpsDep) -> Manifest:
    """Back up now (to every target) and, by default, verify it by restoring it into a scratch database."""
    return flows.create(request.app.state, p, note=body.note, verify=body.verify)


@router.post("/prune", response_model=PruneOut)
def prune_backups(request: Request, p: OpsDep, dry_run: bool = False) -> PruneOut:
    """Apply the retention policy (dry_run: only say what would go)."""
    res = flows.apply_retention(request.app.state, p, dry_run=dry_run)
    return PruneOut(dry_run=dry_run, kept=res.kept, deleted=res.deleted, errors=res.errors)


@router.post("/{backup_id}/verify", response_model=Manifest)
def verify(backup_id: BackupId, request: Request, p: OpsDep) -> Manifest:
    """Restore the backup into a scratch database; integrity, schema version, row counts, newest order."""
    return flows.verify(request.app.state, p, backup_id)


@router.post("/{backup_id}/restore", response_model=RestoreResult)
def restore(backup_id: BackupId, body: RestoreIn, request: Request, p: OpsDep) -> RestoreResult:
    """Roll the database back to this backup. `confirm` must repeat the backup's full id. A safety backup
    is taken first; orders written after the backup are exported and listed in the answer."""
    return flows.restore(request.app.state, p, backup_id, confirm=body.confirm, force=body.force)


class DiskFillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    leave_mb: int | None = Field(default=None, ge=0, description="pretend only this much is free; null: heal")


chaos = APIRouter(prefix=API_PREFIX + "/chaos", tags=["resilience"], include_in_schema=False)


@chaos.put("/disk")
def disk_fill(body: DiskFillIn, request: Request, _p: OpsDep) -> dict[str, Any]:
    """Make the backup directories look nearly full (only with WAIMAI_CHAOS=true, never in production)."""
    from waimai.firewall.recovery.backup import CHAOS_FILL, disk_free

    if not request.app.state.settings.chaos:
        raise NotFound("Fault injection is off (WAIMAI_CHAOS).")
    cfg = config(request)
    dirs = [cfg.directory] + ([cfg.mirror] if cfg.mirror is not None else [])
    for d in dirs:
        CHAOS_FILL.pop(str(d), None)
        if body.leave_mb is not None:
            CHAOS_FILL[str(d)] = max(0, disk_free(d) - body.leave_mb * 2**20)
    return {"directories": [str(d) for d in dirs], "free_mb": [disk_free(d) // 2**20 for d in dirs]}
