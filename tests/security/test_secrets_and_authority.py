"""Issue #18 item 7: no fail-open defaults, authority from the database, logout that revokes."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import delete, update

from tests.conftest import Api, make_settings
from waimai.app import create_app
from waimai.config import DEFAULT_GATEWAY_SECRET, DEFAULT_SECRET, Settings
from waimai.core.security import issue_token
from waimai.platform.accounts.models import User

GOOD_KEY, GOOD_GW = secrets.token_urlsafe(32), secrets.token_urlsafe(24)


def test_the_default_environment_is_production_and_refuses_the_published_keys(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for var in ("WAIMAI_ENV", "WAIMAI_SECRET_KEY", "WAIMAI_GATEWAY_SECRET"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir("/")  # no .env file either
    with pytest.raises(ValidationError, match="WAIMAI_SECRET_KEY"):
        Settings()
    assert Settings(env="development").secret_key == DEFAULT_SECRET  # explicit development still runs


@pytest.mark.parametrize("env", ["test", "production"])
def test_test_and_production_refuse_default_and_weak_secrets(env: str) -> None:
    for key in (DEFAULT_SECRET, "x" * 32, "x" * 64, "ab" * 24, "short-but-random-Zq81"):
        with pytest.raises(ValidationError, match="WAIMAI_SECRET_KEY"):
            Settings(env=env, secret_key=key, gateway_secret=GOOD_GW)  # type: ignore[arg-type]
    for gw in (DEFAULT_GATEWAY_SECRET, "y", "y" * 40, "abcabcabcabcabcabc"):
        with pytest.raises(ValidationError, match="WAIMAI_GATEWAY_SECRET"):
            Settings(env=env, secret_key=GOOD_KEY, gateway_secret=gw)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="WAIMAI_ALERT_INGEST_TOKEN"):
        Settings(env=env, secret_key=GOOD_KEY, gateway_secret=GOOD_GW, alert_ingest_token="t")  # type: ignore[arg-type]
    hex_key = secrets.token_hex(32)  # `openssl rand -hex 32`, as the deployment docs say
    assert Settings(env=env, secret_key=hex_key, gateway_secret=GOOD_GW).secret_key == hex_key  # type: ignore[arg-type]


def test_a_token_forged_with_the_published_key_or_for_a_missing_user_is_refused(api: Api) -> None:
    settings = api.c.app.state.settings  # type: ignore[attr-defined]
    forged = issue_token(secret=DEFAULT_SECRET, user_id=5, role="ops", ttl_minutes=60)
    assert api.c.get("/api/v1/ops/audit", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    ghost = issue_token(secret=settings.secret_key, user_id=424242, role="ops", ttl_minutes=60)
    assert api.c.get("/api/v1/ops/audit", headers={"Authorization": f"Bearer {ghost}"}).status_code == 401


@pytest.fixture
def fresh(db_url: str) -> Iterator[Api]:
    """The app with authority read from the database on every request (no cache), to see changes at once."""
    with TestClient(create_app(make_settings(db_url, authz_cache_s=0), background=False)) as c:
        yield Api(c)


def _new_user(api: Api, phone: str, role: str = "support") -> tuple[int, dict[str, str]]:
    r = api.c.post("/api/v1/users", json={"phone": phone, "name": "Temp", "role": role,
                                          "password": "plum-kettle-93"}, headers=api.h("ops"))
    assert r.status_code == 201, r.text
    tok = api.c.post("/api/v1/auth/login", json={"phone": phone, "password": "plum-kettle-93"}).json()
    return int(r.json()["id"]), {"Authorization": f"Bearer {tok['access_token']}"}


def test_a_demoted_user_loses_power_at_once(fresh: Api) -> None:
    uid, h = _new_user(fresh, "13700001001", role="support")
    assert fresh.c.get("/api/v1/tickets", headers=h).status_code == 200
    assert fresh.c.get("/api/v1/support/customers", params={"phone": "13800000001"}, headers=h).status_code == 200
    r = fresh.c.patch(f"/api/v1/users/{uid}", json={"role": "customer"}, headers=fresh.h("ops"))
    assert r.status_code == 200 and r.json()["role"] == "customer"
    # The old token is revoked by the role change.
    assert fresh.c.get("/api/v1/support/customers", params={"phone": "13800000001"}, headers=h).status_code == 401
    audit = fresh.c.get("/api/v1/ops/audit", headers=fresh.h("ops")).json()
    assert audit[0]["action"] == "user.change" and audit[0]["details"]["after"]["role"] == "customer"


def test_a_role_changed_in_the_database_is_what_the_token_gets(fresh: Api) -> None:
    uid, h = _new_user(fresh, "13700001002", role="support")
    with fresh.c.app.state.db.session() as s:  # type: ignore[attr-defined]
        s.execute(update(User).where(User.id == uid).values(role="customer"))
        s.commit()
    r = fresh.c.get("/api/v1/support/customers", params={"phone": "13800000001"}, headers=h)
    assert r.status_code == 403  # same token, the role the database says now
    assert fresh.c.get("/api/v1/me", headers=h).json()["role"] == "customer"


def test_deactivated_and_deleted_users_are_refused(fresh: Api) -> None:
    uid, h = _new_user(fresh, "13700001003", role="rider")
    assert fresh.c.get("/api/v1/me", headers=h).status_code == 200
    assert fresh.c.patch(f"/api/v1/users/{uid}", json={"is_active": False}, headers=fresh.h("ops")).status_code == 200
    assert fresh.c.get("/api/v1/me", headers=h).status_code == 401
    uid2, h2 = _new_user(fresh, "13700001004", role="customer")
    with fresh.c.app.state.db.session() as s:  # type: ignore[attr-defined]
        s.execute(delete(User).where(User.id == uid2))
        s.commit()
    assert fresh.c.get("/api/v1/me", headers=h2).status_code == 401


def test_only_ops_change_users(api: Api) -> None:
    for role in ("customer", "merchant", "rider", "support"):
        assert api.c.patch("/api/v1/users/1", json={"role": "ops"}, headers=api.h(role)).status_code == 403
    me = api.c.get("/api/v1/me", headers=api.h("ops")).json()["id"]
    r = api.c.patch(f"/api/v1/users/{me}", json={"role": "customer"}, headers=api.h("ops"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "user_self_change"


def test_ops_end_every_session_of_a_user(fresh: Api) -> None:
    uid, h = _new_user(fresh, "13700001005", role="customer")
    assert fresh.c.patch(f"/api/v1/users/{uid}", json={}, headers=fresh.h("ops")).status_code == 200
    assert fresh.c.get("/api/v1/me", headers=h).status_code == 401
    tok = fresh.c.post("/api/v1/auth/login", json={"phone": "13700001005", "password": "plum-kettle-93"}).json()
    assert fresh.c.get("/api/v1/me", headers={"Authorization": f"Bearer {tok['access_token']}"}).status_code == 200


def test_logout_revokes_the_token(api: Api) -> None:
    h = api.h("customer")
    assert api.c.get("/api/v1/me", headers=h).status_code == 200
    assert api.c.post("/api/v1/auth/logout", headers=h).status_code == 204
    assert api.c.get("/api/v1/me", headers=h).status_code == 401
    assert api.c.post("/api/v1/auth/logout", headers=h).status_code == 401


def test_page_logout_revokes_a_copied_cookie(sqlite_url: str) -> None:
    with TestClient(create_app(make_settings(sqlite_url), background=False)) as web:
        r = web.post("/login", data={"phone": "13800000001", "password": "waimai-demo"}, follow_redirects=False)
        stolen = r.cookies["waimai_token"]
        assert web.get("/api/v1/me", headers={"Authorization": f"Bearer {stolen}"}).status_code == 200
        web.post("/logout", follow_redirects=False)
        assert web.get("/api/v1/me", headers={"Authorization": f"Bearer {stolen}"}).status_code == 401
