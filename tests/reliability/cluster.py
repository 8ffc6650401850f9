"""Real Waimai processes (and a real load balancer) for the scale-out and failover tests.

`Replica` is one `waimai serve` process with its own port, metrics store and log file; `require`
finds a binary such as haproxy (skipping with a message when it is missing, failing under CI=true).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import IN_CI
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def require(binary: str, package: str) -> str:
    path = shutil.which(binary) or (f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None)
    if path is None:
        msg = f"{binary} not installed (apt-get install {package}; .ci/run installs it)"
        if IN_CI:
            pytest.fail(f"CI=true requires {msg}")
        pytest.skip(msg)
    return path


def wait_until(pred: Callable[[], Any], timeout: float, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(every)
    return None


class Replica:
    def __init__(self, name: str, db_url: str, scratch: Path, *, roles: str | None = None,
                 env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.name = name
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        scratch.mkdir(parents=True, exist_ok=True)
        self.log = scratch / f"{name}.out"
        self.env = {**os.environ, "WAIMAI_DATABASE_URL": db_url, "WAIMAI_ENV": "test",
                    "WAIMAI_METRICS_URL": f"sqlite:///{scratch / f'{name}-metrics.db'}",
                    "WAIMAI_LOG_FILE": str(scratch / f"{name}.jsonl"), "WAIMAI_LOG_LEVEL": "WARNING",
                    "WAIMAI_GATEWAY_URL": "http://127.0.0.1:9", "WAIMAI_LEADER_RETRY_S": "1",
                    "PYTHONPATH": str(ROOT), **(env or {})}
        self.cmd = [sys.executable, "-m", "waimai.cli", "serve", "--port", str(self.port)]
        if roles:
            self.cmd += ["--role", roles]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Replica:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.cmd, env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        return self

    def health(self, path: str = "/readyz") -> dict[str, Any] | None:
        try:
            r = httpx.get(self.url + path, timeout=1.0)
            return {"code": r.status_code, **r.json()}
        except (httpx.HTTPError, ValueError):
            return None

    def ready(self) -> bool:
        h = self.health()
        return h is not None and h["code"] == 200

    def wait_ready(self, timeout: float = 40) -> None:
        if not wait_until(lambda: self.ready() or (self.proc is not None and self.proc.poll() is not None), timeout):
            raise AssertionError(f"{self.name} did not become ready: {self.tail()}")
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")

    def leads(self, role: str) -> bool:
        h = self.health()
        return bool(h and h.get("roles", {}).get(role, {}).get("leader"))

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""
