"""The short database drills (`waimai drill lunch-rush --short --fault database-…`): each builds its own
PostgreSQL (never the shared server), runs a Waimai process under order load with a ledger, injects the fault
and must meet its scorecard: MTTD ≤ 15 s, /status answered every probe, orders acknowledged with 0 lost and
0 duplicated, every spooled order settled ≤ 60 s after the database returned, users told ≤ 60 s after the
incident opened, the incident recorded; with a standby, the first order placed ≤ 30 s after the kill."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from waimai.drill.dbdrill import DbDrillConfig, run

pytestmark = pytest.mark.xdist_group("dbdrill")


def _need(binary: str, package: str) -> None:
    if shutil.which(binary) is None and not list(Path("/usr/lib/postgresql").glob(f"*/bin/{binary}")):
        msg = f"{binary} not installed (apt-get install {package}; .ci/run installs it)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.mark.parametrize("fault", ["database-outage", "database-hang", "database-down"])
def test_short_database_drill_meets_its_scorecard(fault: str, tmp_path: Path) -> None:
    _need("initdb", "postgresql")
    if fault == "database-down":
        _need("pg_autoctl", "postgresql-15-auto-failover")
    lines: list[str] = []
    figures, met, folder = run(DbDrillConfig(fault=fault, out=tmp_path, standby=fault == "database-down",
                                             warmup_s=8, fault_s=20, after_s=20, workers=3, progress=lines.append))
    print("\n".join(lines), json.dumps(figures, ensure_ascii=False), json.dumps(met, ensure_ascii=False))
    assert all(met.values()), (met, figures)
    assert figures["orders_acknowledged"] > 20 and figures["spooled_202"] > 0
    assert json.loads((folder / "scorecard.json").read_text())["passed"] is True
