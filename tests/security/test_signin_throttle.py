"""Issue #18 item 10: sign-in limits per phone and address, per phone, per address and for everyone, with an
alert; X-Forwarded-For believed only from configured proxies, by the app and by `waimai serve` alike
(before: one address tried 31 phones without a 429, and a forwarded header from any local peer reset it)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_settings
from tests.reliability.cluster import Replica, wait_until
from waimai.app import create_app


def phone(i: int) -> str:
    return f"1360000{i:04d}"


def attempt(c: Any, i: int, xff: str | None = None) -> int:
    """One failed sign-in for the i-th phone."""
    headers = {"X-Forwarded-For": xff} if xff else {}
    r = c.post("/api/v1/auth/login", json={"phone": phone(i), "password": "wrong-password"}, headers=headers)
    return int(r.status_code)


@pytest.fixture
def app_factory(db_url: str) -> Iterator[Any]:
    opened: list[TestClient] = []

    def make(peer: str = "192.0.2.10", **kw: Any) -> TestClient:
        c = TestClient(create_app(make_settings(db_url, **kw), background=False), client=(peer, 40000))
        c.__enter__()
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.__exit__(None, None, None)


def _ops(c: TestClient) -> dict[str, str]:
    tok = c.post("/api/v1/auth/login", json={"phone": "13800000009", "password": "waimai-demo"},
                 headers={"X-Forwarded-For": "198.51.100.99"}).json()["access_token"]
    return {"Authorization": f"Bearer {tok}"}


def test_one_address_trying_31_phones_is_stopped_and_alerted(app_factory: Any) -> None:
    c = app_factory()
    codes = [attempt(c, i) for i in range(31)]
    assert codes == [401] * 30 + [429]
    # Locked out by address: even a right password from here waits.
    r = c.post("/api/v1/auth/login", json={"phone": "13800000001", "password": "waimai-demo"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    ops = TestClient(c.app, client=("192.0.2.77", 40000))
    alerts = ops.get("/api/v1/security/alerts", headers=_ops(ops)).json()
    assert [(a["kind"], a["subject"], a["details"]["limit"]) for a in alerts] == \
        [("login_lockout", "address:192.0.2.10", "address")]


def test_forwarded_for_from_an_untrusted_peer_is_ignored(app_factory: Any) -> None:
    c = app_factory(peer="10.1.2.3")  # no trusted proxies configured (the default)
    codes = [attempt(c, i, xff=f"203.0.113.{i}") for i in range(31)]
    assert codes[-1] == 429 and codes[:30] == [401] * 30


def test_forwarded_for_from_a_trusted_proxy_names_the_client(app_factory: Any) -> None:
    c = app_factory(peer="10.0.0.2", trusted_proxies="10.0.0.0/8")
    # 40 clients behind the proxy, one failure each: nobody is locked out by address.
    assert {attempt(c, i, xff=f"203.0.113.{i}") for i in range(40)} == {401}
    # One client behind the proxy trying 31 phones is; spoofing a further hop in front does not help,
    # since the right-most untrusted entry is the one the proxy saw.
    codes = [attempt(c, 100 + i, xff=f"198.18.0.{i}, 203.0.113.200") for i in range(31)]
    assert codes == [401] * 30 + [429]
    # A trusted peer without the header is itself the client; an untrusted peer's header is still ignored.
    direct = TestClient(c.app, client=("172.16.5.5", 40000))
    assert attempt(direct, 999, xff="203.0.113.200") == 401


def test_one_phone_from_many_addresses_is_stopped(app_factory: Any) -> None:
    c = app_factory(peer="10.0.0.2", trusted_proxies="10.0.0.2")
    codes = [attempt(c, 7, xff=f"203.0.113.{i}") for i in range(11)]
    assert codes == [401] * 10 + [429]


def test_everyone_together_is_stopped_and_alerted(app_factory: Any) -> None:
    c = app_factory(peer="10.0.0.2", trusted_proxies="10.0.0.2", login_max_global=20)
    codes = [attempt(c, i, xff=f"203.0.113.{i}") for i in range(21)]
    assert codes == [401] * 20 + [429]
    kinds = {(a["kind"], a["subject"]) for a in c.get("/api/v1/security/alerts", headers=_ops_token(c)).json()}
    assert ("login_lockout", "everyone") in kinds


def _ops_token(c: TestClient) -> dict[str, str]:
    from waimai.core.security import issue_token

    return {"Authorization": "Bearer " + issue_token(secret=c.app.state.settings.secret_key, user_id=5,  # type: ignore[attr-defined]
                                                     role="ops", ttl_minutes=5)}


def test_a_right_password_does_not_reset_the_address_count(app_factory: Any) -> None:
    c = app_factory(login_max_per_address=5)
    assert [attempt(c, i) for i in range(4)] == [401] * 4
    assert c.post("/api/v1/auth/login", json={"phone": "13800000001", "password": "waimai-demo"}).status_code == 200
    assert [attempt(c, 10 + i) for i in range(2)] == [401, 429]


def test_waimai_serve_ignores_forwarded_for_from_a_local_peer(sqlite_template: Path, tmp_path: Path) -> None:
    """uvicorn by itself believes X-Forwarded-For from 127.0.0.1; `waimai serve` leaves that to the app."""
    db = tmp_path / "w.db"
    shutil.copy(sqlite_template, db)
    node = Replica("serve", f"sqlite:///{db}", tmp_path, roles="api",
                   env={"WAIMAI_LOGIN_MAX_PER_ADDRESS": "3"}).start()
    try:
        with httpx.Client(base_url=node.url, timeout=20) as http:
            assert wait_until(lambda: _ready(http), timeout=120, every=0.5), node.tail()
            codes = [attempt(http, i, xff=f"203.0.113.{i}") for i in range(4)]
        assert codes == [401, 401, 401, 429]
    finally:
        node.stop()


def _ready(http: httpx.Client) -> bool:
    try:
        return http.get("/readyz").status_code == 200
    except httpx.HTTPError:
        return False


def test_an_overlong_phone_on_the_sign_in_page_is_counted_not_a_500(app_factory: Any) -> None:
    c = app_factory()
    r = c.post("/login", data={"phone": "1" * 300, "password": "x"}, follow_redirects=False)
    # The sign-in form comes back in place with the error (the phone kept in the form, not put in a URL).
    assert r.status_code == 200 and 'class="flash err"' in r.text
    assert "1" * 21 not in r.text
