"""Zabbix sender protocol against a TCP stand-in that parses frames as a Zabbix trapper does."""

from __future__ import annotations

import json
import socketserver
import struct
import threading

from waimai.firewall.monitoring.zabbix import HEADER, ZabbixSender


class _Trapper(socketserver.BaseRequestHandler):
    received: list[dict] = []  # type: ignore[type-arg]

    def handle(self) -> None:
        head = self.request.recv(13)
        assert head[:5] == b"ZBXD\x01", head
        length, reserved = struct.unpack("<II", head[5:13])
        assert reserved == 0
        data = b""
        while len(data) < length:
            data += self.request.recv(length - len(data))
        doc = json.loads(data)
        self.received.append(doc)
        ok = doc.get("request") == "sender data" and all(
            {"host", "key", "value", "clock"} <= set(item) for item in doc["data"])
        n = len(doc.get("data", []))
        answer = {"response": "success" if ok else "failed",
                  "info": f"processed: {n if ok else 0}; failed: {0 if ok else n}; total: {n}; "
                          f"seconds spent: 0.000042"}
        payload = json.dumps(answer).encode()
        self.request.sendall(HEADER + struct.pack("<II", len(payload), 0) + payload)


def test_sender_frames_and_parses_the_answer() -> None:
    srv = socketserver.TCPServer(("127.0.0.1", 0), _Trapper)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        res = ZabbixSender("127.0.0.1", srv.server_address[1]).send_values(
            "campus-a", {"waimai.orders_placed_per_min": 12.5, "waimai.payment_success_ratio": 0.98}, clock=1700000000)
        assert (res.processed, res.failed, res.total) == (2, 0, 2)
        doc = _Trapper.received[-1]
        assert doc["data"][0] == {"host": "campus-a", "key": "waimai.orders_placed_per_min", "value": "12.5",
                                  "clock": 1700000000}
    finally:
        srv.shutdown()
        srv.server_close()
