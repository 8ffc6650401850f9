"""`waimai watch`: probes the service from outside and raises the alarm when it stops answering.

Run it on another machine in production: it must work precisely when the main service is dead,
so it shares nothing with it but the network. Each round it checks readiness, reads the menu like
a customer would, and optionally places and cancels a canary order on a test merchant. It also
listens for the service's heartbeats (a dead man's switch): silence for `heartbeat_timeout`
seconds is an alarm too, even if probes from here still pass (e.g. a partitioned network).
An alarm fires once per outage and a recovery message follows when the service answers again.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog

log = structlog.get_logger(__name__)


@dataclass
class WatchConfig:
    target: str
    interval_s: float = 5.0
    failures_to_alarm: int = 2
    timeout_s: float = 3.0
    heartbeat_timeout_s: float | None = 30.0
    canary_phone: str | None = None
    canary_password: str | None = None
    canary_merchant_id: int | None = None
    canary_item_id: int | None = None
    canary_delivery_point_id: int = 1


@dataclass
class RoundResult:
    ok: bool
    checks: dict[str, str]
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


Alert = Callable[[dict[str, Any]], None]


class Watchdog:
    def __init__(self, cfg: WatchConfig, alert: Alert, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.alert = alert
        self.clock = clock
        self.client = httpx.Client(base_url=cfg.target.rstrip("/"), timeout=cfg.timeout_s)
        self.consecutive_failures = 0
        self.alarm_open = False
        self.heartbeat_alarm_open = False
        self.last_heartbeat: float | None = None
        self.started = clock()
        self._token: str | None = None
        self.rounds = 0

    def heartbeat(self) -> None:
        self.last_heartbeat = self.clock()

    def probe(self) -> RoundResult:
        checks: dict[str, str] = {}
        ok = True
        for name, path in (("readiness", "/readyz"), ("menu", "/api/v1/merchants")):
            try:
                r = self.client.get(path)
                good = r.status_code == 200 and (name != "menu" or isinstance(r.json(), list))
                checks[name] = "ok" if good else f"status {r.status_code}"
                ok &= good
            except (httpx.HTTPError, ValueError) as exc:
                checks[name] = exc.__class__.__name__
                ok = False
        if ok and self.cfg.canary_phone and self.cfg.canary_merchant_id and self.cfg.canary_item_id:
            checks["canary_order"] = self._canary()
            ok &= checks["canary_order"] == "ok"
        return RoundResult(ok=ok, checks=checks)

    def _canary(self) -> str:
        try:
            if self._token is None:
                r = self.client.post("/api/v1/auth/login", json={"phone": self.cfg.canary_phone,
                                                                 "password": self.cfg.canary_password})
                if r.status_code != 200:
                    return f"login status {r.status_code}"
                self._token = r.json()["access_token"]
            h = {"Authorization": f"Bearer {self._token}", "Idempotency-Key": f"canary-{uuid.uuid4().hex}"}
            r = self.client.post("/api/v1/orders", headers=h, json={
                "merchant_id": self.cfg.canary_merchant_id, "delivery_point_id": self.cfg.canary_delivery_point_id,
                "items": [{"item_id": self.cfg.canary_item_id, "quantity": 1}], "payment_method": "cod",
                "note": "watchdog canary"})
            if r.status_code == 401:
                self._token = None
            if r.status_code != 201:
                return f"place status {r.status_code}"
            oid = r.json()["id"]
            r = self.client.post(f"/api/v1/orders/{oid}/cancel", headers={"Authorization": h["Authorization"]},
                                 json={"reason": "watchdog canary"})
            return "ok" if r.status_code == 200 else f"cancel status {r.status_code}"
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            return exc.__class__.__name__

    def round(self) -> RoundResult:
        self.rounds += 1
        res = self.probe()
        if res.ok:
            if self.alarm_open:
                self.alarm_open = False
                self._send("resolved", "Waimai answers again", res)
            self.consecutive_failures = 0
        else:
            self.consecutive_failures += 1
            if self.consecutive_failures >= self.cfg.failures_to_alarm and not self.alarm_open:
                self.alarm_open = True
                self._send("firing", "Waimai is not answering", res)
        self._check_heartbeat(res)
        return res

    def _check_heartbeat(self, res: RoundResult) -> None:
        limit = self.cfg.heartbeat_timeout_s
        if limit is None:
            return
        since = self.clock() - (self.last_heartbeat if self.last_heartbeat is not None else self.started)
        if since > limit and not self.heartbeat_alarm_open:
            self.heartbeat_alarm_open = True
            self._send("firing", f"No heartbeat from Waimai for {since:.0f} s", res, kind="heartbeat")
        elif since <= limit and self.heartbeat_alarm_open:
            self.heartbeat_alarm_open = False
            self._send("resolved", "Waimai heartbeats are back", res, kind="heartbeat")

    def _send(self, status: str, summary: str, res: RoundResult, kind: str = "probe") -> None:
        msg = {"status": status, "severity": "P1", "summary": summary, "target": self.cfg.target,
               "checks": res.checks, "at": res.at.isoformat(), "source": "waimai-watchdog",
               "dedup_key": f"watchdog:{kind}:{self.cfg.target}"}
        log.warning("watchdog_alert", **{k: v for k, v in msg.items() if k != "checks"}, checks=str(res.checks))
        try:
            self.alert(msg)
        except Exception:  # noqa: BLE001 - a failing channel must not stop the watching
            log.exception("watchdog_alert_delivery_failed")

    def run(self, stop: threading.Event, max_rounds: int | None = None) -> None:
        while not stop.is_set():
            t0 = self.clock()
            self.round()
            if max_rounds is not None and self.rounds >= max_rounds:
                return
            stop.wait(max(0.0, self.cfg.interval_s - (self.clock() - t0)))


def heartbeat_app(dog: Watchdog) -> Any:
    """The watchdog's own tiny HTTP face: the service posts heartbeats here; /status tells its view."""
    from fastapi import FastAPI

    app = FastAPI(title="waimai watchdog", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/heartbeat")
    def beat() -> dict[str, str]:
        dog.heartbeat()
        return {"status": "ok"}

    @app.get("/status")
    def status() -> dict[str, Any]:
        return {"target": dog.cfg.target, "alarm": dog.alarm_open, "heartbeat_alarm": dog.heartbeat_alarm_open,
                "consecutive_failures": dog.consecutive_failures, "rounds": dog.rounds}

    return app
