"""A bounded schemathesis run over /openapi.json: no generated request may cause a 5xx."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from starlette.testclient import TestClient

from tests.conftest import DEMO_ACCOUNTS, DEMO_PASSWORD, make_settings
from waimai.app import create_app
from waimai.platform.accounts.models import Role


@pytest.fixture(scope="module")
def fuzz_app(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    dst = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    shutil.copy(sqlite_template, dst)
    app = create_app(make_settings(f"sqlite:///{dst}", login_max_attempts=10_000), background=False)
    with TestClient(app) as c:
        r = c.post("/api/v1/auth/login", json={"phone": DEMO_ACCOUNTS[Role.ops][0], "password": DEMO_PASSWORD})
        yield app, r.json()["access_token"]


MAX_EXAMPLES = 12


def test_no_server_errors(fuzz_app: tuple[object, str]) -> None:
    """Every operation, a dozen generated requests each (derandomised so a failure reproduces)."""
    app, token = fuzz_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        op = result.ok()
        operations += 1
        if op.path == "/api/v1/auth/logout":  # would revoke the token every later operation runs with
            continue

        @given(case=op.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                  derandomize=True, database=None)
        def run(case) -> None:  # type: ignore[no-untyped-def]
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
