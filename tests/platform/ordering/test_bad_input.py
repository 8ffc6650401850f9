"""Bad input is a clear 4xx in the one error shape, and nothing is half-written."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from tests.conftest import Api
from waimai.platform.catalog.models import Campus, DeliveryPoint, Merchant
from waimai.platform.ordering.models import IdempotencyRecord, Order


def _orders(api: Api) -> int:
    with api.c.app.state.db.read_session() as s:  # type: ignore[attr-defined]
        return int(s.scalar(select(func.count()).select_from(Order)) or 0)


def _post_raw(api: Api, content: bytes, ctype: str = "application/json"):  # type: ignore[no-untyped-def]
    return api.c.post("/api/v1/orders", content=content,
                      headers=api.h("customer", **{"Idempotency-Key": uuid.uuid4().hex, "Content-Type": ctype}))


def assert_error(r, status: int, code: str | None = None) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"code", "message", "details"} and err["message"]
    if code:
        assert err["code"] == code


@pytest.mark.parametrize("items,code", [
    ([{"item_id": 5, "quantity": -1}], "validation_error"),
    ([{"item_id": 5, "quantity": 0}], "validation_error"),
    ([{"item_id": 5, "quantity": 10**12}], "validation_error"),
    ([{"item_id": 5, "quantity": 1, "extra": 1}], "validation_error"),
    ([], "validation_error"),
    ([{"item_id": 99999, "quantity": 1}], "item_unknown"),
    ([{"item_id": 9, "quantity": 1}], "item_unknown"),  # another merchant's item
    ([{"item_id": 1, "quantity": 1}], "option_required"),
    ([{"item_id": 1, "quantity": 1, "options": ["nuclear"]}], "option_required"),
    ([{"item_id": 1, "quantity": 1, "options": ["微辣", "bogus"]}], "option_invalid"),
])
def test_bad_lines(api: Api, items: list, code: str) -> None:  # type: ignore[type-arg]
    r = api.place(items=items)
    assert_error(r, 422, code)
    assert _orders(api) == 0


def test_unknown_top_level_field(api: Api) -> None:
    assert_error(api.place(coupon="FREE"), 422, "validation_error")


def test_malformed_json_and_wrong_type(api: Api) -> None:
    assert_error(_post_raw(api, b"{not json"), 422, "validation_error")
    assert_error(_post_raw(api, b'"a string"'), 422, "validation_error")
    assert_error(_post_raw(api, b"merchant_id=1", "application/x-www-form-urlencoded"), 422)
    assert _orders(api) == 0


def test_oversized_body_is_413(api: Api) -> None:
    big = b'{"note": "' + b"x" * 200_000 + b'"}'
    assert_error(_post_raw(api, big), 413, "payload_too_large")


def test_closed_and_paused_merchants(api: Api) -> None:
    with api.c.app.state.db.session() as s:  # type: ignore[attr-defined]
        s.get(Merchant, 1).status = "paused"  # type: ignore[union-attr]
        m2 = s.get(Merchant, 2)
        m2.opens_at, m2.closes_at = "00:00", "00:00"  # type: ignore[union-attr]
        s.commit()
    assert_error(api.place(), 409, "merchant_closed")
    assert_error(api.place(merchant_id=2, items=[{"item_id": 9, "quantity": 1}]), 409, "merchant_closed")
    assert _orders(api) == 0


def test_delivery_point_off_campus_or_unknown(api: Api) -> None:
    with api.c.app.state.db.session() as s:  # type: ignore[attr-defined]
        other = Campus(code="other", name="Other", width_m=100, height_m=100)
        s.add(other)
        s.flush()
        s.add(DeliveryPoint(campus_id=other.id, name="far", x=10, y=10))
        s.add(DeliveryPoint(campus_id=1, name="outside the fence", x=5000, y=5000))
        s.commit()
        far = s.scalar(select(DeliveryPoint.id).where(DeliveryPoint.name == "far"))
        outside = s.scalar(select(DeliveryPoint.id).where(DeliveryPoint.name == "outside the fence"))
    assert_error(api.place(delivery_point_id=far), 422, "delivery_point_off_campus")
    assert_error(api.place(delivery_point_id=outside), 422, "delivery_point_off_campus")
    assert_error(api.place(delivery_point_id=424242), 422, "delivery_point_unknown")
    assert _orders(api) == 0


def test_failed_placement_releases_its_idempotency_key(api: Api) -> None:
    key = uuid.uuid4().hex
    assert api.place(key=key, items=[{"item_id": 99999, "quantity": 1}]).status_code == 422
    with api.c.app.state.db.read_session() as s:  # type: ignore[attr-defined]
        assert s.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0
    # The client fixes the body and retries with the same key: it goes through.
    assert api.place(key=key).status_code == 201


def test_unknown_routes_and_methods_use_the_error_shape(api: Api) -> None:
    assert_error(api.c.get("/api/v1/nope"), 404, "not_found")
    assert_error(api.c.delete("/api/v1/merchants"), 405)
    assert_error(api.c.get("/api/v1/orders/notanumber", headers=api.h("customer")), 422)
