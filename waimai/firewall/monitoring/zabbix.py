"""Push key series to Zabbix trapper items with the Zabbix sender protocol.

Wire format (Zabbix 4.0+ "header and data length"): `ZBXD`, flags byte 0x01, 4-byte little-endian
data length, 4 reserved bytes, then JSON `{"request": "sender data", "data": [{"host", "key",
"value", "clock"}], "clock"}`. The server answers in the same framing with
`{"response": "success", "info": "processed: N; failed: M; total: T; seconds spent: S"}`.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import time
from dataclasses import dataclass

HEADER = b"ZBXD\x01"


@dataclass(frozen=True)
class SenderResult:
    processed: int
    failed: int
    total: int
    raw: dict  # type: ignore[type-arg]


def frame(payload: bytes) -> bytes:
    return HEADER + struct.pack("<II", len(payload), 0) + payload


def read_frame(sock: socket.socket) -> bytes:
    head = _recv_exact(sock, 13)
    if head[:5] != HEADER:
        raise ValueError("not a Zabbix protocol frame")
    (length, _reserved) = struct.unpack("<II", head[5:13])
    if length > 16 * 1024 * 1024:
        raise ValueError("frame too large")
    return _recv_exact(sock, length)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed mid-frame")
        buf += chunk
    return buf


class ZabbixSender:
    def __init__(self, server: str, port: int = 10051, *, timeout: float = 5.0) -> None:
        self.server = server
        self.port = port
        self.timeout = timeout

    def send_values(self, host: str, values: dict[str, float], clock: int | None = None) -> SenderResult:
        clock = clock or int(time.time())
        body = {"request": "sender data", "clock": clock,
                "data": [{"host": host, "key": k, "value": f"{v:.6g}", "clock": clock} for k, v in values.items()]}
        with socket.create_connection((self.server, self.port), timeout=self.timeout) as sock:
            sock.sendall(frame(json.dumps(body).encode()))
            answer = json.loads(read_frame(sock))
        if answer.get("response") != "success":
            raise RuntimeError(f"Zabbix refused the data: {answer}")
        m = re.search(r"processed: (\d+); failed: (\d+); total: (\d+)", answer.get("info", ""))
        p, f, t = (int(x) for x in m.groups()) if m else (0, 0, 0)
        return SenderResult(processed=p, failed=f, total=t, raw=answer)
