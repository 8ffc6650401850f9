"""`waimai watch` against a real service process: kill -9 the service, the alarm arrives."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from fastapi import FastAPI, Request

from tests.servers import free_port, serve
from waimai.firewall.alerting.channels.webhook import sign

SECRET = "whsec_" + "dGVzdC13ZWJob29rLXNlY3JldC0xMjM0NTY3ODkw"


def _receiver() -> tuple[FastAPI, list[tuple[float, dict, bool]]]:  # type: ignore[type-arg]
    got: list[tuple[float, dict, bool]] = []  # type: ignore[type-arg]
    app = FastAPI()

    @app.post("/alerts")
    async def alerts(request: Request) -> dict[str, str]:
        body = await request.body()
        h = request.headers
        valid = h.get("webhook-signature") == sign(SECRET, h["webhook-id"], h["webhook-timestamp"], body)
        data = __import__("json").loads(body)["data"]
        got.append((time.monotonic(), {"status": data["status"], "summary": data["title"],
                                       "severity": data["severity"]}, valid))
        return {"ok": "yes"}

    return app, got


def _wait(pred, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_killing_the_service_raises_the_alarm_within_30s(sqlite_template: Path, tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    shutil.copy(sqlite_template, db)
    app_port, dog_port = free_port(), free_port()
    rx, got = _receiver()
    env = {**os.environ, "WAIMAI_DATABASE_URL": f"sqlite:///{db}", "WAIMAI_ENV": "test",
           "WAIMAI_METRICS_URL": f"sqlite:///{tmp_path / 'm.db'}", "WAIMAI_LOG_FILE": str(tmp_path / "l.jsonl"),
           "WAIMAI_LOG_LEVEL": "WARNING", "WAIMAI_WATCHDOG_URL": f"http://127.0.0.1:{dog_port}",
           "WAIMAI_WATCH_WEBHOOK_SECRET": SECRET}
    with serve(rx) as rx_url:
        service = subprocess.Popen([sys.executable, "-m", "waimai.cli", "serve", "--port", str(app_port)], env=env)

        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{app_port}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        assert _wait(ready, 30), "service did not start"
        dog = subprocess.Popen([sys.executable, "-m", "waimai.cli", "watch", "--target",
                                f"http://127.0.0.1:{app_port}", "--interval", "1", "--failures", "2",
                                "--listen", f"127.0.0.1:{dog_port}", "--heartbeat-timeout", "8",
                                "--alert-webhook", f"{rx_url}/alerts"], env=env)
        try:
            status = f"http://127.0.0.1:{dog_port}/status"

            def healthy_rounds() -> bool:
                try:
                    s = httpx.get(status, timeout=1).json()
                    return s["rounds"] >= 3 and s["consecutive_failures"] == 0
                except httpx.HTTPError:
                    return False

            assert _wait(healthy_rounds, 40), "watchdog never saw the service healthy"
            assert got == [], f"no alarm while healthy, got {got}"
            killed_at = time.monotonic()
            service.send_signal(signal.SIGKILL)
            service.wait(timeout=10)
            assert _wait(lambda: any(m["status"] == "firing" for _, m, _ in got), 30), "no alarm within 30 s"
            t, msg, valid = next(x for x in got if x[1]["status"] == "firing")
            assert valid, "the alarm's webhook signature does not verify"
            assert msg["severity"] == "P1" and "not answering" in msg["summary"]
            print(f"alarm {t - killed_at:.1f} s after kill -9")
            assert t - killed_at <= 30
            # Heartbeats stopped too: the dead man's switch fires as its own alarm.
            assert _wait(lambda: any("heartbeat" in m["summary"] for _, m, _ in got), 20)
        finally:
            for p in (service, dog):
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                    try:
                        p.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        p.kill()


def test_watchdog_alarms_once_and_resolves(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from waimai.firewall.monitoring.watchdog import RoundResult, WatchConfig, Watchdog

    sent: list[dict] = []  # type: ignore[type-arg]
    dog = Watchdog(WatchConfig(target="http://127.0.0.1:9", failures_to_alarm=2, heartbeat_timeout_s=None),
                   sent.append)
    outcomes = iter([True, False, False, False, True])
    monkeypatch.setattr(dog, "probe", lambda: RoundResult(ok=next(outcomes), checks={}))
    for _ in range(5):
        dog.round()
    assert [m["status"] for m in sent] == ["firing", "resolved"]
