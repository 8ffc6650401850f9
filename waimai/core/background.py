"""Periodic housekeeping in the serving process: assignment, refund retries, key expiry."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from starlette.concurrency import run_in_threadpool

log = structlog.get_logger(__name__)


@dataclass
class Job:
    name: str
    every_s: float
    fn: Callable[[], object]
    last_run: float = 0.0


class Loop:
    """Runs each job every `every_s` seconds in a worker thread; a failing job is logged, not fatal."""

    def __init__(self, jobs: list[Job], tick_s: float = 0.5) -> None:
        self.jobs = jobs
        self.tick_s = tick_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            for job in self.jobs:
                if now - job.last_run >= job.every_s:
                    job.last_run = now
                    try:
                        await run_in_threadpool(job.fn)
                    except Exception:  # noqa: BLE001 - one bad round must not stop the loop
                        log.exception("background_job_failed", job=job.name)
            await asyncio.sleep(self.tick_s)


def ttl(hours: int) -> dt.timedelta:
    return dt.timedelta(hours=hours)
