"""Item 3: what an outsider sends never makes a 5xx — a malformed or forged cart cookie reads as an empty cart,
a NUL byte in any text field is a 400 at the edge, `null` for a non-nullable field is a 422 (SQLite and
PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from itsdangerous import URLSafeSerializer

from tests.conftest import make_settings
from tests.security.conftest import ORIGIN, bearer, cookie_login
from waimai.app import create_app
from waimai.web.cart import CART_COOKIE, read_cart, write_cart

SECRET = make_settings("sqlite://").secret_key
# What the probe sent, and its cousins: each raised TypeError, ValueError, IndexError or OverflowError.
BAD_CARTS = [
    '"{\\"merchant_id\\":1\\054\\"lines\\":[5]}"',
    json.dumps({"merchant_id": 1, "lines": [5]}),
    json.dumps({"merchant_id": 1, "lines": [[5]]}),
    json.dumps({"merchant_id": 1, "lines": [[5, "x", []]]}),
    json.dumps({"merchant_id": 1, "lines": [[10**30, 1, []]]}),
    json.dumps({"merchant_id": "1", "lines": [[5, 1e308, None]]}),
    json.dumps({"merchant_id": [], "lines": {}}),
    "not json at all",
    "",
]


def signed(payload: object, secret: str = SECRET) -> str:
    return str(URLSafeSerializer(secret, salt="waimai.cart").dumps(payload))


def put_cart(c: TestClient, raw: str) -> None:
    c.cookies.delete(CART_COOKIE)
    c.cookies.set(CART_COOKIE, raw)


@pytest.fixture
def web(db_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(db_url), background=False)) as c:
        yield c


def test_cart_round_trips_signed_and_refuses_anything_else() -> None:
    cart = {"merchant_id": 1, "lines": [[5, 2, ["微辣"]]]}
    assert read_cart(write_cart(cart, secret=SECRET), secret=SECRET) == cart
    empty = {"merchant_id": None, "lines": []}
    # Forged (our format, signed with another key), tampered, or well signed but of the wrong types.
    assert read_cart(signed(cart, "another-key"), secret=SECRET) == empty
    assert read_cart(write_cart(cart, secret=SECRET)[:-2] + "xx", secret=SECRET) == empty
    assert read_cart(signed({"merchant_id": 1, "lines": [5]}), secret=SECRET) == empty
    assert read_cart(signed({"merchant_id": 1, "lines": [[5, 100, []]]}), secret=SECRET) == empty
    for raw in BAD_CARTS:
        assert read_cart(raw, secret=SECRET) == empty


def test_malformed_cart_cookies_never_500(sqlite_url: str) -> None:
    with TestClient(create_app(make_settings(sqlite_url), background=False)) as c:
        same = {"Origin": ORIGIN}
        for raw in [*BAD_CARTS, signed({"merchant_id": 1, "lines": [[5, 1, ["x" * 500]]]})]:
            c.cookies.clear()
            put_cart(c, raw)
            assert c.post("/cart/add", data={"item_id": 5, "quantity": 1}, headers=same,
                          follow_redirects=False).status_code == 303, raw
            cookie_login(c, "customer")
            put_cart(c, raw)
            assert c.get("/cart").status_code == 200, raw
            put_cart(c, raw)
            r = c.post("/checkout", data={"delivery_point_id": 1, "payment_method": "cod", "idem": "k" * 16},
                       headers=same, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"].startswith("/cart"), raw  # "cart is empty"
            put_cart(c, raw)
            assert c.post("/cart/remove", data={"index": 0}, headers=same,
                          follow_redirects=False).status_code == 303, raw


def test_nul_bytes_are_refused_at_the_edge(web: TestClient) -> None:
    # The probe's anonymous sign-in: a 500 on PostgreSQL before.
    r = web.post("/login", content="phone=138%0000000001&password=x",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "nul_byte"
    assert web.post("/api/v1/auth/login", json={"phone": "138\x0000000001", "password": "x"}).status_code == 400
    assert web.get("/api/v1/merchants?q=%00").status_code == 400
    customer = {"Authorization": f"Bearer {bearer(web, 'customer')}", "Idempotency-Key": "nul-1"}
    r = web.post("/api/v1/orders", headers=customer, json={
        "merchant_id": 1, "delivery_point_id": 1, "items": [{"item_id": 5, "quantity": 1}],
        "payment_method": "cod", "note": "放门口\u0000"})
    assert r.status_code == 400
    # A backslash followed by "u0000" typed as text is refused too (rare, and never worth a 500 to tell apart);
    # the same request without the NUL goes through.
    r = web.post("/api/v1/orders", headers=customer, json={
        "merchant_id": 1, "delivery_point_id": 1, "items": [{"item_id": 5, "quantity": 1}],
        "payment_method": "cod", "note": "放门口"})
    assert r.status_code == 201, r.text


def test_item_available_null_is_a_422(web: TestClient) -> None:
    merchant = {"Authorization": f"Bearer {bearer(web, 'merchant')}"}
    r = web.patch("/api/v1/items/5", json={"available": None}, headers=merchant)
    assert r.status_code == 422, r.text
    assert web.patch("/api/v1/items/5", json={"stock": None}, headers=merchant).status_code == 200  # unlimited
    r = web.patch("/api/v1/items/5", json={"available": False}, headers=merchant)
    assert r.status_code == 200 and r.json()["available"] is False
    r = web.patch("/api/v1/items/5", json={"stock": 7}, headers=merchant)  # leaving `available` out keeps it
    assert r.status_code == 200 and (r.json()["stock"], r.json()["available"]) == (7, False)


def test_nul_in_a_multipart_text_field_is_refused_but_binary_photos_pass(web: TestClient) -> None:
    customer = {"Authorization": f"Bearer {bearer(web, 'customer')}", "Idempotency-Key": "nul-mp"}
    oid = web.post("/api/v1/orders", headers=customer, json={
        "merchant_id": 1, "delivery_point_id": 1, "items": [{"item_id": 5, "quantity": 1}],
        "payment_method": "cod"}).json()["id"]
    cookie_login(web, "customer")
    same = {"Origin": ORIGIN}
    r = web.post(f"/orders/{oid}/problem", data={"category": "late", "description": "还没到\x00"},
                 files={"photo": ("", b"", "application/octet-stream")}, headers=same, follow_redirects=False)
    assert r.status_code == 400 and r.json()["error"]["code"] == "nul_byte"
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64  # NUL bytes inside a file part are data
    r = web.post(f"/orders/{oid}/problem", data={"category": "late", "description": "还没到"},
                 files={"photo": ("p.png", png, "image/png")}, headers=same, follow_redirects=False)
    assert r.status_code == 303, r.text
