"""Shared fixtures: a fresh migrated + seeded database per test, on SQLite and on PostgreSQL.

A template database is migrated and seeded once per run; each test gets a copy (a file copy for
SQLite, CREATE DATABASE ... TEMPLATE for PostgreSQL), so tests never see each other's writes.
With CI=true the PostgreSQL run is required; elsewhere it is skipped with a message when no
server answers at WAIMAI_TEST_PG (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from waimai.app import create_app
from waimai.config import Settings
from waimai.core.database import Database
from waimai.core.migrate import upgrade
from waimai.seed import DEMO_ACCOUNTS, DEMO_PASSWORD, seed_demo

# WAIMAI_ENV=test refuses the published development keys: every run signs with keys of its own, also
# inherited by the servers tests start in other processes.
TEST_SECRET_KEY = os.environ.setdefault("WAIMAI_SECRET_KEY", secrets.token_urlsafe(32))
TEST_GATEWAY_SECRET = os.environ.setdefault("WAIMAI_GATEWAY_SECRET", secrets.token_urlsafe(24))
PG_ADMIN = os.environ.get("WAIMAI_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"
_RUN = uuid.uuid4().hex[:8]


def _pg_available() -> str | None:
    try:
        eng = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with eng.connect() as c:
            c.execute(text("select 1"))
        eng.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
        return f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:120]}"


def _pg_url(dbname: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + dbname


def _pg_exec(sql: str) -> None:
    eng = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(sql))
    eng.dispose()


def _build_template(url: str) -> None:
    db = Database(url)
    upgrade(db.engine)
    with db.session() as s:
        seed_demo(s)
        s.commit()
    db.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    _build_template(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    reason = _pg_available()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI=true requires PostgreSQL at {PG_ADMIN}: {reason}")
        pytest.skip(f"PostgreSQL not reachable ({reason}); set WAIMAI_TEST_PG to run these tests on it")
    name = f"waimai_tpl_{_RUN}"
    _pg_exec(f'DROP DATABASE IF EXISTS "{name}"')
    _pg_exec(f'CREATE DATABASE "{name}"')
    _build_template(_pg_url(name))
    yield name
    _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh seeded database URL, once per backend."""
    if request.param == "sqlite":
        tpl: Path = request.getfixturevalue("sqlite_template")
        dst = tmp_path / "waimai.db"
        shutil.copy(tpl, dst)
        yield f"sqlite:///{dst}"
        return
    tpl_name: str = request.getfixturevalue("pg_template")
    name = f"waimai_t_{_RUN}_{uuid.uuid4().hex[:8]}"
    _pg_exec(f'CREATE DATABASE "{name}" TEMPLATE "{tpl_name}"')
    yield _pg_url(name)
    _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """SQLite only, for tests about pages and flows rather than the data layer."""
    dst = tmp_path / "waimai.db"
    shutil.copy(sqlite_template, dst)
    return f"sqlite:///{dst}"


def make_settings(url: str, **kw: object) -> Settings:
    scratch = Path(tempfile.mkdtemp(prefix="waimai-test-"))
    kw.setdefault("metrics_url", f"sqlite:///{scratch / 'metrics.db'}")
    kw.setdefault("log_file", str(scratch / "waimai.jsonl"))
    kw.setdefault("spool_path", str(scratch / "order-spool.db"))
    kw.setdefault("log_level", "WARNING")
    kw.setdefault("gateway_url", "http://127.0.0.1:9")
    return Settings(env="test", database_url=url, log_json=True, **kw)  # type: ignore[arg-type]


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, background=False)
    with TestClient(app) as c:
        yield c


class Api:
    """A thin helper around TestClient that signs in as the demo accounts."""

    def __init__(self, client: TestClient) -> None:
        self.c = client
        self._tokens: dict[str, str] = {}

    def token(self, role: str) -> str:
        if role not in self._tokens:
            phone = {r.value: p for r, (p, _n) in DEMO_ACCOUNTS.items()}[role]
            r = self.c.post("/api/v1/auth/login", json={"phone": phone, "password": DEMO_PASSWORD})
            assert r.status_code == 200, r.text
            self._tokens[role] = r.json()["access_token"]
        return self._tokens[role]

    def h(self, role: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role)}", **extra}

    def place(self, role: str = "customer", key: str | None = None, **body: object) -> object:
        payload = {"merchant_id": 1, "delivery_point_id": 1, "items": [{"item_id": 5, "quantity": 2}],
                   "payment_method": "cod"}
        payload.update(body)
        return self.c.post("/api/v1/orders", json=payload,
                           headers=self.h(role, **{"Idempotency-Key": key or uuid.uuid4().hex}))


@pytest.fixture
def api(client: TestClient) -> Api:
    return Api(client)
