"""Accounts: hashed passwords, signed tokens, rate-limited sign-in, role checks, audit."""

from __future__ import annotations

import secrets

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from tests.conftest import Api
from waimai.config import DEFAULT_GATEWAY_SECRET, DEFAULT_SECRET, Settings
from waimai.core.security import mask_phone, mask_phones_in_text
from waimai.platform.accounts.models import User


def test_passwords_are_argon2_hashes(api: Api) -> None:
    with api.c.app.state.db.read_session() as s:  # type: ignore[attr-defined]
        hashes = list(s.scalars(select(User.password_hash)))
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)


def test_login_rate_limited_after_failures(api: Api) -> None:
    for _ in range(5):
        r = api.c.post("/api/v1/auth/login", json={"phone": "13800000001", "password": "wrong"})
        assert r.status_code == 401
    r = api.c.post("/api/v1/auth/login", json={"phone": "13800000001", "password": "waimai-demo"})
    assert r.status_code == 429
    assert r.headers["retry-after"]


def test_tampered_or_missing_token_is_401(api: Api) -> None:
    tok = api.token("customer")
    assert api.c.get("/api/v1/me", headers={"Authorization": f"Bearer {tok[:-3]}abc"}).status_code == 401
    assert api.c.get("/api/v1/me").status_code == 401
    me = api.c.get("/api/v1/me", headers=api.h("customer")).json()
    assert me["role"] == "customer" and me["phone_masked"] == "138****0001"


def test_only_ops_create_users_and_it_is_audited(api: Api) -> None:
    body = {"phone": "13912345678", "name": "New", "role": "rider", "password": "long-enough-pw"}
    for role in ("customer", "merchant", "rider", "support"):
        assert api.c.post("/api/v1/users", json=body, headers=api.h(role)).status_code == 403
    r = api.c.post("/api/v1/users", json=body, headers=api.h("ops"))
    assert r.status_code == 201
    assert api.c.post("/api/v1/users", json=body, headers=api.h("ops")).status_code == 409
    audit = api.c.get("/api/v1/ops/audit", headers=api.h("ops")).json()
    assert audit[0]["action"] == "user.create"
    assert api.c.get("/api/v1/ops/audit", headers=api.h("customer")).status_code == 403


def test_merchant_staff_need_an_existing_shop(api: Api) -> None:
    body = {"phone": "13912345679", "name": "x", "role": "merchant", "password": "long-enough-pw",
            "merchant_id": 9999}
    r = api.c.post("/api/v1/users", json=body, headers=api.h("ops"))
    assert r.status_code == 422


def test_merchant_can_only_manage_own_shop(api: Api) -> None:
    assert api.c.post("/api/v1/merchants/2/status", json={"status": "paused"},
                      headers=api.h("merchant")).status_code == 403
    r = api.c.post("/api/v1/merchants/1/status", json={"status": "paused"}, headers=api.h("merchant"))
    assert r.status_code == 200 and r.json()["status"] == "paused"
    assert api.c.patch("/api/v1/items/9", json={"stock": 0}, headers=api.h("merchant")).status_code == 403
    r = api.c.patch("/api/v1/items/5", json={"stock": 0}, headers=api.h("merchant"))
    assert r.status_code == 200 and r.json()["sold_out"] is True


def test_phone_masking() -> None:
    assert mask_phone("13812341234") == "138****1234"
    assert mask_phones_in_text("call 13812341234 or +8613912345678") == "call 138****1234 or +86139****5678"


def test_production_refuses_default_secrets() -> None:
    with pytest.raises(ValidationError, match="WAIMAI_SECRET_KEY"):
        Settings(env="production", secret_key=DEFAULT_SECRET)
    with pytest.raises(ValidationError, match="GATEWAY_SECRET"):
        Settings(env="production", secret_key=secrets.token_urlsafe(32), gateway_secret=DEFAULT_GATEWAY_SECRET)
    assert Settings(env="production", secret_key=secrets.token_urlsafe(32),
                    gateway_secret=secrets.token_urlsafe(24)).env == "production"
