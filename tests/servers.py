"""Run real HTTP servers (uvicorn) in background threads for tests that need the wire."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from waimai.drill.runner import free_port, serve_in_thread

__all__ = ["free_port", "serve"]


def serve(app: Any, port: int | None = None) -> AbstractContextManager[str]:
    """A uvicorn server in a thread for the test's duration (the drill's helper, one implementation)."""
    return serve_in_thread(app, port or free_port())
