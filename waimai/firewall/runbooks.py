"""Runbooks: prepared Python actions with typed parameters, a dry-run plan and an undo.

A runbook declares its parameters as a pydantic model, says what it would do (`plan`, the dry run),
does it (`run`, returning what it did and what `rollback` needs), can tell whether the platform is
back to its steady state (`steady`), and can undo itself. Destructive ones need the runbook's name
repeated as confirmation. Runs are ops-only, one at a time, and every run is on the audit log and the
open incidents' timelines.

Remediation policies (`remediation.yml`, `WAIMAI_REMEDIATION_FILE`) run a runbook by themselves when
an alert fires, with guard rails: a cooldown per policy, at most N runs per hour, never two runs at
once, and an automatic rollback when the steady state has not returned `verify_after` the run.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import structlog
import yaml
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from waimai.core import audit, uow
from waimai.core.errors import AppError, Conflict, NotFound, Unprocessable
from waimai.core.messages import Msg, as_data, msg
from waimai.firewall.incidents import service as incidents

log = structlog.get_logger(__name__)
POLICIES_FILE = Path(__file__).with_name("remediation.yml")


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class Context:
    """What a runbook may touch: the app's state (database, settings, scheduler, caches) and who runs it."""

    state: Any
    actor: str
    actor_id: int | None = None

    @property
    def db(self) -> Any:
        return self.state.db


@dataclass
class Outcome:
    ok: bool
    lines: list[Msg]  # what it did, in English wherever a string goes; pages word them in the reader's language
    undo: dict[str, Any] = field(default_factory=dict)  # what rollback needs


class Runbook:
    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = NoParams
    destructive: ClassVar[bool] = False

    def plan(self, ctx: Context, p: Any) -> list[Msg]:
        raise NotImplementedError

    def run(self, ctx: Context, p: Any) -> Outcome:
        raise NotImplementedError

    def steady(self, ctx: Context, p: Any) -> bool:
        return True

    def rollback(self, ctx: Context, p: Any, undo: dict[str, Any]) -> list[Msg]:
        return [msg("nothing to undo")]


REGISTRY: dict[str, Runbook] = {}


def register(cls: type[Runbook]) -> type[Runbook]:
    REGISTRY[cls.name] = cls()
    return cls


# --- the built-in runbooks ---------------------------------------------------------------------------------

def _flip(ctx: Context, name: str, on: bool, reason: str) -> bool:
    from waimai.firewall.switches import service as switches

    with uow.unit_of_work(ctx.db) as s:
        before = switches.is_on(s, name)
        if before == on:
            return False
        switches.set_switch(s, name, enabled=on, actor_id=ctx.actor_id, actor_role=ctx.actor.split(":")[0][:16],
                            reason=reason)
    return True


class ReasonParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=200, description="empty: the runbook's name")


class SwitchRunbook(Runbook):
    """A runbook that turns one switch on; undo turns it off again, unless it was already on before."""

    def switch(self, p: Any) -> str:
        raise NotImplementedError

    def effect(self, ctx: Context, p: Any) -> list[Msg]:
        return []

    def reason(self, p: Any) -> str:
        return str(p.reason or self.name)

    def plan(self, ctx: Context, p: Any) -> list[Msg]:
        return [msg("turn the switch %(switch)s ON (reason: %(reason)s)", switch=self.switch(p), reason=self.reason(p)),
                *self.effect(ctx, p)]

    def run(self, ctx: Context, p: Any) -> Outcome:
        self.effect(ctx, p)  # refuses bad parameters (an unknown merchant …) before anything changes
        changed = _flip(ctx, self.switch(p), True, self.reason(p))
        sw = self.switch(p)
        return Outcome(True, [msg("%(switch)s turned ON", switch=sw) if changed
                              else msg("%(switch)s was already on", switch=sw)], {"changed": changed})

    def rollback(self, ctx: Context, p: Any, undo: dict[str, Any]) -> list[Msg]:
        if not undo.get("changed"):
            return [msg("%(switch)s was on before the run: left on", switch=self.switch(p))]
        _flip(ctx, self.switch(p), False, f"rollback of {self.name}")
        return [msg("%(switch)s turned OFF", switch=self.switch(p))]


@register
class SwitchToCod(SwitchRunbook):
    name = "switch_to_cod"
    title = "Switch new orders to cash on delivery"
    description = "Turn payment.cod_only on: checkout offers cash only. Undo turns it off again."
    Params = ReasonParams

    def switch(self, p: Any) -> str:
        return "payment.cod_only"

    def effect(self, ctx: Context, p: Any) -> list[Msg]:
        return [msg("new orders are offered cash on delivery only; paid orders are not touched")]

    def steady(self, ctx: Context, p: Any) -> bool:
        """Steady = orders are being placed again (one in the last minute)."""
        from waimai.platform.ordering import read as orders

        since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        with ctx.db.read_session() as s:
            return orders.placed_since(s, since)


class MerchantParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    merchant_id: int = Field(ge=1, le=2**31 - 1)
    reason: str = Field(default="", max_length=200, description="empty: the runbook's name")


@register
class PauseMerchant(SwitchRunbook):
    name = "pause_merchant"
    title = "Pause a merchant"
    description = "Turn merchant.<id>.paused on: the shop takes no new orders; its menu stays visible."
    Params = MerchantParams

    def switch(self, p: Any) -> str:
        return f"merchant.{p.merchant_id}.paused"

    def effect(self, ctx: Context, p: Any) -> list[Msg]:
        from waimai.platform.catalog import service as catalog

        with ctx.db.read_session() as s:
            name = catalog.get_merchant(s, p.merchant_id).name  # NotFound when there is none
        return [msg("%(merchant)s takes no new orders; orders already placed continue", merchant=f"「{name}」")]


class PlatformParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    platform: str = Field(pattern=r"^(meituan|eleme|jd)$")
    reason: str = Field(default="", max_length=200, description="empty: the runbook's name")


@register
class PauseIntake(SwitchRunbook):
    name = "pause_intake"
    title = "Pause orders from a delivery platform"
    description = ("Turn intake.<platform>.paused on: that platform's pushes are refused in its own format (it "
                   "retries later and shows the shop busy); our own app keeps ordering.")
    Params = PlatformParams

    def switch(self, p: Any) -> str:
        return f"intake.{p.platform}.paused"

    def effect(self, ctx: Context, p: Any) -> list[Msg]:
        return [msg("orders already taken in continue; status callbacks keep flowing")]


@register
class DrainReplica(Runbook):
    name = "drain_replica"
    title = "Drain this replica"
    description = ("/readyz answers 503 so the load balancer stops sending new requests here; requests in "
                   "flight finish. Undo makes it ready again. Run it on the replica to take out.")
    destructive = True

    def plan(self, ctx: Context, p: Any) -> list[Msg]:
        return [msg("mark this process as draining: /readyz → 503 (the load balancer takes it out in ~2 s)"),
                msg("requests in flight and live-tracking streams are not cut"), msg("background jobs keep running")]

    def run(self, ctx: Context, p: Any) -> Outcome:
        before = bool(getattr(ctx.state, "draining", False))
        ctx.state.draining = True
        return Outcome(True, [msg("draining: /readyz answers 503")], {"before": before})

    def rollback(self, ctx: Context, p: Any, undo: dict[str, Any]) -> list[Msg]:
        ctx.state.draining = bool(undo.get("before", False))
        return [msg("ready again") if not ctx.state.draining else msg("was draining before the run: left draining")]


class JobParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    job: str = Field(min_length=1, max_length=60)


@register
class RestartJob(Runbook):
    name = "restart_job"
    title = "Restart a background job"
    description = "Clear a background job's failure streak and run it at the next tick of its loop."
    Params = JobParams

    def _job(self, ctx: Context, name: str) -> Any:
        sched = getattr(ctx.state, "scheduler", None)
        for loop in (sched.loops.values() if sched is not None else []):
            for j in loop.jobs:
                if j.name == name:
                    return j
        known = sorted(j.name for loop in (sched.loops.values() if sched else []) for j in loop.jobs)
        raise NotFound(f"No background job {name!r} in this process; jobs: {', '.join(known) or 'none'}.")

    def plan(self, ctx: Context, p: Any) -> list[Msg]:
        j = self._job(ctx, p.job)
        where = msg("%(role)s, singleton", role=j.role) if j.singleton else j.role
        return [msg("job %(job)s (%(where)s): %(failures)s failures so far, %(streak)s in a row", job=j.name,
                    where=where, failures=j.failures, streak=j.consecutive_failures),
                msg("reset its streak and run it at the next tick")]

    def run(self, ctx: Context, p: Any) -> Outcome:
        j = self._job(ctx, p.job)
        streak = j.consecutive_failures
        j.consecutive_failures, j.last_run = 0, 0.0
        return Outcome(True, [msg("job %(job)s: streak of %(streak)s cleared, runs at the next tick", job=j.name,
                                  streak=streak)])


@register
class RebuildCaches(Runbook):
    name = "rebuild_caches"
    title = "Rebuild caches"
    description = "Drop the per-process caches (menus and hot reads, switches, status snapshot): the next read refills them."

    def plan(self, ctx: Context, p: Any) -> list[Msg]:
        return [msg("drop the ordering hot-read caches"), msg("reload switches from the database"),
                msg("drop the status-page snapshot")]

    def run(self, ctx: Context, p: Any) -> Outcome:
        from waimai.firewall.switches import flags
        from waimai.platform.ordering import service as ordering

        ordering._HOT.clear()  # noqa: SLF001 - the owner's cache, dropped wholesale
        flags.invalidate()
        cache = getattr(ctx.state, "status_cache", None)
        if cache is not None:
            cache.invalidate()
        return Outcome(True, [msg("caches dropped; they refill on the next read")])


class RestoreParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backup_id: str = Field(default="latest-verified", max_length=80,
                           description="a backup id, or latest-verified")


@register
class RestoreBackup(Runbook):
    name = "restore_latest_verified_backup"
    title = "Restore the latest verified backup"
    description = ("Roll the database back to the newest complete backup whose verification passed (safety "
                   "backup first, read-only while it runs; orders written after it are exported for re-entry).")
    Params = RestoreParams
    destructive = True

    def _pick(self, ctx: Context, ref: str) -> Any:
        from waimai.firewall.recovery.backup import BackupConfig

        cfg = getattr(ctx.state, "backup_config", None) or BackupConfig.from_settings(ctx.state.settings)
        ctx.state.backup_config = cfg
        if ref != "latest-verified":
            return cfg, cfg.catalog().get(ref)
        for m in cfg.catalog().all():
            if m.status == "complete" and m.verification.status == "passed":
                return cfg, m
        raise Conflict("No verified backup to restore.", code="no_verified_backup")

    def plan(self, ctx: Context, p: Any) -> list[Msg]:
        _cfg, m = self._pick(ctx, p.backup_id)
        return [msg("restore backup %(backup)s taken %(at)s UTC (verified)", backup=m.id,
                    at=f"{m.created_at:%Y-%m-%d %H:%M}"),
                msg("take a safety backup of the current database first"),
                msg("system.read_only ON while restoring"),
                msg("orders written after the backup are exported and listed for re-entry")]

    def run(self, ctx: Context, p: Any) -> Outcome:
        from waimai.firewall.recovery.restore import restore_backup

        cfg, m = self._pick(ctx, p.backup_id)
        r = restore_backup(cfg, ctx.db, m.id, actor_id=ctx.actor_id, actor_role=ctx.actor.split(":")[0][:16])
        return Outcome(r.status == "restored", [msg("restore %(status)s: backup %(backup)s",
                                                    status=msg(f"restore_status.{r.status}"),
                                                    backup=m.id),
                                                msg("%(n)s orders after it exported", n=len(r.orders_after_backup)),
                                                msg("safety backup %(backup)s", backup=r.safety_backup_id)],
                       {"safety_backup_id": r.safety_backup_id})


# --- running one ---------------------------------------------------------------------------------------------

_RUNNING = threading.Lock()  # never two runs at once in this process


def get(name: str) -> Runbook:
    rb = REGISTRY.get(name)
    if rb is None:
        raise NotFound(f"No runbook {name!r}; runbooks: {', '.join(sorted(REGISTRY))}.")
    return rb


def parse(rb: Runbook, params: dict[str, Any]) -> BaseModel:
    from pydantic import ValidationError

    try:
        return rb.Params.model_validate(params or {})
    except ValidationError as exc:
        raise Unprocessable(f"Parameters for {rb.name} are not valid.", code="runbook_params_invalid",
                            details=exc.errors(include_url=False, include_context=False)) from None


def _record(ctx: Context, action: str, rb: Runbook, details: dict[str, Any], text: Msg) -> None:
    """On the audit log and the open incidents' timelines; the lines are kept as msgids with their values
    too (`words`), so the console words them in the reader's language."""
    details = {**details, "words": {k: as_data(details[k]) for k in ("plan", "lines") if k in details}}
    with uow.unit_of_work(ctx.db) as s:
        audit.record(s, actor_id=ctx.actor_id, actor_role=ctx.actor.split(":")[0][:16], action=action,
                     target=rb.name, details=details)
        incidents.record_on_open(s, "runbook", text, actor=ctx.actor, details={"runbook": rb.name, **details})


def execute(ctx: Context, name: str, params: dict[str, Any], *, confirm: str = "", dry_run: bool = False
            ) -> dict[str, Any]:
    rb = get(name)
    p = parse(rb, params)
    if dry_run:
        return {"runbook": name, "dry_run": True, "plan": rb.plan(ctx, p), "destructive": rb.destructive}
    if rb.destructive and confirm.strip() != name:
        raise Unprocessable(f"{name} is destructive: repeat its name as confirmation.", code="confirmation_required")
    if not _RUNNING.acquire(blocking=False):
        raise Conflict("Another runbook is running; try again when it has finished.", code="runbook_busy")
    t0 = time.monotonic()
    try:
        plan = rb.plan(ctx, p)
        try:
            out = rb.run(ctx, p)
        except AppError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed run is reported and recorded, never a 500
            log.exception("runbook_failed", runbook=name)
            out = Outcome(False, [msg("failed: %(error)s", error=f"{exc.__class__.__name__}: {str(exc)[:200]}")])
    finally:
        _RUNNING.release()
    result = {"runbook": name, "ok": out.ok, "plan": plan, "lines": out.lines, "undo": out.undo,
              "params": p.model_dump(mode="json"), "seconds": round(time.monotonic() - t0, 3)}
    _record(ctx, "runbook.run", rb, result,
            msg("runbook %(runbook)s done: %(lines)s", runbook=name, lines=out.lines) if out.ok
            else msg("runbook %(runbook)s FAILED: %(lines)s", runbook=name, lines=out.lines))
    return result


def undo(ctx: Context, name: str, params: dict[str, Any], undo_info: dict[str, Any], why: Msg) -> list[Msg]:
    rb = get(name)
    p = parse(rb, params)
    lines = rb.rollback(ctx, p, undo_info)
    _record(ctx, "runbook.rollback", rb, {"params": params, "lines": lines, "why": why},
            msg("runbook %(runbook)s rolled back (%(why)s): %(lines)s", runbook=name, why=why, lines=lines))
    return lines


def describe() -> list[dict[str, Any]]:
    return [{"name": rb.name, "title": rb.title, "description": rb.description, "destructive": rb.destructive,
             "params": rb.Params.model_json_schema()} for rb in REGISTRY.values()]


# --- remediation policies ------------------------------------------------------------------------------------

class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    alert: str = Field(description="alert name that triggers it")
    runbook: str
    params: dict[str, Any] = {}
    cooldown_s: float = Field(default=600, ge=0)
    max_per_hour: int = Field(default=3, ge=1)
    verify_after_s: float = Field(default=120, ge=1)
    rollback_if_not_steady: bool = True


class PolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policies: list[Policy] = []


@dataclass
class _Pending:
    policy: Policy
    due: float
    result: dict[str, Any]


class Remediator:
    """Told about alerts by the alerting service; runs the matching policy's runbook within its guard
    rails, and later checks the steady state (rolling back if it did not return)."""

    def __init__(self, state: Any, policies: Sequence[Policy], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.state, self.policies, self.clock = state, list(policies), clock
        self.runs: dict[str, list[float]] = {p.name: [] for p in self.policies}
        self.pending: list[_Pending] = []
        self.history: list[dict[str, Any]] = []
        self._firing: set[str] = set()

    @classmethod
    def from_file(cls, state: Any, path: Path | None = None) -> Remediator:
        pf = PolicyFile.model_validate(yaml.safe_load((path or POLICIES_FILE).read_text(encoding="utf-8")) or {})
        for p in pf.policies:
            rb = get(p.runbook)  # unknown runbook: refuse at start-up
            parse(rb, p.params)
        return cls(state, pf.policies)

    def on_alerts(self, states: Sequence[tuple[Any, str | None]]) -> None:
        firing = {a.name for a, muted in states if a.status == "firing" and not muted}
        new = firing - self._firing
        self._firing = firing
        for pol in self.policies:
            if pol.alert in new:
                self._trigger(pol)

    def _trigger(self, pol: Policy) -> None:
        now = self.clock()
        runs = [t for t in self.runs[pol.name] if now - t < 3600]
        self.runs[pol.name] = runs
        why: Msg | None = None
        if runs and now - runs[-1] < pol.cooldown_s:
            why = msg("cooldown (%(s)s s)", s=f"{pol.cooldown_s:.0f}")
        elif len(runs) >= pol.max_per_hour:
            why = msg("%(n)s runs in the last hour", n=pol.max_per_hour)
        ctx = Context(self.state, "system:remediation")
        if why is not None:
            self.history.append({"policy": pol.name, "skipped": why, "at": dt.datetime.now(dt.UTC)})
            log.warning("remediation_skipped", policy=pol.name, why=why)
            return
        try:
            result = execute(ctx, pol.runbook, pol.params, confirm=pol.runbook)
        except AppError as exc:  # busy, or the runbook refused: noted, retried on the next firing
            self.history.append({"policy": pol.name, "skipped": msg(exc.message), "at": dt.datetime.now(dt.UTC)})
            return
        self.runs[pol.name].append(now)
        self.history.append({"policy": pol.name, "ran": result["lines"], "at": dt.datetime.now(dt.UTC)})
        if pol.rollback_if_not_steady and result["ok"]:
            self.pending.append(_Pending(pol, now + pol.verify_after_s, result))

    def tick(self) -> None:
        now = self.clock()
        due, self.pending = [p for p in self.pending if p.due <= now], [p for p in self.pending if p.due > now]
        for p in due:
            rb = get(p.policy.runbook)
            ctx = Context(self.state, "system:remediation")
            if rb.steady(ctx, parse(rb, p.policy.params)):
                self.history.append({"policy": p.policy.name, "verified": True, "at": dt.datetime.now(dt.UTC)})
                continue
            lines = undo(ctx, p.policy.runbook, p.policy.params, p.result["undo"], msg("steady state did not return"))
            self.history.append({"policy": p.policy.name, "rolled_back": lines, "at": dt.datetime.now(dt.UTC)})


def remediation_status(remediation: Any | None, db: Session) -> dict[str, Any]:
    """The remediation policies, what they did lately, and the last runbook runs (API and console page)."""
    runs = db.scalars(select(audit.AuditEntry).where(audit.AuditEntry.action.in_(["runbook.run", "runbook.rollback"]))
                      .order_by(audit.AuditEntry.id.desc()).limit(30))
    return {"policies": [p.model_dump() for p in (remediation.policies if remediation else [])],
            "history": list(reversed(remediation.history[-50:])) if remediation else [],
            "runs": [{"at": r.at, "action": r.action, "runbook": r.target, "actor_role": r.actor_role,
                      "details": r.details} for r in runs]}
