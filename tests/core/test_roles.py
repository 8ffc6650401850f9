"""Process roles: which jobs and routes a process runs, per-role health, singleton jobs only on the leader."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_settings
from tests.reliability.cluster import wait_until
from waimai.app import create_app
from waimai.core.background import Job
from waimai.core.roles import EVERY_PROCESS, ROLES, parse_roles
from waimai.core.scheduler import Scheduler


def test_parse_roles() -> None:
    assert parse_roles("") == frozenset(ROLES) == parse_roles("all")
    assert parse_roles(" api , Worker") == {"api", "worker"}
    with pytest.raises(ValueError, match="unknown role"):
        parse_roles("api,cron")
    with pytest.raises(ValueError):
        make_settings("sqlite://", roles="web")


def test_a_background_process_answers_health_and_metrics_only(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url, roles="worker,dispatcher"), background=False)
    with TestClient(app) as c:
        assert c.get("/api/v1/merchants").status_code == 404
        assert c.get("/").status_code == 404
        assert c.get("/metrics").status_code == 200
        ready = c.get("/readyz")
        assert ready.status_code == 200
        assert set(ready.json()["roles"]) == {"worker", "dispatcher", EVERY_PROCESS}
        assert c.get("/livez").json()["roles"] == ["worker", "dispatcher"]
        assert 'waimai_process_role{role="dispatcher"} 1.0' in c.get("/metrics").text


def test_an_api_process_serves_the_api_and_reports_its_roles(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url, roles="api"), background=False)
    with TestClient(app) as c:
        assert c.get("/api/v1/merchants").status_code == 200
        body = c.get("/readyz").json()
        assert body["status"] == "ready" and list(body["roles"]) == ["api", EVERY_PROCESS]


def test_all_roles_by_default_with_leadership_and_job_runs_in_readyz(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url), background=True)
    with TestClient(app) as c:
        def dispatched() -> dict | None:  # type: ignore[type-arg]
            roles = c.get("/readyz").json()["roles"]
            return roles if roles["dispatcher"]["jobs"]["dispatch"]["last_ok"] else None

        roles = wait_until(dispatched, 10)
        assert roles, c.get("/readyz").json()
        assert list(roles) == ["api", "worker", "dispatcher", "notifier", EVERY_PROCESS]
        assert roles["dispatcher"]["leader"] is True and roles["dispatcher"]["status"] == "ok"
        assert roles["dispatcher"]["jobs"]["dispatch"]["singleton"] is True
        assert "leader" not in roles["api"]  # nothing singleton there
        metrics = c.get("/metrics").text
        assert 'waimai_leader{role="dispatcher"} 1.0' in metrics
        assert 'waimai_background_job_runs_total{job="dispatch",outcome="ok",role="dispatcher"}' in metrics


def _counting_jobs(counts: dict[str, int]) -> list[Job]:
    def bump(name: str):  # type: ignore[no-untyped-def]
        return lambda: counts.__setitem__(name, counts.get(name, 0) + 1)

    return [Job("round", 0.1, bump("round"), role="dispatcher", singleton=True),
            Job("local", 0.1, bump("local"), role="dispatcher"),
            Job("notify", 0.1, bump("notify"), role="notifier", singleton=True),
            Job("checkpoint", 0.1, bump("checkpoint"), role=EVERY_PROCESS)]


def test_singleton_jobs_run_on_the_leader_only_and_move_when_it_stops(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    a_counts: dict[str, int] = {}
    b_counts: dict[str, int] = {}

    async def scenario() -> float:
        a = Scheduler(_counting_jobs(a_counts), frozenset({"dispatcher"}), url, retry_s=0.2)
        a.start()
        await asyncio.sleep(0.5)  # a leads before b starts
        b = Scheduler(_counting_jobs(b_counts), frozenset({"dispatcher"}), url, retry_s=0.2)
        b.start()
        await asyncio.sleep(1.0)
        assert a.is_leader("dispatcher") and not b.is_leader("dispatcher")
        assert a_counts["round"] > 0 and "round" not in b_counts  # the singleton on the leader only
        assert b_counts["local"] > 0 and b_counts["checkpoint"] > 0  # the rest everywhere
        assert "notify" not in a_counts  # not this process's role
        assert b.status()["dispatcher"]["status"] == "ok"
        t0 = time.monotonic()
        await a.stop()
        for _ in range(250):  # up to 5 s
            if "round" in b_counts:
                break
            await asyncio.sleep(0.02)
        took = time.monotonic() - t0
        await b.stop()
        return took

    took = asyncio.run(scenario())
    assert took < 2.0


def test_a_failing_job_marks_its_role_failing_not_the_process(tmp_path: Path) -> None:
    def boom() -> None:
        raise RuntimeError("channel down")

    async def scenario() -> dict:  # type: ignore[type-arg]
        s = Scheduler([Job("alerts", 0.05, boom, role="notifier"), Job("ok", 0.05, lambda: None, role="dispatcher")],
                      frozenset({"notifier", "dispatcher"}), f"sqlite:///{tmp_path / 'w.db'}")
        s.start()
        for _ in range(200):  # three failed runs in a row (a few ticks; longer on a loaded machine)
            if s.loops["notifier"].jobs[0].consecutive_failures >= 3:
                break
            await asyncio.sleep(0.05)
        st = s.status()
        await s.stop()
        return st

    st = asyncio.run(scenario())
    assert st["notifier"]["status"] == "failing"
    assert st["notifier"]["jobs"]["alerts"]["last_error"] == "RuntimeError: channel down"
    assert st["dispatcher"]["status"] == "ok"
