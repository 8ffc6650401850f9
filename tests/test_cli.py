"""The `waimai` command: migrate, seed, user create — with clear errors, never a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from waimai.cli import app
from waimai.config import get_settings

runner = CliRunner()


@pytest.fixture
def env(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("WAIMAI_DATABASE_URL", f"sqlite:///{tmp_path / 'sub' / 'cli.db'}")
    monkeypatch.setenv("WAIMAI_ENV", "development")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_migrate_seed_and_create_user(env) -> None:  # type: ignore[no-untyped-def]
    from waimai.core.migrate import head_revision

    r = runner.invoke(app, ["migrate"])
    assert r.exit_code == 0 and f"→ {head_revision()}" in r.output
    r = runner.invoke(app, ["seed"])
    assert r.exit_code == 0, r.output
    assert "11 merchants" in r.output and "13800000001" in r.output
    r = runner.invoke(app, ["seed"])
    assert "not seeding" in r.output
    r = runner.invoke(app, ["user", "create", "--phone", "13600000000", "--name", "Ops Two", "--role", "ops"],
                      input="a-long-password\na-long-password\n")
    assert r.exit_code == 0 and "created user" in r.output, r.output
    r = runner.invoke(app, ["user", "create", "--phone", "13600000000", "--name", "Dup", "--role", "ops"],
                      input="a-long-password\na-long-password\n")
    assert r.exit_code == 2 and "already exists" in r.output
    r = runner.invoke(app, ["user", "create", "--phone", "12", "--name", "x", "--role", "wizard"],
                      input="a-long-password\na-long-password\n")
    assert r.exit_code == 2 and "Traceback" not in r.output


@pytest.mark.parametrize("environment", ["production", "test", None])
def test_outside_development_the_default_secret_refuses_to_start(env, monkeypatch, environment) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("WAIMAI_SECRET_KEY", raising=False)
    if environment is None:  # no WAIMAI_ENV at all: production, not development
        monkeypatch.delenv("WAIMAI_ENV")
    else:
        monkeypatch.setenv("WAIMAI_ENV", environment)
    get_settings.cache_clear()
    r = runner.invoke(app, ["migrate"])
    assert r.exit_code == 2 and "WAIMAI_SECRET_KEY" in r.output
