"""Rider pay figures agree by construction: a rider never sees two amounts for one day, and a draft computed
before the day's last deliveries is a recompute away, not a failed reconciliation."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.conftest import Api, make_settings
from tests.platform.payroll.test_payroll import DAY, deliver, local, on_shift
from tests.platform.payroll.test_payroll_api import login
from waimai.app import create_app


def _work(c: TestClient, hours: tuple[int, ...]) -> list[int]:
    db = c.app.state.db  # type: ignore[attr-defined]
    with db.session() as s:
        if hours == (11,):
            on_shift(s, 1, local(DAY, 10), local(DAY, 14))
        ids = [deliver(s, 1, local(DAY, h, 5)) for h in hours]
        s.commit()
    return ids


def test_a_draft_computed_early_is_behind_not_broken_and_riders_see_one_figure(sqlite_url: str) -> None:
    with TestClient(create_app(make_settings(sqlite_url), background=False)) as c:
        Api(c)
        _work(c, (11,))
        login(c, "13800000009")
        r = c.post("/ops/payroll/compute", data={"kind": "day", "date": str(DAY), "campus_id": 1})
        assert 'data-ok="true"' in r.text
        pid = int(r.text.split('data-period="')[1].split('"')[0])
        later = _work(c, (12, 13))  # delivered after the draft was computed

        page = c.get(f"/ops/payroll?period_id={pid}").text
        assert 'id="reconciliation" data-ok="behind"' in page and "✗" not in page
        assert "重新计算" in page

        login(c, "13800000003")
        mine = c.get(f"/rider/earnings?date={DAY}").text
        assert all(f'data-order="{oid}"' in mine for oid in later)  # the live figure has every delivery
        assert "data-payslip=" not in mine  # the stale draft's payslip is not listed beside it

        login(c, "13800000009")
        r = c.post("/ops/payroll/compute", data={"kind": "day", "date": str(DAY), "campus_id": 1})
        assert 'id="reconciliation" data-ok="true"' in r.text
        r = c.post(f"/ops/payroll/{pid}/close")
        assert 'data-status="closed"' in r.text

        login(c, "13800000003")
        mine = c.get(f"/rider/earnings?date={DAY}").text
        day = mine.split('id="day"')[1].split("</section>")[0]
        listed = re.search(r'data-payslip="\d+">.*?class="num">(\d+)</td><td class="num">([^<]+)</td>', mine)
        assert listed is not None  # the closed period's payslip is listed now …
        assert listed.group(1) == "3" and listed.group(2) in day  # … with the same orders and total as above

        _work(c, (13,))  # a delivery recorded after closing: a real difference, shown as one
        login(c, "13800000009")
        page = c.get(f"/ops/payroll?period_id={pid}").text
        assert 'id="reconciliation" data-ok="false"' in page
