"""Issue 20: pages as users expect (items 1, 3, 4, 5), driven as a browser without JavaScript would."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import make_settings
from waimai.app import create_app
from waimai.core.audit import AuditEntry
from waimai.platform.ordering.models import Order
from waimai.platform.payments.models import Payment


@pytest.fixture
def web(sqlite_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(sqlite_url, secret_key="s3cr3t-" + secrets.token_urlsafe(32)), background=False)) as c:
        yield c


def login(c: TestClient, phone: str) -> None:
    c.cookies.clear()
    r = c.post("/login", data={"phone": phone, "password": "waimai-demo"}, follow_redirects=False)
    assert r.status_code == 303, r.text[:300]


def place(c: TestClient, method: str = "cod") -> str:
    login(c, "13800000001")
    c.post("/cart/add", data={"item_id": 5, "quantity": "2"})
    idem = re.search(r'name="idem" value="([^"]+)"', c.get("/cart").text).group(1)  # type: ignore[union-attr]
    r = c.post("/checkout", data={"delivery_point_id": 1, "payment_method": method, "idem": idem},
               follow_redirects=False)
    return r.headers["location"].split("/orders/")[1].split("/")[0].split("?")[0]


def _set(c: TestClient, oid: str, **cols: object) -> None:
    with c.app.state.db.session() as s:  # type: ignore[attr-defined]
        o = s.get(Order, int(oid))
        for k, v in cols.items():
            setattr(o, k, v)
        s.commit()


# --- item 1: the order page follows the order's state ---------------------------------------------

def test_actions_follow_the_state(web: TestClient) -> None:
    oid = place(web)
    page = web.get(f"/orders/{oid}").text
    assert 'id="cancel"' in page and 'id="pay-online"' not in page  # cash on delivery: nothing to pay
    _set(web, oid, status="picked_up", rider_id=1)
    live = web.get(f"/orders/{oid}/live")
    assert live.status_code == 200 and live.text.lstrip().startswith('<div id="order-live"')
    assert 'data-status="picked_up"' in live.text and "配送中" in live.text
    assert 'id="cancel"' not in live.text  # no 取消订单 while 配送中
    # The rider's last known position is in the block, so the map shows the rider without a reload.
    assert re.search(r'data-rider-x="[\d.]+" data-rider-y="[\d.]+"', live.text)
    # Another customer sees nothing of it.
    web.cookies.clear()
    assert web.get(f"/orders/{oid}/live").status_code == 401


def test_back_from_the_cashier_waits_for_the_payment(web: TestClient) -> None:
    oid = place(web, "gateway")
    with web.app.state.db.session() as s:  # type: ignore[attr-defined]
        o = s.get(Order, int(oid))
        s.add(Payment(order_id=o.id, provider="gateway", provider_ref="t-1", amount_fen=o.total_fen,  # type: ignore[union-attr]
                      status="pending", pay_url="http://127.0.0.1:1/pay"))
        s.commit()
    waiting = web.get(f"/orders/{oid}?from=pay").text
    assert 'id="payment-waiting"' in waiting and 'id="pay-online"' not in waiting and 'id="cancel"' not in waiting
    assert 'id="pay-online"' in web.get(f"/orders/{oid}").text  # opened later: the buttons are there
    _set(web, oid, status="paid")  # the callback arrives
    paid = web.get(f"/orders/{oid}/live?from=pay").text
    assert "已支付" in paid and 'id="payment-waiting"' not in paid and 'id="pay-online"' not in paid


def test_cancel_refused_in_the_page_language(web: TestClient) -> None:
    oid = place(web)
    _set(web, oid, status="picked_up")
    r = web.post(f"/orders/{oid}/cancel")
    err = re.search(r'class="flash err"[^>]*>([^<]+)<', r.text).group(1)  # type: ignore[union-attr]
    assert "配送中" in err and not re.search(r"[A-Za-z]{3,}", err)
    web.cookies.set("waimai_lang", "en")
    r = web.post(f"/orders/{oid}/cancel")
    err = re.search(r'class="flash err"[^>]*>([^<]+)<', r.text).group(1)  # type: ignore[union-attr]
    assert "On the way" in err and "picked_up" not in err


# --- item 3: pages, never JSON, for people ----------------------------------------------------------

@pytest.mark.parametrize("path", ["/no/such/page", "/ops/nothing", "/orders/abc", "/shops/999999999999"])
def test_unknown_and_malformed_urls_answer_with_a_page(web: TestClient, path: str) -> None:
    r = web.get(path)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "页面不存在" in r.text or "不存在" in r.text
    assert '{"error"' not in r.text and 'href="/"' in r.text


def test_a_bad_form_answers_with_a_page_and_the_api_keeps_json(web: TestClient) -> None:
    login(web, "13800000001")
    r = web.post("/cart/add", data={"item_id": "abc"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html") and "请检查" in r.text
    r = web.post("/cart/add", data={"item_id": 5, "quantity": "999"})
    assert r.status_code == 200 and "请输入 1 到 99 之间的数量" in r.text
    api = web.get("/api/v1/orders/abc")
    assert api.headers["content-type"].startswith("application/json") and "error" in api.json()
    assert web.get("/api/v1/nothing").json()["error"]["code"] == "not_found"
    en = web.get("/no/such/page", params={"lang": "en"})
    assert "Page not found" in en.text and "页面" not in en.text


def test_api_docs_are_served_from_our_origin(web: TestClient) -> None:
    for path, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        html = web.get(path).text
        srcs = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert srcs and all(s.startswith("/") for s in srcs), srcs
        js = next(s for s in srcs if s.endswith(asset))
        r = web.get(js)
        assert r.status_code == 200 and len(r.content) > 100_000
    assert "fonts.googleapis" not in web.get("/redoc").text


# --- item 4: ops ------------------------------------------------------------------------------------

def test_each_role_lands_on_its_page_and_sees_only_its_links(web: TestClient) -> None:
    for phone, home, must, never in (
        ("13800000009", "/ops", ["/ops/dispatch", "/ops/switches", "/ops/settings"], ["/merchant", "/rider"]),
        ("13800000001", "/", ["/orders", "/cart"], ["/ops", "/merchant", "/rider\""]),
        ("13800000002", "/merchant", ["/merchant"], ["/ops", "/rider", "/cart"]),
        ("13800000003", "/rider", ["/rider/earnings"], ["/ops", "/merchant", "/cart"]),
        ("13800000004", "/support", ["/tickets"], ["/ops\"", "/merchant", "/rider"]),
    ):
        web.cookies.clear()
        r = web.post("/login", data={"phone": phone, "password": "waimai-demo"}, follow_redirects=False)
        assert r.headers["location"] == home, phone
        nav = web.get(home).text.split('id="main-nav"', 1)[1].split("</nav>", 1)[0]
        for link in must:
            assert f'href="{link}' in nav, (phone, link)
        for link in never:
            assert f'href="{link}' not in nav, (phone, link)


def test_dispatch_assigns_and_reassigns_by_hand(web: TestClient) -> None:
    oid = place(web)
    _set(web, oid, status="accepted")
    login(web, "13800000009")
    page = web.get("/ops/dispatch")
    assert page.status_code == 200 and 'id="dmap"' in page.text
    queue = page.text.split("等待骑手", 1)[1]
    assert f'data-order="{oid}"' in queue
    assert page.text.count('class="m-building"') >= 10 and page.text.count('class="m-road"') >= 4
    assert "北1栋" in page.text and "学府大道" in page.text  # labels: buildings and roads
    r = web.post("/ops/dispatch/assign", data={"order_id": oid, "rider_id": 1})
    assert r.status_code == 200 and "已指派给" in r.text
    r = web.post("/ops/dispatch/assign", data={"order_id": oid, "rider_id": 2})  # rider 2 is off shift
    assert "不在班" in r.text, re.findall(r'class="flash[^"]*"[^>]*>[^<]+', r.text)
    with web.app.state.db.session() as s:  # type: ignore[attr-defined]
        from waimai.platform.delivery.models import Rider

        s.get(Rider, 2).on_shift = True  # type: ignore[union-attr]
        s.commit()
    r = web.post("/ops/dispatch/assign", data={"order_id": oid, "rider_id": 2})
    assert "已改派给" in r.text
    with web.app.state.db.session() as s:  # type: ignore[attr-defined]
        assert s.get(Order, int(oid)).rider_id == 2  # type: ignore[union-attr]
        assert len(list(s.scalars(select(AuditEntry).where(AuditEntry.action == "order.assign")))) == 2
    live = web.get("/ops/dispatch", params={"part": "live"})
    assert live.text.lstrip().startswith('<div id="dispatch-live"') and "<html" not in live.text
    login(web, "13800000001")
    assert web.get("/ops/dispatch", follow_redirects=False).status_code == 303
    assert web.post("/ops/dispatch/assign", data={"order_id": oid, "rider_id": 1},
                    follow_redirects=False).status_code == 303


def test_switches_page_turns_off_with_a_reason_and_audits(web: TestClient) -> None:
    login(web, "13800000009")
    r = web.post("/ops/switches/set", data={"name": "payment.cod_only", "enabled": "1", "reason": "网关证书过期"})
    assert "已打开" in r.text
    page = web.get("/ops/switches").text
    row = page.split('data-switch="payment.cod_only"', 1)[1].split("</form>", 1)[0]
    assert "演示运维" in row and "网关证书过期" in row and "关闭" in row
    r = web.post("/ops/switches/set", data={"name": "payment.cod_only", "enabled": "0", "reason": " "})
    assert "请填写原因" in r.text
    r = web.post("/ops/switches/set", data={"name": "payment.cod_only", "enabled": "0", "reason": "证书已更换"})
    assert "已关闭" in r.text
    r = web.post("/ops/switches/set", data={"name": "no.such", "enabled": "1", "reason": "x"})
    assert "没有这个名称的开关" in r.text
    with web.app.state.db.session() as s:  # type: ignore[attr-defined]
        sets = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "switch.set")))
        assert [e.details["reason"] for e in sets] == ["网关证书过期", "证书已更换"]


def test_settings_are_read_only_and_secrets_masked(web: TestClient) -> None:
    login(web, "13800000009")
    page = web.get("/ops/settings").text
    assert "WAIMAI_SECRET_KEY" in page and "s3cr3t-" not in page and "••••••" in page
    assert "WAIMAI_DATABASE_URL" in page and "<form" not in page.split("<main>", 1)[1]
    ttl = page.split('data-setting="token_ttl_minutes"', 1)[1].split("</tr>", 1)[0]
    assert "720" in ttl and "••" not in ttl  # a number about tokens is not a secret
    login(web, "13800000004")
    assert web.get("/ops/settings", follow_redirects=False).status_code == 303


# --- item 5: outcomes said, nothing silent ------------------------------------------------------------

def test_another_shops_dish_asks_before_replacing_the_cart(web: TestClient) -> None:
    login(web, "13800000001")
    web.post("/cart/add", data={"item_id": 5, "quantity": "1"})      # 兰州拉面
    other = web.post("/cart/add", data={"item_id": 9, "quantity": "1"})  # another shop
    assert other.status_code == 409 and 'id="confirm-replace"' in other.text and "兰州拉面" in other.text
    assert "卤蛋" in web.get("/cart").text  # nothing was thrown away
    web.post("/cart/add", data={"item_id": 9, "quantity": "1", "replace": "1"})
    assert "卤蛋" not in web.get("/cart").text


def test_empty_quantity_is_an_error(web: TestClient) -> None:
    login(web, "13800000001")
    r = web.post("/cart/add", data={"item_id": 5, "quantity": ""})
    assert "请输入 1 到 99 之间的数量" in r.text and "flash err" in r.text
    assert "卤蛋" not in web.get("/cart").text


def test_problem_form_preselects_nothing(web: TestClient) -> None:
    oid = place(web)
    form = web.get(f"/orders/{oid}/problem").text
    assert 'name="category"' in form and "checked" not in form.split('id="problem"', 1)[1]


def test_wrong_password_keeps_the_phone(web: TestClient) -> None:
    r = web.post("/login", data={"phone": "13800000001", "password": "nope"})
    assert "手机号或密码错误" in r.text and 'value="13800000001"' in r.text


def test_merchant_and_rider_actions_say_what_happened(web: TestClient) -> None:
    oid = place(web)
    number = web.get(f"/orders/{oid}").text.split('class="muted num">', 1)[1].split(" ", 1)[0]
    login(web, "13800000002")
    said = []
    for action in ("accept", "preparing", "ready"):
        r = web.post(f"/merchant/orders/{oid}/{action}")
        said.append(re.search(r'class="flash ok"[^>]*>([^<]+)<', r.text).group(1))  # type: ignore[union-attr]
    assert all(number in s for s in said) and len(set(said)) == 3 and "已完成。" not in said
    _set(web, oid, rider_id=1)
    login(web, "13800000003")
    page = web.get("/rider").text
    assert 'href="tel:13800000001"' in page
    r = web.post(f"/rider/orders/{oid}/pickup")
    assert "已取餐" in r.text and number in r.text
