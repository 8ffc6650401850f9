"""The switches the platform flips by itself, and the test-only slow-database hook.

* `PaymentGuard`: `payment.cod_only` ON as soon as the payment gateway's breaker is open (with WeChat Pay
  and Alipay configured: as soon as both breakers are open); while it is
  on, nobody pays online, so the guard itself sends the trial calls (the gateway's health check,
  through the breaker) that let the breaker close; once the breaker has stayed closed for
  `recovery_s`, the switch goes OFF again. Actor `system:breaker`; a switch ops set by hand is left
  as they set it.
* `DbLatencyWatch`: times a trivial read every run; when the median of the last few is above
  `threshold_ms`, `ordering.simple_mode` goes ON (actor `system:db_slow`), and OFF again after
  `recovery_s` under the threshold.
  The same probe is the replica's "database reachable" signal: a probe that fails or gets no answer
  within `deadline_s` (a hung server accepts connections and says nothing) counts as unreachable, and
  unreachable for `outage_after_s` marks `Database.unreachable_since` and calls the outage hooks (the
  status page's last-known copy, the order spool's replay); the first answer again calls the return hooks.
* `install_db_delay`: with WAIMAI_CHAOS=true (refused in production) every statement can be slowed
  by a delay set at run time (`PUT /api/v1/chaos/db`), for drills and the reliability test.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from sqlalchemy import event, text

from waimai.core.database import Database
from waimai.core.outbound.policy import Dependency, DependencyUnavailable
from waimai.firewall.switches import flags
from waimai.firewall.switches.service import set_automatic

log = structlog.get_logger(__name__)
COD_ACTOR = "system:breaker"
SLOW_DB_ACTOR = "system:db_slow"


class _ProbeFailed(Exception):
    pass


class PaymentGuard:
    """`payment.cod_only` for one online provider, or several (WeChat Pay and Alipay): ON only when every
    one of them has its breaker open — while one works, checkout offers that one instead — and OFF once
    one of them has stayed closed for `recovery_s`."""

    def __init__(self, database: Database, dependency: Dependency, provider: Any, *, recovery_s: float,
                 others: Sequence[tuple[Dependency, Any]] = ()) -> None:
        self.database = database
        self.dependency = dependency
        self.provider = provider
        self.recovery_s = recovery_s
        self.targets: list[tuple[Dependency, Any]] = [(dependency, provider), *others]
        # With several providers, checkout sends customers to the first one offered: the others may see no
        # traffic at all, so each is probed (through its breaker) every `probe_every_s` to notice an outage.
        self.probe_every_s = 2.0 if others else None
        self._probed: dict[str, float] = {}

    @staticmethod
    def _trial(dependency: Dependency, provider: Any) -> None:
        """One health check of a provider through its breaker (counts like a payment call)."""
        def probe() -> None:
            r = provider.health()
            if not r.ok:
                raise _ProbeFailed(r.detail or "unhealthy")
        try:
            with dependency.guard(lambda e: True):
                probe()
        except (_ProbeFailed, DependencyUnavailable):
            pass

    def run(self) -> str:
        now = time.time()
        cod = flags.details("payment.cod_only")
        ours = cod.value and (cod.flag_metadata or {}).get("updated_by") == COD_ACTOR
        recs = []
        for dep, provider in self.targets:
            rec = dep.record()
            if rec is None:
                continue
            due = rec.state == "half-opened" or (rec.reopens_at is not None and now >= rec.reopens_at)
            idle = self.probe_every_s is not None and rec.state == "closed" \
                and now - self._probed.get(dep.name, 0.0) >= self.probe_every_s
            if idle:
                self._probed[dep.name] = now
            if due or idle or (ours and rec.state == "closed"):
                self._trial(dep, provider)  # no online payments while COD-only: these calls decide recovery
                rec = dep.record() or rec
            recs.append((dep.name, rec))
        if not recs:
            return "unknown"
        if all(rec.state == "opened" for _n, rec in recs) and not cod.value:
            names = ", ".join(n for n, _r in recs)
            if set_automatic(self.database, "payment.cod_only", enabled=True, actor=COD_ACTOR,
                             reason=f"every online payment provider failing: breakers of {names} open"):
                log.warning("cod_only_engaged", dependencies=names)
            return "engaged"
        healthy = [now - rec.changed_at.timestamp() for _n, rec in recs if rec.state == "closed"]
        healthy_for = max(healthy, default=0.0)
        if ours and healthy and healthy_for >= self.recovery_s:
            if set_automatic(self.database, "payment.cod_only", enabled=False, actor=COD_ACTOR, only_undo=True,
                             reason=f"payment provider healthy for {healthy_for:.0f} s"):
                log.warning("cod_only_released", healthy_for_s=round(healthy_for, 1))
            return "released"
        return ",".join(rec.state for _n, rec in recs)


class DbLatencyWatch:
    """Runs on a thread of its own (`ensure_running`): a slow database slows every job of the
    housekeeping loops and, on SQLite, the event loop itself, which must not delay noticing it."""

    def __init__(self, database: Database, *, threshold_ms: float, recovery_s: float, window: int = 3,
                 every_s: float = 0.5, deadline_s: float = 2.0, outage_after_s: float = 3.0) -> None:
        self.database = database
        self.deadline_s = deadline_s
        self.outage_after_s = outage_after_s
        self._failing_since: float | None = None
        self._stuck: threading.Thread | None = None  # a probe still waiting on a hung server
        self.on_outage: list[Callable[[float], None]] = []
        self.on_return: list[Callable[[float], None]] = []
        self.threshold_s = threshold_ms / 1000
        self.recovery_s = recovery_s
        self.every_s = every_s
        self.samples: deque[float] = deque(maxlen=window)
        self._fast_since: float | None = time.monotonic()
        self._thread: threading.Thread | None = None

    def ensure_running(self, stopped: Callable[[], bool]) -> None:
        """Start (or restart) the watch thread; it ends when `stopped()` says so."""
        if self._thread is not None and self._thread.is_alive():
            return

        def loop() -> None:
            while not stopped():
                t0 = time.monotonic()
                try:
                    self.run()
                except Exception:  # noqa: BLE001 - keep watching
                    log.exception("db_latency_watch_failed")
                time.sleep(max(0.0, self.every_s - (time.monotonic() - t0)))

        self._thread = threading.Thread(target=loop, name="db-latency-watch", daemon=True)
        self._thread.start()

    def probe(self) -> float:
        """Seconds for a trivial read; infinity when it fails or has not answered within `deadline_s`
        (the probe then keeps waiting on its own thread, and no second one is started meanwhile)."""
        if self._stuck is not None and self._stuck.is_alive():
            return float("inf")
        took: list[float] = []

        def read() -> None:
            t0 = time.perf_counter()
            try:
                with self.database.read_session() as s:
                    s.execute(text("SELECT 1"))
            except Exception:  # noqa: BLE001 - an unreachable database is as slow as it gets
                return
            took.append(time.perf_counter() - t0)

        t = threading.Thread(target=read, name="db-probe", daemon=True)
        t.start()
        t.join(self.deadline_s)
        if t.is_alive():
            self._stuck = t
            return float("inf")
        return took[0] if took else float("inf")

    def _reachability(self, sample: float, started: float) -> bool:
        """Track the outage (from the start of the first probe that failed); True while it lasts."""
        now = time.time()
        if sample != float("inf"):
            self._failing_since = None
            since = self.database.unreachable_since
            if since is not None:
                self.database.unreachable_since = None
                self.samples.clear()  # the outage's infinities are not latency
                self.samples.append(sample)
                log.warning("database_reachable_again", down_s=round(now - since, 1))
                for hook in self.on_return:
                    try:
                        hook(since)
                    except Exception:  # noqa: BLE001 - one hook must not stop the others
                        log.exception("db_return_hook_failed")
            return False
        if self._failing_since is None:
            self._failing_since = started
        if self.database.unreachable_since is None and now - self._failing_since >= self.outage_after_s:
            self.database.unreachable_since = self._failing_since
            log.error("database_unreachable", for_s=round(now - self._failing_since, 1))
            for hook in self.on_outage:
                try:
                    hook(self._failing_since)
                except Exception:  # noqa: BLE001
                    log.exception("db_outage_hook_failed")
        return self.database.unreachable_since is not None

    @property
    def latency_s(self) -> float:
        return statistics.median(self.samples) if self.samples else 0.0

    def run(self) -> str:
        started = time.time()
        self.samples.append(self.probe())
        if self._reachability(self.samples[-1], started):
            self.database.slow = True  # what still touches the database leaves the event loop
            return "unreachable"  # no switch can be written now; the outage is handled by the hooks
        slow = len(self.samples) == self.samples.maxlen and self.latency_s > self.threshold_s
        self.database.slow = slow
        now = time.monotonic()
        if self.samples[-1] > self.threshold_s:
            self._fast_since = None
        elif self._fast_since is None:
            self._fast_since = now
        if slow:
            if not flags.enabled("ordering.simple_mode") and set_automatic(
                    self.database, "ordering.simple_mode", enabled=True, actor=SLOW_DB_ACTOR,
                    reason=f"database latency {self.latency_s * 1000:.0f} ms > {self.threshold_s * 1000:.0f} ms"):
                log.warning("simple_mode_engaged", db_latency_ms=round(self.latency_s * 1000, 1))
            return "slow"
        if self._fast_since is not None and now - self._fast_since >= self.recovery_s \
                and flags.enabled("ordering.simple_mode"):
            if set_automatic(self.database, "ordering.simple_mode", enabled=False, actor=SLOW_DB_ACTOR,
                             only_undo=True, reason=f"database latency back under "
                                                    f"{self.threshold_s * 1000:.0f} ms"):
                log.warning("simple_mode_released")
        return "ok"


class DbDelay:
    """A delay added before every statement (chaos drills and tests only)."""

    def __init__(self) -> None:
        self.delay_s = 0.0

    def install(self, database: Database) -> None:
        @event.listens_for(database.engine, "before_cursor_execute")
        def _slow(_conn: Any, _cur: Any, _stmt: str, _params: Any, _ctx: Any, _many: bool) -> None:
            if self.delay_s > 0:
                time.sleep(self.delay_s)
