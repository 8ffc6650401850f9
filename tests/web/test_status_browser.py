"""During a simulated payment incident, in headless Chromium: the public status page shows the
component colours and the progress bar, the customer's pages show the banner with the workaround,
and the commander's page shows the timeline. Screenshots are kept as test artefacts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import make_settings
from tests.servers import free_port, serve
from tests.web.test_browser import ARTIFACTS, browser, signed_in  # noqa: F401 - the fixture
from waimai.app import create_app
from waimai.firewall.alerting.rules import Alert

pytestmark = pytest.mark.browser
RED = "rgb(207, 34, 46)"  # --bad, the major-outage colour
GREEN = "rgb(26, 127, 55)"  # --ok


@pytest.fixture
def incident_site(sqlite_url: str) -> Iterator[tuple[str, object]]:
    port = free_port()
    app = create_app(make_settings(sqlite_url, public_url=f"http://127.0.0.1:{port}", monitoring=True),
                     background=False)
    with serve(app, port) as base:
        yield base, app


def _login(base: str, phone: str) -> str:
    r = httpx.post(f"{base}/api/v1/auth/login", json={"phone": phone, "password": "waimai-demo"})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def test_status_page_banner_and_commander_view_during_an_incident(browser, incident_site) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    base, app = incident_site
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    app.state.alerting.ingest([Alert(labels={"alertname": "PaymentGatewayDown", "severity": "P1",  # type: ignore[attr-defined]
                                             "component": "payment"},
                                     annotations={"summary": "The payment gateway does not answer"},
                                     status="firing", starts_at=now)])
    ops = {"Authorization": f"Bearer {_login(base, '13800000009')}"}
    [inc] = httpx.get(f"{base}/api/v1/incidents", headers=ops).json()
    r = httpx.post(f"{base}/api/v1/incidents/{inc['id']}/updates", headers=ops,
                   json={"status": "identified", "eta_minutes": 20,
                         "text_zh": "支付网关证书过期，正在更换。", "text_en": "The gateway's certificate expired; replacing it."})
    assert r.status_code == 201, r.text

    # The public status page, no login, desktop and phone.
    page = browser.new_page(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page.goto(f"{base}/status")
    pay = page.locator("[data-component=payment]")
    assert pay.get_attribute("data-status") == "major_outage"
    assert "严重中断" in pay.inner_text()
    assert pay.locator(".st").evaluate("e => getComputedStyle(e).color") == RED
    ordering = page.locator("[data-component=ordering]")
    assert ordering.get_attribute("data-status") == "operational"
    assert ordering.locator(".st").evaluate("e => getComputedStyle(e).color") == GREEN
    bar = page.locator(f"[data-incident='{inc['id']}'] .progress")
    assert bar.get_attribute("data-progress") == "50"
    assert bar.locator("li.current").inner_text() == "已定位"
    assert bar.locator("li.done").count() == 1
    assert "支付网关证书过期" in page.locator(f"[data-incident='{inc['id']}']").inner_text()
    assert page.locator("[data-component] .uptime span").count() == 5 * 90
    page.screenshot(path=str(ARTIFACTS / "status-incident-1440.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(ARTIFACTS / "status-incident-390.png"), full_page=True)
    page.goto(f"{base}/status?lang=en")
    assert "Major outage" in page.locator("[data-component=payment]").inner_text()
    assert page.locator(".progress li.current").inner_text() == "Identified"

    # The customer sees the banner with the workaround and the expected time, on every page.
    cust = signed_in(browser, base, "13800000001")
    for path in ("/", "/shops/1", "/cart"):
        cust.goto(f"{base}{path}")
        banner = cust.locator("[data-banner=payment]")
        assert banner.is_visible(), path
        text = banner.inner_text()
        assert "在线支付暂时不可用" in text and "货到付款" in text and "预计" in text, text
    assert cust.locator("[data-banner=payment]").evaluate("e => getComputedStyle(e).borderColor") != ""
    cust.goto(f"{base}/")
    cust.screenshot(path=str(ARTIFACTS / "customer-banner-390.png"), full_page=True)

    # A rider needs delivery, not payment: no banner for them.
    rider = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
    rider.context.add_cookies([{"name": "waimai_token", "value": _login(base, "13800000003"), "url": base}])
    rider.goto(f"{base}/rider")
    assert rider.locator("[data-banner]").count() == 0

    # The commander's view: timeline in order, MTTD/MTTA shown, SOP checklist tickable.
    cmd = browser.new_page(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    cmd.context.add_cookies([{"name": "waimai_token", "value": ops["Authorization"].split()[1], "url": base}])
    cmd.goto(f"{base}/ops/incidents/{inc['id']}")
    kinds = cmd.locator("[data-timeline] li").evaluate_all("els => els.map(e => e.dataset.kind)")
    assert kinds[:2] == ["opened", "alert"] and "status" in kinds
    cmd.locator("form[action$='/check/switches'] button").click()
    assert "☑" in cmd.locator("form[action$='/check/switches'] button").inner_text()
    assert cmd.locator("[data-mtta]").inner_text().split()[0] != "–"  # the update acknowledged it
    cmd.screenshot(path=str(ARTIFACTS / "ops-incident-1440.png"), full_page=True)
