"""Real server processes for the reliability tests: the Waimai app (uvicorn) and the stand-in gateway."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def _wait(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:  # a start-up on a loaded machine
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited during start-up ({proc.returncode})")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


@contextmanager
def process(cmd: list[str], env: dict[str, str], ready_url: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(ROOT), **env}, cwd=ROOT)
    try:
        _wait(ready_url, proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextmanager
def fake_gateway() -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with process([sys.executable, "-m", "waimai.cli", "fake-gateway", "--port", str(port)], {}, f"{base}/admin/config"):
        yield base


@contextmanager
def waimai(db_url: str, **settings: object) -> Iterator[str]:
    """The app in its own process (one uvicorn worker, background jobs on), WAIMAI_* from `settings`."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    scratch = Path(tempfile.mkdtemp(prefix="waimai-rel-"))
    env = {"WAIMAI_ENV": "test", "WAIMAI_DATABASE_URL": db_url, "WAIMAI_PUBLIC_URL": base,
           "WAIMAI_SECRET_KEY": os.environ["WAIMAI_SECRET_KEY"], "WAIMAI_GATEWAY_SECRET": os.environ["WAIMAI_GATEWAY_SECRET"],
           "WAIMAI_METRICS_URL": f"sqlite:///{scratch / 'metrics.db'}", "WAIMAI_LOG_FILE": str(scratch / "log.jsonl"),
           "WAIMAI_LOG_LEVEL": "WARNING", "WAIMAI_DRAIN_DELAY_S": "0",
           **{f"WAIMAI_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v) for k, v in settings.items()}}
    cmd = [sys.executable, "-m", "uvicorn", "waimai.app:create_app", "--factory", "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning", "--no-access-log"]
    with process(cmd, env, f"{base}/readyz"):
        yield base


def login(c: httpx.Client, phone: str) -> dict[str, str]:
    r = c.post("/api/v1/auth/login", json={"phone": phone, "password": "waimai-demo"})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def switch_on(c: httpx.Client, ops: dict[str, str], name: str) -> bool:
    return any(s["name"] == name and s["enabled"] for s in c.get("/api/v1/switches", headers=ops).json())


def wait_switch(c: httpx.Client, ops: dict[str, str], name: str, *, on: bool, within_s: float) -> float:
    """Seconds until the switch is `on` (or off); fails the test after `within_s`."""
    t0 = time.monotonic()
    while switch_on(c, ops, name) != on:
        assert time.monotonic() - t0 < within_s, f"{name} not {'on' if on else 'off'} within {within_s:.0f} s"
        time.sleep(0.1)
    return time.monotonic() - t0
