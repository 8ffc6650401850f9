"""Issue #18 item 5: two parallel resolutions of one ticket give one success and one 409, on SQLite and
PostgreSQL, over real HTTP (before the fix PostgreSQL let both through: two ¥30 coupons, 5 tries of 5)."""

from __future__ import annotations

import threading

import httpx
from sqlalchemy import func, select

from tests.conftest import Api, make_settings
from tests.servers import serve
from waimai.app import create_app
from waimai.platform.coupons.models import Coupon
from waimai.platform.support.models import TicketEvent

ROUNDS = 5


def test_parallel_coupon_resolutions_give_one_success_and_one_409(db_url: str) -> None:
    app = create_app(make_settings(db_url), background=False)
    with serve(app) as base, httpx.Client(base_url=base, timeout=30) as http:
        api = Api(http)  # type: ignore[arg-type]
        support = api.h("support")
        outcomes = []
        for _ in range(ROUNDS):
            oid = api.place().json()["id"]  # type: ignore[attr-defined]
            r = http.post("/api/v1/tickets", json={"order_id": oid, "category": "missing_item"},
                          headers=api.h("customer"))
            assert r.status_code == 201, r.text
            tid = r.json()["id"]
            start = threading.Barrier(2)
            codes: list[int] = []

            def resolve(tid: int = tid, start: threading.Barrier = start, codes: list[int] = codes) -> None:
                start.wait()
                codes.append(http.post(f"/api/v1/tickets/{tid}/resolve", headers=support,
                                       json={"resolution": "coupon", "amount_fen": 3000}).status_code)

            threads = [threading.Thread(target=resolve) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            outcomes.append(sorted(codes))
            with app.state.db.read_session() as s:
                assert s.scalar(select(func.count()).select_from(Coupon).where(Coupon.ticket_id == tid)) == 1
                assert s.scalar(select(func.count()).select_from(TicketEvent).where(
                    TicketEvent.ticket_id == tid, TicketEvent.kind == "resolved")) == 1
        assert outcomes == [[200, 409]] * ROUNDS


def test_a_resolved_ticket_reopened_can_be_resolved_again(api: Api) -> None:
    """The guard is on the ticket's state, not a one-off: reopen, then one more resolution goes through."""
    oid = api.place().json()["id"]  # type: ignore[attr-defined]
    tid = api.c.post("/api/v1/tickets", json={"order_id": oid, "category": "missing_item"},
                     headers=api.h("customer")).json()["id"]
    body = {"resolution": "coupon", "amount_fen": 1000}
    assert api.c.post(f"/api/v1/tickets/{tid}/resolve", json=body, headers=api.h("support")).status_code == 200
    assert api.c.post(f"/api/v1/tickets/{tid}/resolve", json=body, headers=api.h("support")).status_code == 409
    r = api.c.post(f"/api/v1/tickets/{tid}/reopen", json={"reason": "still missing"}, headers=api.h("support"))
    assert r.status_code == 200, r.text
    assert api.c.post(f"/api/v1/tickets/{tid}/resolve", json=body, headers=api.h("support")).status_code == 200
