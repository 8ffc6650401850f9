"""Paying with WeChat Pay and Alipay from the demo checkout at 390 px, on each stand-in's cashier (Chromium)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.platform.payments.railstack import rail_stack
from tests.web.test_browser import ARTIFACTS, browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.0 Mobile/15E148 Safari/604.1")


def _signed_in(page, base: str):  # type: ignore[no-untyped-def]
    """The customer signs in through the login form (a phone user agent of its own, so not signed_in())."""
    page.goto(f"{base}/login")
    page.fill("#phone", "13800000001")
    page.fill("#password", "waimai-demo")
    page.click("button[type=submit] >> text=登录")
    page.wait_for_load_state()
    return page


@pytest.mark.parametrize(("provider", "label"), [("wechat", "微信支付"), ("alipay", "支付宝")])
def test_customer_pays_on_the_providers_cashier(browser, sqlite_url: str, tmp_path: Path,  # noqa: F811
                                                provider: str, label: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with rail_stack(sqlite_url, tmp_path) as rs:
        page = _signed_in(browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN", user_agent=IPHONE,
                                           extra_http_headers={"Accept-Language": "zh-CN"}), rs.base)
        page.goto(f"{rs.base}/")
        page.click("text=兰州拉面")
        page.click('[data-item="5"] button')
        page.wait_for_selector(".flash.ok")
        page.click("#go-cart")
        option = page.locator(f"#pm-{provider}")
        assert label in page.locator(f"label:has(#pm-{provider})").inner_text()
        assert "沙箱" in page.locator(f"label:has(#pm-{provider})").inner_text()  # clearly a sandbox
        option.check()
        page.screenshot(path=str(ARTIFACTS / f"cart-{provider}-390.png"), full_page=True)
        page.click("#place")
        # The provider's cashier (the stand-in's page, reached through our signed request).
        page.wait_for_selector("#confirm")
        assert page.url.startswith(rs.wechat if provider == "wechat" else rs.alipay)
        assert "沙箱" in page.locator("#sandbox").inner_text()
        page.screenshot(path=str(ARTIFACTS / f"cashier-{provider}-390.png"), full_page=True)
        page.click("#confirm")
        # Back on our order page, which asked the provider (or had the signed callback) — not the redirect.
        page.wait_for_url(f"{rs.base}/orders/*")
        expect(page.locator("#status")).to_have_text("已支付", timeout=10000)  # not wait_for_function: CSP refuses its eval
        page.screenshot(path=str(ARTIFACTS / f"paid-{provider}-390.png"), full_page=True)
        assert rs.stats(provider)["paid"] == 1 and rs.stats(provider)["charged_twice"] == 0
        page.close()


def test_desktop_wechat_native_shows_a_qr_code(browser, sqlite_url: str, tmp_path: Path) -> None:  # noqa: F811  # type: ignore[no-untyped-def]
    with rail_stack(sqlite_url, tmp_path) as rs:
        o = rs.place()
        page = _signed_in(browser.new_page(viewport={"width": 1440, "height": 900}, locale="zh-CN"), rs.base)
        page.goto(f"{rs.base}/orders/{o['id']}")
        page.click("#pay-wechat")
        page.wait_for_selector("#qr svg")
        page.screenshot(path=str(ARTIFACTS / "pay-qr-1440.png"), full_page=True)
        page.click("#sandbox-scan")  # the phone that scans the code, in the sandbox
        page.click("#confirm")
        page.wait_for_selector("#done")
        page.goto(f"{rs.base}/orders/{o['id']}?returned=1")
        assert page.locator("#status").inner_text() == "已支付"
