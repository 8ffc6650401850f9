"""`waimai serve` and its helpers: the public URL follows the port, the stand-in gateway dies with serve."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from waimai.config import Settings

WAIMAI = str(Path(sys.executable).with_name("waimai"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait(cond, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    return False


def test_public_url_follows_host_and_port() -> None:
    assert Settings(env="development", port=8001).public_url == "http://127.0.0.1:8001"
    assert Settings(env="development", host="0.0.0.0", port=9000).public_url == "http://127.0.0.1:9000"
    assert Settings(env="development", port=8001, public_url="https://waimai.example.edu").public_url == (
        "https://waimai.example.edu")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_fake_gateway_ends_with_serve(tmp_path: Path, sig: signal.Signals) -> None:
    port, gw_port = free_port(), free_port()
    env = {**os.environ, "WAIMAI_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}", "WAIMAI_ENV": "development",
           "WAIMAI_METRICS_URL": f"sqlite:///{tmp_path / 'm.db'}", "WAIMAI_LOG_FILE": str(tmp_path / "l.jsonl"),
           "WAIMAI_GATEWAY_URL": f"http://127.0.0.1:{gw_port}", "WAIMAI_DRAIN_DELAY_S": "0"}
    subprocess.run([WAIMAI, "migrate"], env=env, check=True, capture_output=True, timeout=120)
    proc = subprocess.Popen([WAIMAI, "serve", "--with-fake-gateway", "--port", str(port)], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait(lambda: listening(port) and listening(gw_port), 120), "serve or its gateway did not start"
        proc.send_signal(sig)
        proc.wait(timeout=60)
        assert wait(lambda: not listening(gw_port), 15), f"the gateway outlived serve after {sig.name}"
    finally:
        if proc.poll() is None:
            proc.kill()
