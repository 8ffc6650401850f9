"""Attack symptoms as internal security alerts: per source address, rate-limited, never a public incident.

An outsider can make us refuse requests (forged intake signatures) or, through a bug, answer 5xx without
signing in. Both say something about the caller, nothing about what our users see, so they are *security*
alerts: labelled `symptom: attack`, which the incident manager (`manager.opens_incident`, the one place that
decides) never turns into an incident, public or not.

Two views of the same events:
- fleet-wide rates from the metric store (rules `*SignatureFailures`, `*OrderFlood`, `AnonymousServerErrors`
  in default_rules.yml, all labelled `symptom: attack`);
- per source address here: `SecurityEvents.note(kind, address)` counts each address's events in a sliding
  window; an address that reaches `threshold` raises one `SecurityEventsFromAddress` alert labelled with the
  address, and at most one new alert per (kind, address) per `cooldown` — a flood from one address is one
  notification, not thousands. At most `max_addresses` are tracked (the quietest are forgotten first), so a
  spray of addresses cannot exhaust memory.

The counts are this process's (each replica sees the requests it answered); the alerting service's round
collects them (`AlertingService.sources`) where it runs, and every process logs `security_alert` when one of
its addresses crosses the threshold, so the log search finds it on any replica.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict, deque
from collections.abc import Callable

import structlog

from waimai.firewall.alerting.rules import Alert

log = structlog.get_logger(__name__)
KINDS = {"signature_failure": "requests failing a signature check",
         "anonymous_server_error": "requests without a signed-in user answered with a 5xx",
         "cross_site_request": "cross-site requests refused"}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SecurityEvents:
    def __init__(self, *, threshold: int = 5, window: dt.timedelta = dt.timedelta(minutes=10),
                 cooldown: dt.timedelta = dt.timedelta(hours=1), max_addresses: int = 10_000,
                 clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self.threshold = threshold
        self.window = window
        self.cooldown = cooldown
        self.max_addresses = max_addresses
        self.clock = clock
        self._events: OrderedDict[tuple[str, str], deque[dt.datetime]] = OrderedDict()
        self._alerted: dict[tuple[str, str], dt.datetime] = {}
        self._firing: dict[tuple[str, str], Alert] = {}
        self._lock = threading.Lock()

    def note(self, kind: str, address: str | None, detail: str = "") -> None:
        """One event of `kind` from `address` (thread-safe, O(1) amortised)."""
        now = self.clock()
        key = (kind, (address or "unknown")[:64])
        with self._lock:
            times = self._events.pop(key, None) or deque(maxlen=self.threshold)
            times.append(now)
            self._events[key] = times  # most recent last: the quietest go first when full
            while len(self._events) > self.max_addresses:
                self._events.popitem(last=False)
            if len(times) < self.threshold or now - times[0] > self.window:
                return
            last = self._alerted.get(key)
            if last is not None and now - last < self.cooldown:
                return  # rate limit: one alert per (kind, address) per cooldown
            self._alerted[key] = now
            if len(self._alerted) > self.max_addresses:
                oldest = min(self._alerted, key=self._alerted.__getitem__)
                del self._alerted[oldest]
            self._firing[key] = Alert(
                labels={"alertname": "SecurityEventsFromAddress", "severity": "P3", "symptom": "attack",
                        "component": "security", "kind": kind, "source": key[1]},
                annotations={"summary": f"{self.threshold}+ {KINDS.get(kind, kind)} from {key[1]} within "
                                        f"{int(self.window.total_seconds() // 60)} min" + (f" ({detail})" if detail
                                                                                          else "")},
                status="firing", starts_at=now, value=float(len(times)))
        log.warning("security_alert", kind=kind, source=key[1], events=self.threshold, detail=detail)

    def alerts(self, now: dt.datetime) -> list[Alert]:
        """Alerts for the alerting round: firing ones, and each resolved once its address went quiet."""
        out: list[Alert] = []
        with self._lock:
            for key, a in list(self._firing.items()):
                times = self._events.get(key)
                if times and now - times[-1] < self.window:
                    out.append(a)
                else:
                    del self._firing[key]
                    out.append(Alert(labels=a.labels, annotations=a.annotations, status="resolved",
                                     starts_at=a.starts_at, ends_at=now, value=a.value))
        return out
