"""`waimai drill lunch-rush --fault F`: the whole story on this machine, timed, with a scorecard.

1. Start the stand-ins (payment gateway as a process; DingTalk robot and Alibaba Cloud SMS in this
   process), migrate and seed a scratch database, and start the service as a process wired to them.
2. Ramp the lunch rush (Locust, headless, `locustfile.py`) while a merchant bot accepts and cooks the
   orders and a rider bot delivers what the dispatcher gives it.
3. Inject the fault (`faults.py`), and time every step the firewall should take by polling what a
   person would look at: the incident list, the DingTalk stand-in, the switches, the status page, a
   customer's page and inbox. Remove the fault and time the recovery.
4. Resolve the incident as the commander, issue compensation, write the root-cause report.
5. Check the ledger the load kept against the database (lost / duplicated orders), score the targets,
   and write `scorecard.json`, `report.html` (with charts) and the incident report into the folder.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml

from waimai.core import uow
from waimai.core.extras import require
from waimai.drill.faults import FAULTS, Fault

CUSTOMER, RIDER, OPS = "13800000001", "13800000003", "13800000009"
PASSWORD = "waimai-demo"  # noqa: S105 - the demo campus's printed password
DT_TOKEN, DT_SECRET = "drill-robot", "SECdrill0123456789"
MT_APP, MT_SECRET = "drill-meituan", "drill-meituan-secret"
SMS_KEY, SMS_SECRET = "LTAI-drill", "drill-sms-secret"
PY = [sys.executable, "-c", "from waimai.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_in_thread(app: Any, port: int) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.time() + 15
    while not server.started:
        if time.time() > deadline or not t.is_alive():
            raise RuntimeError(f"the server on port {port} did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        t.join(timeout=10)


@dataclass
class Step:
    name: str
    target: str = ""
    ok: bool | None = None  # None: not reached
    at_s: float | None = None  # seconds after the fault was injected
    detail: str = ""


@dataclass
class Scorecard:
    fault: str
    folder: str
    started_at: str
    steps: list[Step] = field(default_factory=list)
    orders: dict[str, Any] = field(default_factory=dict)
    targets: dict[str, bool] = field(default_factory=dict)
    load: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(self.targets.values()) and all(s.ok for s in self.steps if s.ok is not None) and \
            all(s.ok is not None for s in self.steps if s.target)

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)


@dataclass
class DrillConfig:
    fault: str = "payment-outage"
    out: Path = Path("var/drills")
    users: int = 12
    pacing_s: float = 2.0
    warmup_s: float = 15.0
    fault_s: float = 45.0
    recover_timeout_s: float = 60.0
    budget_yuan: int = 500
    replicas: int = 1  # > 1: that many service processes behind HAProxy (PostgreSQL needed)
    database: str = "sqlite"  # or "postgres": a scratch database on WAIMAI_DRILL_PG, dropped afterwards
    progress: Callable[[str], None] = print


class Drill:
    def __init__(self, cfg: DrillConfig) -> None:
        if cfg.fault not in FAULTS:
            raise ValueError(f"unknown fault {cfg.fault!r}; known: {', '.join(sorted(FAULTS))}")
        if cfg.replicas > 1 and cfg.database != "postgres":
            raise ValueError("several replicas share one database: use --database postgres")
        if FAULTS[cfg.fault].min_replicas > cfg.replicas:
            raise ValueError(f"{cfg.fault} needs --replicas {FAULTS[cfg.fault].min_replicas} or more")
        self.cfg = cfg
        self.fault: Fault = FAULTS[cfg.fault]
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        self.folder = (cfg.out / f"{cfg.fault}-{stamp}").resolve()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.stop = threading.Event()
        self.card = Scorecard(fault=cfg.fault, folder=str(self.folder), started_at=dt.datetime.now(dt.UTC).isoformat(),
                              steps=[Step(n, t) for n, t in self.fault.steps])
        self.t0 = 0.0  # injection, wall clock
        self.t1 = 0.0  # removal
        self.marks: list[tuple[float, str]] = []
        self.replicas: list[tuple[int, subprocess.Popen[bytes]]] = []
        self.pg_name: str | None = None

    # --- plumbing --------------------------------------------------------------------------------------

    def say(self, msg: str) -> None:
        self.cfg.progress(msg)

    def _spawn(self, args: list[str], env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
        f = open(self.folder / log, "wb")  # noqa: SIM115 - lives as long as the process
        p = subprocess.Popen(args, env=env, stdout=f, stderr=subprocess.STDOUT, cwd=self.folder,  # noqa: S603
                             start_new_session=True)
        self.procs.append(p)
        return p

    def _wait_http(self, url: str, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            with suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        tails = []
        for log in sorted(self.folder.glob("*.log")):
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()[-5:]
            tails.append(f"--- {log.name}: " + " | ".join(line[:200] for line in lines))
        raise RuntimeError(f"{url} did not become ready in {timeout:.0f} s (logs in {self.folder})\n" + "\n".join(tails))

    def _env(self) -> dict[str, str]:
        w = self.folder
        env = {k: v for k, v in os.environ.items() if not k.startswith("WAIMAI_")}
        env.update({
            "WAIMAI_ENV": "development", "WAIMAI_LOG_JSON": "true", "WAIMAI_LOG_LEVEL": "INFO",
            "WAIMAI_DATABASE_URL": self.db_url, "WAIMAI_METRICS_URL": f"sqlite:///{w / 'metrics.db'}",
            "WAIMAI_LOG_FILE": str(w / "waimai.jsonl"), "WAIMAI_GATEWAY_URL": self.gateway,
            "WAIMAI_PUBLIC_URL": self.base, "WAIMAI_PORT": str(self.port), "WAIMAI_HOST": "127.0.0.1",
            "WAIMAI_SAMPLE_INTERVAL_S": "1", "WAIMAI_ALERTING_CONFIG_FILE": str(w / "alerting.yml"),
            "WAIMAI_COD_RECOVERY_S": "10", "WAIMAI_CHAOS": "true", "WAIMAI_BACKUP_DIR": str(w / "backups"),
            "WAIMAI_SMS_PROVIDER_URL": self.sms, "WAIMAI_NOTICE_SMS_URL": self.sms,
            "WAIMAI_NOTICE_SMS_KEY_ID": SMS_KEY, "WAIMAI_NOTICE_SMS_KEY_SECRET": SMS_SECRET,
            "WAIMAI_NOTICE_SMS_TEMPLATES": json.dumps({"zh_CN": "SMS_DRILL_ZH", "en": "SMS_DRILL_EN"}),
            "PYTHONUNBUFFERED": "1",
            # the processes run the same code as this one (not whatever copy the environment would import)
            "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                           *filter(None, [os.environ.get("PYTHONPATH")])])})
        if self.fault.rails:
            env.update({"WAIMAI_PAYMENT_RAILS": "wechat,alipay", "WAIMAI_PAYMENTS_SANDBOX_DIR": str(w / "sandbox"),
                        "WAIMAI_WECHATPAY_URL": self.rail_urls["wechat"],
                        "WAIMAI_ALIPAY_URL": f"{self.rail_urls['alipay']}/gateway.do"})
        if self.fault.platform:
            env["WAIMAI_PLATFORMS"] = json.dumps({"meituan": {"app_id": MT_APP, "secret": MT_SECRET,
                                                              "api_base": f"{self.meituan}/api/v1"}})
        return env

    def _alerting_config(self) -> None:
        from waimai.firewall.alerting.service import DEFAULT_CONFIG

        cfg = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
        cfg["receivers"] = {"ops": [{"kind": "dingtalk", "config": {
            "name": "drill-dingtalk", "base_url": self.dingtalk, "access_token": DT_TOKEN, "secret": DT_SECRET}}]}
        (self.folder / "alerting.yml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")

    def _prepare_db(self) -> None:
        from waimai.core.database import Database
        from waimai.core.migrate import upgrade
        from waimai.seed import seed_demo

        db = Database(self.db_url)
        upgrade(db.engine)
        with uow.unit_of_work(db) as s:
            seed_demo(s)
            if self.fault.platform:
                from waimai.platform.integrations.models import PlatformShop

                s.add(PlatformShop(platform="meituan", external_shop_id="1001", merchant_id=1))
        db.dispose()

    def login(self, phone: str) -> dict[str, str]:
        r = httpx.post(f"{self.base}/api/v1/auth/login", json={"phone": phone, "password": PASSWORD}, timeout=10)
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    # --- the bots: the kitchen cooks, the rider rides ----------------------------------------------------

    def _bots(self) -> None:
        c = httpx.Client(base_url=self.base, timeout=5)
        ops, rider = self.login(OPS), self.login(RIDER)
        while not self.stop.is_set():
            with suppress(httpx.HTTPError, KeyError, ValueError):
                for st, action in (("cod_confirmed", "accept"), ("paid", "accept"), ("accepted", "preparing"),
                                   ("preparing", "ready")):
                    for o in c.get(f"/api/v1/orders?status={st}&limit=50", headers=ops).json():
                        c.post(f"/api/v1/orders/{o['id']}/{action}", headers=ops)
                for o in c.get("/api/v1/orders?limit=50", headers=rider).json():
                    if o["status"] == "ready":
                        c.post(f"/api/v1/orders/{o['id']}/pickup", headers=rider)
                    elif o["status"] == "picked_up":
                        code = c.get(f"/api/v1/orders/{o['id']}", headers=ops).json().get("proof_code")
                        c.post(f"/api/v1/orders/{o['id']}/deliver", json={"proof_code": code}, headers=rider)
            self.stop.wait(1.0)
        c.close()

    # --- the story ---------------------------------------------------------------------------------------

    def run(self) -> Scorecard:
        require("locust", "drill", "The lunch-rush drill (Locust drives the rush)")
        from waimai.firewall.alerting.channels.standins import (
            create_aliyun_sms_standin,
            create_dingtalk_standin,
        )

        self.port, gw_port = free_port(), free_port()  # with replicas, self.port is the load balancer's
        self.base, self.gateway = f"http://127.0.0.1:{self.port}", f"http://127.0.0.1:{gw_port}"
        self.rail_urls = {n: f"http://127.0.0.1:{free_port()}" for n in ("wechat", "alipay")} if self.fault.rails \
            else {}
        dt_app = create_dingtalk_standin(access_token=DT_TOKEN, secret=DT_SECRET)
        sms_app = create_aliyun_sms_standin(access_keys={SMS_KEY: SMS_SECRET}, sign_names=["外卖"],
                                            templates={"SMS_DRILL_ZH": ["component", "status", "eta"],
                                                       "SMS_DRILL_EN": ["component", "status", "eta"]},
                                            per_number_limit=None)
        from waimai.platform.integrations.standins import create_meituan_standin

        mt_app = create_meituan_standin(app_id=MT_APP, secret=MT_SECRET)
        with serve_in_thread(dt_app, free_port()) as self.dingtalk, serve_in_thread(sms_app, free_port()) as self.sms, \
                serve_in_thread(mt_app, free_port()) as self.meituan:
            try:
                self._run()
            finally:
                self.stop.set()
                for p in reversed(self.procs):
                    with suppress(ProcessLookupError):
                        os.killpg(p.pid, signal.SIGTERM)
                for p in self.procs:
                    try:
                        p.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        os.killpg(p.pid, signal.SIGKILL)
                self._write()
                self._drop_pg()
        return self.card

    # --- the database and the replicas ------------------------------------------------------------------

    def _make_db(self) -> None:
        if self.cfg.database != "postgres":
            self.db_url = f"sqlite:///{self.folder / 'waimai.db'}"
            return
        from sqlalchemy import create_engine, text

        admin = os.environ.get("WAIMAI_DRILL_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
        self.pg_name = "waimai_drill_" + self.folder.name.replace("-", "_")[-40:]
        eng = create_engine(admin, isolation_level="AUTOCOMMIT")
        try:
            with eng.connect() as c:
                c.execute(text(f'CREATE DATABASE "{self.pg_name}"'))
        except Exception as exc:  # noqa: BLE001 - no server, no rights: say so plainly
            raise RuntimeError(f"cannot create a scratch PostgreSQL database on {admin.split('@')[-1]}: "
                               f"{exc.__class__.__name__}") from None
        finally:
            eng.dispose()
        self.db_url = admin.rsplit("/", 1)[0] + "/" + self.pg_name
        self.pg_admin = admin

    def _drop_pg(self) -> None:
        if self.pg_name is None:
            return
        from sqlalchemy import create_engine, text

        eng = create_engine(self.pg_admin, isolation_level="AUTOCOMMIT")
        with suppress(Exception), eng.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)'))
        eng.dispose()

    def start_replica(self, i: int, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
        p = self._spawn([*PY, "serve"], {**env, "WAIMAI_PORT": str(port),
                                         "WAIMAI_LOG_FILE": str(self.folder / f"waimai-{i}.jsonl")},
                        f"service-{i}.log")
        if i < len(self.replicas):
            self.replicas[i] = (port, p)
        else:
            self.replicas.append((port, p))
        return p

    def _haproxy(self) -> None:
        import shutil

        binary = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
        if binary is None:
            raise RuntimeError("several replicas need HAProxy in front (apt-get install haproxy)")
        servers = "\n".join(f"    server app{i} 127.0.0.1:{port} check" for i, (port, _) in enumerate(self.replicas))
        cfg = (f"global\n    maxconn 4096\ndefaults\n    mode http\n    timeout connect 2s\n    timeout client 60s\n"
               f"    timeout server 60s\n    timeout tunnel 1h\n    retries 3\n    retry-on conn-failure\n"
               f"    option redispatch 1\nfrontend waimai\n    bind 127.0.0.1:{self.port}\n"
               f"    default_backend app\nbackend app\n    balance leastconn\n    option httpchk\n"
               f"    http-check send meth GET uri /readyz\n    http-check expect status 200\n"
               f"    default-server inter 1s fastinter 500ms downinter 1s fall 2 rise 2\n{servers}\n")
        (self.folder / "haproxy.cfg").write_text(cfg)
        self._spawn([binary, "-f", str(self.folder / "haproxy.cfg")], dict(os.environ), "haproxy.log")

    def leader(self, role: str) -> int | None:
        """Index of the replica that leads `role` now (None if nobody answers as leader)."""
        for i, (port, p) in enumerate(self.replicas):
            if p.poll() is not None:
                continue
            with suppress(httpx.HTTPError, KeyError, ValueError):
                roles = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).json()["roles"]
                if roles.get(role, {}).get("leader"):
                    return i
        return None

    def _run(self) -> None:
        cfg = self.cfg
        self.say(f"drill {cfg.fault}: folder {self.folder}")
        self._alerting_config()
        self._make_db()
        self._prepare_db()
        env = self._env()
        self.env = env
        self._spawn([*PY, "fake-gateway", "--port", self.gateway.rsplit(":", 1)[1], "--auto-confirm"], env,
                    "gateway.log")
        for name, url in self.rail_urls.items():
            self._spawn([*PY, f"fake-{'wechatpay' if name == 'wechat' else name}", "--port", url.rsplit(":", 1)[1],
                         "--auto-confirm"], env, f"{name}.log")
            self._wait_http(f"{url}/healthz")
        if cfg.replicas == 1:
            self.start_replica(0, self.port, env)
        else:
            for i in range(cfg.replicas):
                self.start_replica(i, free_port(), env)
            for port, _p in self.replicas:
                self._wait_http(f"http://127.0.0.1:{port}/readyz", timeout=120)
            self._haproxy()
        self._wait_http(f"{self.gateway}/healthz")
        self._wait_http(f"{self.base}/readyz", timeout=120)
        self.say(f"service up at {self.base} ({cfg.replicas} replica{'s' if cfg.replicas > 1 else ''}, "
                 f"{cfg.database}); ramping {cfg.users} users")
        self.ops, self.customer = self.login(OPS), self.login(CUSTOMER)
        bots = threading.Thread(target=self._bots, daemon=True)
        bots.start()
        ledger = self.folder / "ledger.jsonl"
        total = cfg.warmup_s + cfg.fault_s + cfg.recover_timeout_s + 30
        locust = self._spawn([sys.executable, "-m", "locust", "-f", str(Path(__file__).with_name("locustfile.py")),
                              "--headless", "-u", str(cfg.users), "-r", str(max(1, cfg.users // 5)), "-t",
                              f"{int(total)}s", "--host", self.base, "--csv", str(self.folder / "locust"),
                              "--csv-full-history", "--only-summary", "--stop-timeout", "5"],
                             {**env, "DRILL_LEDGER": str(ledger), "DRILL_PACING_S": str(cfg.pacing_s),
                              "DRILL_OPEN_CASHIER": "1" if self.fault.rails else ""}, "locust.log")
        time.sleep(cfg.warmup_s)
        self.steady = self.fault.steady(self)
        self.say(f"steady state: {'ok' if self.steady else 'NOT ok'}; injecting {cfg.fault}")
        self.t0 = time.time()
        self.marks.append((self.t0, f"{cfg.fault} injected"))
        try:
            self.fault.inject(self)
        except httpx.HTTPError as exc:
            raise RuntimeError(f"could not inject {cfg.fault}: {exc}") from None
        self._watch(until=self.t0 + cfg.fault_s, phase="fault")
        try:
            self.fault.remove(self)
        except httpx.HTTPError as exc:
            raise RuntimeError(f"could not remove {cfg.fault}: {exc} — heal it by hand") from None
        self.t1 = time.time()
        self.marks.append((self.t1, "fault removed"))
        self.say("fault removed; waiting for recovery")
        self._mark("fault removed", True, self.t1, "")
        self._watch(until=self.t1 + cfg.recover_timeout_s, phase="recovery")
        with suppress(ProcessLookupError):
            os.killpg(locust.pid, signal.SIGINT)
        with suppress(subprocess.TimeoutExpired):
            locust.wait(timeout=20)
        self.stop.set()
        self._close_incident()
        self._ledger(ledger)
        self._score()

    def _mark(self, name: str, ok: bool, at: float, detail: str) -> None:
        try:
            s = self.card.step(name)
        except StopIteration:
            return
        if s.ok is None:
            s.ok, s.at_s, s.detail = ok, round(at - self.t0, 1), detail
            self.say(f"  {'✓' if ok else '✗'} {name}: {s.at_s:+.1f} s {detail}")

    def _watch(self, *, until: float, phase: str) -> None:
        c = httpx.Client(base_url=self.base, timeout=5)
        while time.time() < until:
            with suppress(httpx.HTTPError, KeyError, ValueError, IndexError):
                self.fault.observe(self, c, phase)
            if phase == "recovery" and all(s.ok is not None for s in self.card.steps
                                           if s.name in self.fault.recovery_steps):
                break
            time.sleep(0.5)
        c.close()

    def incident(self, c: httpx.Client) -> dict[str, Any] | None:
        rows = [i for i in c.get("/api/v1/incidents?state=all&limit=20", headers=self.ops).json()
                if dt.datetime.fromisoformat(i["detected_at"]).timestamp() >= self.t0 - 1]
        return min(rows, key=lambda i: i["id"]) if rows else None

    def _close_incident(self) -> None:
        c = httpx.Client(base_url=self.base, timeout=60)
        try:
            inc = self.incident(c)
            if inc is None:
                return
            iid = inc["id"]
            if inc["status"] != "resolved":
                c.post(f"/api/v1/incidents/{iid}/updates", headers=self.ops,
                       json={"status": "resolved", "text_zh": "演练结束，服务已恢复。", "text_en": "Drill over; service restored."})
            r = c.post(f"/api/v1/incidents/{iid}/compensation", headers=self.ops,
                       json={"budget_fen": self.cfg.budget_yuan * 100, "confirm": True})
            if r.status_code == 200:
                res = r.json()
                self._mark("compensation issued", True, time.time(),
                           f"{res['created']} coupons, ¥{res['cost_fen'] / 100:.2f} of ¥{self.cfg.budget_yuan}")
            rep = c.get(f"/api/v1/incidents/{iid}/report.html", headers=self.ops)
            md = c.get(f"/api/v1/incidents/{iid}/report.md", headers=self.ops)
            if rep.status_code == 200:
                (self.folder / "incident-report.html").write_text(rep.text, encoding="utf-8")
                (self.folder / "incident-report.md").write_text(md.text, encoding="utf-8")
                self._mark("root-cause report written", True, time.time(), "incident-report.html")
            self.incident_detail = c.get(f"/api/v1/incidents/{iid}", headers=self.ops).json()
        finally:
            c.close()

    def _ledger(self, ledger: Path) -> None:
        entries = [json.loads(line) for line in ledger.read_text(encoding="utf-8").splitlines() if line.strip()] \
            if ledger.exists() else []
        from sqlalchemy import create_engine, text

        eng = create_engine(self.db_url)
        counts: dict[str, int] = {}
        with eng.connect() as con:
            for (note,) in con.execute(text("SELECT note FROM orders WHERE note LIKE 'drill:%'")):
                counts[note[6:]] = counts.get(note[6:], 0) + 1
        eng.dispose()
        acked = [e for e in entries if e.get("acked")]
        lost = [e["attempt"] for e in acked if counts.get(e["attempt"], 0) == 0]
        dup = [a for a, n in counts.items() if n > 1]
        during = [e for e in entries if self.t0 <= e["start"] <= self.t1]
        done = [e for e in during if e.get("outcome") == "placed"]
        self.card.orders = {
            "attempted": len(entries), "acknowledged": len(acked), "found": sum(1 for e in acked if counts.get(
                e["attempt"], 0) >= 1), "lost": len(lost), "duplicated": len(dup),
            "unacknowledged_but_placed": sum(1 for a in counts if a not in {e["attempt"] for e in acked}),
            "attempted_during_fault": len(during), "completed_during_fault": len(done),
            "completed_during_fault_pct": round(100 * len(done) / len(during), 2) if during else None,
            "by_cod_during_fault": sum(1 for e in done if e.get("method") == "cod"),
            "refused": {k: sum(1 for e in entries if e.get("outcome") == "refused" and e.get("error") == k)
                        for k in {e.get("error") for e in entries if e.get("outcome") == "refused"}}}

    def _score(self) -> None:
        self.card.targets = self.fault.targets(self)
        stats = self.folder / "locust_stats.csv"
        if stats.exists():
            import csv

            rows = list(csv.DictReader(stats.open(encoding="utf-8")))
            self.card.load = {r["Name"]: {"requests": int(r["Request Count"]), "failures": int(r["Failure Count"]),
                                          "rps": round(float(r["Requests/s"]), 2),
                                          "p50_ms": r["50%"], "p95_ms": r["95%"], "p99_ms": r["99%"]}
                              for r in rows}

    def _write(self) -> None:
        from waimai.drill.report import write_report

        (self.folder / "scorecard.json").write_text(json.dumps(asdict(self.card) | {"passed": self.card.passed},
                                                               indent=1, ensure_ascii=False, default=str))
        try:
            write_report(self)
        except Exception as exc:  # noqa: BLE001 - a chart that cannot be drawn must not hide the scorecard
            self.say(f"the report could not be written: {exc!r}")
