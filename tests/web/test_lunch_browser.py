"""A simulated lunch hour on the demo campus, against a real server with its own dispatcher job, while the customer
follows an order in headless Chromium: the rider's dot moves on the campus map and the status reaches 已送达
without a reload; every order is delivered and the day's payslips reconcile with them."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.web.test_browser import ARTIFACTS, browser, signed_in, site  # noqa: F401 - fixtures
from waimai.platform.delivery.lunch import LunchConfig, LunchHour, LunchReport
from waimai.platform.payroll.service import local_today

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_lunch_hour_followed_live_in_the_browser(browser, site: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    first_day = local_today()
    result: dict[str, LunchReport | BaseException] = {}
    driver: LunchHour | None = None

    def run() -> None:
        nonlocal driver
        with httpx.Client(base_url=site, timeout=30) as client:
            driver = LunchHour(client, LunchConfig(orders=14, minutes=30, speed=60, riders=6, tick_s=0.25,
                                                   grace_s=90), say=lambda _m: None)
            try:
                result["report"] = driver.run()
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                result["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    page = signed_in(browser, site, "13800000001")
    deadline = time.time() + 60
    while (driver is None or driver.report.first_order is None) and time.time() < deadline:
        time.sleep(0.1)
    assert driver is not None and driver.report.first_order is not None, result
    page.goto(f"{site}/orders/{driver.report.first_order}")
    # Follow without reloading: collect the rider dot's positions as the server pushes them.
    seen: set[str] = set()
    shot = False
    deadline = time.time() + 120
    while time.time() < deadline:
        at = page.eval_on_selector("#map-rider-live",
                                   "e => e.getAttribute('visibility') === 'hidden' ? '' : e.getAttribute('transform')")
        if at:
            seen.add(at)
        if len(seen) >= 3 and not shot:
            page.screenshot(path=str(ARTIFACTS / "lunch-hour-live-390.png"), full_page=True)
            shot = True
        if page.locator("#status").inner_text() == "已送达":
            break
        page.wait_for_timeout(100)
    assert page.locator("#status").inner_text() == "已送达"
    assert len(seen) >= 3, seen  # the dot moved across the map, live
    worker.join(timeout=180)
    assert "error" not in result, result.get("error")
    report = result["report"]
    assert isinstance(report, LunchReport) and report.all_delivered, report
    # The day's pay: order lines match the delivered orders exactly, and a second computation changes nothing.
    ops = httpx.post(f"{site}/api/v1/auth/login", json={"phone": "13800000009", "password": "waimai-demo"}).json()
    h = {"Authorization": f"Bearer {ops['access_token']}"}
    lines = 0
    for day in sorted({first_day, local_today()}):
        for _ in range(2):  # an open shift accrues by the minute: a pair straddling a minute boundary is redone
            first = httpx.post(f"{site}/api/v1/payroll/periods", json={"kind": "day", "date": str(day)},
                               headers=h).json()
            again = httpx.post(f"{site}/api/v1/payroll/periods", json={"kind": "day", "date": str(day)},
                               headers=h).json()
            if not again[0]["changed"]:
                break
        assert not again[0]["changed"] and again[0]["unchanged"] == first[0]["written"] + first[0]["unchanged"]
        rec = httpx.get(f"{site}/api/v1/payroll/periods/{first[0]['period_id']}/reconciliation", headers=h).json()
        assert rec["ok"], rec
        lines += rec["lines"]
    assert lines == report.delivered == 14
    desk = browser.new_page(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    desk.goto(f"{site}/login")
    desk.fill("#phone", "13800000009")
    desk.fill("#password", "waimai-demo")
    desk.click("button.primary")
    desk.goto(f"{site}/ops/payroll")
    assert desk.locator("#reconciliation").get_attribute("data-ok") == "true"
    desk.screenshot(path=str(ARTIFACTS / "ops-payroll-1440.png"), full_page=True)
