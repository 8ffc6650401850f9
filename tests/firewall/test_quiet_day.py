"""A normal lunch hour is quiet: no P1-P3 alert, no anomaly signal, no incident.

The lunch hour runs through the public API (`waimai lunch-hour` logic); after every tick the
firewall's own loop runs on a 5 s sample clock: sampler, anomaly watcher, alert evaluation (and with
it the incident manager). Customers follow their orders live: each order's SSE stream is on the
latency histogram as the middleware records it (a stream lasting as long as someone watches).
"""

from __future__ import annotations

import datetime as dt
import time

from fastapi.testclient import TestClient

from tests.conftest import make_settings
from waimai.app import create_app
from waimai.core.metrics import DEPENDENCY_UP, HTTP_LATENCY
from waimai.firewall.incidents.service import open_incidents
from waimai.platform.delivery.lunch import LunchConfig, LunchHour
from waimai.platform.delivery.service import dispatch_round


def test_a_normal_lunch_hour_fires_nothing(sqlite_url: str) -> None:
    # Probe results are process-wide gauges: an earlier test in this worker may have left a dependency "down"
    # (its stand-in stopped). A fresh service has probed nothing yet, and probes do not run here.
    DEPENDENCY_UP.clear()
    app = create_app(make_settings(sqlite_url), background=False)
    st = app.state
    clock = {"t": time.time() - 3600.0}
    now = lambda: dt.datetime.fromtimestamp(clock["t"], dt.UTC)  # noqa: E731
    st.alerting.clock = st.alerting.pipeline.clock = now
    fired: list[str] = []
    stream = HTTP_LATENCY.labels("GET", "/api/v1/orders/{order_id}/events")

    def firewall_tick() -> None:
        with st.db.session() as s:  # the dispatcher's job, background jobs being off here
            if dispatch_round(s):
                s.commit()
        clock["t"] += 5.0
        stream.observe(30.0)  # someone's live order page closed after half a minute of watching
        st.sampler.sample(clock["t"])
        st.anomalies.step(clock["t"])
        st.alerting.evaluate()
        fired.extend(f"{a.alert.name} {a.alert.severity}" for a in st.alerting.pipeline.alerts.values()
                     if a.alert.status == "firing" and a.alert.severity in ("P1", "P2", "P3"))

    with TestClient(app) as c:
        st.sampler.sample(clock["t"])
        rep = LunchHour(c, LunchConfig(orders=12, minutes=20, speed=240, riders=5, tick_s=0.2, grace_s=60),
                        on_tick=firewall_tick, say=lambda _line: None).run()
        assert rep.all_delivered, rep
        assert not fired, sorted(set(fired))
        assert not list(st.anomalies.signals), [s.as_dict() for s in st.anomalies.signals]
        with st.db.read_session() as db:
            assert open_incidents(db) == []
        lat = st.metric_store.latest("http_latency_p95_ms")
        assert lat is not None and lat.value < 1000  # the 30 s streams are not latency
