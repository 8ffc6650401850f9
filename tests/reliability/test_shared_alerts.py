"""One firewall across replicas: three real processes on one database (SQLite file or PostgreSQL).

`api` serves only the API (no notifier role); `n1` and `n2` run every role, so one of them leads the
notifier. Alerts come in over Alertmanager's webhook at `api`; they are listed, silenced and acknowledged
from the other replicas; then the notifier leader is killed with `kill -9`. The channel is a real
Standard Webhooks stand-in that checks signatures: every message it accepted is counted by (group, step)
— a step's message carries the timestamp of the decision, so a step sent twice shows up as two messages
with one key.
"""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, text

from tests.reliability.cluster import Replica, wait_until
from tests.servers import serve
from waimai.firewall.alerting.channels.standins import create_webhook_standin

pytestmark = [pytest.mark.xdist_group("reliability"), pytest.mark.slow,
              pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)]
TOKEN = "intake-token-for-the-cluster-test"
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def _config(hook: str) -> dict[str, Any]:
    return {
        "route": {"receiver": "ops", "group_by": ["alertname", "component"], "group_wait": "0s",
                  "group_interval": "1s", "repeat_interval": "3s",
                  "routes": [{"match": {"severity": "P1"}, "receiver": "ops", "escalation": "p1"}]},
        "receivers": {"ops": [{"kind": "webhook", "config": {"name": "standin", "url": hook, "secret": SECRET}}]},
        "escalation_policies": {"p1": [{"after": "0s", "targets": ["receiver:ops"]},
                                       {"after": "9s", "targets": ["receiver:ops"]}]},
    }


def _am(*alerts: tuple[str, str, str, str]) -> dict[str, Any]:
    return {"version": "4", "groupKey": "{}:{}", "status": "firing", "receiver": "waimai",
            "alerts": [{"status": "firing", "labels": {"alertname": n, "severity": sev, "component": comp,
                                                       "instance": inst},
                        "annotations": {"summary": n}, "startsAt": dt.datetime.now(dt.UTC).isoformat()}
                       for n, sev, comp, inst in alerts]}


@pytest.fixture
def hook() -> Iterator[tuple[str, Any]]:
    app = create_webhook_standin(secret=SECRET)
    with serve(app) as base:
        yield base + "/hooks/alerts", app.state.standin


def _group_of(msg: dict[str, Any]) -> str:
    return str(msg["body"]["data"]["labels"].get("group", ""))


def test_alert_state_is_shared_and_survives_the_notifier_leader(db_url: str, tmp_path: Path,
                                                                 hook: tuple[str, Any]) -> None:
    url, standin = hook
    cfg = tmp_path / "alerting.yml"
    cfg.write_text(yaml.safe_dump(_config(url)))
    env = {"WAIMAI_ALERTING_CONFIG_FILE": str(cfg), "WAIMAI_ALERT_INGEST_TOKEN": TOKEN,
           "WAIMAI_ALERT_EVAL_INTERVAL_S": "0.5"}
    api = Replica("api", db_url, tmp_path, roles="api", env=env)
    n1, n2 = (Replica(n, db_url, tmp_path, env=env) for n in ("n1", "n2"))
    replicas = [api, n1, n2]
    try:
        for r in replicas:
            r.start()
        for r in replicas:
            r.wait_ready(180)
        leader = wait_until(lambda: next((r for r in (n1, n2) if r.leads("notifier")), None), 30)
        assert leader is not None, "no notifier leader"
        survivor = n2 if leader is n1 else n1
        ops = {"Authorization": "Bearer " + httpx.post(f"{api.url}/api/v1/auth/login", timeout=10, json={
            "phone": "13800000009", "password": "waimai-demo"}).json()["access_token"]}
        intake = {"Authorization": f"Bearer {TOKEN}"}

        # Ingested at the api replica, which does not notify: stored there, advanced by the leader.
        r = httpx.post(f"{api.url}/api/v1/alerts/ingest/alertmanager", headers=intake, timeout=10, json=_am(
            ("XDiskFull", "warning", "disk", "a"), ("XGatewayDown", "critical", "payment", "a"),
            ("XQueueLong", "high", "dispatch", "a")))
        assert r.status_code == 200, r.text

        def groups(rep: Replica) -> dict[str, dict[str, Any]]:
            got = httpx.get(f"{rep.url}/api/v1/alerts", headers=ops, timeout=10).json()
            return {a["name"]: g for g in got for a in g["alerts"] if a["name"].startswith("X")}

        for rep in replicas:  # listed by every replica
            assert set(wait_until(lambda rep=rep: groups(rep), 10) or {}) >= {"XDiskFull", "XGatewayDown",
                                                                              "XQueueLong"}
        keys = {name: g["group"] for name, g in groups(n1).items()}

        def sent(name: str, kind: str | None = None) -> list[dict[str, Any]]:
            return [m for m in list(standin.accepted) if _group_of(m) == keys[name]
                    and (kind is None or m["body"]["type"] == kind)]

        assert wait_until(lambda: all(sent(n) for n in keys), 15), "the leader did not send the first messages"

        # Silenced from one notifier replica, acknowledged from the api replica.
        r = httpx.post(f"{n1.url}/api/v1/alerts/silences", headers=ops, timeout=10,
                       json={"matchers": {"alertname": "XDiskFull"}, "minutes": 60, "comment": "disk swap"})
        assert r.status_code == 201, r.text
        silence = r.json()["id"]
        r = httpx.post(f"{api.url}/api/v1/alerts/ack", headers=ops, params={"group": keys["XQueueLong"]}, timeout=10)
        assert r.status_code == 200 and r.json()["acknowledged_by"].startswith("user:"), r.text
        assert wait_until(lambda: sent("XQueueLong", "alert.acknowledged"), 10), "acknowledgement not notified"
        disk_before = len(sent("XDiskFull"))
        seen = {r2["id"] for r2 in httpx.get(f"{n2.url}/api/v1/alerts/silences", headers=ops, timeout=10).json()}
        assert silence in seen and groups(n2)["XQueueLong"]["acknowledged_by"]

        time.sleep(2)  # a repeat of the P1 or two under the first leader
        t_kill = time.monotonic()
        leader.kill9()
        assert wait_until(lambda: survivor.leads("notifier"), 20), "no new notifier leader"
        took_over_s = time.monotonic() - t_kill
        # Something new in the silenced group, and the P1 keeps repeating and escalates under the new leader.
        r = httpx.post(f"{api.url}/api/v1/alerts/ingest/alertmanager", headers=intake, timeout=10,
                       json=_am(("XDiskFull", "warning", "disk", "b")))
        assert r.status_code == 200
        assert wait_until(lambda: any("[escalation 2]" in m["body"]["data"]["title"] for m in sent("XGatewayDown")),
                          30), "the second escalation step never came"
        time.sleep(4)  # room for a duplicate to show up

        assert len(sent("XDiskFull")) == disk_before, "the silence was forgotten across the leadership move"
        listed = groups(survivor)["XDiskFull"]
        assert all(a["muted"] == f"silence {silence}" for a in listed["alerts"]) and len(listed["alerts"]) == 2
        kinds = [m["body"]["type"] for m in sent("XQueueLong")]  # repeats may come before the ack, none after
        assert kinds[-1] == "alert.acknowledged" and kinds.count("alert.acknowledged") == 1, kinds
        # Exactly one message per group and step, across the move (and the P1 did repeat under both leaders).
        steps = Counter((_group_of(m), m["body"]["timestamp"], m["body"]["data"]["title"]) for m in standin.accepted)
        assert steps and max(steps.values()) == 1, [k for k, v in steps.items() if v > 1]
        p1 = sent("XGatewayDown")
        assert sum("[escalation 1]" in m["body"]["data"]["title"] for m in p1) == 1
        assert sum("[escalation 2]" in m["body"]["data"]["title"] for m in p1) == 1
        repeats = [m for m in p1 if not m["body"]["data"]["title"].startswith("[")]
        assert len(repeats) >= 3
        # The shared log agrees with the stand-in: nothing left pending, every sent row arrived once.
        eng = create_engine(db_url)
        try:
            with eng.connect() as c:
                states = Counter(dict(c.execute(text("SELECT state, count(*) FROM alert_notifications "
                                                     "GROUP BY state")).all()))
        finally:
            eng.dispose()
        assert states["pending"] == 0 and states["sent"] + states["unknown"] + states["failed"] >= len(standin.accepted)
        print(f"\n[{db_url.split(':')[0]}] notifier leader moved in {took_over_s:.1f} s; "
              f"{len(standin.accepted)} messages at the channel, {len(steps)} distinct steps; log states {dict(states)}")
    finally:
        for r in replicas:
            r.stop()
