"""The pages, driven as a browser without JavaScript would: forms, redirects, cookies."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_settings
from waimai.app import create_app


@pytest.fixture
def web(sqlite_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(sqlite_url), background=False)) as c:
        yield c


def login(c: TestClient, phone: str) -> None:
    r = c.post("/login", data={"phone": phone, "password": "waimai-demo"}, follow_redirects=False)
    assert r.status_code == 303 and "waimai_token" in r.cookies, r.text


def test_shop_list_in_chinese_by_default_and_english_on_request(web: TestClient) -> None:
    r = web.get("/")
    assert r.status_code == 200 and 'lang="zh-CN"' in r.text and "校园商家" in r.text
    assert "兰州拉面" in r.text
    r = web.get("/?lang=en")
    assert 'lang="en"' in r.text and "Campus shops" in r.text
    assert web.cookies.get("waimai_lang") == "en"
    assert "Campus shops" in web.get("/").text  # remembered


def test_menu_shows_prices_in_yuan_and_sold_out(web: TestClient) -> None:
    with web.app.state.db.session() as s:  # type: ignore[attr-defined]
        from waimai.platform.catalog.models import MenuItem

        s.get(MenuItem, 6).available = False  # type: ignore[union-attr]
        s.commit()
    r = web.get("/shops/1")
    assert "¥15.00" in r.text and "¥3.00" in r.text
    assert re.search(r'class="item soldout" data-item="6"', r.text)
    assert web.get("/shops/999").status_code == 404


def test_wrong_password_shows_message(web: TestClient) -> None:
    r = web.post("/login", data={"phone": "13800000001", "password": "nope"})
    assert r.status_code == 200 and "手机号或密码错误" in r.text


def test_customer_merchant_rider_flow_through_pages(web: TestClient) -> None:
    login(web, "13800000001")
    assert web.post("/cart/add", data={"item_id": 5, "quantity": 2}).status_code == 200
    web.post("/cart/add", data={"item_id": 1, "quantity": 1, "options": ["微辣"]})
    cart = web.get("/cart")
    assert "卤蛋" in cart.text and "¥" in cart.text
    idem = re.search(r'name="idem" value="([^"]+)"', cart.text).group(1)  # type: ignore[union-attr]
    cart_cookie = web.cookies.get("waimai_cart")
    r = web.post("/checkout", data={"delivery_point_id": 1, "payment_method": "cod", "idem": idem},
                 follow_redirects=False)
    assert r.status_code == 303 and "/orders/" in r.headers["location"]
    order_url = r.headers["location"].split("?")[0]
    # A double click sends the same form with the same (old) cart: it shows the same order.
    web.cookies.set("waimai_cart", cart_cookie or "")
    again = web.post("/checkout", data={"delivery_point_id": 1, "payment_method": "cod", "idem": idem},
                     follow_redirects=False)
    assert again.headers["location"].split("?")[0] == order_url
    page = web.get(order_url)
    assert "货到付款" in page.text
    assert page.text.count("new EventSource") == 1 and "<title>订单" in page.text.replace("\n", "")
    code = re.search(r'id="proof">(\d{4})<', page.text).group(1)  # type: ignore[union-attr]
    oid = order_url.rsplit("/", 1)[-1]

    login(web, "13800000002")
    console = web.get("/merchant")
    assert f'data-order="{oid}"' in console.text
    for action in ("accept", "preparing", "ready"):
        r = web.post(f"/merchant/orders/{oid}/{action}")
        assert r.status_code == 200 and "flash err" not in r.text, r.text[:500]

    # The food is ready: the dispatcher's next round gives it to the on-shift demo rider.
    from waimai.platform.delivery.service import dispatch_round

    with web.app.state.db.session() as s:  # type: ignore[attr-defined]
        assert dispatch_round(s) == 1
        s.commit()
    login(web, "13800000003")
    rider = web.get("/rider")
    assert f'data-order="{oid}"' in rider.text and "13800000001" in rider.text  # full phone for the carrier
    web.post(f"/rider/orders/{oid}/pickup")
    wrong = web.post(f"/rider/orders/{oid}/deliver", data={"proof_code": "0000" if code != "0000" else "1111"})
    assert "取货码不正确" in wrong.text
    done = web.post(f"/rider/orders/{oid}/deliver", data={"proof_code": code})
    assert "flash ok" in done.text

    login(web, "13800000001")
    final = web.get(order_url)
    assert "已送达" in final.text and 'http-equiv="refresh"' not in final.text


def test_pages_require_the_right_role(web: TestClient) -> None:
    r = web.get("/merchant", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    login(web, "13800000001")
    r = web.get("/rider", follow_redirects=False)
    assert r.status_code == 303
    login(web, "13800000003")
    assert web.get("/orders/1").status_code in (303, 404)


def test_open_redirect_after_login_is_refused(web: TestClient) -> None:
    r = web.post("/login", data={"phone": "13800000001", "password": "waimai-demo", "next": "//evil.example"},
                 follow_redirects=False)
    assert r.headers["location"] == "/"


def test_page_titles_are_plain_text_and_scripts_appear_once(web: TestClient) -> None:
    login(web, "13800000002")
    html = web.get("/merchant").text
    title = html.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "<" not in title and "商家后台" in title
    assert html.count("<script nonce=") == 1  # the inline script carries the CSP nonce
