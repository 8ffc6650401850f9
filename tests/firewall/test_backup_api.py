"""The ops API under /api/v1/backups (ops only, audited, restore needs the id repeated) and the
`waimai backup` command (clear errors, never a traceback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.conftest import Api, make_settings
from tests.firewall.backup_support import place
from waimai.app import create_app
from waimai.cli import app as cli
from waimai.config import get_settings
from waimai.firewall.recovery import artefact

runner = CliRunner()


@pytest.fixture
def ops_api(sqlite_url: str, tmp_path: Path) -> Iterator[Api]:
    app = create_app(make_settings(sqlite_url, backup_dir=str(tmp_path / "backups")), background=False)
    with TestClient(app) as c:
        yield Api(c)


def _actions(api: Api) -> list[str]:
    r = api.c.get("/api/v1/ops/audit", headers=api.h("ops"))
    assert r.status_code == 200
    return [e["action"] for e in r.json()]


def test_backups_api(ops_api: Api) -> None:
    api = ops_api
    assert api.c.get("/api/v1/backups", headers=api.h("customer")).status_code == 403
    assert api.c.get("/api/v1/backups").status_code == 401
    assert api.c.post("/api/v1/backups", json={}, headers=api.h("merchant")).status_code == 403

    r = api.c.post("/api/v1/backups", json={"note": "before the menu change"}, headers=api.h("ops"))
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["status"] == "complete" and m["verification"]["status"] == "passed" and m["note"]
    assert "backup.create" in _actions(api)
    assert [b["id"] for b in api.c.get("/api/v1/backups", headers=api.h("ops")).json()] == [m["id"]]
    assert api.c.get(f"/api/v1/backups/{m['id']}", headers=api.h("ops")).json()["sha256"] == m["sha256"]
    r = api.c.get("/api/v1/backups/zzzz-none", headers=api.h("ops"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "backup_not_found"
    assert api.c.get("/api/v1/backups/bad id!", headers=api.h("ops")).status_code == 422

    r = api.c.post(f"/api/v1/backups/{m['id']}/verify", headers=api.h("ops"))
    assert r.status_code == 200 and r.json()["verification"]["status"] == "passed"
    assert "backup.verify" in _actions(api)

    later = place(api)[0]
    r = api.c.post(f"/api/v1/backups/{m['id']}/restore", json={}, headers=api.h("ops"))
    assert r.status_code == 422  # no confirmation
    r = api.c.post(f"/api/v1/backups/{m['id']}/restore", json={"confirm": "yes"}, headers=api.h("ops"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "confirmation_required"
    assert "backup.restore_refused" in _actions(api)
    r = api.c.post(f"/api/v1/backups/{m['id']}/restore", json={"confirm": m["id"]}, headers=api.h("ops"))
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["status"] == "restored" and res["orders_new"] == 1
    assert res["orders_after_backup"][0]["number"] == later["number"]
    actions = _actions(api)
    # the restore is on the audit log, and the entries written after the backup were carried over it
    assert {"backup.restore", "backup.restore_refused", "backup.verify"} <= set(actions)
    assert [x["id"] for x in api.c.get("/api/v1/backups/restores", headers=api.h("ops")).json()] == [res["id"]]
    r = api.c.post("/api/v1/backups/prune?dry_run=true", headers=api.h("ops"))
    assert r.status_code == 200 and r.json()["dry_run"] is True


@pytest.fixture
def env(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("WAIMAI_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("WAIMAI_BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.setenv("WAIMAI_ENV", "test")
    monkeypatch.delenv("WAIMAI_BACKUP_ENCRYPTION_KEY", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "backups"
    get_settings.cache_clear()


def _ok(args: list[str], code: int = 0) -> str:
    r = runner.invoke(cli, args)
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    return r.output


def _only_id(directory: Path) -> str:
    return next(p.name for p in directory.glob("*.manifest.json")).removesuffix(".manifest.json")


def test_backup_command(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _ok(["backup", "create"])
    assert "passed" in out and "complete" in out and "integrity" in out
    bid = _only_id(env)
    assert bid in _ok(["backup", "list"])
    assert "newest order" in _ok(["backup", "verify", bid[:10]])
    assert "No backup 'nope-1234'" in _ok(["backup", "verify", "nope-1234"], 2)
    out = _ok(["backup", "restore", bid, "--yes"])
    assert "Restored backup" in out and "safety backup" in out and ".csv" in out
    from sqlalchemy import create_engine, text

    from waimai.app import create_app

    service = create_app(get_settings(), background=False)  # the service's worker leader delivers the restore's event
    service.state.events.run_once()
    service.state.db.dispose()
    eng = create_engine(get_settings().database_url)
    with eng.connect() as con:  # the restore is on record: an internal incident, since none was open
        kinds = [r[0] for r in con.execute(text("SELECT kind FROM incident_events ORDER BY id"))]
    eng.dispose()
    assert "restore" in kinds
    assert "Nothing restored" in runner.invoke(cli, ["backup", "restore", bid], input="n\n").output
    assert "Kept" in _ok(["backup", "prune", "--dry-run"])

    art = next(env.glob(f"{bid}.sqlite.*"))
    art.write_bytes(art.read_bytes()[:-10] + b"0123456789")
    out = _ok(["backup", "restore", bid, "--yes"], 2)
    assert "does not match its sha256" in out
    out = _ok(["backup", "verify", bid], 1)
    assert "FAILED" in out and "copy in local" in out

    key = _ok(["backup", "keygen"]).strip()
    assert len(artefact.parse_key(key)) == 32
    monkeypatch.setenv("WAIMAI_BACKUP_ENCRYPTION_KEY", key)
    get_settings.cache_clear()
    out = _ok(["backup", "create", "--no-verify", "--note", "encrypted"])
    assert "unverified" in out and "yes, key" in out
    enc = [p for p in env.glob("*.aes")]
    assert len(enc) == 1
    monkeypatch.delenv("WAIMAI_BACKUP_ENCRYPTION_KEY")
    get_settings.cache_clear()
    enc_id = enc[0].name.split(".", 1)[0]
    out = _ok(["backup", "restore", enc_id, "--yes"], 2)
    assert "is encrypted" in out and key not in out
    monkeypatch.setenv("WAIMAI_BACKUP_ENCRYPTION_KEY", "too-short")
    get_settings.cache_clear()
    out = _ok(["backup", "list"], 2)
    assert "32 random bytes" in out and "too-short" not in out


def test_backups_console_page(ops_api: Api) -> None:
    c = ops_api.c
    c.cookies.set("waimai_token", ops_api.token("ops"))
    c.cookies.set("waimai_lang", "en")  # pages speak one language (zh-CN by default); read this one in English
    r = c.post("/ops/backups", data={"note": "from the console"}, follow_redirects=False)
    assert r.status_code == 303 and "msg=" in r.headers["location"], r.headers["location"]
    page = c.get("/ops/backups")
    assert page.status_code == 200 and "from the console" in page.text and "data-backup=" in page.text
    bid = page.text.split('data-backup="', 1)[1].split('"', 1)[0]
    r = c.post(f"/ops/backups/{bid}/verify", follow_redirects=False)
    assert "msg=" in r.headers["location"]
    r = c.post(f"/ops/backups/{bid}/restore", data={"confirm": "nope"}, follow_redirects=False)
    assert "err=" in r.headers["location"]  # the id must be typed again
    r = c.post(f"/ops/backups/{bid}/restore", data={"confirm": bid}, follow_redirects=False)
    assert "msg=" in r.headers["location"] and "Restored" in c.get(r.headers["location"]).text
    assert "restored" in c.get("/ops/backups").text
    c.cookies.set("waimai_token", ops_api.token("customer"))
    assert c.get("/ops/backups", follow_redirects=False).status_code == 303
