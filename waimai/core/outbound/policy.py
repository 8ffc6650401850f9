"""Every outbound call goes through a `Dependency`: a bulkhead (bounded concurrency), a circuit breaker
(purgatory, state in a shared store), retries with exponential backoff and jitter (stamina) within a
retry budget, and a per-attempt timeout (the client's, set from the policy).

    resilience = Resilience(DatabaseStore(db))   # the firewall's shared store; MemoryStore() for one process
    gateway = resilience.dependency("payment_gateway")
    data = gateway.call(lambda: client.post(...), retry_on=Transient)

The order, outermost first: the bulkhead refuses at once when the dependency already has its share of
threads (`BulkheadFull`); the breaker refuses at once while open (`CircuitOpen`), so a dead dependency
costs nothing; inside, one logical call makes up to `attempts` tries, a retry taken only while the
budget allows, so a failing dependency sees at most (1 + retry_ratio) times its normal load instead of
`attempts` times. One logical call is one breaker outcome: `failure_threshold` failed calls in a row
open the breaker for `open_s`, then one trial call decides (closed again, or open for another `open_s`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import stamina
import structlog
from purgatory import SyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from waimai.core.outbound import metrics
from waimai.core.outbound.breakers import BreakerRecord, BreakerStore, MemoryStore, StoreUnitOfWork

log = structlog.get_logger(__name__)
T = TypeVar("T")
RetryOn = type[BaseException] | tuple[type[BaseException], ...] | Callable[[Exception], bool | float]


class DependencyUnavailable(Exception):
    """Refused without calling: the breaker is open or the bulkhead is full."""

    def __init__(self, dependency: str, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.dependency = dependency
        self.retry_after_s = retry_after_s


class CircuitOpen(DependencyUnavailable):
    pass


class BulkheadFull(DependencyUnavailable):
    pass


@dataclass(frozen=True)
class Policy:
    """How one dependency is called. Timeouts are per attempt; `deadline_s` bounds all attempts."""

    timeout_s: float = 3.0
    attempts: int = 3
    wait_initial_s: float = 0.05
    wait_max_s: float = 1.0
    wait_jitter_s: float = 0.1
    deadline_s: float = 10.0
    # Retry budget: retries may add `retry_ratio` of the calls of the last `budget_window_s`, plus a floor
    # of `min_retries_per_s` so a quiet dependency can still be retried.
    retry_ratio: float = 0.2
    min_retries_per_s: float = 1.0
    budget_window_s: float = 10.0
    # Bulkhead: at most this many calls in flight per process; a caller waits `acquire_timeout_s` at most.
    max_concurrent: int = 16
    acquire_timeout_s: float = 0.05
    # Breaker: this many failed calls in a row open it for `open_s` seconds.
    failure_threshold: int = 5
    open_s: float = 10.0


class RetryBudget:
    """A sliding-window retry budget (as in Finagle and the gRPC retry throttle), per process."""

    def __init__(self, *, ratio: float, min_per_s: float, window_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ratio, self.min_per_s, self.window_s = ratio, min_per_s, window_s
        self._clock = clock
        self._calls: deque[float] = deque()
        self._retries: deque[float] = deque()
        self._lock = threading.Lock()

    def _prune(self, now: float) -> None:
        edge = now - self.window_s
        for q in (self._calls, self._retries):
            while q and q[0] <= edge:
                q.popleft()

    def _allowance(self) -> float:
        return self.min_per_s * self.window_s + self.ratio * len(self._calls)

    def record_call(self) -> None:
        with self._lock:
            now = self._clock()
            self._prune(now)
            self._calls.append(now)

    def available(self) -> bool:
        with self._lock:
            self._prune(self._clock())
            return len(self._retries) + 1 <= self._allowance()

    def try_spend(self) -> bool:
        with self._lock:
            now = self._clock()
            self._prune(now)
            if len(self._retries) + 1 > self._allowance():  # a retry spends one whole token
                return False
            self._retries.append(now)
            return True


class Bulkhead:
    """Bounded concurrency per dependency: a slow dependency can hold only its own share of threads."""

    def __init__(self, name: str, max_concurrent: int, acquire_timeout_s: float) -> None:
        self.name = name
        self.max_concurrent = max_concurrent
        self.acquire_timeout_s = acquire_timeout_s
        self._sem = threading.BoundedSemaphore(max_concurrent)
        self._gauge = metrics.DEPENDENCY_IN_FLIGHT.labels(name)

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self._sem.acquire(timeout=self.acquire_timeout_s):
            metrics.DEPENDENCY_CALLS.labels(self.name, "refused_bulkhead").inc()
            raise BulkheadFull(self.name, f"{self.name}: {self.max_concurrent} calls already in flight", 1.0)
        self._gauge.inc()
        try:
            yield
        finally:
            self._gauge.dec()
            self._sem.release()


def _matches(on: RetryOn, exc: Exception) -> bool | float:
    if isinstance(on, type | tuple):
        return isinstance(exc, on)
    return on(exc)


class Dependency:
    """One external dependency: its policy, bulkhead, retry budget and (shared) breaker."""

    def __init__(self, name: str, policy: Policy, resilience: Resilience) -> None:
        self.name = name
        self.policy = policy
        self.resilience = resilience
        self.bulkhead = Bulkhead(name, policy.max_concurrent, policy.acquire_timeout_s)
        self.budget = RetryBudget(ratio=policy.retry_ratio, min_per_s=policy.min_retries_per_s,
                                  window_s=policy.budget_window_s)
        resilience.store.configure(name, policy.failure_threshold, policy.open_s)
        metrics.initialise([name])

    def __repr__(self) -> str:
        return f"<Dependency {self.name} store={self.resilience.store.kind}>"

    @contextmanager
    def guard(self, is_failure: Callable[[BaseException], bool]) -> Iterator[None]:
        """Bulkhead and breaker around a block; exceptions for which `is_failure` is false (a refusal
        that proves the dependency answered) do not count against the breaker."""
        with self.bulkhead.slot():
            brk = self.resilience.factory.get_breaker(
                self.name, self.policy.failure_threshold, self.policy.open_s,
                exclude=[(BaseException, lambda e: not is_failure(e))])
            try:
                with brk:
                    yield
            except OpenedState:
                metrics.DEPENDENCY_CALLS.labels(self.name, "refused_open").inc()
                opened = brk.context.opened_at or time.time()
                wait = max(0.0, opened + float(brk.context.ttl) - time.time())
                raise CircuitOpen(self.name, f"{self.name}: circuit open (failing); next trial in {wait:.0f} s",
                                  wait) from None
            except BaseException as exc:
                metrics.DEPENDENCY_CALLS.labels(self.name, "failed" if is_failure(exc) else "ok").inc()
                raise
            else:
                metrics.DEPENDENCY_CALLS.labels(self.name, "ok").inc()
            finally:
                metrics.BREAKER_STATE.labels(self.name).set(metrics.STATE_VALUE.get(brk.context.state, 0))

    def retry_context(self, on: RetryOn, *, attempts: int | None = None, deadline_s: float | None = None,
                      wait_initial_s: float | None = None, wait_max_s: float | None = None,
                      wait_jitter_s: float | None = None) -> Iterator[Any]:
        """stamina's retry_context with this dependency's backoff, jitter and retry budget. Overrides
        are for callers with their own configured policy (notification channels)."""
        p = self.policy
        n = attempts if attempts is not None else p.attempts
        self.budget.record_call()
        state = {"num": 0}

        def hook(exc: Exception) -> bool | float:
            verdict = _matches(on, exc)
            if verdict is False or state["num"] >= n:
                return False
            if not self.budget.try_spend():
                metrics.DEPENDENCY_RETRIES.labels(self.name, "refused").inc()
                log.warning("retry_budget_spent", dependency=self.name)
                return False
            metrics.DEPENDENCY_RETRIES.labels(self.name, "taken").inc()
            return verdict

        for attempt in stamina.retry_context(
                on=hook, attempts=n, timeout=deadline_s if deadline_s is not None else p.deadline_s,
                wait_initial=p.wait_initial_s if wait_initial_s is None else wait_initial_s,
                wait_max=p.wait_max_s if wait_max_s is None else wait_max_s,
                wait_jitter=p.wait_jitter_s if wait_jitter_s is None else wait_jitter_s):
            state["num"] = attempt.num
            yield attempt

    def call(self, fn: Callable[[], T], *, retry_on: RetryOn,
             is_failure: Callable[[BaseException], bool] | None = None) -> T:
        """Call `fn` under the bulkhead and breaker, retrying on `retry_on` within the budget. By default
        the exceptions worth a retry are also the ones that count as the dependency failing."""
        failing = is_failure or (lambda e: isinstance(e, Exception) and _matches(retry_on, e) is not False)
        with self.guard(failing):
            for attempt in self.retry_context(retry_on):
                with attempt:
                    return fn()
        raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover

    def record(self) -> BreakerRecord | None:
        return self.resilience.store.record(self.name)


# Told of every change this process makes (dependency, previous state, new state, actor): the event.
BreakerHook = Callable[[str, str, str, str], None]


class Resilience:
    """The registry of dependencies of one service, sharing one breaker store."""

    def __init__(self, store: BreakerStore | None = None, *, policies: dict[str, Policy] | None = None,
                 default: Policy | None = None, on_change: list[BreakerHook] | None = None) -> None:
        self.store = store or MemoryStore()
        self.policies = dict(policies or {})
        self.default = default or Policy()
        self.factory = SyncCircuitBreakerFactory(uow=StoreUnitOfWork(self.store))
        self.factory.add_listener(self._on_event)
        self.hooks: list[BreakerHook] = list(on_change or [])
        self._deps: dict[str, Dependency] = {}
        self._last: dict[str, str] = {}
        self._lock = threading.Lock()

    def policy_for(self, name: str) -> Policy:
        if name in self.policies:
            return self.policies[name]
        family = name.split(".", 1)[0] + ".*"
        return self.policies.get(family, self.default)

    def dependency(self, name: str, policy: Policy | None = None, **overrides: Any) -> Dependency:
        """The one Dependency object for `name` in this process (its bulkhead and budget are shared)."""
        with self._lock:
            dep = self._deps.get(name)
            if dep is None:
                pol = policy or self.policy_for(name)
                dep = self._deps[name] = Dependency(name, replace(pol, **overrides) if overrides else pol, self)
            return dep

    def names(self) -> list[str]:
        return sorted(self._deps)

    def records(self) -> list[BreakerRecord]:
        return self.store.records()

    def force(self, name: str, state: str, *, actor: str) -> None:
        """Reset a breaker to closed, or trip it open (drills), by hand; reported like any change."""
        before = self.store.record(name)
        self.store.force(name, state)
        self.store.flush()
        self._changed(name, before.state if before else "closed", state, actor=actor)

    def refresh(self) -> list[BreakerRecord]:
        """Read the shared state into this process's gauge, so every replica reports the same."""
        recs = self.records()
        for r in recs:
            metrics.BREAKER_STATE.labels(r.name).set(metrics.STATE_VALUE.get(r.state, 0))
            self._last[r.name] = r.state
        return recs

    def _on_event(self, name: str, event_type: str, event: Any) -> None:
        if event_type != "state_changed" or self._last.get(name) == event.state:
            return  # (a thread that loaded the breaker before another opened it, opening it again)
        prev = self._last.get(name, "closed" if event.state != "closed" else "half-opened")
        self._changed(name, prev, event.state, actor="breaker")

    def _changed(self, name: str, prev: str, state: str, *, actor: str) -> None:
        metrics.BREAKER_STATE.labels(name).set(metrics.STATE_VALUE.get(state, 0))
        metrics.BREAKER_TRANSITIONS.labels(name, state).inc()
        self._last[name] = state
        log.warning("circuit_breaker_state_changed", dependency=name, previous=prev, state=state, actor=actor,
                    store=self.store.kind)
        for hook in self.hooks:
            try:
                hook(name, prev, state, actor)
            except Exception:  # noqa: BLE001 - a listener must never break the guarded call
                log.exception("breaker_hook_failed", dependency=name)


def standalone(name: str, policy: Policy | None = None) -> Dependency:
    """A dependency with its own in-memory breaker: for objects built outside a service (scripts, tests)."""
    return Resilience(MemoryStore()).dependency(name, policy)
