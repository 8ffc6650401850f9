"""Periodic background jobs in the serving process, one loop per role.

Every job names the role that runs it (waimai/core/roles.py); a process starts a loop for each of
its roles, so a slow or failing notifier job cannot hold up the dispatcher in the same process.
Singleton jobs (the dispatcher round, alert evaluation, detectors, forecast, backups) run only
while this process leads the role (waimai/core/leader.py); when it becomes leader they run at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.concurrency import run_in_threadpool

from waimai.core.metrics import JOB_LAST_SUCCESS, JOB_RUNS

log = structlog.get_logger(__name__)
STALLED_AFTER_S = 60.0  # a job running (or a loop silent) this long makes the role "stalled"
FAILING_AFTER = 3  # consecutive failures that make the role "failing"


@dataclass
class Job:
    name: str
    every_s: float
    fn: Callable[[], object]
    role: str = "worker"
    singleton: bool = False
    last_run: float = 0.0
    runs: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_ok_at: float | None = None  # wall clock
    last_error: str | None = None

    def status(self) -> dict[str, Any]:
        return {"every_s": self.every_s, "singleton": self.singleton, "runs": self.runs, "failures": self.failures,
                "last_ok": _iso(self.last_ok_at), "last_error": self.last_error}


def _iso(t: float | None) -> str | None:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat() if t is not None else None


class Loop:
    """Runs each job every `every_s` seconds in a worker thread; a failing job is logged, not fatal.

    `leads()` answers whether this process leads the loop's role; singleton jobs wait until it does.
    """

    def __init__(self, jobs: list[Job], tick_s: float = 0.5, *, role: str = "worker",
                 leads: Callable[[], bool] | None = None) -> None:
        self.jobs = jobs
        self.tick_s = tick_s
        self.role = role
        self.leads = leads or (lambda: True)
        self.beat = time.monotonic()
        self.running: tuple[str, float] | None = None
        self._led = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.beat = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def stalled(self) -> bool:
        now = time.monotonic()
        if self.running is not None:
            return now - self.running[1] > STALLED_AFTER_S
        return self._task is not None and now - self.beat > STALLED_AFTER_S

    def health(self) -> str:
        if self.stalled():
            return "stalled"
        if any(j.consecutive_failures >= FAILING_AFTER for j in self.jobs):
            return "failing"
        if self.jobs and all(j.singleton for j in self.jobs) and not self.leads():
            return "standby"
        return "ok"

    def status(self) -> dict[str, Any]:
        return {"status": self.health(), "jobs": {j.name: j.status() for j in self.jobs}}

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.beat = time.monotonic()
            leads = self.leads()
            if leads and not self._led:  # just became leader: singleton jobs run now, not a period later
                for job in self.jobs:
                    if job.singleton:
                        job.last_run = 0.0
            self._led = leads
            for job in self.jobs:
                now = loop.time()
                if now - job.last_run < job.every_s or (job.singleton and not self.leads()):
                    continue
                job.last_run = now
                await self._run_job(job)
            await asyncio.sleep(self.tick_s)

    async def _run_job(self, job: Job) -> None:
        self.running = (job.name, time.monotonic())
        try:
            await run_in_threadpool(job.fn)
        except Exception as exc:  # noqa: BLE001 - one bad round must not stop the loop
            job.failures += 1
            job.consecutive_failures += 1
            job.last_error = f"{exc.__class__.__name__}: {exc}"[:200]
            JOB_RUNS.labels(self.role, job.name, "error").inc()
            log.exception("background_job_failed", job=job.name, role=self.role)
        else:
            job.consecutive_failures = 0
            job.last_ok_at = time.time()
            JOB_RUNS.labels(self.role, job.name, "ok").inc()
            JOB_LAST_SUCCESS.labels(self.role, job.name).set(job.last_ok_at)
        finally:
            job.runs += 1
            self.running = None


def ttl(hours: int) -> dt.timedelta:
    return dt.timedelta(hours=hours)
