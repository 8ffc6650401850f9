"""Every Prometheus instrument Waimai exports, named by Prometheus conventions (base units, _total).

With several worker processes set PROMETHEUS_MULTIPROC_DIR (``waimai serve`` does it for you):
prometheus-client then keeps per-process files that /metrics aggregates.

They live in core because every layer counts (core's job loops and leader election, the platform's orders and
payments, the firewall's request middleware and probes); the firewall's monitoring reads them, it does not own
them (the layers contract in pyproject.toml).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DB_BUCKETS = (0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0)

HTTP_REQUESTS = Counter("waimai_http_requests_total", "HTTP requests answered, by route template and status.",
                        ["method", "route", "status"])
HTTP_LATENCY = Histogram("waimai_http_request_duration_seconds", "Time to answer an HTTP request.",
                         ["method", "route"], buckets=LATENCY_BUCKETS)
HTTP_SIGNED_IN = Counter("waimai_http_signed_in_requests_total", "HTTP requests that carried a valid sign-in "
                         "token, by status class (2xx..5xx): 5xx among them are user-facing errors.", ["status_class"])
HTTP_IN_FLIGHT = Gauge("waimai_http_requests_in_flight", "Requests being answered now.",
                       multiprocess_mode="livesum")

ORDERS_PLACED = Counter("waimai_orders_placed_total", "Orders placed, by payment method and source.",
                        ["payment_method", "source"])
ORDER_TRANSITIONS = Counter("waimai_order_transitions_total", "Order state changes, by target state.",
                            ["to_status"])
ORDERS_BY_STATE = Gauge("waimai_orders", "Orders currently in each non-final state.", ["status"],
                        multiprocess_mode="mostrecent")

PAYMENT_ATTEMPTS = Counter("waimai_payment_attempts_total",
                           "Payment provider calls by provider, operation and outcome "
                           "(succeeded, failed = refused or declined, error = unreachable).",
                           ["provider", "operation", "outcome"])
PAYMENT_LATENCY = Histogram("waimai_payment_request_duration_seconds", "Time of a payment provider call.",
                            ["provider", "operation"], buckets=LATENCY_BUCKETS)
BILL_MISMATCHES_OPEN = Gauge("waimai_payment_bill_mismatches_open",
                             "Daily-bill lines (对账单) that disagree with our payments, not yet resolved.",
                             ["provider"], multiprocess_mode="mostrecent")

DISPATCH_BACKLOG = Gauge("waimai_dispatch_backlog_orders", "Kitchen orders still waiting for a rider.",
                         multiprocess_mode="mostrecent")
DISPATCH_ASSIGN_LATENCY = Histogram("waimai_dispatch_assignment_latency_seconds",
                                    "From an order's acceptance to its rider assignment.",
                                    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200))
RIDERS_ON_SHIFT = Gauge("waimai_riders_on_shift", "Riders on shift now.", multiprocess_mode="mostrecent")
SSE_CONNECTIONS = Gauge("waimai_sse_connections", "Open live-tracking (SSE) connections.",
                        multiprocess_mode="livesum")

DB_QUERY_LATENCY = Histogram("waimai_db_query_duration_seconds", "Database statement time, by statement kind.",
                             ["operation"], buckets=DB_BUCKETS)
EVENT_LOOP_LAG = Gauge("waimai_event_loop_lag_seconds", "How late the event loop woke up a 0.5 s timer.",
                       multiprocess_mode="max")

DEPENDENCY_UP = Gauge("waimai_dependency_up", "Last probe of a dependency succeeded (1) or not (0).",
                      ["dependency"], multiprocess_mode="mostrecent")
DEPENDENCY_LATENCY = Gauge("waimai_dependency_probe_duration_seconds", "Duration of the last dependency probe.",
                           ["dependency"], multiprocess_mode="mostrecent")


def _initialise_label_sets() -> None:
    """Export known label combinations at zero from the start, so rates and absence rules work
    before the first event (Prometheus' advice for labelled metrics)."""
    for method in ("gateway", "cod"):
        ORDERS_PLACED.labels(method, "app")
    for op in ("create", "refund", "callback"):
        for outcome in ("succeeded", "failed", "error"):
            PAYMENT_ATTEMPTS.labels("gateway", op, outcome)
    for status in ("created", "paid", "cod_confirmed", "accepted", "preparing", "ready", "picked_up", "delivered",
                   "cancelled", "rejected", "refunded", "failed"):
        ORDER_TRANSITIONS.labels(status)


_initialise_label_sets()

# Process roles and leader election (waimai/core/roles.py, waimai/core/leader.py). With several processes
# on one host /metrics adds them up: the sum of waimai_leader over the fleet is 1 per role when all is well.
PROCESS_ROLE = Gauge("waimai_process_role", "1 for each role this process runs (api, worker, dispatcher, notifier).",
                     ["role"], multiprocess_mode="livesum")
LEADER = Gauge("waimai_leader", "1 while this process leads the role's singleton jobs.", ["role"],
               multiprocess_mode="livesum")
LEADER_CHANGES = Counter("waimai_leader_changes_total", "Leadership gained, lost (connection or lock gone) or "
                         "resigned (the role's loop stalled).", ["role", "change"])
JOB_RUNS = Counter("waimai_background_job_runs_total", "Background job runs by role, job and outcome (ok, error).",
                   ["role", "job", "outcome"])
JOB_LAST_SUCCESS = Gauge("waimai_background_job_last_success_timestamp_seconds",
                         "When the job last finished without error (Unix time).", ["role", "job"],
                         multiprocess_mode="max")
