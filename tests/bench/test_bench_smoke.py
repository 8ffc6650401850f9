"""Every benchmark still runs: each one's smoke mode (tiny sizes, seconds) as a real process.

The full runs stay manual (their figures are in the README); these only prove that the code that
produces those figures starts, measures, checks itself and prints its environment header, so a
benchmark that rots (as `bench/tracking_fanout.py` once did) fails CI instead of the next reader.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / ".." / "shared" / "data"
IN_CI = os.environ.get("CI", "").lower() == "true"
WAIMAI = str(Path(sys.executable).with_name("waimai"))

pytestmark = pytest.mark.slow


def run(cmd: list[str], timeout: float = 300) -> str:
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, "COLUMNS": "100"})
    text = out.stdout + out.stderr
    assert out.returncode == 0, f"{' '.join(cmd[1:])} exited {out.returncode}:\n{text[-3000:]}"
    flat = " ".join(out.stdout.split())  # Rich wraps long lines wherever the terminal width puts them
    assert "environment:" in flat and " cores " in flat and "commit " in flat, text[-2000:]
    return flat


def need_wrk() -> None:
    if shutil.which("wrk") is None:
        if IN_CI:
            pytest.fail("CI=true needs wrk (.ci/run installs it)")
        pytest.skip("wrk not installed (apt-get install wrk)")


def need_data(name: str) -> Path:
    path = DATA / name
    if not path.is_dir():
        pytest.skip(f"benchmark data ../shared/data/{name} not available")
    return path


def test_order_throughput() -> None:
    need_wrk()
    out = run([sys.executable, "bench/order_throughput.py", "--smoke", "--backends", "sqlite"])
    assert "orders/sqlite" in out and "0 duplicates: consistent" in out


def test_monitoring_overhead() -> None:
    need_wrk()
    out = run([sys.executable, "bench/monitoring_overhead.py", "--smoke"])
    assert "throughput ratio on/off" in out and "embedded store after 1 day(s)" in out


def test_tracking_fanout() -> None:
    out = run([sys.executable, "bench/tracking_fanout.py", "--smoke"])
    assert "(100.0%)" in out and "kB per subscriber" in out  # every event reached every subscriber


def test_alert_latency() -> None:
    out = run([sys.executable, "bench/alert_latency.py", "--smoke"])
    assert "Waimai → DingTalk stand-in" in out and "noise:" in out


def test_backup_restore() -> None:
    engines = "sqlite,postgresql" if IN_CI else "sqlite"
    out = run([sys.executable, "bench/backup_restore.py", "--smoke", "--engines", engines])
    assert out.count("targets (backup") == len(engines.split(","))


def test_bench_nab(tmp_path: Path) -> None:
    nab = need_data("nab")
    out = run([WAIMAI, "bench", "nab", str(nab), "--smoke", "--out", str(tmp_path)])
    assert "NAB corpus: 4 files" in out and (tmp_path / "summary.json").is_file()


def test_bench_forecast() -> None:
    nab = need_data("nab")
    out = run([WAIMAI, "bench", "forecast", str(nab), "--smoke"])
    assert "MASE" in out and "profile_regression" in out


def test_bench_mdrp(tmp_path: Path) -> None:
    mdrp = need_data("mdrplib")
    out = run([WAIMAI, "bench", "mdrp", "--instances", str(mdrp), "--smoke", "--out", str(tmp_path)])
    assert "1 instances in" in out and any(tmp_path.rglob("*"))


def test_edge_overhead() -> None:
    out = run([sys.executable, "bench/edge_overhead.py", "--smoke"])
    assert "edge adds" in out and "POST form" in out


def test_db_failover() -> None:
    if shutil.which("runuser") is None or not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        if IN_CI:
            pytest.fail("CI=true needs PostgreSQL's server binaries (.ci/run installs postgresql)")
        pytest.skip("PostgreSQL server binaries (initdb) not installed")
    out = run([sys.executable, "bench/db_failover.py", "--smoke"], timeout=600)
    assert '"lost": 0' in out and '"duplicated": 0' in out


def test_bench_faults() -> None:
    out = run([WAIMAI, "bench", "faults", "--smoke"])
    assert "false alarms" in out.lower() and "static" in out.lower()
