"""Issue #18 item 6: a database error leaves no phone number, password hash or proof code in the JSON log
or in /api/v1/logs (before: `error.stack_trace` held the statement's parameters), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import structlog
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.conftest import Api
from waimai.core.logging import ScrubFilter, scrub_text
from waimai.core.security import hash_password
from waimai.platform.accounts.models import User

PHONE = "13912345678"


def _log_lines(api: Api) -> list[str]:
    path = Path(api.c.app.state.settings.log_file)  # type: ignore[attr-defined]
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def _refuse_boom_notes(api: Api) -> None:
    """Make the database itself refuse an order whose note is 'boom' (a real error, raised by the server)."""
    db = api.c.app.state.db  # type: ignore[attr-defined]
    with db.engine.begin() as conn:
        if db.dialect == "sqlite":
            conn.execute(text("CREATE TRIGGER boom BEFORE INSERT ON orders WHEN NEW.note = 'boom' "
                              "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"))
        else:
            conn.execute(text("ALTER TABLE orders ADD CONSTRAINT ck_orders_not_boom CHECK (note <> 'boom')"))


def test_a_failed_insert_leaves_no_phone_or_proof_code_in_the_log(api: Api) -> None:
    _refuse_boom_notes(api)
    quiet = Api(TestClient(api.c.app, raise_server_exceptions=False))  # type: ignore[attr-defined]
    quiet._tokens = api._tokens
    r = quiet.place(note="boom", contact_phone=PHONE)
    assert r.status_code == 500  # type: ignore[attr-defined]
    errors = [json.loads(ln) for ln in _log_lines(api) if '"unhandled_error"' in ln]
    assert errors, "the failure is logged"
    trace = errors[-1]["error"]["stack_trace"]
    assert "INSERT INTO orders" in trace  # the statement stays: it says what failed
    assert "[SQL parameters hidden due to hide_parameters=True]" in trace
    assert PHONE not in json.dumps(errors) and "proof_code': '" not in trace
    if api.c.app.state.db.dialect == "postgresql":  # type: ignore[attr-defined]
        assert "DETAIL: (hidden)" in trace  # "Failing row contains (… 13912345678 … 4821 …)" is gone
    found = api.c.get("/api/v1/logs", params={"text": "unhandled_error"}, headers=api.h("ops")).json()
    assert found and PHONE not in json.dumps(found)
    assert api.c.get("/api/v1/logs", params={"text": PHONE}, headers=api.h("ops")).json() == []


def test_a_unique_violation_leaves_no_hash_or_phone_in_the_log(api: Api) -> None:
    db = api.c.app.state.db  # type: ignore[attr-defined]
    pw_hash = hash_password("not-in-any-log-9")
    try:
        with db.session() as s:
            s.add(User(phone="13800000001", name="dup", role="customer", password_hash=pw_hash))
            s.flush()
    except DBAPIError:
        structlog.get_logger("test").exception("user_insert_failed")
    lines = [ln for ln in _log_lines(api) if "user_insert_failed" in ln]
    assert lines and "IntegrityError" in lines[-1]
    assert pw_hash not in lines[-1] and "$argon2id$v=" not in lines[-1] and "13800000001" not in lines[-1]


def test_the_scrubber_removes_what_drivers_put_in_messages() -> None:
    msg = ('(psycopg.errors.UniqueViolation) duplicate key value violates unique constraint "uq_users_phone"\n'
           "DETAIL:  Key (phone)=(13800000001) already exists.\n"
           "CONTEXT:  unnamed portal parameter $1 = '4821'\n"
           '[SQL: INSERT INTO users (phone) VALUES (%(phone)s)]\n'
           "[parameters: {'phone': '13800000001', 'password_hash': '$argon2id$v=19$m=19456,t=2,p=1$abc$def'}]\n"
           'invalid input syntax for type integer: "4821"')
    out = scrub_text(msg)
    for secret in ("13800000001", "4821", "$argon2id$v=19", "abc$def"):
        assert secret not in out
    assert "INSERT INTO users" in out and "uq_users_phone" in out


def test_standard_library_tracebacks_are_scrubbed_too() -> None:
    try:
        raise ValueError("[parameters: {'phone': '13800000001'}] $argon2id$v=19$m=1$aa$bb")
    except ValueError:
        import sys

        record = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "Exception in ASGI application",
                                   None, sys.exc_info())
    ScrubFilter().filter(record)
    text_out = logging.Formatter().format(record)
    assert "13800000001" not in text_out and "$argon2id$v=19" not in text_out and "ValueError" in text_out


def test_a_request_id_that_looks_like_a_phone_stays_whole(tmp_path: Path) -> None:
    """Request ids are searched whole in the console; a uuid hex with 11 digits in a row is not a phone."""
    from waimai.core import logging as wlogging

    f = tmp_path / "l.jsonl"
    wlogging.configure(json_lines=True, level="INFO", file=f)
    rid = "57bb1c51e13512348261a680bbf95532"
    structlog.contextvars.bind_contextvars(trace_id=rid)
    try:
        structlog.get_logger().info("order_placed", note="call 13912345678")
    finally:
        structlog.contextvars.unbind_contextvars("trace_id")
    doc = json.loads(f.read_text().splitlines()[-1])
    assert doc["trace"]["id"] == rid and doc["waimai"]["note"] == "call 139****5678"
