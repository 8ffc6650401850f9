"""structlog set-up: JSON lines outside development, readable lines in it; phone numbers masked."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from waimai.core.security import mask_phones_in_text

SECRET_KEYS = {"password", "secret", "token", "access_token", "authorization", "secret_key", "signature"}


def _mask(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    for k, v in list(event.items()):
        if k.lower() in SECRET_KEYS:
            event[k] = "***"
        elif isinstance(v, str):
            event[k] = mask_phones_in_text(v)
    return event


def configure(*, json_lines: bool, level: str = "INFO") -> None:
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _mask,
        structlog.processors.format_exc_info,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping().get(level, 20)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
