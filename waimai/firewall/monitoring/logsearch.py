"""Search the JSON log file(s) by request id, order id, text and time window (newest first).

Campus scale keeps this simple: the rotated files are scanned newest first and stop at `limit`.
Teams with an ELK stack ship the same lines with the Filebeat/Vector configs in deploy/.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from waimai.core.timeutil import parse_iso


def _files(path: Path) -> list[Path]:
    out = [path] if path.exists() else []
    i = 1
    while (p := path.with_name(f"{path.name}.{i}")).exists():
        out.append(p)
        i += 1
    return out


def _reverse_lines(path: Path, chunk: int = 1 << 16) -> Iterator[str]:
    with path.open("rb") as f:
        f.seek(0, 2)
        pos = f.tell()
        rest = b""
        while pos > 0:
            step = min(chunk, pos)
            pos -= step
            f.seek(pos)
            buf = f.read(step) + rest
            lines = buf.split(b"\n")
            rest = lines[0]
            for line in reversed(lines[1:]):
                if line:
                    yield line.decode("utf-8", "replace")
        if rest:
            yield rest.decode("utf-8", "replace")


def _parse_ts(value: Any) -> dt.datetime | None:
    try:
        return parse_iso(value)
    except ValueError:
        return None


def search(path: Path, *, request_id: str | None = None, order_id: int | None = None, text: str | None = None,
           since: dt.datetime | None = None, until: dt.datetime | None = None, level: str | None = None,
           limit: int = 200) -> list[dict[str, Any]]:
    """Matching ECS documents, newest first."""
    found: list[dict[str, Any]] = []
    order_needles = (f'"order_id": {order_id}', f'"order_id": "{order_id}"') if order_id is not None else ()
    for f in _files(path):
        for line in _reverse_lines(f):
            if request_id and request_id not in line:
                continue
            if order_needles and not any(n in line for n in order_needles):
                continue
            if text and text.lower() not in line.lower():
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if request_id and doc.get("trace", {}).get("id") != request_id:
                continue
            if level and doc.get("log", {}).get("level") != level:
                continue
            ts = _parse_ts(doc.get("@timestamp"))
            if until and ts and ts > until:
                continue
            if since and ts and ts < since:
                return found  # older than the window: everything further back is older still
            found.append(doc)
            if len(found) >= limit:
                return found
    return found
