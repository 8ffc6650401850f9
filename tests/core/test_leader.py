"""Leader election: one leader per role, takeover when the leader's process or connection dies."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.reliability.cluster import ROOT, wait_until
from waimai.core.leader import LeaderElector, lock_key

PG_ONLY = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)

HOLDER = """
import sys, time
from waimai.core.leader import LeaderElector
e = LeaderElector(sys.argv[1], ["dispatcher"], retry_s=0.2)
e.start()
while not e.is_leader("dispatcher"):
    time.sleep(0.05)
print("leading", flush=True)
time.sleep(120)
"""


def _holder(url: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, url], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # (log lines come first)
        if line.rstrip().endswith("leading"):  # a log line may share the pipe's line with the print
            return proc
        seen.append(line)
    raise AssertionError(f"the holder never led (exit {proc.wait()}): {''.join(seen)[-2000:]}")


def _takeover_after_kill9(url: str) -> float:
    """Another process leads; kill -9 it; seconds until this process leads."""
    proc = _holder(url)
    follower = LeaderElector(url, ["dispatcher"], retry_s=0.5)
    follower.start()
    try:
        time.sleep(1.0)
        assert not follower.is_leader("dispatcher"), "two leaders"
        t0 = time.monotonic()
        proc.kill()
        proc.wait(timeout=10)
        assert wait_until(lambda: follower.is_leader("dispatcher"), 10, every=0.02), "no takeover"
        return time.monotonic() - t0
    finally:
        follower.stop()
        if proc.poll() is None:
            proc.kill()


def test_one_leader_per_role_and_clean_handover_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    a = LeaderElector(url, ["dispatcher", "notifier"], retry_s=0.1, name="a")
    b = LeaderElector(url, ["dispatcher", "notifier"], retry_s=0.1, name="b")
    a.step()
    b.step()
    assert a.is_leader("dispatcher") and a.is_leader("notifier")
    assert not b.is_leader("dispatcher") and not b.is_leader("notifier")
    assert b.status()["dispatcher"] == {"leader": False, "since": None}
    a.stop()  # a clean shutdown hands over at the follower's next beat
    b.step()
    assert b.is_leader("dispatcher") and b.is_leader("notifier")
    b.stop()


def test_an_unhealthy_leader_resigns_and_a_healthy_follower_takes_over(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    healthy = {"a": True}
    a = LeaderElector(url, ["worker"], healthy=lambda _r: healthy["a"], name="a")
    b = LeaderElector(url, ["worker"], name="b")
    a.step()
    b.step()
    assert a.is_leader("worker") and not b.is_leader("worker")
    healthy["a"] = False  # its job loop stalled
    a.step()
    b.step()
    assert not a.is_leader("worker") and b.is_leader("worker")
    a.step()  # and it does not campaign while stalled
    assert not a.is_leader("worker")
    a.stop()
    b.stop()


def test_sqlite_takeover_after_kill9(tmp_path: Path) -> None:
    took = _takeover_after_kill9(f"sqlite:///{tmp_path / 'w.db'}")
    print(f"\nSQLite flock takeover after kill -9: {took:.2f} s (follower retry 0.5 s)")
    assert took < 5  # one retry beat (0.5 s) when the machine is idle; slack for a loaded CI runner


@PG_ONLY
def test_postgres_takeover_after_kill9(db_url: str) -> None:
    took = _takeover_after_kill9(db_url)
    print(f"\nPostgreSQL advisory-lock takeover after kill -9: {took:.2f} s (follower retry 0.5 s)")
    assert took < 5  # one retry beat (0.5 s) when the machine is idle; slack for a loaded CI runner


@PG_ONLY
def test_postgres_leader_steps_down_when_its_connection_dies(db_url: str) -> None:
    a = LeaderElector(db_url, ["dispatcher"], name="a")
    b = LeaderElector(db_url, ["dispatcher"], name="b")
    a.step()
    b.step()
    assert a.is_leader("dispatcher") and not b.is_leader("dispatcher")
    eng = create_engine(db_url)
    with eng.connect() as c:
        holder = c.execute(text("SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
                                "AND ((l.classid::bigint << 32) | l.objid::bigint) = :k"),
                           {"k": lock_key("dispatcher") & 0xFFFFFFFFFFFFFFFF}).scalar()
        assert holder is not None
        app_name = c.execute(text("SELECT application_name FROM pg_stat_activity WHERE pid = :p"),
                             {"p": holder}).scalar()
        assert app_name == "waimai-leader a"
        c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": holder})
    eng.dispose()
    # The leader's check finds its session gone (termination is asynchronous): it leads no more.
    assert wait_until(lambda: a.step() or not a.is_leader("dispatcher"), 5)
    b.step()
    assert b.is_leader("dispatcher")
    a.stop()
    b.stop()
