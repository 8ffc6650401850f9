"""The CLI at an 80-column terminal: no tracebacks for bad arguments, tables that read, honest counters."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

WAIMAI = str(Path(sys.executable).with_name("waimai"))


def waimai(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WAIMAI, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "80", "TERM": "xterm", **(env or {})})


@pytest.mark.parametrize("args", [["--orders", "-5"], ["--orders", "0"], ["--couriers", "0"],
                                  ["--interval", "0"], ["--ready-noise", "-1"]])
def test_simulate_refuses_bad_numbers_without_a_traceback(args: list[str]) -> None:
    r = waimai("simulate", *args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr + r.stdout and "Error" not in r.stdout
    assert "Invalid value for" in r.stderr


def test_simulate_table_reads_at_80_columns() -> None:
    r = waimai("simulate", "--orders", "60", "--couriers", "4", "--restaurants", "5")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(len(ln) for ln in lines) <= 80
    row = next(ln for ln in lines if "click-to-door mean" in ln)
    assert len([c for c in row.split("│") if c.strip()]) == 4  # the measure, ours, greedy and the bound, unclipped
    assert "…" not in r.stdout


def test_backup_list_and_progress_read_at_80_columns(tmp_path: Path) -> None:
    env = {"WAIMAI_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}", "WAIMAI_BACKUP_DIR": str(tmp_path / "b"),
           "WAIMAI_ENV": "development", "WAIMAI_METRICS_URL": f"sqlite:///{tmp_path / 'm.db'}",
           "WAIMAI_LOG_FILE": str(tmp_path / "l.jsonl")}
    assert waimai("migrate", env=env).returncode == 0
    created = waimai("backup", "create", env=env)
    assert created.returncode == 0, created.stderr
    assert "1/1 bytes" not in created.stdout and "0/1 bytes" not in created.stdout
    assert "kB" in created.stdout  # the stages that move bytes still count them
    listed = waimai("backup", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert max(len(ln) for ln in listed.stdout.splitlines()) <= 80
    row = next(ln for ln in listed.stdout.splitlines() if "manual" in ln)
    backup_id = row.split()[0]
    assert len(backup_id) >= 20 and "…" not in row  # the whole id, usable in `backup restore ID`
    assert "passed" in row
