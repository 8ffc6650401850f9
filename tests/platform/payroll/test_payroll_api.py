"""The pay API and pages: a rider sees only their own pay (another's is a 404), other roles are refused, ops
actions are audited, and the CSV files parse."""

from __future__ import annotations

import csv
import datetime as dt
import io

from fastapi.testclient import TestClient

from tests.conftest import Api, make_settings
from tests.platform.payroll.test_payroll import DAY, deliver, local, on_shift
from waimai.app import create_app
from waimai.platform.payroll import export


def _day_with_work(api: Api) -> dict[int, list[int]]:
    """Riders 1 and 2 deliver on DAY; returns their order ids."""
    db = api.c.app.state.db  # type: ignore[attr-defined]
    out: dict[int, list[int]] = {}
    with db.session() as s:
        for rider in (1, 2):
            on_shift(s, rider, local(DAY, 10), local(DAY, 14))
            out[rider] = [deliver(s, rider, local(DAY, h, 10 * rider)) for h in (11, 12, 13)]
        s.commit()
    return out


def _parse(text: str) -> list[dict[str, str]]:
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


def test_roles_and_ownership(api: Api) -> None:
    orders = _day_with_work(api)
    c = api.c
    # Riders see their own pay; a preview before any period is computed.
    r = c.get(f"/api/v1/payroll/earnings?kind=day&date={DAY}", headers=api.h("rider"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "preview" and body["rider_id"] == 1 and body["orders"] == 3
    assert [ln["order_id"] for ln in body["lines"] if ln["kind"] == "order"] == orders[1]
    assert c.get(f"/api/v1/payroll/earnings?date={DAY}&rider_id=2", headers=api.h("rider")).status_code == 404
    for role in ("customer", "merchant", "support"):
        assert c.get("/api/v1/payroll/earnings", headers=api.h(role)).status_code == 403
        assert c.get("/api/v1/payroll/payslips", headers=api.h(role)).status_code == 403
    assert c.get("/api/v1/payroll/earnings").status_code == 401
    # Only ops compute, and computing twice changes nothing.
    assert c.post("/api/v1/payroll/periods", json={"kind": "day", "date": str(DAY)},
                  headers=api.h("rider")).status_code == 403
    first = c.post("/api/v1/payroll/periods", json={"kind": "day", "date": str(DAY)}, headers=api.h("ops"))
    assert first.status_code == 200, first.text
    again = c.post("/api/v1/payroll/periods", json={"kind": "day", "date": str(DAY)}, headers=api.h("ops")).json()
    assert first.json()[0]["written"] == 2 and not again[0]["changed"] and again[0]["unchanged"] == 2
    pid = again[0]["period_id"]
    slips = c.get(f"/api/v1/payroll/periods/{pid}/payslips", headers=api.h("ops")).json()
    theirs = next(s["id"] for s in slips if s["rider_id"] == 2)
    mine = next(s["id"] for s in slips if s["rider_id"] == 1)
    # A rider: their payslips only; another's is a 404 (JSON and CSV alike), ops see all.
    listed = c.get("/api/v1/payroll/payslips", headers=api.h("rider")).json()
    assert [s["id"] for s in listed] == [mine]
    assert c.get("/api/v1/payroll/payslips?rider_id=2", headers=api.h("rider")).json() == []
    assert c.get(f"/api/v1/payroll/payslips/{theirs}", headers=api.h("rider")).status_code == 404
    assert c.get(f"/api/v1/payroll/payslips/{theirs}.csv", headers=api.h("rider")).status_code == 404
    assert c.get(f"/api/v1/payroll/payslips/{mine}", headers=api.h("rider")).json()["status"] == "draft"
    assert c.get(f"/api/v1/payroll/payslips/{theirs}", headers=api.h("ops")).status_code == 200
    assert c.get(f"/api/v1/payroll/payslips/{theirs}", headers=api.h("customer")).status_code == 403
    # Ops-only endpoints refuse riders.
    for path in (f"/api/v1/payroll/periods/{pid}", f"/api/v1/payroll/periods/{pid}/reconciliation",
                 f"/api/v1/payroll/periods/{pid}/payout.csv", "/api/v1/payroll/rules", "/api/v1/payroll/periods"):
        assert c.get(path, headers=api.h("rider")).status_code == 403, path
    assert c.post("/api/v1/payroll/adjustments", json={"rider_id": 1, "amount_fen": 100, "reason": "self-service"},
                  headers=api.h("rider")).status_code == 403


def test_ops_flow_csv_and_audit(api: Api) -> None:
    orders = _day_with_work(api)
    c, ops = api.c, api.h("ops")
    rules = c.get("/api/v1/payroll/rules", headers=ops).json()
    assert rules["pay_cycle"] == "week" and rules["peak_windows"] == ["11:00-13:00", "17:00-19:00"]
    bad = c.put("/api/v1/payroll/rules", json={**{k: v for k, v in rules.items() if k != "campus_id"},
                                                "peak_windows": ["13:00-11:00"]}, headers=ops)
    assert bad.status_code == 422
    r = c.put("/api/v1/payroll/rules", json={**{k: v for k, v in rules.items() if k != "campus_id"},
                                             "pay_cycle": "day"}, headers=ops)
    assert r.status_code == 200 and r.json()["pay_cycle"] == "day"
    tip = c.post("/api/v1/payroll/adjustments", json={"rider_id": 1, "amount_fen": 500, "reason": "tip, cash",
                                                      "kind": "tip", "order_id": orders[1][0]}, headers=ops)
    assert tip.status_code == 201 and tip.json()["applies_on"] == str(DAY)
    assert c.post("/api/v1/payroll/adjustments", json={"rider_id": 1, "amount_fen": 500, "reason": "x"},
                  headers=ops).status_code == 422
    pid = c.post("/api/v1/payroll/periods", json={"kind": "day", "date": str(DAY)}, headers=ops).json()[0]["period_id"]
    assert c.get(f"/api/v1/payroll/periods/{pid}/payout.csv", headers=ops).status_code == 409  # still a draft
    closed = c.post(f"/api/v1/payroll/periods/{pid}/close", headers=ops)
    assert closed.status_code == 200 and closed.json()["status"] == "closed" and closed.json()["payable"]
    assert closed.json()["reconciliation"]["ok"] is True
    assert c.post(f"/api/v1/payroll/periods/{pid}/close", headers=ops).status_code == 409
    # A tip after closing lands on the next day.
    late_tip = c.post("/api/v1/payroll/adjustments", json={"rider_id": 2, "amount_fen": 200, "reason": "late tip",
                                                           "kind": "tip", "order_id": orders[2][0]}, headers=ops)
    assert late_tip.json()["applies_on"] == str(DAY + dt.timedelta(days=1))
    # Payslip CSV: one row per line then the total, amounts in fen and yuan.
    slips = c.get(f"/api/v1/payroll/periods/{pid}/payslips", headers=ops).json()
    one = next(s for s in slips if s["rider_id"] == 1)
    rows = _parse(c.get(f"/api/v1/payroll/payslips/{one['id']}.csv", headers=api.h("rider")).text)
    assert list(rows[0]) == export.PAYSLIP_COLUMNS
    assert [r["kind"] for r in rows] == ["order"] * 3 + ["guarantee", "tip", "total"]
    assert [r["amount_yuan"] for r in rows] == ["6.50", "6.50", "4.33", "62.67", "5.00", "85.00"]
    assert sum(int(r["amount_fen"]) for r in rows[:-1]) == int(rows[-1]["amount_fen"]) == one["total_fen"]
    assert [int(r["order_id"]) for r in rows if r["kind"] == "order"] == orders[1]
    # Payout batch: masked by default, full accounts on request; both audited.
    masked = _parse(c.get(f"/api/v1/payroll/periods/{pid}/payout.csv", headers=ops).text)
    full = _parse(c.get(f"/api/v1/payroll/periods/{pid}/payout.csv?reveal=true", headers=ops).text)
    assert [r["rider_id"] for r in masked] == ["1", "2"]
    assert masked[0]["account"] == "138****0003" and full[0]["account"] == "13800000003"
    assert sum(int(r["amount_fen"]) for r in masked) == sum(s["total_fen"] for s in slips)
    paid = c.post(f"/api/v1/payroll/periods/{pid}/paid", json={"batch_ref": "ICBC-0001"}, headers=ops)
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    audit = c.get("/api/v1/ops/audit?limit=100", headers=ops).json()
    actions = [a["action"] for a in audit if a["action"].startswith("payroll.")]
    for action in ("payroll.rules", "payroll.adjustment", "payroll.compute", "payroll.close", "payroll.payout_export",
                   "payroll.paid"):
        assert action in actions, actions
    assert sum(a == "payroll.payout_export" for a in actions) == 2


def login(c: TestClient, phone: str) -> None:
    r = c.post("/login", data={"phone": phone, "password": "waimai-demo"}, follow_redirects=False)
    assert r.status_code == 303, r.text


def test_pages(sqlite_url: str) -> None:
    with TestClient(create_app(make_settings(sqlite_url), background=False)) as c:
        orders = _day_with_work(Api(c))
        login(c, "13800000003")
        assert 'href="/rider/earnings"' in c.get("/rider").text
        page = c.get(f"/rider/earnings?date={DAY}")
        assert page.status_code == 200 and "我的收入" in page.text
        for oid in orders[1]:
            assert f'data-order="{oid}"' in page.text
        assert f'data-order="{orders[2][0]}"' not in page.text
        assert c.get("/rider/earnings?rider_id=2").status_code == 404
        assert c.get("/rider/earnings?date=0001-01-01").status_code == 200  # out of range: today
        assert c.get("/ops/payroll", follow_redirects=False).status_code == 303
        login(c, "13800000009")
        r = c.post("/ops/payroll/compute", data={"kind": "day", "date": str(DAY), "campus_id": 1})
        assert r.status_code == 200 and "写入 2 张工资单" in r.text
        assert 'id="reconciliation" data-ok="true"' in r.text
        r = c.post("/ops/payroll/compute", data={"kind": "day", "date": str(DAY), "campus_id": 1})
        assert "写入 0 张工资单，2 张未变" in r.text
        r = c.post("/ops/payroll/adjustments", data={"rider_id": 2, "amount_yuan": "-3.5", "kind": "deduction",
                                                     "reason": "lost drink", "date": str(DAY)})
        assert "计入 " + str(DAY) in r.text
        r = c.post("/ops/payroll/adjustments", data={"rider_id": 2, "amount_yuan": "abc", "reason": "typo"})
        assert "请以元为单位填写金额" in r.text
        pid = int(r.text.split('data-period="')[1].split('"')[0])
        r = c.post(f"/ops/payroll/{pid}/close")
        assert "周期已结算" in r.text and 'data-status="closed"' in r.text
        theirs = c.get("/api/v1/payroll/payslips?rider_id=2").json()[0]
        page = c.get(f"/payslips/{theirs['id']}")
        assert page.status_code == 200 and "-¥3.50" in page.text and "lost drink" in page.text
        assert c.get("/ops/payroll?lang=en").status_code == 200
        login(c, "13800000003")
        mine = c.get("/api/v1/payroll/payslips").json()[0]["id"]
        assert c.get(f"/payslips/{mine}").status_code == 200
        others = [s for s in range(1, mine + 3) if s != mine]
        assert all(c.get(f"/payslips/{s}").status_code == 404 for s in others)


def test_absurd_dates_are_422_not_500(api: Api) -> None:
    for d in ("0001-01-01", "9999-12-31"):
        assert api.c.get(f"/api/v1/payroll/earnings?date={d}", headers=api.h("rider")).status_code == 422
        r = api.c.post("/api/v1/payroll/periods", json={"kind": "week", "date": d}, headers=api.h("ops"))
        assert r.status_code == 422, r.text
    r = api.c.post("/api/v1/payroll/periods", json={"kind": "week", "date": "2099-01-01"}, headers=api.h("ops"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "period_in_future"
