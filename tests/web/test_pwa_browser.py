"""The installable app in headless Chromium: the manifest link, the service worker's registration at the
root scope, the push switch on "My orders", and the offline page served by the worker."""

from __future__ import annotations

import time

import pytest

from tests.web.test_browser import ARTIFACTS, browser, signed_in, site

__all__ = ["browser", "site"]  # fixtures, used by name
pytestmark = pytest.mark.browser


def test_customer_page_registers_the_service_worker(browser, site: str) -> None:  # type: ignore[no-untyped-def]
    page = signed_in(browser, site, "13800000001")
    page.goto(f"{site}/orders")
    assert page.locator('link[rel="manifest"]').get_attribute("href") == "/manifest.webmanifest"
    scope = page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)")
    assert scope == f"{site}/"
    script = page.evaluate("navigator.serviceWorker.ready.then((r) => r.active.scriptURL)")
    assert script == f"{site}/sw.js?lang=zh_CN"
    push = page.locator("#push")
    push.wait_for(state="visible")
    assert "推送通知" in push.inner_text()
    assert page.locator("#push button").inner_text() in ("打开", "关闭")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "orders-push-390.png"), full_page=True)
    # Once the worker controls the page, a page that cannot be fetched shows the offline page.
    page.reload()
    # polled from here: wait_for_function's polling evaluates a string, which the page's CSP refuses
    deadline = time.monotonic() + 10
    while not page.evaluate("() => navigator.serviceWorker.controller !== null") and time.monotonic() < deadline:
        time.sleep(0.1)
    page.context.set_offline(True)
    try:
        page.goto(f"{site}/cart")
        assert page.locator("h1").inner_text() == "网络已断开"
        page.screenshot(path=str(ARTIFACTS / "offline-390.png"), full_page=True)
    finally:
        page.context.set_offline(False)
