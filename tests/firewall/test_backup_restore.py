"""Backup → verify → restore on real SQLite and PostgreSQL: the database returns to the chosen point, the
orders after it are exported, damaged or unreadable backups are refused, migrations run after restoring
an older schema, and the scheduled job backs up, verifies and prunes."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import Api, make_settings
from tests.firewall.backup_support import config, place, shop  # noqa: F401 - fixture
from waimai.app import create_app
from waimai.core.audit import AuditEntry
from waimai.core.database import Database
from waimai.core.migrate import head_revision, upgrade
from waimai.core.outbox import OutboxEvent
from waimai.core.timeutil import utcnow
from waimai.firewall.incidents.models import IncidentEvent
from waimai.firewall.recovery import artefact
from waimai.firewall.recovery.backup import BackupScheduler, create_backup, prune, verify_backup
from waimai.firewall.recovery.catalog import Manifest
from waimai.firewall.recovery.errors import BackupNotFound, BackupRefused, ChecksumMismatch, KeyMissing
from waimai.firewall.recovery.restore import restore_backup
from waimai.firewall.switches.service import is_on
from waimai.platform.ordering.models import Order


def _status(db: Database, order_id: int) -> str | None:
    with db.read_session() as s:
        o = s.get(Order, order_id)
        return o.status if o else None


def test_round_trip_restores_the_point_and_exports_later_orders(shop: Api, db_url: str, tmp_path: Path,  # noqa: F811
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    api = shop
    db: Database = api.c.app.state.db  # type: ignore[attr-defined]
    cfg = config(tmp_path)
    first = place(api)[0]
    m = create_backup(cfg, db_url)
    assert m.status == "complete" and m.targets["local"].status == "stored"
    assert m.created_at.tzinfo is not None and m.schema_version == head_revision()
    assert m.engine == db.dialect and m.newest_order is not None and m.newest_order.number == first["number"]
    assert m.tables["orders"] >= 1 and m.sha256 == artefact.sha256_file(cfg.directory / m.artefact)
    assert m.verification.status == "unverified"

    m = verify_backup(cfg, db_url, m.id)
    assert m.verification.status == "passed", m.verification.checks
    assert {"integrity", "schema version", "row counts", "newest order"} <= {c.name for c in m.verification.checks}
    beside = Manifest.model_validate_json((cfg.directory / m.manifest_key).read_text())
    assert beside.verification.status == "passed" and beside.sha256 == m.sha256  # manifest next to the artefact

    later = place(api, 2)
    r = api.c.post(f"/api/v1/orders/{first['id']}/cancel", json={"reason": "changed my mind"},
                   headers=api.h("customer"))
    assert r.status_code == 200
    result = restore_backup(cfg, db, m.id[:12], actor_role="ops")
    assert result.status == "restored" and result.backup_id == m.id
    with db.read_session() as s:  # its event, in the restored database, for the incident timeline
        [ev] = s.scalars(select(OutboxEvent).where(OutboxEvent.topic == "backup.restored")).all()
    assert ev.payload["restore_id"] == result.id and ev.payload["orders_after_backup"] == 3
    api.c.app.state.events.run_once()  # type: ignore[attr-defined]  # the worker leader's dispatcher
    with db.read_session() as s:  # no incident was open: an internal one records the rollback
        [line] = s.scalars(select(IncidentEvent).where(IncidentEvent.kind == "restore")).all()
    assert f"back to backup {m.id}" in line.text and "3 orders written after it" in line.text
    assert result.orders_new == 2 and result.orders_changed == 1 and result.restored_from == "local"
    assert {o.number for o in result.orders_after_backup if o.kind == "new"} == {o["number"] for o in later}
    assert [o.id for o in result.orders_after_backup if o.kind == "changed"] == [first["id"]]
    exported = json.loads(Path(result.export_json or "").read_text())
    assert {o["number"] for o in exported["orders_new"]} == {o["number"] for o in later}
    assert all(o["lines"] and o["transitions"] for o in exported["orders_new"])
    assert exported["orders_changed"][0]["transitions_after_backup"][-1]["to_status"] == "cancelled"
    with open(result.export_csv or "") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["kind"] for r in rows) == ["changed", "new", "new"]

    # the live database is back at the backup: later orders gone, the cancelled one as it was
    assert all(_status(db, o["id"]) is None for o in later)
    assert _status(db, first["id"]) == first["status"]
    with db.read_session() as s:
        assert not is_on(s, "system.read_only")
        actions = list(s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions[-1] == "backup.restore" and "switch.set" in actions  # read-only on (carried over), then off
    assert result.audit_entries_kept >= 1

    # nothing is lost: the safety backup has the later orders, and restoring it brings them back
    safety = cfg.catalog().get(result.safety_backup_id or "")
    assert safety.kind == "safety" and safety.status == "complete"
    assert safety.tables["orders"] == m.tables["orders"] + 2
    back = restore_backup(cfg, db, safety.id)
    assert back.status == "restored" and any("not been verified" in w for w in back.warnings)
    assert all(_status(db, o["id"]) == o["status"] for o in later)
    assert _status(db, first["id"]) == "cancelled"
    r = api.c.get(f"/api/v1/orders/{later[0]['id']}", headers=api.h("customer"))
    assert r.status_code == 200  # the app keeps serving from the restored database


def test_damaged_backup_is_detected_and_refused(shop: Api, db_url: str, tmp_path: Path) -> None:  # noqa: F811
    db: Database = shop.c.app.state.db  # type: ignore[attr-defined]
    cfg = config(tmp_path)
    place(shop)
    m = verify_backup(cfg, db_url, create_backup(cfg, db_url).id)
    assert m.verification.status == "passed"
    art = cfg.directory / m.artefact
    blob = bytearray(art.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    art.write_bytes(bytes(blob))
    with pytest.raises(ChecksumMismatch, match="sha256"):
        restore_backup(cfg, db, m.id)  # the restore checks the bytes itself
    m = verify_backup(cfg, db_url, m.id)
    assert m.verification.status == "failed"
    assert [c.name for c in m.verification.checks if not c.ok] == ["copy in local"]
    with pytest.raises(BackupRefused, match="failed verification"):
        restore_backup(cfg, db, m.id)
    with pytest.raises(ChecksumMismatch):
        restore_backup(cfg, db, m.id, force=True)  # even forced, damaged bytes are never restored
    with pytest.raises(BackupNotFound, match="No backup 'nope-0000'"):
        restore_backup(cfg, db, "nope-0000")
    with db.read_session() as s:
        assert not is_on(s, "system.read_only")  # refusals happen before anything is touched


def test_encrypted_backup_round_trip_and_missing_key(shop: Api, db_url: str, tmp_path: Path) -> None:  # noqa: F811
    db: Database = shop.c.app.state.db  # type: ignore[attr-defined]
    key = artefact.parse_key(artefact.new_key())
    cfg = config(tmp_path, key=key, compression="gzip")
    first = place(shop)[0]
    m = create_backup(cfg, db_url)
    assert m.encrypted and m.key_id == artefact.key_id(key) and m.artefact.endswith(".gz.aes")
    assert m.compression == "gzip"
    assert verify_backup(cfg, db_url, m.id).verification.status == "passed"
    no_key = config(tmp_path)
    with pytest.raises(KeyMissing, match="is encrypted"):
        verify_backup(no_key, db_url, m.id)
    with pytest.raises(KeyMissing, match="is encrypted"):
        restore_backup(no_key, db, m.id)
    other = config(tmp_path, key=artefact.parse_key(artefact.new_key()))
    with pytest.raises(KeyMissing, match="was encrypted with key"):
        restore_backup(other, db, m.id)
    later = place(shop)[0]
    result = restore_backup(cfg, db, m.id)
    assert result.orders_new == 1 and _status(db, later["id"]) is None and _status(db, first["id"]) is not None


def test_target_failure_leaves_the_backup_incomplete(sqlite_url: str, tmp_path: Path) -> None:
    not_a_dir = tmp_path / "second-disk"
    not_a_dir.write_text("a file where the mirror directory should be")
    cfg = config(tmp_path, mirror=not_a_dir)
    m = create_backup(cfg, sqlite_url)
    assert m.status == "incomplete" and m.targets["local"].status == "stored"
    assert m.targets["mirror"].status == "failed" and "cannot" in (m.targets["mirror"].error or "")
    db = Database(sqlite_url)
    try:
        with pytest.raises(BackupRefused, match="incomplete"):
            restore_backup(cfg, db, m.id)
        good = config(tmp_path, mirror=tmp_path / "mirror")
        m2 = create_backup(good, sqlite_url)
        assert m2.status == "complete" and (tmp_path / "mirror" / m2.artefact).is_file()
        assert (tmp_path / "mirror" / m2.manifest_key).is_file()
    finally:
        db.dispose()


def test_restoring_an_older_schema_runs_the_migrations(sqlite_url: str, tmp_path: Path) -> None:
    old_url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Database(old_url)
    upgrade(old.engine, "0004")
    old.dispose()
    cfg = config(tmp_path)
    m = verify_backup(cfg, old_url, create_backup(cfg, old_url).id)
    assert m.schema_version == "0004" and m.verification.status == "passed"
    db = Database(sqlite_url)
    try:
        result = restore_backup(cfg, db, m.id)
        assert result.migrated and result.schema_restored == "0004" and result.schema_after == head_revision()
        assert result.schema_before == head_revision()
    finally:
        db.dispose()


def test_scheduled_job_backs_up_verifies_and_prunes(sqlite_url: str, tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cfg.retention = type(cfg.retention)(hourly=1, daily=0, weekly=0)
    clock = [(utcnow() + dt.timedelta(days=10)).replace(minute=30)]  # ahead of the backups' real timestamps
    sched = BackupScheduler(cfg, sqlite_url, now=lambda: clock[0])
    sched.tick()
    assert sched.thread is None  # the next slot (04:00) is not due yet
    ids = []
    for _ in range(3):
        clock[0] += dt.timedelta(hours=1)
        sched.tick()
        assert sched.thread is not None
        sched.thread.join(30)
        m = cfg.catalog().all()[0]
        assert m.kind == "scheduled" and m.verification.status == "passed", sched.last_result
        ids.append(m.id)
        sched.tick()
        assert not sched.thread.is_alive()  # ran once for this slot
    # one hourly backup kept: the newest (also the newest verified); the others are gone everywhere
    left = [m.id for m in cfg.catalog().all()]
    assert left == [ids[-1]]
    assert not (cfg.directory / f"{ids[0]}.manifest.json").exists()
    assert prune(cfg).deleted == []


def test_backup_job_is_wired_only_when_enabled(sqlite_url: str, tmp_path: Path) -> None:
    from waimai.app import housekeeping_jobs

    app = create_app(make_settings(sqlite_url, backup_dir=str(tmp_path / "b")), background=False)
    assert "backup" not in [j.name for j in housekeeping_jobs(app)]  # off in the test environment
    app = create_app(make_settings(sqlite_url, backup_dir=str(tmp_path / "b"), backup_scheduled=True,
                                   backup_schedule="30 4 * * *"), background=False)
    jobs = {j.name: j for j in housekeeping_jobs(app)}
    assert jobs["backup"].singleton and jobs["backup"].role == "worker"
    cron = app.state.backup_scheduler.cron
    assert cron.text == "30 4 * * *"  # 04:30 campus time is 20:30 UTC the day before
    assert cron.next_after(dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)) == dt.datetime(2026, 3, 1, 20, 30,
                                                                                         tzinfo=dt.UTC)
