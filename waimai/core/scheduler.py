"""A process's roles at run time: one job loop per role and the leader elector for singleton jobs."""

from __future__ import annotations

from typing import Any

from waimai.core.background import Job, Loop
from waimai.core.leader import LeaderElector
from waimai.core.metrics import LEADER, PROCESS_ROLE
from waimai.core.roles import EVERY_PROCESS, ordered


class Scheduler:
    """Keeps the jobs of this process's roles (and the every-process ones); drops the others.

    Roles with singleton jobs are campaigned for; a role's loop that stalls makes this process
    resign that role so a healthy follower takes over.
    """

    def __init__(self, jobs: list[Job], roles: frozenset[str], database_url: str, *, retry_s: float = 1.0,
                 run_jobs: bool = True) -> None:
        self.roles = roles
        self.run_jobs = run_jobs
        names = [*ordered(roles), EVERY_PROCESS]
        by_role: dict[str, list[Job]] = {r: [j for j in jobs if j.role == r] for r in names}
        self.singleton_roles = [r for r in names if any(j.singleton for j in by_role[r])]
        self.elector = LeaderElector(database_url, self.singleton_roles, retry_s=retry_s, healthy=self._healthy)
        self.loops = {r: Loop(js, role=r, leads=self._leads(r)) for r, js in by_role.items() if js}

    def _leads(self, role: str):  # type: ignore[no-untyped-def]
        return lambda: self.elector.is_leader(role)

    def _healthy(self, role: str) -> bool:
        loop = self.loops.get(role)
        return loop is not None and not loop.stalled()

    def start(self) -> None:
        for r in ordered(self.roles):
            PROCESS_ROLE.labels(r).set(1)
        if not self.run_jobs:
            return
        self.elector.start()
        for loop in self.loops.values():
            loop.start()

    async def stop(self) -> None:
        for loop in self.loops.values():
            await loop.stop()
        if self.run_jobs:
            self.elector.stop()
        for r in ordered(self.roles):
            PROCESS_ROLE.labels(r).set(0)
            LEADER.labels(r).set(0)

    def is_leader(self, role: str) -> bool:
        return self.elector.is_leader(role)

    def status(self) -> dict[str, Any]:
        """Per role: health of its loop (ok, standby, failing, stalled), leadership and its jobs."""
        lead = self.elector.status()
        out: dict[str, Any] = {}
        for r in [*ordered(self.roles), EVERY_PROCESS]:
            loop = self.loops.get(r)
            if loop is None and r == EVERY_PROCESS:
                continue
            st: dict[str, Any] = loop.status() if loop is not None and self.run_jobs else {"status": "ok", "jobs": {}}
            if r in lead:
                st["leader"] = lead[r]["leader"]
                st["leader_since"] = lead[r]["since"]
            out[r] = st
        return out

    def stalled(self) -> list[str]:
        return [r for r, loop in self.loops.items() if self.run_jobs and loop.stalled()]
