"""The backup catalog: a JSON manifest beside each artefact in every target, and a local index of them.

The manifests in the targets are the record; the index (`index.json` in the backup directory) is a
cache of them for listing, rebuilt from the targets by `Catalog.sync()` (say on a fresh machine after
losing the first disk). Nothing here lives in the database being backed up.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from waimai.core.timeutil import utcnow
from waimai.firewall.recovery.errors import BackupNotFound, TargetError
from waimai.firewall.recovery.targets import Target

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

MANIFEST_SUFFIX = ".manifest.json"


class TargetState(BaseModel):
    status: Literal["stored", "failed"]
    at: dt.datetime
    error: str | None = None


class Check(BaseModel):
    name: str
    ok: bool
    detail: str = ""


class Verification(BaseModel):
    status: Literal["unverified", "passed", "failed"] = "unverified"
    at: dt.datetime | None = None
    duration_s: float | None = None
    source: str | None = Field(default=None, description="the target the verified copy came from")
    checks: list[Check] = Field(default_factory=list)


class NewestOrder(BaseModel):
    id: int
    number: str
    created_at: dt.datetime | None = None


class Manifest(BaseModel):
    """Everything known about one backup."""

    id: str
    kind: Literal["manual", "scheduled", "safety"]
    created_at: dt.datetime = Field(description="when the consistent snapshot was taken (UTC)")
    finished_at: dt.datetime | None = None
    engine: Literal["sqlite", "postgresql"]
    database: str = Field(description="the database backed up, without credentials")
    schema_version: str | None = Field(description="alembic revision in the backup")
    format: Literal["sqlite3-backup", "pg_dump-custom"]
    compression: Literal["zstd", "gzip"]
    encrypted: bool = False
    key_id: str | None = Field(default=None, description="fingerprint of the encryption key")
    artefact: str = ""
    size: int = 0
    raw_size: int = 0
    sha256: str = ""
    tables: dict[str, int] = Field(default_factory=dict, description="row count per table in the snapshot")
    newest_order: NewestOrder | None = None
    max_ids: dict[str, int] = Field(default_factory=dict, description="highest id in orders and transitions")
    order_id_gaps: list[tuple[int, int]] = Field(default_factory=list,
                                                 description="order id ranges below the highest one that "
                                                             "the snapshot does not have (in flight, rolled back)")
    targets: dict[str, TargetState] = Field(default_factory=dict)
    status: Literal["complete", "incomplete"] = "incomplete"
    verification: Verification = Field(default_factory=Verification)
    durations: dict[str, float] = Field(default_factory=dict)
    note: str = ""

    @property
    def manifest_key(self) -> str:
        return self.id + MANIFEST_SUFFIX

    def to_json(self) -> bytes:
        return self.model_dump_json(indent=2).encode()


@contextmanager
def file_lock(path: Path, *, blocking: bool = True) -> Iterator[bool]:
    """An exclusive flock on `path` (yields False if not blocking and somebody else holds it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if fcntl is None:  # pragma: no cover
            yield True
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class Catalog:
    """The local index plus the targets' manifests."""

    def __init__(self, directory: Path, targets: list[Target]) -> None:
        self.directory = directory
        self.targets = targets
        self.path = directory / "index.json"

    # -- the local index ---------------------------------------------------------------------------
    def _read(self) -> dict[str, Manifest]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):  # a damaged index is rebuilt from the targets
            return {m.id: m for m in self._from_targets()}
        return {k: Manifest.model_validate(v) for k, v in raw.get("backups", {}).items()}

    def _write(self, items: dict[str, Manifest]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name("index.json.partial")
        body = {"version": 1, "updated_at": utcnow().isoformat(),
                "backups": {k: v.model_dump(mode="json") for k, v in sorted(items.items())}}
        tmp.write_text(json.dumps(body, indent=1))
        os.replace(tmp, self.path)

    def all(self) -> list[Manifest]:
        """Every backup in the index, newest first."""
        with file_lock(self.directory / ".index.lock"):
            items = self._read()
        return sorted(items.values(), key=lambda m: m.created_at, reverse=True)

    def get(self, ref: str) -> Manifest:
        """By id, by a unique start of an id, or `latest` (newest complete backup)."""
        ref = ref.strip()
        items = self.all()
        if ref == "latest":
            for m in items:
                if m.status == "complete" and m.verification.status != "failed":
                    return m
            raise BackupNotFound("There is no complete backup yet.")
        exact = [m for m in items if m.id == ref]
        found = exact or ([m for m in items if m.id.startswith(ref)] if len(ref) >= 4 else [])
        if len(found) == 1:
            return found[0]
        if found:
            raise BackupNotFound(f"{ref!r} matches {len(found)} backups; give more of the id.",
                                 details=[m.id for m in found[:10]])
        raise BackupNotFound(f"No backup {ref!r}. `waimai backup list` shows the ids "
                             "(`waimai backup list --sync` rereads the targets).")

    def put(self, m: Manifest) -> None:
        with file_lock(self.directory / ".index.lock"):
            items = self._read()
            items[m.id] = m
            self._write(items)

    def forget(self, backup_id: str) -> None:
        with file_lock(self.directory / ".index.lock"):
            items = self._read()
            items.pop(backup_id, None)
            self._write(items)

    # -- manifests in the targets --------------------------------------------------------------------
    def publish(self, m: Manifest) -> None:
        """Write the manifest beside the artefact in every target holding it, then into the index."""
        data = m.to_json()
        for t in self.targets:
            state = m.targets.get(t.name)
            if state is not None and state.status == "stored":
                try:
                    t.put_bytes(m.manifest_key, data)
                except TargetError as exc:
                    m.targets[t.name] = TargetState(status="failed", at=utcnow(), error=exc.message)
        if m.status == "complete" and any(s.status != "stored" for s in m.targets.values()):
            m.status = "incomplete"
        self.put(m)

    def _from_targets(self) -> list[Manifest]:
        seen: dict[str, Manifest] = {}
        for t in self.targets:
            try:
                keys = [k for k in t.keys() if k.endswith(MANIFEST_SUFFIX)]
                for k in keys:
                    m = Manifest.model_validate_json(t.get_bytes(k))
                    if m.id not in seen or (m.finished_at or m.created_at) > (
                            seen[m.id].finished_at or seen[m.id].created_at):
                        seen[m.id] = m
            except (TargetError, ValueError):
                continue
        return list(seen.values())

    def sync(self) -> int:
        """Add the backups found in the targets but missing from the index; returns how many."""
        found = self._from_targets()
        with file_lock(self.directory / ".index.lock"):
            items = self._read()
            added = [m for m in found if m.id not in items]
            for m in added:
                items[m.id] = m
            if added:
                self._write(items)
        return len(added)
