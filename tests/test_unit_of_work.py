"""One unit of work (waimai.core.uow): handlers never commit, and a request's work is stored all or nothing,
before its reply.

The structural test walks the package with `ast`; the behaviour tests drive real requests through the app
on SQLite and PostgreSQL and read the database from a connection of their own.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, select, update
from sqlalchemy.orm import Session

from waimai.app import create_app
from waimai.core import uow
from waimai.core.database import Database
from waimai.core.deps import SessionDep
from waimai.core.errors import Conflict
from waimai.platform.catalog.models import Merchant

ROOT = Path(__file__).resolve().parents[1] / "waimai"
ROUTE_DECORATORS = {"get", "post", "put", "patch", "delete", "api_route", "route", "websocket"}


def _is_handler_module(path: Path) -> bool:
    rel = path.relative_to(ROOT)
    return path.name.endswith("routes.py") or rel.parts[0] == "web"


def _is_route(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for dec in fn.decorator_list:
        call = dec.func if isinstance(dec, ast.Call) else dec
        if isinstance(call, ast.Attribute) and call.attr in ROUTE_DECORATORS:
            return True
    return False


def _commits(fn: ast.AST) -> list[int]:
    return [n.lineno for n in ast.walk(fn)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "commit"]


def handler_commits(source: str, *, handler_module: bool) -> list[tuple[str, int]]:
    """(function, line) of every `.commit()` in a handler: any function of a routes or page module, and any
    function decorated as a route wherever it lives."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (handler_module or _is_route(node)):
            found += [(node.name, line) for line in _commits(node)]
    return sorted(set(found))


def _unexplained_checkpoints(source: str) -> list[int]:
    bad = []
    for n in ast.walk(ast.parse(source)):
        if (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute | ast.Name)
                and (n.func.attr if isinstance(n.func, ast.Attribute) else n.func.id) == "checkpoint"):
            why = [k.value for k in n.keywords if k.arg == "why"]
            if not (why and isinstance(why[0], ast.Constant) and str(why[0].value).strip()):
                bad.append(n.lineno)
    return bad


def _sources() -> Iterator[tuple[Path, str]]:
    for path in sorted(ROOT.rglob("*.py")):
        yield path, path.read_text(encoding="utf-8")


def test_the_walker_finds_a_commit_in_a_handler() -> None:
    route = ("@router.post('/x')\ndef x(db):\n    db.commit()\n"
             "def helper(db):\n    db.commit()\n")
    assert handler_commits(route, handler_module=False) == [("x", 3)]
    assert handler_commits(route, handler_module=True) == [("helper", 5), ("x", 3)]
    nested = "def page(request):\n    with s() as db:\n        def inner():\n            db.commit()\n"
    assert handler_commits(nested, handler_module=True) == [("inner", 4), ("page", 4)]
    assert _unexplained_checkpoints("uow.checkpoint(db)\nuow.checkpoint(db, why='stored first')\n") == [1]


def test_no_route_or_page_handler_commits() -> None:
    bad = [f"{path.relative_to(ROOT.parent)}:{line} in {name}()"
           for path, source in _sources()
           for name, line in handler_commits(source, handler_module=_is_handler_module(path))]
    assert not bad, ("handlers must not commit: the request's unit of work does (waimai.core.uow); "
                     "commit midway with uow.checkpoint(session, why=...):\n" + "\n".join(bad))


# The only places that end a transaction: the unit of work itself, and the group writer (placement's savepoints,
# committed many per transaction on its own thread).
OWNERS = {"core/uow.py", "core/writer.py"}


def test_services_jobs_and_commands_never_commit_either() -> None:
    bad = [f"{path.relative_to(ROOT.parent)}:{n.lineno}" for path, source in _sources()
           if str(path.relative_to(ROOT)) not in OWNERS
           for n in ast.walk(ast.parse(source))
           if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in ("commit", "rollback")
           and not n.args and not n.keywords]
    assert not bad, ("commit or roll back through waimai.core.uow (unit_of_work, checkpoint), or a savepoint "
                     "(session.begin_nested()) for a part that may fail alone:\n" + "\n".join(bad))


def test_pages_call_services_not_api_routes() -> None:
    """A page that called an API route function got that route's commits, checks and answers by accident; pages
    and routes share services (flows, views) instead."""
    bad = []
    for path, source in _sources():
        if path.relative_to(ROOT).parts[0] != "web":
            continue
        for n in ast.walk(ast.parse(source)):
            names = ([n.module or ""] + [f"{n.module}.{a.name}" for a in n.names] if isinstance(n, ast.ImportFrom)
                     else [a.name for a in n.names] if isinstance(n, ast.Import) else [])
            if any(x.startswith("waimai.") and not x.startswith("waimai.web") and x.split(".")[-1].endswith("routes")
                   for x in names):
                bad.append(f"{path.relative_to(ROOT.parent)}:{n.lineno}")
    assert not bad, "pages importing API route modules:\n" + "\n".join(bad)


def test_every_checkpoint_says_why() -> None:
    bad = [f"{path.relative_to(ROOT.parent)}:{line}" for path, source in _sources()
           for line in _unexplained_checkpoints(source)]
    assert not bad, "uow.checkpoint without a why=... text:\n" + "\n".join(bad)


# --- behaviour -----------------------------------------------------------------------------------------

def _probe_router(calls: list[str]) -> APIRouter:
    """Two handlers that write a merchant's name: one returns, one raises after the write."""
    router = APIRouter(prefix="/api/v1/uow-probe")

    @router.post("/ok/{merchant_id}")
    def ok(merchant_id: int, db: SessionDep) -> dict[str, str]:
        m = db.get(Merchant, merchant_id)
        assert m is not None
        m.name = "uow-committed"
        db.flush()
        calls.append("handler")
        return {"name": m.name}

    @router.post("/fail/{merchant_id}")
    def fail(merchant_id: int, db: SessionDep) -> None:
        m = db.get(Merchant, merchant_id)
        assert m is not None
        m.name = "uow-rolled-back"
        db.flush()
        raise Conflict("refused after writing", code="probe_conflict")

    return router


@pytest.fixture
def app(settings):  # type: ignore[no-untyped-def]
    return create_app(settings, background=False)


@pytest.fixture
def probed(app) -> Iterator[tuple[TestClient, list[str]]]:  # type: ignore[no-untyped-def]
    calls: list[str] = []
    app.include_router(_probe_router(calls))
    with TestClient(app) as client:
        yield client, calls


def _name_from_another_connection(url: str, merchant_id: int) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(select(Merchant.name).where(Merchant.id == merchant_id)).scalar_one())
    finally:
        engine.dispose()


def _a_merchant(url: str) -> tuple[int, str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(select(Merchant.id, Merchant.name).order_by(Merchant.id).limit(1)).one()
            return int(row[0]), str(row[1])
    finally:
        engine.dispose()


def test_a_handler_that_raises_after_writing_leaves_nothing(probed, db_url) -> None:  # type: ignore[no-untyped-def]
    client, _ = probed
    merchant_id, name = _a_merchant(db_url)
    r = client.post(f"/api/v1/uow-probe/fail/{merchant_id}")
    assert r.status_code == 409 and r.json()["error"]["code"] == "probe_conflict"
    assert _name_from_another_connection(db_url, merchant_id) == name


def test_a_successful_write_is_stored_before_the_reply(probed, db_url) -> None:  # type: ignore[no-untyped-def]
    client, calls = probed
    merchant_id, _ = _a_merchant(db_url)
    seen: list[str] = []
    # Read from another connection the moment the reply's first bytes are on their way: the commit must
    # already have happened (a dependency of the default "request" scope would commit only afterwards).
    with client.stream("POST", f"/api/v1/uow-probe/ok/{merchant_id}") as r:
        seen.append(_name_from_another_connection(db_url, merchant_id))
        assert r.status_code == 200
    assert calls == ["handler"]
    assert seen == ["uow-committed"]


def test_a_commit_the_database_refuses_is_an_error_reply(app, db_url) -> None:  # type: ignore[no-untyped-def]
    """The commit itself fails (here a primary-key clash sent just before COMMIT): the client gets a 5xx, not
    the handler's success, and the handler's own write is not stored."""
    router = APIRouter(prefix="/api/v1/uow-probe")

    @router.post("/late-failure/{merchant_id}")
    def late(merchant_id: int, db: SessionDep) -> dict[str, bool]:
        m = db.get(Merchant, merchant_id)
        assert m is not None
        m.name = "uow-never-stored"

        @event.listens_for(db, "before_commit")
        def _clash(session: Session) -> None:
            other = session.scalar(select(Merchant.id).where(Merchant.id != merchant_id).limit(1))
            session.execute(update(Merchant).where(Merchant.id == other).values(id=merchant_id))

        return {"stored": True}

    app.include_router(router)
    merchant_id, name = _a_merchant(db_url)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post(f"/api/v1/uow-probe/late-failure/{merchant_id}")
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
    assert _name_from_another_connection(db_url, merchant_id) == name


def test_after_commit_follows_the_stored_work_and_never_rolled_back_work(db_url) -> None:  # type: ignore[no-untyped-def]
    database = Database(db_url)
    merchant_id, name = _a_merchant(db_url)
    seen: list[str] = []
    try:
        with uow.unit_of_work(database) as s:
            m = s.get(Merchant, merchant_id)
            assert m is not None
            m.name = "uow-after"
            uow.after_commit(s, lambda: seen.append(_name_from_another_connection(db_url, merchant_id)))
            assert seen == []  # not while the work is open
        assert seen == ["uow-after"]  # run after the commit: another connection already reads the change
        with pytest.raises(RuntimeError), uow.unit_of_work(database) as s:
            m = s.get(Merchant, merchant_id)
            assert m is not None
            m.name = "uow-dropped"
            uow.after_commit(s, lambda: seen.append("never"))
            raise RuntimeError("fails after writing")
        assert seen == ["uow-after"]
        assert _name_from_another_connection(db_url, merchant_id) == "uow-after"
    finally:
        database.dispose()
    assert name != "uow-after"


def test_a_checkpoint_keeps_what_came_before_it_when_the_rest_fails(db_url) -> None:  # type: ignore[no-untyped-def]
    database = Database(db_url)
    merchant_id, _ = _a_merchant(db_url)
    try:
        with pytest.raises(RuntimeError), uow.unit_of_work(database) as s:
            m = s.get(Merchant, merchant_id)
            assert m is not None
            m.name = "uow-kept"
            uow.checkpoint(s, why="the first part must be stored whatever follows")
            m.name = "uow-lost"
            s.flush()
            raise RuntimeError("the rest fails")
        assert _name_from_another_connection(db_url, merchant_id) == "uow-kept"
        with database.session() as s, pytest.raises(ValueError, match="why"):
            uow.checkpoint(s, why=" ")
    finally:
        database.dispose()
