"""Item 11 (web edge): security headers on every answer, ops-only docs and monitoring detail in production,
and a cap on live order streams per user."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_settings
from tests.security.conftest import EVIL, METRICS_TOKEN, bearer, cookie_login, production_settings
from tests.servers import serve
from waimai.app import create_app

HEADERS = {"x-frame-options": "DENY", "x-content-type-options": "nosniff", "referrer-policy": "same-origin"}


@pytest.fixture
def web(sqlite_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(sqlite_url), background=False)) as c:
        yield c


@pytest.fixture
def prod(sqlite_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(production_settings(sqlite_url), background=False)) as c:
        yield c


def csp(r: httpx.Response) -> dict[str, str]:
    return {d.strip().split(" ", 1)[0]: d.strip().partition(" ")[2]
            for d in r.headers["content-security-policy"].split(";")}


def test_every_answer_carries_the_security_headers(web: TestClient) -> None:
    answers = [web.get("/"), web.get("/api/v1/merchants"), web.get("/static/app.css"), web.get("/no/such/page"),
               web.post("/api/v1/backups/prune", headers={"Origin": EVIL, "Cookie": "waimai_token=x"}),
               web.get("/api/v1/merchants?q=%00"), web.get("/api/v1/orders")]
    assert [r.status_code for r in answers] == [200, 200, 200, 404, 403, 400, 401]
    for r in answers:
        assert {k: r.headers.get(k) for k in HEADERS} == HEADERS, r.url
        policy = csp(r)
        assert policy["default-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
        assert policy["object-src"] == "'none'" and "'unsafe-inline'" not in policy["script-src"]
        assert "strict-transport-security" not in r.headers  # plain http outside production


def test_inline_scripts_run_only_with_this_answers_nonce(web: TestClient) -> None:
    cookie_login(web, "merchant")
    nonces = []
    for _ in range(2):
        r = web.get("/merchant")
        [nonce] = re.findall(r'<script nonce="([^"]+)">', r.text)
        assert f"'nonce-{nonce}'" in csp(r)["script-src"]
        nonces.append(nonce)
    assert nonces[0] != nonces[1]


def test_production_hsts_and_ops_only_docs_metrics_and_readyz(prod: TestClient) -> None:
    r = prod.get("/")
    assert r.headers["strict-transport-security"].startswith("max-age=31536000")
    customer = {"Authorization": f"Bearer {bearer(prod, 'customer')}"}
    ops = {"Authorization": f"Bearer {bearer(prod, 'ops')}"}
    scraper = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert prod.get(path).status_code == 401
        assert prod.get(path, headers=customer).status_code == 403
        assert prod.get(path, headers=scraper).status_code == 401
        assert prod.get(path, headers=ops).status_code == 200
    assert prod.get("/openapi.json", headers=ops).json()["info"]["title"] == "Waimai"
    assert prod.get("/metrics").status_code == 401
    assert prod.get("/metrics", headers={"Authorization": "Bearer wrong-token-of-some-length"}).status_code == 401
    assert prod.get("/metrics", headers=customer).status_code == 401
    for who in (scraper, ops):
        r = prod.get("/metrics", headers=who)
        assert r.status_code == 200 and "waimai_http_requests_total" in r.text
    anonymous = prod.get("/readyz")
    assert anonymous.status_code == 200 and anonymous.json() == {"status": "ready"}
    detail = prod.get("/readyz", headers=scraper).json()
    assert detail["status"] == "ready" and detail["database"] == "ok" and "roles" in detail
    cookie_login(prod, "ops")  # the ops console's cookie opens the docs in a browser
    assert prod.get("/docs").status_code == 200


def test_outside_production_docs_and_metrics_stay_open(web: TestClient) -> None:
    assert web.get("/openapi.json").status_code == 200 and web.get("/docs").status_code == 200
    assert web.get("/metrics").status_code == 200 and "database" in web.get("/readyz").json()


def test_one_user_holds_at_most_four_live_streams(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url), background=False)
    with serve(app) as base, httpx.Client(base_url=base, timeout=10) as c, ExitStack() as streams:
        tok = c.post("/api/v1/auth/login", json={"phone": "13800000001", "password": "waimai-demo"}).json()
        me = {"Authorization": f"Bearer {tok['access_token']}"}
        oid = c.post("/api/v1/orders", headers={**me, "Idempotency-Key": uuid.uuid4().hex}, json={
            "merchant_id": 1, "delivery_point_id": 1, "items": [{"item_id": 5, "quantity": 1}],
            "payment_method": "cod"}).json()["id"]
        path = f"/api/v1/orders/{oid}/events"
        live = httpx.Client(base_url=base, timeout=httpx.Timeout(5.0, read=30.0))
        streams.callback(live.close)
        opened = [streams.enter_context(live.stream("GET", path, headers=me)) for _ in range(4)]
        assert [r.status_code for r in opened] == [200] * 4
        refused = c.get(path, headers=me)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "10"
        assert refused.json()["error"]["code"] == "too_many_streams"
        # Another user is not affected; a closed stream frees its slot.
        ops = {"Authorization": f"Bearer {c.post('/api/v1/auth/login', json={'phone': '13800000009', 'password': 'waimai-demo'}).json()['access_token']}"}
        with live.stream("GET", path, headers=ops) as other:
            assert other.status_code == 200
        opened[0].close()
        deadline = time.time() + 20
        while True:  # the server notices the closed connection at its next write (keep-alive every 15 s)
            with live.stream("GET", path, headers=me) as again:
                if again.status_code == 200:
                    break
            assert time.time() < deadline, "the closed stream's slot was never given back"
            time.sleep(0.5)
