"""Issue #18 item 11 (this half): common passwords and the phone number itself are refused; a rider sees the
customer's full phone number only while carrying the order (before: `12345678` and the phone were accepted,
and riders saw full numbers of orders delivered days ago)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Api, make_settings
from tests.security.test_proof_code_limits import carried_order
from waimai.app import create_app
from waimai.core.security import password_problem

PHONE = "13700002001"


@pytest.mark.parametrize("password", ["12345678", "password", "iloveyou", "qwertyuiop", "Password1",
                                      PHONE, f"wm{PHONE}", "+86" + PHONE, "aaaaaaaaaa", "short1"])
def test_weak_passwords_are_refused_by_the_api(api: Api, password: str) -> None:
    r = api.c.post("/api/v1/users", json={"phone": PHONE, "name": "N", "role": "customer", "password": password},
                   headers=api.h("ops"))
    assert r.status_code == 422, r.text


def test_a_good_password_is_accepted_and_the_reason_is_given(api: Api) -> None:
    r = api.c.post("/api/v1/users", json={"phone": PHONE, "name": "N", "role": "customer", "password": "12345678x"},
                   headers=api.h("ops"))
    assert r.status_code == 201  # not on the list, not the phone: allowed (NIST: no composition rules)
    r = api.c.post("/api/v1/users", json={"phone": "13700002002", "name": "N", "role": "customer",
                                          "password": "123456789"}, headers=api.h("ops"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "password_weak"
    assert "common" in r.json()["error"]["message"]


def test_the_policy_in_one_place() -> None:
    assert password_problem("plum-kettle-93", phone=PHONE) is None
    assert password_problem("2001" + "x" * 8, phone=PHONE) is None  # four digits of the phone are fine
    assert password_problem("13700002", phone=PHONE) is not None  # a run of its digits is not
    assert "phone" in (password_problem(f"x{PHONE}x", phone=PHONE) or "")


def test_the_rider_sees_the_full_phone_only_while_carrying(db_url: str) -> None:
    with TestClient(create_app(make_settings(db_url), background=False)) as c:
        api = Api(c)
        oid, code = carried_order(api)
        rider = api.h("rider")
        assert api.c.get("/api/v1/riders/me/tasks", headers=rider).json()[0]["contact_phone"] == "13800000001"
        assert api.c.get(f"/api/v1/orders/{oid}", headers=rider).json()["contact_phone"] == "13800000001"
        done = api.c.post(f"/api/v1/orders/{oid}/deliver", json={"proof_code": code}, headers=rider)
        assert done.status_code == 200 and done.json()["contact_phone"] == "138****0001"
        assert api.c.get(f"/api/v1/orders/{oid}", headers=rider).json()["contact_phone"] == "138****0001"
        listed = api.c.get("/api/v1/orders", headers=rider).json()
        assert all(o["contact_phone"] == "138****0001" for o in listed if o["id"] == oid)
