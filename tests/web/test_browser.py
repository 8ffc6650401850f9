"""The customer flow in headless Chromium (Debian's), driven by Playwright; screenshots kept."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import IN_CI, make_settings
from tests.servers import free_port, serve
from waimai.app import create_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("WAIMAI_ARTIFACTS", "test-artifacts")) / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]

pytestmark = pytest.mark.browser


@pytest.fixture
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail("CI=true needs Debian's chromium (.ci/run installs it)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


_APPS: dict[str, object] = {}


def signed_in(browser, site: str, phone: str, *, width: int = 390, height: int = 844):  # type: ignore[no-untyped-def]
    """A new zh-CN page signed in through the login form (as a person would)."""
    page = browser.new_page(viewport={"width": width, "height": height}, locale="zh-CN",
                            extra_http_headers={"Accept-Language": "zh-CN"})
    page.goto(f"{site}/login")
    page.fill("#phone", phone)
    page.fill("#password", "waimai-demo")
    page.click("button[type=submit] >> text=登录")
    page.wait_for_load_state()
    return page


@pytest.fixture
def site(sqlite_url: str) -> Iterator[str]:
    port = free_port()
    app = create_app(make_settings(sqlite_url, public_url=f"http://127.0.0.1:{port}", sample_interval_s=1),
                     background=True)
    with serve(app, port) as base:
        _APPS[base] = app
        yield base
        _APPS.pop(base, None)


def test_customer_orders_with_cash_on_delivery(browser, site: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = signed_in(browser, site, "13800000001")
    page.goto(f"{site}/")
    assert page.locator("h1").inner_text() == "校园商家"
    page.screenshot(path=str(ARTIFACTS / "shops-390.png"), full_page=True)
    page.click("text=兰州拉面")
    page.screenshot(path=str(ARTIFACTS / "menu-390.png"), full_page=True)
    page.click('[data-item="5"] button')   # 卤蛋
    page.wait_for_selector(".flash.ok")
    page.click('[data-item="7"] button')   # 冰红茶
    page.click("#go-cart")
    assert "卤蛋" in page.content() and "冰红茶" in page.content()
    page.check('input[name=payment_method][value=cod]')
    page.screenshot(path=str(ARTIFACTS / "cart-390.png"), full_page=True)
    page.click("#place")
    page.wait_for_url("**/orders/*")
    assert page.locator("#status").inner_text() == "货到付款"
    assert len(page.locator("#proof").inner_text()) == 4
    page.screenshot(path=str(ARTIFACTS / "order-390.png"), full_page=True)
    # The kitchen accepts: the open page follows over Server-Sent Events, without a reload.
    import httpx

    oid = page.url.split("/orders/")[1].split("?")[0]
    tok = httpx.post(f"{site}/api/v1/auth/login", json={"phone": "13800000002", "password": "waimai-demo"}).json()
    r = httpx.post(f"{site}/api/v1/orders/{oid}/accept", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert r.status_code == 200
    # (locator assertions, not wait_for_function: its polling evaluates a string, which the pages' CSP refuses)
    expect(page.locator("#status")).to_have_text("商家已接单", timeout=10000)
    # the badge follows the event at once; the whole state block (steps, buttons) is fetched right after it
    expect(page.locator(".steps li.current")).to_have_text("已接单", timeout=10000)
    page.screenshot(path=str(ARTIFACTS / "order-live-390.png"), full_page=True)
    desk = browser.new_page(viewport={"width": 1440, "height": 900})
    desk.goto(f"{site}/?lang=en")
    assert desk.locator("h1").inner_text() == "Campus shops"
    desk.screenshot(path=str(ARTIFACTS / "shops-1440-en.png"), full_page=True)


def test_ops_overview_shows_health_and_live_charts(browser, site: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = signed_in(browser, site, "13800000009", width=1440, height=900)
    page.wait_for_timeout(2500)  # a couple of samples
    page.goto(f"{site}/ops")
    assert page.locator("h1").inner_text() == "运维总览"
    assert "数据库" in page.locator(".health").inner_text()  # the probe by its name, not `database`
    page.wait_for_selector("#c-http_latency_p95_ms canvas", timeout=15000)
    assert page.locator("#now-riders_on_shift").inner_text() == "1"
    page.screenshot(path=str(ARTIFACTS / "ops-1440.png"), full_page=True)


def test_ops_alerts_page_acknowledge_and_silence(browser, site: str) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    import httpx

    from waimai.firewall.alerting.rules import Alert

    page = signed_in(browser, site, "13800000009", width=1440, height=900)
    page.goto(f"{site}/ops/alerts")
    assert "当前没有告警" in page.content()
    # An alert arrives (as the evaluator or Alertmanager intake would deliver it).
    app_alerting = _APPS[site].state.alerting
    app_alerting.ingest([Alert(labels={"alertname": "PaymentGatewayDown", "severity": "P1", "component": "payment"},
                               annotations={"summary": "gateway probe failing"}, status="firing",
                               starts_at=dt.datetime.now(dt.UTC))])
    page.goto(f"{site}/ops/alerts")
    # The site is shared and its own rules run (on a loaded machine one may fire meanwhile): this alert's card.
    card = page.locator("section.state-firing").filter(has_text="PaymentGatewayDown")
    assert card.count() == 1
    page.screenshot(path=str(ARTIFACTS / "ops-alerts-1440.png"), full_page=True)
    card.locator("button.primary").click()
    page.wait_for_selector(".flash.ok")
    assert page.locator("section.state-acknowledged").count() == 1
    assert httpx.get(f"{site}/livez").status_code == 200
