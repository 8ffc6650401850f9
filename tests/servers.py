"""Run real HTTP servers (uvicorn) in background threads for tests that need the wire."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from waimai.drill.runner import free_port, serve_in_thread

__all__ = ["free_port", "serve"]


@contextmanager
def serve(app: Any, port: int | None = None) -> Iterator[str]:
    """A uvicorn server in a thread for the test's duration (the drill's helper, one implementation).
    Without a fixed port, a port another process grabbed between choosing and binding is chosen again."""
    for attempt in range(3):
        try:
            cm = serve_in_thread(app, port or free_port())
            url = cm.__enter__()
        except RuntimeError:
            if port is not None or attempt == 2:
                raise
            continue
        try:
            yield url
        finally:
            cm.__exit__(None, None, None)
        return
