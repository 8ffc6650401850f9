"""Issue 20, item 2: one language per page. Every page of every role, rendered in zh-CN and in English,
shows no English prose on the Chinese page and no Chinese on the English one (names excepted)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_settings
from tests.web.lang import foreign, names, visible_text
from waimai.app import create_app

PAGES = {
    None: ["/", "/shops/1", "/login", "/status", "/no/such/page", "/orders/abc"],
    "13800000001": ["/", "/shops/1", "/cart", "/orders", "/orders/{oid}", "/orders/{oid}/problem", "/tickets",
                    "/notices"],
    "13800000002": ["/merchant"],
    "13800000003": ["/rider", "/rider/earnings"],
    "13800000004": ["/support", "/tickets", "/support/orders/{oid}"],
    "13800000009": ["/ops", "/ops/alerts", "/ops/incidents", "/ops/runbooks", "/ops/intake", "/ops/payroll",
                    "/ops/logs", "/ops/satisfaction", "/ops/backups", "/ops/dispatch", "/ops/switches",
                    "/ops/settings", "/ops/events", "/orders/{oid}", "/ops/incidents/1"],
}


@pytest.fixture
def site(sqlite_url: str) -> Iterator[tuple[TestClient, str]]:
    with TestClient(create_app(make_settings(sqlite_url), background=False)) as c:
        yield c, sqlite_url


def _login(c: TestClient, phone: str) -> None:
    c.cookies.clear()
    r = c.post("/login", data={"phone": phone, "password": "waimai-demo"}, follow_redirects=False)
    assert r.status_code == 303, r.text[:300]


def _place_and_cancel(c: TestClient) -> str:
    """An order that went somewhere (placed, then cancelled by the customer): its page has a history."""
    _login(c, "13800000001")
    c.post("/cart/add", data={"item_id": 5, "quantity": "1"})
    idem = re.search(r'name="idem" value="([^"]+)"', c.get("/cart").text).group(1)  # type: ignore[union-attr]
    r = c.post("/checkout", data={"delivery_point_id": 1, "payment_method": "cod", "idem": idem},
               follow_redirects=False)
    oid = r.headers["location"].split("/orders/")[1].split("?")[0]
    c.post(f"/orders/{oid}/cancel")
    return oid


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_every_page_speaks_one_language(site: tuple[TestClient, str], locale: str) -> None:
    c, url = site
    oid = _place_and_cancel(c)
    c.post("/cart/add", data={"item_id": 5, "quantity": "1"})  # a cart to look at
    _login(c, "13800000009")  # an incident with a timeline (opened, a note) for the commander's page
    c.post("/ops/incidents", data={"title": "午高峰下单失败", "severity": "P2", "components": ["ordering"],
                                   "public": "1"})
    c.post("/ops/incidents/1/note", data={"text": "已联系商家"})
    known = names(url)
    bad: dict[str, list[str]] = {}
    for phone, pages in PAGES.items():
        if phone:
            _login(c, phone)
            if phone == "13800000001":
                c.post("/cart/add", data={"item_id": 5, "quantity": "1"})
        else:
            c.cookies.clear()
        for path in pages:
            r = c.get(path.replace("{oid}", oid), params={"lang": locale})
            assert r.status_code in (200, 404), (path, r.status_code)
            assert r.headers["content-type"].startswith("text/html"), path
            found = foreign(visible_text(r.text), locale, known)
            if found:
                bad[f"{phone} {path}"] = found
    assert not bad, bad
