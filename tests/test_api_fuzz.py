"""A bounded schemathesis run over /openapi.json on SQLite and PostgreSQL: no generated request may cause a 5xx.

Besides schemathesis' own cases, a third of the examples carry a NUL byte in a string of the body or query and
a third a `null` where the body had a value: what a probe sends that the schema does not promise to take."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.conftest import DEMO_ACCOUNTS, DEMO_PASSWORD, make_settings
from waimai.app import create_app
from waimai.platform.accounts.models import Role


@pytest.fixture
def fuzz_app(db_url: str) -> Iterator[tuple[object, str, int]]:
    # schemathesis enters the lifespan again for its calls: the in-process bus (no listener thread to restart).
    app = create_app(make_settings(db_url, login_max_attempts=10_000, tracking_bus="memory"), background=False)
    with TestClient(app) as c:
        r = c.post("/api/v1/auth/login", json={"phone": DEMO_ACCOUNTS[Role.ops][0], "password": DEMO_PASSWORD})
        # Fewer examples on PostgreSQL (each statement a round trip): the suite stays within minutes.
        yield app, r.json()["access_token"], MAX_EXAMPLES if db_url.startswith("sqlite") else 6


MAX_EXAMPLES = 9


def _first_string(value: Any, put: Any) -> Any:
    """`value` with its first string (depth first) replaced by put(string); other values unchanged."""
    done = False

    def walk(v: Any) -> Any:
        nonlocal done
        if done:
            return v
        if isinstance(v, str):
            done = True
            return put(v)
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(value)


def mutate(case: Any, how: str) -> None:
    """NUL bytes into a string of the body (else the query), or null for the body's first field."""
    if how == "nul":
        if isinstance(case.body, dict | list):
            case.body = _first_string(case.body, lambda s: s[:3] + "\x00" + s[3:])
        elif case.query:
            case.query = _first_string(dict(case.query), lambda s: s + "\x00")
    elif how == "null" and isinstance(case.body, dict) and case.body:
        case.body = {**case.body, next(iter(case.body)): None}


def test_no_server_errors(fuzz_app: tuple[object, str, int]) -> None:
    """Every operation, a dozen generated requests each (derandomised so a failure reproduces)."""
    app, token, examples = fuzz_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        op = result.ok()
        operations += 1
        if op.path == "/api/v1/auth/logout":  # would revoke the token every later operation runs with
            continue

        @given(case=op.as_strategy(), how=st.sampled_from(["as_is", "nul", "null"]))
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck),
                  derandomize=True, database=None)
        def run(case, how) -> None:  # type: ignore[no-untyped-def]
            mutate(case, how)
            headers = {"Authorization": f"Bearer {token}"}
            if case.path == "/api/v1/orders" and case.method == "POST":
                headers["Idempotency-Key"] = "fuzz-" + str(abs(hash(repr(case.body))))
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.body!r:.200} -> "
                                f"{response.status_code}: {response.text[:200]}")
            elif response.status_code >= 400 and "error" not in response.json():
                failures.append(f"{case.method} {case.formatted_path}: error without the error shape")

        run()
    assert operations >= 20
    assert not failures, "\n".join(failures[:20])
