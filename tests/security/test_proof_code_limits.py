"""Issue #18 item 4: the 4-digit delivery proof code cannot be brute-forced (SQLite and PostgreSQL).

Before the fix, 300 wrong codes in a row were all answered 422 and the whole space fell in ~31 s."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.conftest import Api, make_settings
from tests.servers import serve
from waimai.app import create_app
from waimai.platform.delivery.proof import ProofAttempt


def carried_order(api: Api, rider_id: int = 1) -> tuple[int, str]:
    """An order picked up by the demo rider (rider 1), with its proof code."""
    o = api.place().json()  # type: ignore[attr-defined]
    for action in ("accept", "preparing", "ready"):
        assert api.c.post(f"/api/v1/orders/{o['id']}/{action}", headers=api.h("merchant")).status_code == 200
    assert api.c.post(f"/api/v1/orders/{o['id']}/assign", json={"rider_id": rider_id},
                      headers=api.h("ops")).status_code == 200
    assert api.c.post(f"/api/v1/orders/{o['id']}/pickup", headers=api.h("rider")).status_code == 200
    return int(o["id"]), str(o["proof_code"])


def wrong_codes(right: str) -> Iterator[str]:
    return (f"{n:04d}" for n in range(10000) if f"{n:04d}" != right)


def deliver(api: Api, oid: int, code: str) -> httpx.Response:
    return api.c.post(f"/api/v1/orders/{oid}/deliver", json={"proof_code": code}, headers=api.h("rider"))


def test_brute_force_locks_the_order_and_alerts(api: Api) -> None:
    oid, right = carried_order(api)
    guesses = wrong_codes(right)
    answers = [deliver(api, oid, next(guesses)) for _ in range(5)]
    assert [r.status_code for r in answers] == [422, 422, 422, 422, 423]
    assert answers[0].json()["error"]["details"]["attempts_left"] == 4
    locked = answers[-1].json()["error"]
    assert locked["code"] == "proof_locked" and "support" in locked["message"]
    # Locked: even the right code is refused now, so guessing further is pointless.
    for code in (next(guesses), right):
        r = deliver(api, oid, code)
        assert r.status_code == 423 and r.json()["error"]["code"] == "proof_locked"
    assert api.c.get(f"/api/v1/orders/{oid}", headers=api.h("ops")).json()["status"] == "picked_up"
    alerts = api.c.get("/api/v1/security/alerts", headers=api.h("ops")).json()
    assert [(a["kind"], a["subject"]) for a in alerts] == [("proof_code_locked", f"order:{oid}")]
    assert api.c.get("/api/v1/security/alerts", headers=api.h("rider")).status_code == 403
    # Nothing public: no incident opened, the status page untouched.
    assert api.c.get("/api/v1/incidents", headers=api.h("ops")).json() == []
    # Support reaches the customer and unlocks; the rider's right code then delivers. Riders cannot unlock.
    assert api.c.post(f"/api/v1/orders/{oid}/proof/unlock", headers=api.h("rider")).status_code == 403
    assert api.c.post(f"/api/v1/orders/{oid}/proof/unlock", headers=api.h("support")).status_code == 200
    r = deliver(api, oid, right)
    assert r.status_code == 200 and r.json()["status"] == "delivered"
    audit = api.c.get("/api/v1/ops/audit", headers=api.h("ops")).json()
    assert any(a["action"] == "order.proof_unlock" and a["target"] == f"order:{oid}" for a in audit)


def test_the_rider_is_locked_across_orders(db_url: str) -> None:
    with TestClient(create_app(make_settings(db_url, proof_max_attempts=3, proof_max_per_rider=4),
                               background=False)) as c:
        api = Api(c)
        (o1, r1), (o2, r2) = carried_order(api), carried_order(api)
        g1, g2 = wrong_codes(r1), wrong_codes(r2)
        assert [deliver(api, o1, next(g1)).status_code for _ in range(2)] == [422, 422]
        assert deliver(api, o2, next(g2)).status_code == 422
        r = deliver(api, o2, next(g2))  # the rider's fourth wrong code this hour
        assert r.status_code == 423 and r.json()["error"]["code"] == "proof_locked_rider"
        assert deliver(api, o2, r2).status_code == 423  # locked on every order, right code or not
        kinds = {a["kind"] for a in api.c.get("/api/v1/security/alerts", headers=api.h("ops")).json()}
        assert kinds == {"rider_proof_locked"}


def test_parallel_guessing_cannot_pass_the_limit(db_url: str) -> None:
    """Forty guesses at once over real HTTP: the order's row lock makes them queue, so at most the limit
    is ever checked against the code (the rest are refused as locked)."""
    app = create_app(make_settings(db_url), background=False)
    with serve(app) as base, httpx.Client(base_url=base, timeout=30) as http, ThreadPoolExecutor(8) as pool:
        api = Api(http)  # type: ignore[arg-type]
        oid, right = carried_order(api)
        h = api.h("rider")
        guesses = [g for g, _ in zip(wrong_codes(right), range(40), strict=False)]
        codes = list(pool.map(lambda g: http.post(f"/api/v1/orders/{oid}/deliver", json={"proof_code": g},
                                                  headers=h).status_code, guesses))
        assert codes.count(422) == 4 and codes.count(423) == 36, codes
        with app.state.db.read_session() as s:
            assert s.scalar(select(func.count()).select_from(ProofAttempt)) == 5


def test_the_rider_page_is_limited_too(sqlite_url: str) -> None:
    with TestClient(create_app(make_settings(sqlite_url), background=False)) as c:
        api = Api(c)
        oid, right = carried_order(api)
        c.post("/login", data={"phone": "13800000003", "password": "waimai-demo"})
        guesses = wrong_codes(right)
        for _ in range(5):
            page = c.post(f"/rider/orders/{oid}/deliver", data={"proof_code": next(guesses)})
        assert "请致电客服" in page.text  # "call customer support", in the rider's language
        page = c.post(f"/rider/orders/{oid}/deliver", data={"proof_code": right})
        assert "已锁定" in page.text
        assert api.c.get(f"/api/v1/orders/{oid}", headers=api.h("ops")).json()["status"] == "picked_up"


@pytest.mark.parametrize("tries", [300])
def test_three_hundred_guesses_find_nothing(api: Api, tries: int) -> None:
    """The reviewer's attack, replayed: 300 codes in a row deliver nothing."""
    oid, right = carried_order(api)
    statuses = {deliver(api, oid, g).status_code for g, _ in zip(wrong_codes(right), range(tries), strict=False)}
    assert statuses == {422, 423}
    assert api.c.get(f"/api/v1/orders/{oid}", headers=api.h("ops")).json()["status"] == "picked_up"
