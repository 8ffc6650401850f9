"""Helper processes that never outlive the process that started them.

`waimai serve --with-fake-gateway` starts the stand-in gateway as a child. A ``finally`` in the
parent is not enough: a SIGTERM that arrives before uvicorn installs its handlers, a SIGKILL, or a
crash skips it, and the orphan keeps its port, so the next `make run` starts a server whose gateway
is the old one. The child therefore watches its parent and leaves when the parent is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess  # nosec B404
import sys
import threading
import time

PARENT_FLAG = "--parent-pid"


def start_child(args: list[str]) -> subprocess.Popen[bytes]:
    """Run ``python -m waimai.cli ARGS --parent-pid <us>``; the child exits when we do."""
    return subprocess.Popen(  # noqa: S603  # nosec B603
        [sys.executable, "-m", "waimai.cli", *args, PARENT_FLAG, str(os.getpid())]
    )


def stop_child(proc: subprocess.Popen[bytes] | None, timeout: float = 10) -> None:
    """SIGTERM, wait, then SIGKILL if it does not go."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def exit_with_parent(parent_pid: int | None, interval_s: float = 0.5) -> None:
    """In a child: SIGTERM ourselves (a graceful stop) once ``parent_pid`` is no longer our parent."""
    if not parent_pid:
        return

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval_s)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
