"""The faults a drill injects, what it then expects to see, and its targets.

Each fault: `inject` / `remove` (through the stand-ins' admin endpoints or the service's fault
injection, `WAIMAI_CHAOS`), a steady-state check, the steps to time (name, target) and `observe`,
which marks steps from what a person would look at. The same actions are exposed to Chaos Toolkit
(`waimai.drill.chaos`, experiments in `drills/experiments/`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import httpx


def _ts(s: str) -> float:
    return dt.datetime.fromisoformat(s).timestamp()


def gateway_config(base: str, **change: Any) -> None:
    cfg = httpx.get(f"{base}/admin/config", timeout=5).json()
    httpx.put(f"{base}/admin/config", json={**cfg, **change}, timeout=5).raise_for_status()


def standin_fail(base: str, times: int = 1000, status: int = 503) -> None:
    httpx.post(f"{base}/_standin/fail", json={"times": times, "status": status}, timeout=5).raise_for_status()


def standin_heal(base: str) -> None:
    """Drop the pending injected failures (the stand-in forgets what it received, too)."""
    httpx.post(f"{base}/_standin/reset", timeout=5).raise_for_status()


def db_delay(d: Any, ms: int) -> None:
    httpx.put(f"{d.base}/api/v1/chaos/db", json={"delay_ms": ms}, headers=d.ops, timeout=90).raise_for_status()


# --- observations shared by the faults ------------------------------------------------------------------

def see_incident(d: Any, c: httpx.Client, component: str | None) -> dict[str, Any] | None:
    inc = d.incident(c)
    if inc is None or (component and component not in inc["components"] and inc["components"]):
        return None
    d._mark("detected", True, _ts(inc["detected_at"]), f"{inc['severity']} {', '.join(a['name'] for a in inc['alerts'])}")
    d._mark("incident opened", True, _ts(inc["created_at"]), f"#{inc['id']} {inc['title']}")
    return inc


def see_alert_delivered(d: Any) -> None:
    state = httpx.get(f"{d.dingtalk}/_standin/state", timeout=5).json()
    got = [a for a in state["accepted"] if a["at"] >= d.t0]
    if got:
        d._mark("alert delivered to DingTalk", True, got[0]["at"], "")


def see_status(d: Any, c: httpx.Client, component: str) -> None:
    comps = {x["id"]: x for x in c.get("/api/v1/status").json()["components"]}
    x = comps.get(component)
    if x and x["status"] != "operational":
        d._mark("status page updated", True, _ts(x["updated_at"]), f"{component}: {x['status']}")


def see_banner(d: Any, c: httpx.Client, component: str) -> None:
    import time

    page = c.get("/", cookies={"waimai_token": d.customer["Authorization"].split()[1]}).text
    if f'data-banner="{component}"' in page:
        d._mark("banner shown", True, time.time(), "")


def see_notified(d: Any, c: httpx.Client, inc: dict[str, Any] | None) -> None:
    if inc is None:
        return
    mine = [n for n in c.get("/api/v1/notices", headers=d.customer).json()["notices"] if n["incident_id"] == inc["id"]]
    if mine:
        first = min(_ts(n["created_at"]) for n in mine)
        d._mark("users notified", True, first, f"{first - _ts(inc['created_at']):.1f} s after the incident opened; "
                f"SMS {mine[-1]['sms']}")


def see_switch(d: Any, c: httpx.Client, name: str, on: bool, step: str, after: float) -> None:
    for s in c.get("/api/v1/switches", headers=d.ops).json():
        if s["name"] == name and bool(s["enabled"]) == on and _ts(s["updated_at"]) >= after:
            d._mark(step, True, _ts(s["updated_at"]), f"by {s['updated_by']}: {s['reason']}")


def see_recovery(d: Any, c: httpx.Client) -> None:
    """The firewall knows the fault is gone: a guarding breaker closed again, or the incident moved on."""
    for b in c.get("/api/v1/breakers", headers=d.ops).json():
        if b["state"] == "closed" and _ts(b["changed_at"]) >= d.t1 and b["dependency"] in d.fault.breakers:
            d._mark("recovery detected", True, _ts(b["changed_at"]), f"breaker {b['dependency']} closed")
            return
    inc = d.incident(c)
    if inc is None:
        return
    detail = c.get(f"/api/v1/incidents/{inc['id']}", headers=d.ops).json()
    for e in detail["timeline"]:
        if e["kind"] == "status" and e["details"].get("to") in ("monitoring", "resolved") and _ts(e["at"]) >= d.t1 - 5:
            d._mark("recovery detected", True, _ts(e["at"]), f"incident {e['details']['to']}")
            return


def see_component_green(d: Any, c: httpx.Client, component: str) -> None:
    comps = {x["id"]: x for x in c.get("/api/v1/status").json()["components"]}
    if comps[component]["status"] in ("operational", "degraded_performance") and d.card.step("recovery detected").ok:
        d._mark("status page recovered", True, _ts(comps[component]["updated_at"]), comps[component]["status"])


def see_undelivered(d: Any, c: httpx.Client) -> None:
    inc = d.incident(c)
    if inc is None:
        return
    for e in c.get(f"/api/v1/incidents/{inc['id']}", headers=d.ops).json()["timeline"]:
        if e["kind"] == "notified" and "NOT delivered" in e["text"]:
            d._mark("failed delivery on the timeline", True, _ts(e["at"]), e["text"])
            return


def steady_ok(d: Any) -> bool:
    st = httpx.get(f"{d.base}/api/v1/status", timeout=5).json()
    return bool(st["status"]["indicator"] == "none" and httpx.get(f"{d.base}/readyz", timeout=5).status_code == 200)


# --- the faults ------------------------------------------------------------------------------------------

TAIL = [("fault removed", ""), ("recovery detected", "after removal"), ("compensation issued", ""),
        ("root-cause report written", "")]


@dataclass
class Fault:
    name: str
    description: str
    inject: Callable[[Any], None]
    remove: Callable[[Any], None]
    observe: Callable[[Any, httpx.Client, str], None]
    steps: list[tuple[str, str]]
    recovery_steps: tuple[str, ...] = ("recovery detected",)
    steady: Callable[[Any], bool] = steady_ok
    breakers: tuple[str, ...] = ()  # breakers whose closing shows recovery
    min_replicas: int = 1
    platform: bool = False  # set up Meituan intake (a stand-in and a linked shop)
    # On SQLite, database work runs on the event loop: a database slowed on purpose stalls the whole
    # process, the firewall's own writes included. Such faults default to PostgreSQL.
    database: str = "sqlite"
    extra_targets: Callable[[Any], dict[str, bool]] = field(default=lambda d: {})

    detects: bool = True  # the firewall is expected to detect this fault (an incident)
    rails: bool = False  # run WeChat Pay and Alipay against their stand-ins (auto-confirming cashiers)

    def targets(self, d: Any) -> dict[str, bool]:
        o = d.card.orders
        out = {"0 orders lost": o.get("lost", 1) == 0, "0 orders duplicated": o.get("duplicated", 1) == 0}
        if self.detects:
            out["detected"] = bool(d.card.step("detected").ok)
        return {**out, **self.extra_targets(d)}


def _payment_observe(d: Any, c: httpx.Client, phase: str) -> None:
    if phase == "fault":
        inc = see_incident(d, c, "payment")
        see_alert_delivered(d)
        see_switch(d, c, "payment.cod_only", True, "COD switched on", d.t0)
        see_status(d, c, "payment")
        see_banner(d, c, "payment")
        see_notified(d, c, inc)
    else:
        see_recovery(d, c)
        see_switch(d, c, "payment.cod_only", False, "COD switched off", d.t1)
        see_notified(d, c, d.incident(c))


def _payment_targets(d: Any) -> dict[str, bool]:
    s, o = d.card.step, d.card.orders
    det, cod, note = s("detected"), s("COD switched on"), s("users notified")
    opened = s("incident opened")
    return {
        "MTTD ≤ 15 s": det.at_s is not None and det.at_s <= 15,
        "COD on ≤ 10 s after detection": cod.at_s is not None and det.at_s is not None and cod.at_s - det.at_s <= 10,
        "≥ 99% of orders attempted during the fault completed": (o.get("completed_during_fault_pct") or 0) >= 99,
        "users notified ≤ 60 s after the incident opened": note.at_s is not None and opened.at_s is not None
        and note.at_s - opened.at_s <= 60,
    }


PAYMENT_STEPS = [("detected", "MTTD ≤ 15 s"), ("alert delivered to DingTalk", ""), ("incident opened", ""),
                 ("COD switched on", "≤ 10 s after detection"), ("status page updated", ""), ("banner shown", ""),
                 ("users notified", "≤ 60 s after the incident opened"), *TAIL[:2],
                 ("COD switched off", "after recovery"), *TAIL[2:]]


def _generic(component: str, *, switch: str | None = None) -> Callable[[Any, httpx.Client, str], None]:
    def observe(d: Any, c: httpx.Client, phase: str) -> None:
        if phase == "fault":
            inc = see_incident(d, c, component)
            see_alert_delivered(d)
            see_status(d, c, component)
            see_notified(d, c, inc)
            if switch:
                see_switch(d, c, switch, True, f"{switch} on", d.t0)
        else:  # a late detection still counts, with its real time
            see_notified(d, c, see_incident(d, c, component))
            see_recovery(d, c)
            if switch:
                see_switch(d, c, switch, False, f"{switch} off", d.t1)
    return observe


def _steps(*middle: tuple[str, str]) -> list[tuple[str, str]]:
    return [("detected", "found by the firewall"), ("alert delivered to DingTalk", ""), ("incident opened", ""),
            *middle, *TAIL]


def _channel_observe(d: Any, c: httpx.Client, phase: str) -> None:
    if phase == "fault":
        inc = see_incident(d, c, "payment")
        see_undelivered(d, c)
        see_status(d, c, "payment")
        see_notified(d, c, inc)
    else:
        see_recovery(d, c)


# --- replica-kill: kill -9 the replica that leads the dispatcher, restart it after -----------------------

KILL_ROLE = "dispatcher"


def _kill_leader(d: Any) -> None:
    import os
    import signal

    i = d.leader(KILL_ROLE)
    if i is None:
        raise httpx.HTTPError(f"no replica leads {KILL_ROLE}")
    d.killed = i
    os.killpg(d.replicas[i][1].pid, signal.SIGKILL)
    d.say(f"  killed replica {i} (port {d.replicas[i][0]}), the {KILL_ROLE} leader")


def _restart(d: Any) -> None:
    port, _ = d.replicas[d.killed]
    d.start_replica(d.killed, port, d.env)


def _replica_observe(d: Any, c: httpx.Client, phase: str) -> None:
    import time

    if phase == "fault":
        if c.get("/readyz").status_code == 200 and c.get("/api/v1/merchants").status_code == 200:
            d._mark("load balancer routes around it", True, time.time(), "requests answered by the others")
        i = d.leader(KILL_ROLE)
        if i is not None and i != d.killed:
            d._mark("singleton jobs taken over", True, time.time(), f"replica {i} leads {KILL_ROLE}")
    else:
        port, p = d.replicas[d.killed]
        if p.poll() is None and httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
            d._mark("replica back in rotation", True, time.time(), f"port {port}")


def _replica_targets(d: Any) -> dict[str, bool]:
    o, take = d.card.orders, d.card.step("singleton jobs taken over")
    return {"singleton jobs resumed ≤ 10 s": take.at_s is not None and take.at_s <= 10,
            "≥ 99% of orders attempted during the fault completed": (o.get("completed_during_fault_pct") or 0) >= 99}


# --- platform-flood: Meituan pushes orders at ~15/s; the commander pauses intake with a runbook ---------

def _flood(d: Any) -> None:
    import threading

    d.flood_stop = threading.Event()
    hook = f"{d.base}/api/v1/intake/meituan/orders"
    items = [{"name": "卤蛋", "sku": "EGG", "quantity": 1, "price": "3"}]
    points = [p["name"] for p in httpx.get(f"{d.base}/api/v1/delivery-points", timeout=10).json()
              if p.get("kind") != "locker"]
    address = f"{points[0]} 302室" if points else "北苑3号楼 302室"

    def pusher() -> None:
        with httpx.Client(timeout=10) as c:
            while not d.flood_stop.is_set():
                with suppress(httpx.HTTPError):
                    c.post(f"{d.meituan}/admin/push_order", json={"webhook_url": hook, "items": items, "address": address})
                d.flood_stop.wait(0.3)

    d.flood_threads = [threading.Thread(target=pusher, daemon=True) for _ in range(5)]
    for t in d.flood_threads:
        t.start()


def _unflood(d: Any) -> None:
    d.flood_stop.set()
    for t in d.flood_threads:
        t.join(timeout=15)
    httpx.put(f"{d.base}/api/v1/switches/intake.meituan.paused", json={"enabled": False, "reason": "flood over"},
              headers=d.ops, timeout=30).raise_for_status()


def _flood_observe(d: Any, c: httpx.Client, phase: str) -> None:
    import time

    if phase != "fault":
        see_recovery(d, c)
        return
    inc = see_incident(d, c, "ordering")
    see_alert_delivered(d)
    if inc is not None and not inc["public"]:
        # A flood is an attack symptom: an internal incident for the team; the status page stays as it was.
        comps = {x["id"]: x for x in c.get("/api/v1/status").json()["components"]}
        if comps.get("ordering", {}).get("status") == "operational":
            d._mark("incident internal, status page unchanged", True, time.time(), f"#{inc['id']} not public")
    if inc is not None and not d.card.step("intake paused by runbook").ok:
        r = c.post("/api/v1/runbooks/pause_intake/run", json={"params": {"platform": "meituan",
                                                                          "reason": "drill: order flood"}},
                   headers=d.ops, timeout=30)
        if r.status_code == 200 and r.json()["ok"]:
            d._mark("intake paused by runbook", True, time.time(), "; ".join(r.json()["lines"]))
    if d.card.step("intake paused by runbook").ok:
        acks = httpx.get(f"{d.meituan}/admin/state", timeout=5).json()["acks"]
        if acks and not acks[-1].get("accepted"):
            d._mark("pushes refused in the platform's format", True, time.time(), str(acks[-1]["body"])[:80])


# --- backup-disk-full: the backup directory looks nearly full --------------------------------------------

def _disk(d: Any, leave_mb: int | None) -> None:
    httpx.put(f"{d.base}/api/v1/chaos/disk", json={"leave_mb": leave_mb}, headers=d.ops, timeout=30
              ).raise_for_status()


def _disk_observe(d: Any, c: httpx.Client, phase: str) -> None:
    import time

    if phase == "fault":
        see_incident(d, c, None)
        see_alert_delivered(d)
        if d.card.step("detected").ok and not d.card.step("backup refused cleanly").ok:
            before = len(c.get("/api/v1/backups", headers=d.ops).json())
            r = c.post("/api/v1/backups", json={}, headers=d.ops, timeout=60)
            after = len(c.get("/api/v1/backups", headers=d.ops).json())
            if r.status_code == 507 and r.json()["error"]["code"] == "backup_disk_full" and after == before:
                d._mark("backup refused cleanly", True, time.time(), r.json()["error"]["message"][:80])
    else:
        see_recovery(d, c)
        if d.card.step("fault removed").ok and not d.card.step("backup works again").ok:
            r = c.post("/api/v1/backups", json={"verify": False}, headers=d.ops, timeout=120)
            if r.status_code == 201:
                d._mark("backup works again", True, time.time(), r.json()["id"])


# --- wechat-outage / alipay-outage: one payment provider fails, the other is up ------------------------

def _rail_observe(failing: str, healthy: str) -> Callable[[Any, httpx.Client, str], None]:
    """Detection is the failing provider's breaker opening; then checkout must offer the healthy one."""
    def observe(d: Any, c: httpx.Client, phase: str) -> None:
        breakers = {b["dependency"]: b for b in c.get("/api/v1/breakers", headers=d.ops).json()}
        b = breakers.get(f"payment.{failing}")
        if phase == "fault":
            if b is not None and b["state"] != "closed" and _ts(b["changed_at"]) >= d.t0:
                d._mark("detected", True, _ts(b["changed_at"]), f"breaker payment.{failing} {b['state']}")
            offered = c.get("/api/v1/payments/providers", headers=d.customer).json()["offered"]
            if d.card.step("detected").ok and offered == [healthy]:
                d._mark(f"checkout offers {healthy} only", True, time.time(), f"offered: {offered}")
        see_switch(d, c, "payment.cod_only", True, "COD switched on", d.t0)  # must NOT happen, in either phase
        if phase != "fault":
            if b is not None and b["state"] == "closed" and _ts(b["changed_at"]) >= d.t1:
                d._mark("recovery detected", True, _ts(b["changed_at"]), f"breaker payment.{failing} closed")
            offered = c.get("/api/v1/payments/providers", headers=d.customer).json()["offered"]
            if d.card.step("recovery detected").ok and failing in offered:
                d._mark(f"{failing} offered again", True, time.time(), f"offered: {offered}")
    return observe


def _rail_targets(failing: str, healthy: str) -> Callable[[Any], dict[str, bool]]:
    def targets(d: Any) -> dict[str, bool]:
        s, o = d.card.step, d.card.orders
        det, offered = s("detected"), s(f"checkout offers {healthy} only")
        twice = sum(httpx.get(f"{u}/admin/stats", timeout=5).json()["charged_twice"] for u in d.rail_urls.values())
        d.card.orders["charged_twice"] = twice
        return {
            f"{healthy} offered ≤ 10 s after detection": det.at_s is not None and offered.at_s is not None
            and offered.at_s - det.at_s <= 10,
            "0 orders charged twice": twice == 0,
            "COD not switched on (the other provider was up)": s("COD switched on").ok is None,
            "≥ 99% of orders attempted during the fault completed": (o.get("completed_during_fault_pct") or 0) >= 99,
        }
    return targets


def _rail_fault(failing: str, healthy: str) -> Fault:
    return Fault(
        f"{failing}-outage", f"the {failing} stand-in answers every call with 503 while {healthy} is up",
        inject=lambda d: gateway_config(d.rail_urls[failing], failure_rate=1.0),
        remove=lambda d: gateway_config(d.rail_urls[failing], failure_rate=0.0),
        observe=_rail_observe(failing, healthy),
        steps=[("detected", "breaker opened"), (f"checkout offers {healthy} only", "≤ 10 s after detection"),
               ("COD switched on", ""), ("fault removed", ""), ("recovery detected", "after removal"),
               (f"{failing} offered again", "after recovery")],
        recovery_steps=("recovery detected", f"{failing} offered again"), breakers=(f"payment.{failing}",),
        extra_targets=_rail_targets(failing, healthy), rails=True)


def _both(a: Callable[[], None], b: Callable[[], None]) -> None:
    a()
    b()


FAULTS: dict[str, Fault] = {
    "payment-outage": Fault(
        "payment-outage", "the payment gateway answers every call with 503",
        inject=lambda d: gateway_config(d.gateway, failure_rate=1.0),
        remove=lambda d: gateway_config(d.gateway, failure_rate=0.0),
        observe=_payment_observe, steps=PAYMENT_STEPS, recovery_steps=("recovery detected", "COD switched off"),
        extra_targets=_payment_targets, breakers=("payment_gateway",)),
    "payment-slow": Fault(
        "payment-slow", "the payment gateway takes 5 s per call (past our 3 s timeout)",
        inject=lambda d: gateway_config(d.gateway, latency_ms=5000),
        remove=lambda d: gateway_config(d.gateway, latency_ms=0),
        observe=_payment_observe, steps=PAYMENT_STEPS, recovery_steps=("recovery detected", "COD switched off"),
        breakers=("payment_gateway",)),
    "database-slow": Fault(
        "database-slow", "every database statement takes 150 ms longer",
        inject=lambda d: db_delay(d, 150), remove=lambda d: db_delay(d, 0),
        observe=_generic("ordering", switch="ordering.simple_mode"),
        steps=_steps(("status page updated", ""), ("users notified", ""), ("ordering.simple_mode on", ""),
                     ("ordering.simple_mode off", "")),
        database="postgres"),
    "sms-down": Fault(
        "sms-down", "the SMS provider answers 503",
        inject=lambda d: standin_fail(d.sms), remove=lambda d: standin_heal(d.sms),
        observe=_generic("notifications"),
        steps=_steps(("status page updated", ""), ("users notified", "in the inbox"))),
    "channel-down": Fault(
        "channel-down", "the DingTalk robot answers 503 while the payment gateway fails: the firewall must work "
                        "without its pager",
        inject=lambda d: _both(lambda: standin_fail(d.dingtalk), lambda: gateway_config(d.gateway, failure_rate=1.0)),
        remove=lambda d: _both(lambda: gateway_config(d.gateway, failure_rate=0.0), lambda: standin_heal(d.dingtalk)),
        observe=_channel_observe, breakers=("payment_gateway",),
        steps=[("detected", ""), ("incident opened", ""), ("failed delivery on the timeline", ""),
               ("status page updated", ""), ("users notified", ""), *TAIL]),
    "replica-kill": Fault(
        "replica-kill", f"kill -9 the replica that leads the {KILL_ROLE} (several replicas on PostgreSQL behind HAProxy)",
        inject=_kill_leader, remove=_restart, observe=_replica_observe,
        steps=[("load balancer routes around it", ""), ("singleton jobs taken over", "≤ 10 s"), ("fault removed", ""),
               ("replica back in rotation", "after removal")],
        recovery_steps=("replica back in rotation",), steady=lambda d: d.leader(KILL_ROLE) is not None,
        min_replicas=2, detects=False, extra_targets=_replica_targets),
    "platform-flood": Fault(
        "platform-flood", "Meituan pushes orders at about 15 a second; the commander pauses its intake by runbook",
        inject=_flood, remove=_unflood, observe=_flood_observe,
        steps=[("detected", ""), ("alert delivered to DingTalk", ""), ("incident opened", ""),
               ("incident internal, status page unchanged", "an attack symptom"), ("intake paused by runbook", ""),
               ("pushes refused in the platform's format", ""), *TAIL],
        platform=True),
    "backup-disk-full": Fault(
        "backup-disk-full", "the backup directory has 10 MB left",
        inject=lambda d: _disk(d, 10), remove=lambda d: _disk(d, None), observe=_disk_observe,
        steps=[("detected", "BackupDiskNearlyFull"), ("alert delivered to DingTalk", ""), ("incident opened", ""),
               ("backup refused cleanly", "nothing half-written"), ("fault removed", ""),
               ("recovery detected", "after removal"), ("backup works again", "after removal"),
               ("root-cause report written", "")],
        recovery_steps=("recovery detected", "backup works again")),
    "wechat-outage": _rail_fault("wechat", "alipay"),
    "alipay-outage": _rail_fault("alipay", "wechat"),
}
