"""Live tracking over Server-Sent Events: status changes, rider position with ETA, resume, ownership."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import DEMO_ACCOUNTS, DEMO_PASSWORD, make_settings
from tests.servers import serve
from waimai.app import create_app
from waimai.platform.accounts.models import Role


@pytest.fixture
def live(sqlite_url: str) -> Iterator[tuple[str, dict[str, dict[str, str]]]]:
    app = create_app(make_settings(sqlite_url), background=False)
    with serve(app) as base, httpx.Client(base_url=base, timeout=10) as c:
        # Background jobs are off here; status changes reach the watchers through the event dispatcher, which
        # the worker leader runs: run it as if this process led.
        app.state.events.start(leads=lambda: True)  # type: ignore[attr-defined]
        heads = {}
        for role in (Role.customer, Role.merchant, Role.rider, Role.ops):
            tok = c.post("/api/v1/auth/login", json={"phone": DEMO_ACCOUNTS[role][0], "password": DEMO_PASSWORD})
            heads[role.value] = {"Authorization": f"Bearer {tok.json()['access_token']}"}
        yield base, heads


def _reader(base: str, path: str, headers: dict[str, str], out: list[dict], stop: threading.Event) -> None:  # type: ignore[type-arg]
    timeout = httpx.Timeout(5.0, read=60.0)  # a live stream: reads wait for the next event
    with httpx.Client(base_url=base, timeout=timeout) as c, c.stream("GET", path, headers=headers) as r:
        ev: dict = {}  # type: ignore[type-arg]
        for line in r.iter_lines():
            if stop.is_set():
                return
            if line.startswith("id: "):
                ev["id"] = int(line[4:])
            elif line.startswith("event: "):
                ev["event"] = line[7:]
            elif line.startswith("data: "):
                ev["data"] = json.loads(line[6:])
            elif line == "" and ev:
                out.append(ev)
                ev = {}


def _wait(pred, timeout: float = 10) -> bool:  # type: ignore[no-untyped-def]
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_status_position_eta_and_resume(live) -> None:  # type: ignore[no-untyped-def]
    base, h = live
    c = httpx.Client(base_url=base, timeout=10)
    o = c.post("/api/v1/orders", headers={**h["customer"], "Idempotency-Key": uuid.uuid4().hex},
               json={"merchant_id": 1, "delivery_point_id": 3, "items": [{"item_id": 5, "quantity": 1}],
                     "payment_method": "cod"}).json()
    got: list[dict] = []  # type: ignore[type-arg]
    stop = threading.Event()
    t = threading.Thread(target=_reader, args=(base, f"/api/v1/orders/{o['id']}/events", h["customer"], got, stop),
                         daemon=True)
    t.start()
    assert _wait(lambda: any(e.get("event") == "status" for e in got)), "no initial status"
    assert got[0]["data"]["status"] == "cod_confirmed"
    for action in ("accept", "preparing", "ready"):
        c.post(f"/api/v1/orders/{o['id']}/{action}", headers=h["merchant"])
    c.post(f"/api/v1/orders/{o['id']}/assign", json={"rider_id": 1}, headers=h["ops"])
    c.post(f"/api/v1/orders/{o['id']}/pickup", headers=h["rider"])
    # Status changes come from the outbox through the dispatcher (within its wake-up or poll); positions are
    # pushed by the position route itself. A rider moves after the pick-up has reached the watchers.
    assert _wait(lambda: any(e.get("data", {}).get("status") == "picked_up" for e in got))
    c.post("/api/v1/riders/me/position", json={"x": 800.0, "y": 900.0}, headers=h["rider"])
    assert _wait(lambda: any(e.get("event") == "position" for e in got))
    statuses = [e["data"]["status"] for e in got if e.get("event") == "status"]
    assert statuses == ["cod_confirmed", "accepted", "preparing", "ready", "picked_up"]
    pos = next(e for e in got if e.get("event") == "position")
    assert pos["data"]["x"] == 800.0 and pos["data"]["eta_minutes"] >= 1
    stop.set()
    # A client that reconnects with Last-Event-ID gets what it missed, and only that.
    last_seen = next(e["id"] for e in got if e.get("event") == "status" and e["data"]["status"] == "preparing")
    missed: list[dict] = []  # type: ignore[type-arg]
    stop2 = threading.Event()
    threading.Thread(target=_reader, args=(base, f"/api/v1/orders/{o['id']}/events",
                                           {**h["customer"], "Last-Event-ID": str(last_seen)}, missed, stop2),
                     daemon=True).start()
    assert _wait(lambda: len(missed) >= 3)
    assert [e.get("data", {}).get("status") for e in missed[:2]] == ["ready", "picked_up"]
    assert missed[2]["event"] == "position"
    stop2.set()
    assert 'waimai_sse_connections' in c.get("/metrics").text


def test_others_cannot_follow_an_order(live) -> None:  # type: ignore[no-untyped-def]
    base, h = live
    c = httpx.Client(base_url=base, timeout=5)
    o = c.post("/api/v1/orders", headers={**h["customer"], "Idempotency-Key": uuid.uuid4().hex},
               json={"merchant_id": 1, "delivery_point_id": 3, "items": [{"item_id": 5, "quantity": 1}],
                     "payment_method": "cod"}).json()
    assert c.get(f"/api/v1/orders/{o['id']}/events", headers=h["rider"]).status_code == 404
    assert c.get(f"/api/v1/orders/{o['id']}/events").status_code == 401
