"""The restore's write fence (switches/fence.py) and what happens when a restore cannot finish."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import Api
from tests.firewall.backup_support import config, place, shop  # noqa: F401 - fixture
from waimai.core.database import Database
from waimai.core.migrate import upgrade
from waimai.core.outbox import OutboxEvent
from waimai.core.timeutil import utcnow
from waimai.firewall.recovery import restore as restore_mod
from waimai.firewall.recovery.backup import create_backup
from waimai.firewall.recovery.restore import RestoreFailed, restore_backup
from waimai.firewall.switches.fence import Fence, current_version, unfenced
from waimai.firewall.switches.models import ReplicaBeat
from waimai.firewall.switches.service import is_on, set_switch


def _read_only(db: Database, on: bool) -> str | None:
    with db.session() as s:
        set_switch(s, "system.read_only", enabled=on, actor_id=None, actor_role="test")
        s.commit()
    return current_version(db)


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_a_replica_confirms_only_when_fenced_and_idle(db_url: str) -> None:
    db = Database(db_url)
    try:
        fence = Fence()
        assert fence.enter()  # a write passed the guard before the switch flipped
        version = _read_only(db, True)
        assert version is not None
        assert fence.beat(db, "r1") is None and unfenced(db, version) == ["r1"]
        assert not fence.enter()  # closed: new writes are refused from now on
        fence.leave()  # the write in flight answers
        assert fence.beat(db, "r1") == version and unfenced(db, version) == []
        _read_only(db, False)
        fence.beat(db, "r1")
        assert fence.enter()  # open again
        with db.session() as s:  # a process that stopped long ago is forgotten by the next sweep
            s.add(ReplicaBeat(replica="gone:1", beat_at=utcnow() - dt.timedelta(days=2)))
            s.commit()
        Fence().beat(db, "r2")
        with db.read_session() as s:
            assert s.get(ReplicaBeat, "gone:1") is None and s.get(ReplicaBeat, "r1") is not None
    finally:
        db.dispose()


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_a_replica_that_does_not_confirm_stops_the_restore_before_anything_changes(
        shop: Api, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    api = shop
    db: Database = api.c.app.state.db  # type: ignore[attr-defined]
    cfg = config(tmp_path)
    m = create_backup(cfg, db_url)
    later = place(api)[0]
    with db.session() as s:  # a live replica that keeps beating but never sees read-only (stuck request)
        s.add(ReplicaBeat(replica="stuck:1", beat_at=utcnow().replace(year=utcnow().year + 1), writes_in_flight=1))
        s.commit()
    monkeypatch.setattr(restore_mod, "FENCE_TIMEOUT_S", 1.0)
    with pytest.raises(RestoreFailed) as err:
        restore_backup(cfg, db, m.id)
    result = err.value.result
    assert result.status == "failed" and "stuck:1" in (result.error or "") and "nothing was restored" in result.error
    with db.read_session() as s:
        assert not is_on(s, "system.read_only")
    assert api.c.get(f"/api/v1/orders/{later['id']}", headers=api.h("customer")).status_code == 200


def test_a_failure_after_the_restore_stays_read_only_with_the_way_out(sqlite_url: str, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    old_url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Database(old_url)
    upgrade(old.engine, "0004")
    old.dispose()
    cfg = config(tmp_path)
    m = create_backup(cfg, old_url)
    def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("migration 0005 failed")

    monkeypatch.setattr(restore_mod, "upgrade", broken)
    db = Database(sqlite_url)
    try:
        with pytest.raises(RestoreFailed) as err:
            restore_backup(cfg, db, m.id)
        result = err.value.result
        assert result.status == "incomplete" and "migration 0005 failed" in (result.error or "")
        assert result.next_step and "waimai migrate" in result.next_step and result.safety_backup_id in result.next_step
        with db.read_session() as s:
            assert is_on(s, "system.read_only")  # the restored database does not take writes half-finished
        with db.read_session() as s:  # on record for the incident timeline, the way out included
            # (the restored schema predates the dispatcher's columns: read only what it has)
            [payload] = s.scalars(select(OutboxEvent.payload).where(OutboxEvent.topic == "backup.restore_failed")).all()
        assert payload["status"] == "incomplete" and payload["next_step"] == result.next_step
        assert (cfg.directory / "restores" / f"{result.id}.json").exists()
    finally:
        db.dispose()
