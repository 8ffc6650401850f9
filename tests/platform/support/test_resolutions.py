"""Resolving tickets through the services that own the money (refund via the payment provider, re-delivery
via order placement, coupon via the coupon service), what compensation then skips, photos, and one-tap
ratings with the satisfaction figures — on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from tests.conftest import Api
from waimai.platform.payments.base import PaymentError, RefundResult
from waimai.platform.payments.models import Payment
from waimai.platform.support import service as tickets


@dataclass
class StubGateway:
    """Records refunds; may be told to fail. Same refund number → same result, as real gateways do."""

    name: str = "gateway"
    failing: bool = False
    refusing: bool = False
    refunds: dict[str, tuple[str, int]] = field(default_factory=dict)

    def refund(self, *, provider_ref: str, amount_fen: int, refund_no: str) -> RefundResult:
        if self.failing:
            raise PaymentError("gateway down")
        if self.refusing:
            raise PaymentError("refund not possible", retryable=False)
        self.refunds.setdefault(refund_no, (provider_ref, amount_fen))
        return RefundResult(refund_ref=f"rf-{refund_no}", status="succeeded")

    def close(self) -> None: ...


def paid_online_order(api: Api) -> tuple[int, int]:
    """An order paid through the gateway (the payment written as the gateway's callback would leave it)."""
    oid = api.place(payment_method="gateway").json()["id"]  # type: ignore[attr-defined]
    db = api.c.app.state.db  # type: ignore[attr-defined]
    with db.session() as s:
        from waimai.platform.ordering import service as ordering
        from waimai.platform.ordering.state import Status

        order = ordering.load_order(s, oid)
        s.add(Payment(order_id=oid, provider="gateway", provider_ref=f"pay_{oid}", amount_fen=order.total_fen,
                      status="succeeded"))
        ordering.transition(s, order, Status.paid, actor=None, reason="test")
        total = order.total_fen
        s.commit()
    return oid, total


def ticket(api: Api, oid: int, category: str = "missing_item") -> int:
    r = api.c.post("/api/v1/tickets", json={"order_id": oid, "category": category}, headers=api.h("customer"))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def resolve(api: Api, tid: int, role: str = "support", **body: object) -> Any:
    return api.c.post(f"/api/v1/tickets/{tid}/resolve", json=body, headers=api.h(role))


@pytest.fixture
def gateway(api: Api) -> StubGateway:
    stub = StubGateway()
    api.c.app.state.payment_providers["gateway"] = stub  # type: ignore[attr-defined]
    return stub


def test_refund_through_the_gateway_partial_and_safe_to_retry(api: Api, gateway: StubGateway) -> None:
    oid, total = paid_online_order(api)
    tid = ticket(api, oid)
    r = resolve(api, tid, resolution="refund", amount_fen=total + 1)
    assert r.status_code == 422 and r.json()["error"]["details"]["refundable_fen"] == total
    gateway.failing = True
    r = resolve(api, tid, resolution="refund", amount_fen=300)
    assert r.status_code == 503 and r.headers["Retry-After"] == "30"
    t = api.c.get(f"/api/v1/tickets/{tid}", headers=api.h("support")).json()
    assert t["status"] == "open" and t["events"][-1]["kind"] == "refund_failed"
    gateway.failing, gateway.refusing = False, True
    r = resolve(api, tid, resolution="refund", amount_fen=300)
    assert r.status_code == 409 and r.json()["error"]["code"] == "refund_refused"
    gateway.refusing = False
    r = resolve(api, tid, resolution="refund", amount_fen=300, note="egg missing")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["resolution"], r.json()["refund_fen"]) == ("resolved", "refund", 300)
    assert gateway.refunds == {f"T{tid}-0": (f"pay_{oid}", 300)}  # the failed try and the retry: one refund
    assert resolve(api, tid, resolution="refund").status_code == 409
    # A second problem on the same order: only what is left may be refunded, then the payment is refunded.
    tid2 = ticket(api, oid, "cold")
    r = resolve(api, tid2, resolution="refund")
    assert r.status_code == 200 and r.json()["refund_fen"] == total - 300
    with api.c.app.state.db.read_session() as s:  # type: ignore[attr-defined]
        assert s.scalar(select(Payment.status).where(Payment.order_id == oid)) == "refunded"
        assert tickets.compensated_orders(s, 1, {oid, 99}) == {oid}  # compensation skips this order
        assert tickets.compensated_orders(s, 1, set()) == set()
    # Cash orders have nothing to refund.
    cod = api.place().json()["id"]  # type: ignore[attr-defined]
    r = resolve(api, ticket(api, cod), resolution="refund")
    assert r.status_code == 409 and r.json()["error"]["code"] == "ticket_nothing_to_refund"


def test_redelivery_is_a_new_order_paid_by_the_platform(api: Api) -> None:
    oid = api.place(items=[{"item_id": 5, "quantity": 2}, {"item_id": 7, "quantity": 1}]).json()["id"]  # type: ignore[attr-defined]
    tid = ticket(api, oid)
    r = resolve(api, tid, resolution="redelivery", item_ids=[5], note="egg again")
    assert r.status_code == 200, r.text
    new_id = r.json()["redelivery_order_id"]
    new = api.c.get(f"/api/v1/orders/{new_id}", headers=api.h("customer")).json()
    assert (new["source"], new["payment_method"], new["status"]) == ("redelivery", "platform", "paid")
    assert [(ln["item_id"], ln["quantity"]) for ln in new["lines"]] == [(5, 2)]
    # The kitchen sees it like any order; if it is rejected the platform's payment settles without a gateway.
    r = api.c.post(f"/api/v1/orders/{new_id}/reject", json={"reason": "closed"}, headers=api.h("merchant"))
    assert r.status_code == 200 and r.json()["status"] == "refunded", r.text
    with api.c.app.state.db.read_session() as s:  # type: ignore[attr-defined]
        assert tickets.compensated_orders(s, 1) == {oid}
    assert resolve(api, tid, resolution="redelivery").status_code == 409


def test_coupon_and_no_action_and_who_may_resolve(api: Api) -> None:
    oid = api.place().json()["id"]  # type: ignore[attr-defined]
    tid = ticket(api, oid)
    assert resolve(api, tid, resolution="coupon").status_code == 422  # no value
    r = resolve(api, tid, resolution="coupon", amount_fen=5000)
    assert r.status_code == 403 and r.json()["error"]["code"] == "coupon_over_limit"
    for role in ("customer", "merchant", "rider"):
        assert resolve(api, tid, role=role, resolution="no_action").status_code == 403
    r = resolve(api, tid, role="ops", resolution="coupon", amount_fen=5000, min_spend_fen=2000, days=7)
    assert r.status_code == 200 and r.json()["coupon_id"], r.text
    mine = api.c.get("/api/v1/coupons", headers=api.h("customer")).json()
    assert [(c["amount_fen"], c["min_spend_fen"]) for c in mine] == [(5000, 2000)]  # in the customer's wallet
    tid2 = ticket(api, oid, "late")
    assert resolve(api, tid2, resolution="refund_everything").status_code == 422
    r = resolve(api, tid2, resolution="no_action", note="arrived on time")
    assert r.status_code == 200 and r.json()["resolution"] == "no_action"
    with api.c.app.state.db.read_session() as s:  # type: ignore[attr-defined]
        assert tickets.compensated_orders(s, 1) == {oid}  # the coupon counts, "no action" does not matter


def _image(fmt: str, size: tuple[int, int] = (64, 48), mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, (10, 20, 30, 255) if mode == "RGBA" else (10, 20, 30)).save(buf, format=fmt)
    return buf.getvalue()


def test_photos_are_checked_by_content_and_limited(api: Api) -> None:
    tid = ticket(api, api.place().json()["id"])  # type: ignore[attr-defined]
    url = f"/api/v1/tickets/{tid}/photos"

    def up(data: bytes, name: str = "p.jpg", ctype: str = "image/jpeg", role: str = "customer") -> Any:
        return api.c.post(url, files={"file": (name, data, ctype)}, headers=api.h(role))

    r = up(b"GIF89a" + b"\0" * 100)
    assert r.status_code == 422 and r.json()["error"]["code"] == "photo_invalid"
    r = up(_image("GIF"), name="x.gif")
    assert r.status_code == 422 and r.json()["error"]["code"] == "photo_type"
    r = up(_image("BMP"))
    assert r.status_code == 422
    assert up(b"").status_code == 422
    assert up(b"\xff" * (5 * 1024 * 1024 + 10)).status_code == 413
    assert up(_image("PNG"), role="merchant").status_code == 403  # sees the ticket, but did not report it
    r = up(_image("PNG", mode="RGBA"), name="screenshot.png", ctype="application/octet-stream")
    assert r.status_code == 201 and r.json()["content_type"] == "image/png"  # a screenshot stays sharp
    assert up(_image("WEBP"), name="a.webp").json()["content_type"] == "image/jpeg"
    assert up(_image("JPEG"), role="support").status_code == 201
    r = up(_image("JPEG"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "photo_limit"
    ids = api.c.get(f"/api/v1/tickets/{tid}", headers=api.h("customer")).json()["photos"]
    got = api.c.get(f"{url}/{ids[0]}", headers=api.h("merchant"))
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert got.headers["content-security-policy"] == "default-src 'none'"
    assert api.c.get(f"{url}/999999", headers=api.h("customer")).status_code == 404
    # Other requests keep the small body limit.
    big = {"order_id": 1, "category": "late", "description": "x" * 70_000}
    assert api.c.post("/api/v1/tickets", json=big, headers=api.h("customer")).status_code == 413


def test_one_tap_ratings_and_the_satisfaction_figures(api: Api) -> None:
    oid = api.place().json()["id"]  # type: ignore[attr-defined]
    rate = f"/api/v1/orders/{oid}/rating"
    r = api.c.put(rate, json={"stars": 5}, headers=api.h("customer"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "rating_too_early"
    m, rider = api.h("merchant"), api.h("rider")
    for step in ("accept", "preparing", "ready"):
        api.c.post(f"/api/v1/orders/{oid}/{step}", headers=m)
    rider_id = api.c.get("/api/v1/riders/me", headers=rider).json()["id"]
    api.c.post(f"/api/v1/orders/{oid}/assign", json={"rider_id": rider_id}, headers=api.h("ops"))
    api.c.post(f"/api/v1/orders/{oid}/pickup", headers=rider)
    code = api.c.get(f"/api/v1/orders/{oid}", headers=api.h("customer")).json()["proof_code"]
    assert api.c.post(f"/api/v1/orders/{oid}/deliver", json={"proof_code": code}, headers=rider).status_code == 200
    assert api.c.put(rate, json={"stars": 6}, headers=api.h("customer")).status_code == 422
    assert api.c.put(rate, json={"stars": 2}, headers=api.h("merchant")).status_code == 403
    assert api.c.put(rate, json={"stars": 2}, headers=api.h("customer")).json()["stars"] == 2
    assert api.c.put(rate, json={"stars": 4, "comment": "hot and fast"}, headers=api.h("customer")).json()["stars"] == 4
    tid = ticket(api, oid, "cold")
    assert api.c.put(f"/api/v1/tickets/{tid}/rating", json={"stars": 3},
                     headers=api.h("customer")).status_code == 409  # not resolved yet
    resolve(api, tid, resolution="no_action", note="it was warm")
    assert api.c.put(f"/api/v1/tickets/{tid}/rating", json={"stars": 1}, headers=api.h("customer")).status_code == 200
    api.place()  # a second order today, no complaint
    r = api.c.get("/api/v1/ops/satisfaction", params={"days": 7}, headers=api.h("ops"))
    assert r.status_code == 200, r.text
    d = r.json()
    today = d["days"][-1]
    assert (today["orders"], today["tickets"], today["ratings"]) == (2, 1, 2)
    assert today["complaint_rate"] == 0.5 and today["avg_stars"] == 2.5
    [m1] = [x for x in d["merchants"] if x["merchant_id"] == 1]
    assert (m1["orders"], m1["tickets"], m1["avg_stars"]) == (2, 1, 2.5)
    [r1] = [x for x in d["riders"] if x["rider_id"] == rider_id]
    assert (r1["orders"], r1["tickets"], r1["delivered"]) == (1, 1, 1)
    assert len(d["hourly"]["counts"]) == 48 and sum(d["hourly"]["counts"]) == 1
    assert api.c.get("/api/v1/ops/satisfaction", params={"days": 0}, headers=api.h("ops")).status_code == 422
    assert api.c.get("/api/v1/ops/satisfaction", headers=api.h("support")).status_code == 403
    assert api.c.get("/api/v1/ops/satisfaction", headers=api.h("customer")).status_code == 403


def test_redelivery_key_is_per_attempt(api: Api) -> None:
    oid = api.place().json()["id"]  # type: ignore[attr-defined]
    tid = ticket(api, oid)
    first = resolve(api, tid, resolution="redelivery").json()["redelivery_order_id"]
    api.c.post(f"/api/v1/tickets/{tid}/reopen", json={"reason": "still missing"}, headers=api.h("support"))
    second = resolve(api, tid, resolution="redelivery").json()["redelivery_order_id"]
    assert first != second  # a reopened ticket's second re-delivery is a new order, not a replay


def test_compensation_skips_an_order_a_ticket_made_good(api: Api) -> None:
    from waimai.firewall import compensation
    from waimai.firewall.incidents.models import Incident

    r = api.c.post("/api/v1/incidents", json={"title": "Kitchen printer down", "severity": "P2",
                                              "components": ["ordering"]}, headers=api.h("ops"))
    iid = r.json()["id"]
    made_good = api.place().json()["id"]  # type: ignore[attr-defined]
    other = api.place().json()["id"]  # type: ignore[attr-defined]
    for oid in (made_good, other):
        assert api.c.post(f"/api/v1/orders/{oid}/reject", json={"reason": "printer"},
                          headers=api.h("merchant")).status_code == 200
    tid = ticket(api, made_good, "wrong_item")
    assert resolve(api, tid, resolution="redelivery").status_code == 200
    with api.c.app.state.db.read_session() as s:  # type: ignore[attr-defined]
        plan = compensation.plan(s, s.get(Incident, iid), budget_fen=100_00,  # the app's composed plug-ins
                                 already_compensated=api.c.app.state.incident_plugins.already_compensated)  # type: ignore[attr-defined]
    [user] = plan.users
    assert user.orders == [other] and plan.skipped_orders == 1
