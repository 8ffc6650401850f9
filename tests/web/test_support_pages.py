"""Customer-service pages driven as a browser without JavaScript: the support console taking an order by
phone, reporting a problem with a photo, the ticket page for each role, one-tap ratings, the ops
satisfaction page."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import make_settings
from waimai.app import create_app


@pytest.fixture
def web(sqlite_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(sqlite_url), background=False)) as c:
        yield c


def login(c: TestClient, phone: str) -> None:
    c.cookies.clear()
    r = c.post("/login", data={"phone": phone, "password": "waimai-demo"}, follow_redirects=False)
    assert r.status_code == 303, r.text


def jpeg_with_gps() -> bytes:
    img = Image.new("RGB", (2400, 1200), (200, 80, 40))
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (31.0, 1.0, 0.0)}  # GPSInfo: where the photo was taken
    exif[0x010F] = "PhoneMaker"
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    return buf.getvalue()


def switch(c: TestClient, name: str, on: bool) -> None:
    with c.app.state.db.session() as s:  # type: ignore[attr-defined]
        from waimai.firewall.switches.service import set_switch

        set_switch(s, name, enabled=on, actor_id=None, actor_role="system", reason="test")
        s.commit()


def test_support_takes_an_order_by_phone_in_the_console(web: TestClient) -> None:
    switch(web, "payment.cod_only", True)
    switch(web, "ordering.simple_mode", True)
    r = web.post("/login", data={"phone": "13800000004", "password": "waimai-demo"}, follow_redirects=False)
    assert r.headers["location"] == "/support"
    page = web.get("/support")
    assert page.status_code == 200 and "客服工作台" in page.text and 'id="cod-only"' in page.text
    assert 'id="simple-mode"' in page.text
    # A new caller: not found, created, then their order from a live menu.
    page = web.get("/support", params={"phone": "13655550000"})
    assert 'id="new-customer"' in page.text
    r = web.post("/support/customers", data={"phone": "13655550000", "name": "李同学"}, follow_redirects=False)
    assert r.status_code == 303 and "phone=13655550000" in r.headers["location"]
    page = web.get("/support", params={"phone": "13655550000", "m": "1"})
    cid = re.search(r'data-customer="(\d+)"', page.text).group(1)  # type: ignore[union-attr]
    idem = re.search(r'name="idem" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    assert 'value="gateway"' not in page.text  # cash only while payment.cod_only is on
    form = {"customer_id": cid, "merchant_id": "1", "delivery_point_id": "3", "payment_method": "cod", "idem": idem,
            "phone": "13655550000", "item_id": ["1", "5"], "qty": ["1", "2"], "opt": ["1:微辣", ""]}
    r = web.post("/support/orders", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/support/orders/"), r.headers["location"]
    order_url = r.headers["location"].split("?")[0]
    again = web.post("/support/orders", data=form, follow_redirects=False)  # double submit: the same order
    assert again.headers["location"].split("?")[0] == order_url
    placed = web.get(order_url)
    assert re.search(r'id="proof">\d{4}<', placed.text) and "客服代下单" in placed.text and "货到付款" in placed.text
    # Nothing chosen, or a bad option: the console says so and places nothing.
    r = web.post("/support/orders", data={**form, "qty": ["0", "0"], "idem": "x1"})
    assert "请至少选择一个餐品" in r.text
    r = web.post("/support/orders", data={**form, "opt": ["1:炸弹"], "idem": "x2"})
    assert r.status_code == 200 and "flash err" in r.text
    # Other roles are sent away from the console.
    login(web, "13800000001")
    assert web.get("/support", follow_redirects=False).status_code == 303


def test_report_with_photo_resolve_with_coupon_and_rate(web: TestClient) -> None:
    login(web, "13800000001")
    web.post("/cart/add", data={"item_id": 5, "quantity": 2})
    idem = re.search(r'name="idem" value="([^"]+)"', web.get("/cart").text).group(1)  # type: ignore[union-attr]
    r = web.post("/checkout", data={"delivery_point_id": 1, "payment_method": "cod", "idem": idem},
                 follow_redirects=False)
    oid = r.headers["location"].split("?")[0].rsplit("/", 1)[-1]
    assert 'id="report-problem"' in web.get(f"/orders/{oid}").text
    form = web.get(f"/orders/{oid}/problem")
    assert "漏送餐品" in form.text and "联系不上顾客" not in form.text  # a customer's categories only
    # Not an image: refused, and no ticket is left behind.
    r = web.post(f"/orders/{oid}/problem", data={"category": "missing_item", "description": "no egg"},
                 files={"photo": ("egg.jpg", b"<script>alert(1)</script>", "image/jpeg")})
    assert "flash err" in r.text
    assert "data-ticket" not in web.get("/tickets").text
    big = jpeg_with_gps()
    r = web.post(f"/orders/{oid}/problem", data={"category": "missing_item", "description": "没有卤蛋"},
                 files={"photo": ("../../etc/passwd", big, "text/plain")}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/tickets/"), r.text
    ticket_url = r.headers["location"].split("?")[0]
    page = web.get(ticket_url)
    assert "没有卤蛋" in page.text and "漏送餐品" in page.text
    src = re.search(r'<img src="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    img = web.get(src)
    assert img.headers["content-type"] == "image/jpeg" and img.headers["x-content-type-options"] == "nosniff"
    assert "passwd" not in img.headers["content-disposition"]
    stored = Image.open(io.BytesIO(img.content))
    assert max(stored.size) == 1600 and not stored.getexif()  # shrunk, and no GPS or maker left
    assert 'id="actions"' not in page.text  # customers get no staff actions

    # Another customer: the ticket does not exist for them.
    with web.app.state.db.session() as s:  # type: ignore[attr-defined]
        from waimai.platform.accounts.service import create_user

        create_user(s, phone="13700000088", name="Other", role="customer", password="other-pass-1")
        s.commit()
    web.cookies.clear()
    web.post("/login", data={"phone": "13700000088", "password": "other-pass-1"})
    assert web.get(ticket_url).status_code == 404
    assert web.get(src).status_code == 404

    # Support takes it, answers, and resolves it with a coupon (through the coupon service).
    login(web, "13800000004")
    queue = web.get("/tickets")
    tid = ticket_url.rsplit("/", 1)[-1]
    assert f'data-ticket="{tid}"' in queue.text
    assert web.post(f"{ticket_url}/take", follow_redirects=False).status_code == 303
    web.post(f"{ticket_url}/reply", data={"text": "抱歉，马上为您处理"})
    web.post(f"{ticket_url}/reply", data={"text": "商家常漏卤蛋", "internal": "1"})
    r = web.post(f"{ticket_url}/resolve", data={"resolution": "coupon", "amount": "500"})
    assert "flash err" in r.text  # over the support limit (¥30)
    r = web.post(f"{ticket_url}/resolve", data={"resolution": "coupon", "amount": "abc"})
    assert "请输入金额" in r.text
    r = web.post(f"{ticket_url}/resolve", data={"resolution": "coupon", "amount": "8", "note": "补偿卤蛋"})
    assert 'id="resolution"' in r.text and "优惠券" in r.text
    # The customer sees the answer (not the note), their coupon, and rates the resolution in one tap.
    login(web, "13800000001")
    page = web.get(ticket_url)
    assert "抱歉，马上为您处理" in page.text and "商家常漏卤蛋" not in page.text
    r = web.post(f"{ticket_url}/rate", data={"stars": "4"})
    assert "感谢评价：4 ★" in r.text and r.text.count('class="on"') == 4
    with web.app.state.db.read_session() as s:  # type: ignore[attr-defined]
        from waimai.platform.coupons.models import Coupon

        c = s.query(Coupon).filter(Coupon.ticket_id == int(tid)).one()
        assert (c.amount_fen, c.source, c.order_id) == (800, "ticket", int(oid))
    # The order itself is rated once delivered.
    r = web.post(f"/orders/{oid}/rate", data={"stars": "5"})
    assert "订单送达后才能评价" in r.text


def test_ops_satisfaction_page_marks_incident_days(web: TestClient) -> None:
    login(web, "13800000001")
    web.post("/cart/add", data={"item_id": 5, "quantity": 2})
    idem = re.search(r'name="idem" value="([^"]+)"', web.get("/cart").text).group(1)  # type: ignore[union-attr]
    oid = web.post("/checkout", data={"delivery_point_id": 1, "payment_method": "cod", "idem": idem},
                   follow_redirects=False).headers["location"].split("?")[0].rsplit("/", 1)[-1]
    login(web, "13800000009")
    r = web.post("/ops/incidents", data={"title": "Riders short", "severity": "P2", "components": ["delivery"],
                                         "public": "1"}, follow_redirects=False)
    assert r.status_code == 303
    login(web, "13800000001")
    web.post(f"/orders/{oid}/problem", data={"category": "late"})
    login(web, "13800000004")
    assert web.get("/ops/satisfaction", follow_redirects=False).status_code == 303  # ops only
    login(web, "13800000009")
    page = web.get("/ops/satisfaction?lang=en")
    assert page.status_code == 200 and "Customer satisfaction" in page.text
    assert re.search(r'<tr class="inc" data-day="[\d-]+">', page.text)
    assert 'data-incident="' in page.text and 'class="band P2"' in page.text
    assert 'data-merchant="1"' in page.text
