"""A nearly full backup disk: the backup is refused before anything is written, an alert opens an
incident ahead of the failure, and all is well again once there is room."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.conftest import Api, make_settings
from waimai.app import create_app
from waimai.firewall.recovery.backup import CHAOS_FILL


def test_disk_nearly_full(sqlite_url: str, tmp_path: Path) -> None:
    app = create_app(make_settings(sqlite_url, backup_dir=str(tmp_path / "b"), chaos=True), background=False)
    with TestClient(app) as c:
        api = Api(c)
        assert c.put("/api/v1/chaos/disk", json={"leave_mb": 5}, headers=api.h("customer")).status_code == 403
        r = c.put("/api/v1/chaos/disk", json={"leave_mb": 5}, headers=api.h("ops"))
        assert r.status_code == 200 and r.json()["free_mb"][0] <= 5
        r = c.post("/api/v1/backups", json={}, headers=api.h("ops"))
        assert r.status_code == 507 and r.json()["error"]["code"] == "backup_disk_full"
        assert "waimai backup prune" in r.json()["error"]["message"]
        assert not list((tmp_path / "b").glob("*.manifest.json")) and not list((tmp_path / "b").glob(".*staging"))
        watch = next(j for j in app.state.scheduler.loops["notifier"].jobs if j.name == "backup_disk_watch")
        watch.fn()
        [inc] = c.get("/api/v1/incidents", headers=api.h("ops")).json()
        assert inc["alerts"][0]["name"] == "BackupDiskNearlyFull" and not inc["public"]
        c.put("/api/v1/chaos/disk", json={"leave_mb": None}, headers=api.h("ops"))
        assert c.post("/api/v1/backups", json={"verify": False}, headers=api.h("ops")).status_code == 201
        watch.fn()
        detail = c.get(f"/api/v1/incidents/{inc['id']}", headers=api.h("ops")).json()
        assert detail["status"] == "monitoring"
    CHAOS_FILL.clear()


def test_disk_chaos_is_off_by_default(sqlite_url: str, tmp_path: Path) -> None:
    app = create_app(make_settings(sqlite_url, backup_dir=str(tmp_path / "b")), background=False)
    with TestClient(app) as c:
        api = Api(c)
        assert c.put("/api/v1/chaos/disk", json={"leave_mb": 5}, headers=api.h("ops")).status_code == 404
