"""Graceful drain on SIGTERM: readiness fails first, in-flight requests finish, then the process exits.

On SIGTERM the process marks itself draining (`/readyz` answers 503 from that moment) and keeps
serving for `delay_s`, long enough for the load balancer's health checks or Kubernetes' endpoint
update to take it out of rotation. Then it ends its live-tracking streams (clients reconnect to
another replica and resume with Last-Event-ID) and hands the signal to the server (uvicorn), which
stops accepting and lets in-flight requests finish within `timeout_graceful_shutdown`.

Installed by the app's lifespan around whatever SIGTERM handler the server put in place, so it
works with `waimai serve`, `--workers N` and a bare `uvicorn --factory`. SIGINT (Ctrl-C) is left
alone: immediate in development. A second SIGTERM during the delay stops at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class Drain:
    def __init__(self, delay_s: float, before_stop: Callable[[], None] | None = None) -> None:
        self.delay_s = delay_s
        self.before_stop = before_stop
        self.started = threading.Event()
        self._previous: Any = None
        self._installed = False

    @property
    def draining(self) -> bool:
        return self.started.is_set()

    def install(self) -> bool:
        """Wrap the current SIGTERM handler; only possible on the main thread (not under TestClient)."""
        if threading.current_thread() is not threading.main_thread():
            return False
        self._previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        self._installed = True
        return True

    def uninstall(self) -> None:
        if self._installed and threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGTERM) == self._on_sigterm:
                signal.signal(signal.SIGTERM, self._previous)
            self._installed = False

    def _on_sigterm(self, sig: int, frame: FrameType | None) -> None:
        if self.draining or self.delay_s <= 0:
            self.started.set()
            self._stop(sig, frame)
            return
        self.started.set()
        log.warning("drain_started", delay_s=self.delay_s)
        timer = threading.Timer(self.delay_s, self._stop, (sig, frame))
        timer.daemon = True
        timer.start()

    def _stop(self, sig: int, frame: FrameType | None) -> None:
        log.warning("drain_stopping")
        if self.before_stop is not None:
            try:
                self.before_stop()
            except Exception:  # noqa: BLE001 - never keep the process from stopping
                log.exception("drain_before_stop_failed")
        prev = self._previous
        if callable(prev):
            prev(sig, frame)
        elif prev == signal.SIG_DFL:  # nobody else listening: behave like the default
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.raise_signal(signal.SIGTERM)
