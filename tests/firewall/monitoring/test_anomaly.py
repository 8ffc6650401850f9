"""On the demo service, a broken or slow payment gateway raises an anomaly signal within 3 samples."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import DEMO_ACCOUNTS, DEMO_PASSWORD, make_settings
from tests.servers import free_port, serve
from waimai.app import create_app
from waimai.platform.accounts.models import Role
from waimai.platform.payments.fake_gateway import create_gateway_app

SECRET = "anomaly-test-secret"


@pytest.fixture
def demo(sqlite_url: str) -> Iterator[tuple[object, str, str, httpx.Client, str]]:
    gw_port, app_port = free_port(), free_port()
    settings = make_settings(sqlite_url, gateway_url=f"http://127.0.0.1:{gw_port}", gateway_secret=SECRET,
                             public_url=f"http://127.0.0.1:{app_port}", gateway_timeout_s=2.0)
    app = create_app(settings, background=False)
    gw = create_gateway_app(app_id=settings.gateway_app_id, secret=SECRET, seed=3)
    with serve(gw, gw_port) as gw_url, serve(app, app_port) as base, httpx.Client(timeout=10) as http:
        tok = http.post(f"{base}/api/v1/auth/login", json={"phone": DEMO_ACCOUNTS[Role.customer][0],
                                                           "password": DEMO_PASSWORD}).json()["access_token"]
        yield app, base, gw_url, http, tok


def _traffic(base: str, http: httpx.Client, tok: str, n: int = 3) -> None:
    h = {"Authorization": f"Bearer {tok}"}
    for _ in range(n):
        o = http.post(f"{base}/api/v1/orders", headers={**h, "Idempotency-Key": uuid.uuid4().hex},
                      json={"merchant_id": 1, "delivery_point_id": 1, "payment_method": "gateway",
                            "items": [{"item_id": 5, "quantity": 1}]}).json()
        http.post(f"{base}/api/v1/orders/{o['id']}/pay", headers=h)


@pytest.mark.parametrize("fault,series", [({"failure_rate": 1.0}, "payment_success_ratio"),
                                          ({"latency_ms": 600}, "payment_latency_p95_ms")])
def test_gateway_fault_raises_signal_within_three_samples(demo, fault, series) -> None:  # type: ignore[no-untyped-def]
    app, base, gw_url, http, tok = demo
    sampler, watcher = app.state.sampler, app.state.anomalies
    t = time.time() - 40 * 5
    sampler.sample(t)
    for _ in range(30):  # two and a half minutes of normal lunch traffic, sampled every 5 s
        t += 5
        _traffic(base, http, tok)
        sampler.sample(t)
        early = watcher.step(t)
        assert early == [], f"no signal while the gateway is healthy: {early}"
    http.put(f"{gw_url}/admin/config", json=fault)
    for k in range(1, 4):  # noqa: B007 - k is reported after the loop
        t += 5
        _traffic(base, http, tok, n=2)
        sampler.sample(t)
        opened = [s for s in watcher.step(t) if s.series == series]
        if opened:
            break
    else:
        pytest.fail(f"no anomaly signal on {series} within 3 samples")
    sig = opened[0]
    print(f"{series}: signal after {k} sample(s), score {sig.score:.2f}, value {sig.value:.3g}, "
          f"expected {sig.expected_low:.3g}..{sig.expected_high:.3g}")
    assert not (sig.expected_low <= sig.value <= sig.expected_high)
    r = http.post(f"{base}/api/v1/auth/login", json={"phone": DEMO_ACCOUNTS[Role.ops][0], "password": DEMO_PASSWORD})
    ops = {"Authorization": f"Bearer {r.json()['access_token']}"}
    listed = http.get(f"{base}/api/v1/anomalies", params={"active": True}, headers=ops).json()
    assert any(s["series"] == series for s in listed)
    pts = http.get(f"{base}/api/v1/metrics/query", headers=ops,
                   params={"name": f"anomaly.{series}"}).json()["points"]
    assert pts and max(v for _, v in pts) >= watcher.threshold
