"""Structured logs in ECS fields through structlog; phone numbers and secrets masked.

Every line is built as an Elastic Common Schema document (`@timestamp`, `log.level`, `message`,
`service.name`, `trace.id`, `http.*`, `url.path`, `event.dataset`, `event.duration`), written as a
JSON line to the log file (the one the ops console searches and Filebeat/Vector ship), and to
stderr as JSON outside development or as a readable line in it. The request id set by the
monitoring middleware is `trace.id` on every line of that request.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import structlog

from waimai.core.security import mask_phones_in_text

SECRET_KEYS = {"password", "secret", "token", "access_token", "authorization", "secret_key", "signature",
               "cookie", "sign"}
SERVICE = "waimai"
_MAX_BYTES = 50 * 1024 * 1024
_KEEP = 5


# What a database error's text may carry besides the statement: bound values (SQLAlchemy's `[parameters: …]`,
# hidden at the engine too), PostgreSQL's DETAIL line (`Key (phone)=(13800000001) already exists`) and
# CONTEXT parameters, values quoted in a driver's message, Argon2 hashes. Scrubbed from every log line.
_SCRUB = [
    (re.compile(r"\[parameters: [^\n]*\]"), "[parameters: hidden]"),
    (re.compile(r"^(\s*DETAIL:).*$", re.MULTILINE), r"\1 (hidden)"),
    (re.compile(r"(parameter \$\d+ = )'[^'\n]*'"), r"\1'(hidden)'"),
    (re.compile(r"((?:input syntax for type|input value for enum|value too long for type)[^:\n]*: )\"[^\"\n]*\""),
     r'\1"(hidden)"'),
    (re.compile(r"\$argon2(?:id|i|d)\$[^\s'\",)\]]*"), "$argon2id$(hidden)"),
]


def scrub_text(text: str) -> str:
    """Mask phone numbers and remove SQL parameters, DETAIL values and password hashes from free text."""
    for pattern, repl in _SCRUB:
        text = pattern.sub(repl, text)
    return mask_phones_in_text(text)


class ScrubFilter(logging.Filter):
    """The same scrubbing for the standard library's loggers (uvicorn's tracebacks on stderr)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub_text(record.exc_text)
        if isinstance(record.msg, str) and not record.args:  # formatted records (uvicorn.access) keep their args
            record.msg = scrub_text(record.msg)
        return True


def _mask_value(v: Any) -> Any:
    if isinstance(v, str):
        return scrub_text(v)
    if isinstance(v, dict):
        return {k: ("***" if str(k).lower() in SECRET_KEYS else _mask_value(x)) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_mask_value(x) for x in v]
    return v


_HEX_ID = re.compile(r"[0-9a-f]{32}")


def mask_processor(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for k, v in list(event.items()):
        if k == "trace_id" and isinstance(v, str) and _HEX_ID.fullmatch(v):
            continue  # our own request id: its digits may look like a phone number, and searching needs it whole
        event[k] = "***" if k.lower() in SECRET_KEYS else _mask_value(v)
    return event


_HTTP_KEYS = {"http_method", "url_path", "status_code", "duration_ms", "route", "client"}


def to_ecs(event: Mapping[str, Any], role: str) -> dict[str, Any]:
    """Reshape a structlog event dict into an ECS document."""
    ev = dict(event)
    logger = ev.pop("logger_name", None) or "waimai"
    doc: dict[str, Any] = {
        "@timestamp": ev.pop("timestamp", None),
        "log": {"level": ev.pop("level", "info"), "logger": logger},
        "message": str(ev.pop("event", "")),
        "service": {"name": SERVICE, "node": {"role": role}},
        "event": {"dataset": "waimai.access" if logger == "waimai.access" else "waimai.app"},
    }
    trace = ev.pop("trace_id", None)
    if trace:
        doc["trace"] = {"id": trace}
    if "http_method" in ev or "status_code" in ev:
        doc["http"] = {"request": {"method": ev.pop("http_method", None)},
                       "response": {"status_code": ev.pop("status_code", None)}}
        doc["url"] = {"path": ev.pop("url_path", None)}
        if "duration_ms" in ev:
            doc["event"]["duration"] = int(float(ev.pop("duration_ms")) * 1_000_000)
        if "client" in ev:
            doc["client"] = {"address": ev.pop("client")}
    exc = ev.pop("exception", None)
    if exc:
        doc["error"] = {"stack_trace": exc}
    if ev:
        doc["waimai"] = ev
    return doc


class _FileSink:
    """Append-only JSON lines with simple size-based rotation (waimai.jsonl, .1 … .5)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._f = path.open("a", encoding="utf-8")

    def write(self, line: str) -> None:
        with self._lock:
            self._f.write(line + "\n")
            self._f.flush()
            if self._f.tell() > _MAX_BYTES:
                self._rotate()

    def _rotate(self) -> None:
        self._f.close()
        for i in range(_KEEP - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{i}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._f = self.path.open("a", encoding="utf-8")


_sink: _FileSink | None = None


def configure(*, json_lines: bool, level: str = "INFO", file: Path | None = None, role: str = "all") -> None:
    global _sink
    if file is not None and (_sink is None or _sink.path != file):
        _sink = _FileSink(file)
    elif file is None:
        _sink = None
    console = structlog.dev.ConsoleRenderer(colors=False)

    def render(logger: Any, name: str, event: MutableMapping[str, Any]) -> str:
        doc = to_ecs(event, role)
        line = json.dumps(doc, ensure_ascii=False, default=str)
        if _sink is not None:
            _sink.write(line)
        return line if json_lines else str(console(logger, name, dict(event)))

    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        if not any(isinstance(f, ScrubFilter) for f in lg.filters):
            lg.addFilter(ScrubFilter())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,  # first, so the traceback text is scrubbed too
            mask_processor,
            render,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping().get(level.upper(), 20)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


def current_request_id() -> str | None:
    return structlog.contextvars.get_contextvars().get("trace_id")
