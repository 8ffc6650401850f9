"""Instruments of the outbound-call guards: breaker state (shared, so every replica reports the same),
calls by outcome, retries taken or refused by the budget, and the bulkheads' occupancy."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

STATE_VALUE = {"closed": 0, "half-opened": 1, "opened": 2}

BREAKER_STATE = Gauge("waimai_circuit_breaker_state",
                      "Circuit breaker state per dependency: 0 closed, 1 half-open, 2 open (read from the shared "
                      "store, so every replica reports the same).", ["dependency"], multiprocess_mode="mostrecent")
BREAKER_TRANSITIONS = Counter("waimai_circuit_breaker_transitions_total",
                              "Breaker state changes made by this process, by dependency and new state.",
                              ["dependency", "to"])
DEPENDENCY_CALLS = Counter("waimai_dependency_calls_total",
                           "Outbound calls by dependency and outcome (ok, failed, refused_open = breaker open, "
                           "refused_bulkhead = too many in flight).", ["dependency", "outcome"])
DEPENDENCY_RETRIES = Counter("waimai_dependency_retries_total",
                             "Retries by dependency: taken, or refused because the retry budget was spent.",
                             ["dependency", "decision"])
DEPENDENCY_IN_FLIGHT = Gauge("waimai_dependency_in_flight", "Outbound calls in flight (bulkhead occupancy).",
                             ["dependency"], multiprocess_mode="livesum")


def initialise(names: list[str]) -> None:
    """Export the known dependencies at zero from the start (rates and absence rules work at once)."""
    for name in names:
        BREAKER_STATE.labels(name)
        for outcome in ("ok", "failed", "refused_open", "refused_bulkhead"):
            DEPENDENCY_CALLS.labels(name, outcome)
        for decision in ("taken", "refused"):
            DEPENDENCY_RETRIES.labels(name, decision)
