"""Alembic: migrations build the schema from empty, match the models, and gate readiness."""

from __future__ import annotations

import uuid

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient

from tests.conftest import _pg_exec, _pg_url, make_settings
from waimai.app import create_app
from waimai.core.database import make_engine
from waimai.core.migrate import current_revision, head_revision, is_current, upgrade
from waimai.models import Base


def _fresh_url(db_url: str, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if db_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'empty.db'}"
    name = f"waimai_empty_{uuid.uuid4().hex[:8]}"
    _pg_exec(f'CREATE DATABASE "{name}"')
    return _pg_url(name)


def test_upgrade_from_empty_matches_models(db_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = _fresh_url(db_url, tmp_path)
    engine = make_engine(url)
    assert current_revision(engine) is None and not is_current(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    upgrade(engine)  # idempotent
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
    engine.dispose()
    if not url.startswith("sqlite"):
        _pg_exec(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[-1]}" WITH (FORCE)')
    assert diff == [], f"models and migrations disagree: {diff}"


def test_readyz_reports_pending_migrations(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'unmigrated.db'}"
    with TestClient(create_app(make_settings(url), background=False)) as c:
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["database"] == "migrations pending"
        assert c.get("/livez").status_code == 200
        upgrade(c.app.state.db.engine)  # type: ignore[attr-defined]
        assert c.get("/readyz").status_code == 200
