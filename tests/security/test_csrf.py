"""Item 2: a cross-site page cannot make a signed-in browser change anything (pages and API alike).

Each request of the report, with the victim's cookie, a form content type and `Origin: http://evil.example`,
is refused with 403 and changes nothing; the same requests from our own pages (same origin) still work;
bearer-token API calls are not cookie requests and pass whatever their Origin.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_settings
from tests.security.conftest import EVIL, ORIGIN, bearer, cookie_login, production_settings
from waimai.app import create_app
from waimai.core.csrf import cross_site_reason

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
CROSS = {**FORM, "Origin": EVIL}
SAME = {**FORM, "Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"}


@pytest.fixture
def web(sqlite_url: str, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(make_settings(sqlite_url, backup_dir=str(tmp_path / "backups")), background=False)
    with TestClient(app) as c:
        yield c


def shop_status(c: TestClient) -> str:
    return str(c.get("/api/v1/merchants/1").json()["status"])


def test_merchant_status_form_from_another_site_is_refused(web: TestClient) -> None:
    cookie_login(web, "merchant")
    r = web.post("/merchant/status", content="status=paused", headers=CROSS, follow_redirects=False)
    assert r.status_code == 403 and r.json()["error"]["code"] == "cross_site_request"
    assert shop_status(web) == "open"
    # Fetch Metadata alone decides when the browser sends it, whatever Origin says.
    for site in ("cross-site", "same-site"):
        r = web.post("/merchant/status", content="status=paused", headers={**FORM, "Sec-Fetch-Site": site},
                     follow_redirects=False)
        assert r.status_code == 403, site
    r = web.post("/merchant/status", content="status=paused", headers={**FORM, "Origin": "null"},
                 follow_redirects=False)
    assert r.status_code == 403
    assert shop_status(web) == "open"
    # Our own page's form works.
    r = web.post("/merchant/status", content="status=paused", headers=SAME, follow_redirects=False)
    assert r.status_code == 303 and shop_status(web) == "paused"


def test_runbook_order_accept_and_prune_from_another_site_are_refused(web: TestClient) -> None:
    cookie_login(web, "ops")
    r = web.post("/ops/runbooks/switch_to_cod", content="action=run", headers=CROSS, follow_redirects=False)
    assert r.status_code == 403
    ops = {"Authorization": f"Bearer {bearer(web, 'ops')}"}
    assert not any(s["enabled"] for s in web.get("/api/v1/switches", headers=ops).json()
                   if s["name"] == "payment.cod_only")
    r = web.post("/api/v1/backups/prune", headers=CROSS)
    assert r.status_code == 403
    # The merchant accepting an order through the API with only the cookie: refused too.
    order = web.post("/api/v1/orders", headers={**{"Authorization": f"Bearer {bearer(web, 'customer')}"},
                                                "Idempotency-Key": "csrf-1"},
                     json={"merchant_id": 1, "delivery_point_id": 1, "items": [{"item_id": 5, "quantity": 1}],
                           "payment_method": "cod"}).json()
    web.cookies.clear()
    cookie_login(web, "merchant")
    r = web.post(f"/api/v1/orders/{order['id']}/accept", headers={"Origin": EVIL})
    assert r.status_code == 403
    merchant = {"Authorization": f"Bearer {bearer(web, 'merchant')}"}
    assert web.get(f"/api/v1/orders/{order['id']}", headers=merchant).json()["status"] == order["status"]
    # A bearer-token client is not a browser carrying a cookie: it passes, whatever Origin it sends.
    r = web.post(f"/api/v1/orders/{order['id']}/accept", headers={**merchant, "Origin": EVIL})
    assert r.status_code == 200, r.text
    assert web.post("/api/v1/backups/prune?dry_run=true", headers={**ops, "Origin": EVIL}).status_code == 200


def test_restore_in_production_from_another_site_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    settings = production_settings(sqlite_url, backup_dir=str(tmp_path / "b"))
    with TestClient(create_app(settings, background=False)) as c:
        ops = {"Authorization": f"Bearer {bearer(c, 'ops')}"}
        r = c.post("/api/v1/backups", json={}, headers=ops)
        assert r.status_code in (200, 201), r.text
        backup_id = r.json()["id"]
        cookie_login(c, "ops")
        r = c.post(f"/ops/backups/{backup_id}/restore", content=f"confirm={backup_id}", headers=CROSS,
                   follow_redirects=False)
        assert r.status_code == 403
        assert c.get("/api/v1/backups/restores", headers=ops).json() == []


def test_requests_without_browser_headers_pass_and_safe_methods_always_pass() -> None:
    # A platform webhook or curl sends neither Origin nor Sec-Fetch-Site: no ambient cookie to borrow.
    assert cross_site_reason("POST", [(b"content-type", b"application/json")], frozenset()) is None
    assert cross_site_reason("GET", [(b"origin", EVIL.encode()), (b"sec-fetch-site", b"cross-site")],
                             frozenset()) is None
    # Behind a proxy the Host may differ: the configured public URL is our origin too.
    trusted = frozenset({"https://waimai.campus.example"})
    assert cross_site_reason("POST", [(b"origin", b"https://waimai.campus.example"), (b"host", b"10.0.0.5:8000")],
                             trusted) is None
    assert cross_site_reason("DELETE", [(b"origin", b"https://waimai.campus.example.evil.example"),
                                        (b"host", b"10.0.0.5:8000")], trusted) is not None
