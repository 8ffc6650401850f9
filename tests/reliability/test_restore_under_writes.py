"""A restore that cannot lose an order: two real replicas take orders all through a backup and a restore.

Customers keep placing orders on both replicas (every order's Idempotency-Key is also its note; refused
attempts are retried with the same key). Ops take a backup, let more orders in, then restore it through
the API of one replica: read-only goes on, both replicas confirm that they refuse writes and have none
in flight, the orders written after the backup are exported, the database is rolled back, writes resume.
Afterwards every order a customer was told about (201) is either in the restored database or in the
export — none fell between the two.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.reliability.cluster import Replica

pytestmark = [pytest.mark.xdist_group("reliability"), pytest.mark.slow,
              pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)]
BODY = {"merchant_id": 1, "delivery_point_id": 1, "items": [{"item_id": 5, "quantity": 1}], "payment_method": "cod"}


def _login(base: str, phone: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/v1/auth/login", json={"phone": phone, "password": "waimai-demo"}, timeout=30)
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_every_acknowledged_order_is_restored_or_exported(db_url: str, tmp_path: Path) -> None:
    eng = create_engine(db_url)
    with eng.begin() as conn:  # a campus that never runs out: the test is about losing orders, not stock
        conn.execute(text("UPDATE merchants SET capacity = 1000000, opens_at = '00:00', closes_at = '24:00'"))
        conn.execute(text("UPDATE menu_items SET stock = NULL"))
    env = {"WAIMAI_BACKUP_DIR": str(tmp_path / "backups")}
    r1 = Replica("r1", db_url, tmp_path, env=env)
    r2 = Replica("r2", db_url, tmp_path, roles="api", env=env)
    acked: dict[str, int] = {}
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    stop = threading.Event()

    def customer(base: str, headers: dict[str, str]) -> None:
        with httpx.Client(base_url=base, timeout=30, headers=headers) as c:
            while not stop.is_set():
                key = f"rw-{uuid.uuid4().hex}"
                while not stop.is_set():
                    try:
                        r = c.post("/api/v1/orders", json={**BODY, "note": key}, headers={"Idempotency-Key": key})
                    except httpx.TransportError as exc:
                        with lock:
                            outcomes[exc.__class__.__name__] += 1
                        time.sleep(0.05)
                        continue
                    with lock:
                        outcomes[str(r.status_code) + (":" + r.json()["error"]["code"] if r.status_code >= 400
                                                       else "")] += 1
                    if r.status_code in (200, 201):
                        with lock:
                            acked[key] = int(r.json()["id"])
                        break
                    time.sleep(0.05)

    try:
        for r in (r1, r2):
            r.start()
        for r in (r1, r2):
            r.wait_ready(180)
        cust = _login(r1.url, "13800000001")
        ops = _login(r1.url, "13800000009")
        threads = [threading.Thread(target=customer, args=(r.url, cust), daemon=True) for r in (r1, r2, r1, r2)]
        for t in threads:
            t.start()
        time.sleep(2)
        r = httpx.post(f"{r1.url}/api/v1/backups", json={"note": "before the test's restore"}, headers=ops, timeout=180)
        assert r.status_code == 201, r.text
        backup = r.json()["id"]
        time.sleep(2)
        before_restore = len(acked)
        r = httpx.post(f"{r1.url}/api/v1/backups/{backup}/restore", json={"confirm": backup}, headers=ops,
                       timeout=300)
        assert r.status_code == 200, r.text
        result = r.json()
        time.sleep(3)  # writes resume on the restored database
    finally:
        stop.set()
        for r in (r1, r2):
            r.stop()
    assert result["status"] == "restored", result
    assert before_restore > 0 and len(acked) > before_restore
    exported = json.loads(Path(result["export_json"]).read_text())
    in_export = {o["note"] for o in exported["orders_new"]}
    with eng.connect() as c:
        in_db = set(c.execute(text("SELECT note FROM orders WHERE note LIKE 'rw-%'")).scalars())
    eng.dispose()
    lost = [k for k in acked if k not in in_db and k not in in_export]
    print(f"\n[{db_url.split(':')[0]}] {len(acked)} orders acknowledged, {len(in_export)} exported, "
          f"{len(in_db)} in the restored database; fence {result['durations'].get('fence')} s over "
          f"{result['fenced_replicas']} replicas; answers {dict(outcomes)}")
    assert not lost, f"{len(lost)} acknowledged orders are in neither the restored database nor the export"
    assert result["fenced_replicas"] >= 2, result
    assert in_export, "no order was written between the backup and the restore: the test proved nothing"
    assert outcomes["503:read_only"] > 0, "no write met the fence"
