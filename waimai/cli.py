"""The `waimai` command: serve, migrate, seed, fake-gateway, user, and the firewall's tools."""

from __future__ import annotations

import os
import subprocess
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from waimai.config import Settings, get_settings
from waimai.core import uow

app = typer.Typer(help="Waimai: campus food delivery with a built-in fault firewall.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
user_app = typer.Typer(help="Manage accounts.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that print figures.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(bench_app, name="bench")
console = Console()


def _settings() -> Settings:
    try:
        return get_settings()
    except ValueError as exc:  # unsafe production defaults and the like
        console.print(f"[red]Configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


def _prepare_sqlite_dir(settings: Settings) -> None:
    path = settings.sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


@app.command()
def migrate() -> None:
    """Bring the database schema to the latest version (safe to run repeatedly)."""
    from waimai.core.database import make_engine
    from waimai.core.migrate import current_revision, upgrade

    s = _settings()
    _prepare_sqlite_dir(s)
    engine = make_engine(s.database_url)
    before = current_revision(engine)
    upgrade(engine)
    console.print(f"schema: {before or 'empty'} → {current_revision(engine)}")
    engine.dispose()


@app.command()
def seed(if_empty: Annotated[bool, typer.Option("--if-empty/--always", help="only on an empty database")] = True
         ) -> None:
    """Create the demo campus (merchants, menus, delivery points, riders, one account per role)."""
    from waimai.core.database import Database
    from waimai.seed import DEMO_ACCOUNTS, DEMO_PASSWORD, is_empty, seed_demo

    s = _settings()
    if s.env == "production":
        console.print("[red]Refusing to seed demo accounts with a known password in production.[/red]")
        raise typer.Exit(2)
    db = Database(s.database_url)
    with uow.unit_of_work(db) as session:
        if not is_empty(session):
            if if_empty:
                console.print("Database already has a campus; not seeding.")
                _print_accounts(DEMO_ACCOUNTS, DEMO_PASSWORD)
                return
        report = seed_demo(session)
    console.print(f"Seeded [bold]{report.campus}[/bold]: {report.merchants} merchants, {report.items} menu items, "
                  f"{report.delivery_points} delivery points, {report.riders} riders.")
    _print_accounts(DEMO_ACCOUNTS, DEMO_PASSWORD)
    db.dispose()


def _print_accounts(accounts: dict, password: str) -> None:  # type: ignore[type-arg]
    t = Table(title="Demo accounts (development only)")
    t.add_column("role")
    t.add_column("phone")
    t.add_column("password")
    for role, (phone, _name) in accounts.items():
        t.add_row(str(role.value), phone, password)
    console.print(t)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
    workers: Annotated[int | None, typer.Option(help="worker processes")] = None,
    with_fake_gateway: Annotated[bool, typer.Option(help="also run the stand-in payment gateway")] = False,
    access_log: Annotated[bool, typer.Option(help="log every request")] = False,
    role: Annotated[str | None, typer.Option(help="roles of this process, comma separated: api, worker, "
                                                  "dispatcher, notifier (default all; WAIMAI_ROLES)")] = None,
) -> None:
    """Serve the web pages and the API, and run the background roles."""
    import uvicorn

    from waimai.core.children import start_child, stop_child

    if role is not None:
        from waimai.core.roles import ordered, parse_roles

        try:
            os.environ["WAIMAI_ROLES"] = ",".join(ordered(parse_roles(role)))  # worker processes read it too
        except ValueError as exc:
            console.print(f"[red]--role:[/red] {exc}")
            raise typer.Exit(2) from None
        get_settings.cache_clear()
    # --host/--port are settings like WAIMAI_HOST/PORT, so the public URL (callbacks, cashier returns)
    # follows them; uvicorn's worker processes read the environment too.
    for name, value in (("WAIMAI_HOST", host), ("WAIMAI_PORT", port)):
        if value is not None:
            os.environ[name] = str(value)
            get_settings.cache_clear()
    if with_fake_gateway:
        _demo_rails()
    s = _settings()
    _prepare_sqlite_dir(s)
    gw: subprocess.Popen[bytes] | None = None
    standins: list[subprocess.Popen[bytes]] = []
    if with_fake_gateway:
        port_gw = s.gateway_url.rsplit(":", 1)[-1].split("/")[0]
        gw = start_child(["fake-gateway", "--port", port_gw])
        console.print(f"fake payment gateway on {s.gateway_url}")
        for name, url in (("wechatpay", s.wechatpay_url), ("alipay", s.alipay_url)):
            if url.startswith("http://127.0.0.1:"):
                port_s = url.removeprefix("http://127.0.0.1:").split("/")[0]
                standins.append(start_child([f"fake-{name}", "--port", port_s]))
                console.print(f"{name} sandbox (stand-in) on {url}")
    n_workers = workers or s.workers
    if n_workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Several processes: prometheus-client keeps per-process files that /metrics adds up.
        import shutil
        from pathlib import Path

        mp = Path("var/prometheus-multiproc").resolve()
        shutil.rmtree(mp, ignore_errors=True)
        mp.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(mp)
    console.print(f"Waimai on http://{host or s.host}:{port or s.port}  roles: {s.roles}"
                  + ("  (API docs at /docs)" if "api" in s.role_set else ""))
    try:
        uvicorn.run("waimai.app:create_app", factory=True, host=host or s.host, port=port or s.port,
                    workers=n_workers, access_log=access_log, log_level="warning",
                    # X-Forwarded-* are believed in the app, from WAIMAI_TRUSTED_PROXIES only (core.proxies),
                    # not by uvicorn's default trust in any local peer.
                    proxy_headers=False,
                    timeout_graceful_shutdown=10)
    finally:
        for proc in (gw, *standins):
            stop_child(proc)


def _demo_rails() -> None:
    """`make run`: with no merchant account configured, WeChat Pay and Alipay run against their stand-ins."""
    if os.environ.get("WAIMAI_PAYMENT_RAILS") is not None or _settings().env == "production":
        return
    os.environ.update({"WAIMAI_PAYMENT_RAILS": "wechat,alipay", "WAIMAI_WECHATPAY_URL": "http://127.0.0.1:8101",
                       "WAIMAI_ALIPAY_URL": "http://127.0.0.1:8102/gateway.do"})
    get_settings.cache_clear()


def _standin(kind: str, port: int, host: str, failure_rate: float, auto_confirm: bool,
             parent_pid: int | None = None) -> None:
    from pathlib import Path

    import uvicorn

    from waimai.core.children import exit_with_parent
    from waimai.platform.payments import sandbox
    from waimai.platform.payments.standins import StandInConfig, create_alipay_app, create_wechatpay_app

    exit_with_parent(parent_pid)
    s = _settings()
    wx, ali = sandbox.ensure(Path(s.payments_sandbox_dir))
    app_ = create_wechatpay_app(wx) if kind == "wechat" else create_alipay_app(ali)
    app_.state.standin["chaos"].config = StandInConfig(failure_rate=failure_rate, auto_confirm=auto_confirm)
    uvicorn.run(app_, host=host, port=port, log_level="warning")


@app.command("fake-wechatpay")
def fake_wechatpay(
    port: Annotated[int, typer.Option(help="port")] = 8101,
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    failure_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="share of calls answered 503")] = 0.0,
    auto_confirm: Annotated[bool, typer.Option(help="settle every payment at once")] = False,
    parent_pid: Annotated[int | None, typer.Option(hidden=True, help="exit when this process is gone")] = None,
) -> None:
    """Run the WeChat Pay API v3 stand-in on the sandbox keys (breakable at run time: PUT /admin/config)."""
    _standin("wechat", port, host, failure_rate, auto_confirm, parent_pid)


@app.command("fake-alipay")
def fake_alipay(
    port: Annotated[int, typer.Option(help="port")] = 8102,
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    failure_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="share of calls answered 503")] = 0.0,
    auto_confirm: Annotated[bool, typer.Option(help="settle every payment at once")] = False,
    parent_pid: Annotated[int | None, typer.Option(hidden=True, help="exit when this process is gone")] = None,
) -> None:
    """Run the Alipay open-platform stand-in on the sandbox keys (breakable at run time: PUT /admin/config)."""
    _standin("alipay", port, host, failure_rate, auto_confirm, parent_pid)


@app.command("fake-push")
def fake_push(
    port: Annotated[int, typer.Option(help="port")] = 8103,
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    parent_pid: Annotated[int | None, typer.Option(hidden=True, help="exit when this process is gone")] = None,
) -> None:
    """Run the Web Push service stand-in (checks VAPID, decrypts RFC 8291 messages; POST /_standin/subscriptions)."""
    import uvicorn

    from waimai.core.children import exit_with_parent
    from waimai.platform.push.standins import create_push_standin

    exit_with_parent(parent_pid)
    uvicorn.run(create_push_standin(), host=host, port=port, log_level="warning")


@app.command("push-keygen")
def push_keygen() -> None:
    """Print a new VAPID key pair: the private key for WAIMAI_VAPID_PRIVATE_KEY, and its public key."""
    from waimai.platform.push.vapid import generate

    private, public = generate()
    console.print(f"WAIMAI_VAPID_PRIVATE_KEY={private}\n# public key (what browsers subscribe with): {public}")


@app.command("fake-gateway")
def fake_gateway(
    port: Annotated[int, typer.Option(help="port")] = 8100,
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    latency_ms: Annotated[int, typer.Option(help="added latency per call")] = 0,
    failure_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="share of calls answered 503")] = 0.0,
    auto_confirm: Annotated[bool, typer.Option(help="settle every payment at once")] = False,
    parent_pid: Annotated[int | None, typer.Option(hidden=True, help="exit when this process is gone")] = None,
) -> None:
    """Run the stand-in payment gateway (signed requests and callbacks; breakable at run time)."""
    import uvicorn

    from waimai.core.children import exit_with_parent
    from waimai.platform.payments.fake_gateway import GatewayConfig, create_gateway_app

    exit_with_parent(parent_pid)

    s = _settings()
    gw = create_gateway_app(app_id=s.gateway_app_id, secret=s.gateway_secret)
    gw.state.gw["config"] = GatewayConfig(latency_ms=latency_ms, failure_rate=failure_rate,
                                          auto_confirm=auto_confirm)
    uvicorn.run(gw, host=host, port=port, log_level="warning")


@user_app.command("create")
def user_create(
    phone: Annotated[str, typer.Option(help="mobile number, digits only")],
    name: Annotated[str, typer.Option(help="display name")],
    role: Annotated[str, typer.Option(help="customer | merchant | rider | support | ops")],
    merchant_id: Annotated[int | None, typer.Option(help="shop for merchant staff")] = None,
    password: Annotated[str | None, typer.Option(help="omit to be prompted", hidden=True)] = None,
) -> None:
    """Create an account (the password is asked for, never echoed)."""
    from pydantic import ValidationError

    from waimai.core.database import Database
    from waimai.core.errors import AppError
    from waimai.platform.accounts.schemas import UserCreate
    from waimai.platform.accounts.service import create_user

    if password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        body = UserCreate(phone=phone, name=name, role=role, password=password,  # type: ignore[arg-type]
                          merchant_id=merchant_id)
    except ValidationError as exc:
        for e in exc.errors():
            console.print(f"[red]{'.'.join(str(x) for x in e['loc'])}: {e['msg']}[/red]")
        raise typer.Exit(2) from None
    db = Database(_settings().database_url)
    try:
        with uow.unit_of_work(db) as session:
            u = create_user(session, phone=body.phone, name=body.name, role=body.role, password=body.password,
                            merchant_id=body.merchant_id)
    except AppError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from None
    console.print(f"created user {u.id} ({u.role})")


@app.command()
def watch(
    target: Annotated[str, typer.Option(help="base URL of the Waimai service to watch")],
    interval: Annotated[float, typer.Option(min=0.5, help="seconds between probe rounds")] = 5.0,
    failures: Annotated[int, typer.Option(min=1, help="failed rounds in a row before the alarm")] = 2,
    listen: Annotated[str, typer.Option(help="host:port for heartbeats from the service")] = "127.0.0.1:9300",
    heartbeat_timeout: Annotated[float, typer.Option(help="seconds of heartbeat silence before the alarm; "
                                                          "0 turns the dead man's switch off")] = 30.0,
    alert_webhook: Annotated[str | None, typer.Option(help="signed webhook (Standard Webhooks) for alarms")] = None,
    alert_secret: Annotated[str | None, typer.Option(help="whsec_… secret for the webhook", hidden=True,
                                                      envvar="WAIMAI_WATCH_WEBHOOK_SECRET")] = None,
    canary_phone: Annotated[str | None, typer.Option(help="test customer for a canary order")] = None,
    canary_password: Annotated[str | None, typer.Option(envvar="WAIMAI_WATCH_CANARY_PASSWORD", hidden=True)] = None,
    canary_merchant: Annotated[int | None, typer.Option(help="test merchant id")] = None,
    canary_item: Annotated[int | None, typer.Option(help="menu item id of the test merchant")] = None,
) -> None:
    """Watch a Waimai service from outside and raise an alarm when it stops answering."""
    import threading

    import uvicorn

    from waimai.firewall.monitoring.watchdog import WatchConfig, Watchdog, heartbeat_app

    cfg = WatchConfig(target=target, interval_s=interval, failures_to_alarm=failures,
                      heartbeat_timeout_s=heartbeat_timeout or None, canary_phone=canary_phone,
                      canary_password=canary_password, canary_merchant_id=canary_merchant,
                      canary_item_id=canary_item)
    dog = Watchdog(cfg, _watch_alert_sender(alert_webhook, alert_secret))
    stop = threading.Event()
    worker = threading.Thread(target=dog.run, args=(stop,), daemon=True)
    worker.start()
    host, _, port = listen.rpartition(":")
    console.print(f"watching {target} every {interval:g} s; heartbeats on http://{listen}/heartbeat")
    try:
        uvicorn.run(heartbeat_app(dog), host=host or "127.0.0.1", port=int(port), log_level="warning")
    finally:
        stop.set()


def _watch_alert_sender(url: str | None, secret: str | None):  # type: ignore[no-untyped-def]
    from waimai.firewall.monitoring.alert_out import webhook_sender

    return webhook_sender(url, secret)


def _wait_port(host: str, port: int, timeout: float = 20.0) -> bool:
    import socket

    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.1)
    return False


def _register_plugins() -> None:
    """Commands that live with their domain (dispatch, detection), registered here."""
    from waimai.firewall.detect.cli import (
        bench_faults_command,
        bench_forecast_command,
        bench_nab_command,
        detect_command,
    )
    from waimai.platform.dispatch.cli import bench_mdrp_command, simulate_command

    app.command("detect", help="Score a timestamp,value CSV for anomalies, causally.")(detect_command)
    bench_app.command("nab", help="Run detectors over the NAB v1.1 corpus and score them.")(bench_nab_command)
    bench_app.command("forecast", help="Rolling-origin forecast evaluation (MASE).")(bench_forecast_command)
    bench_app.command("faults", help="Detectors on campus series with injected faults (rate, delay, false alarms).")(
        bench_faults_command)

    bench_app.command("mdrp", help="Run the dispatcher on Grubhub's MDRP instances and score it.")(
        bench_mdrp_command)
    app.command("simulate", help="Simulate a campus day through the dispatcher.")(simulate_command)
    from waimai.platform.delivery.lunch import lunch_hour_command

    app.command("lunch-hour", help="A simulated lunch hour on a running service, to follow live.")(lunch_hour_command)

    from waimai.firewall.recovery.cli import backup_app

    app.add_typer(backup_app, name="backup")
    from waimai.firewall.incidents.cli import incident_app

    def incident_plugins(ctx: typer.Context) -> None:
        """The report's sections from other domains, composed in one place (waimai/subscribers.py)."""
        from waimai.subscribers import incident_plugins as composed

        ctx.obj = composed()

    app.add_typer(incident_app, name="incident", callback=incident_plugins)
    from waimai.drill.cli import drill_app

    app.add_typer(drill_app, name="drill")
    from waimai.platform.payroll.cli import payroll_app

    def every_table() -> None:
        """Pay queries run outside the app: load every table first, so foreign keys to any of them resolve."""
        import waimai.models  # noqa: F401

    app.add_typer(payroll_app, name="payroll", callback=every_table)


_register_plugins()


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()


if __name__ == "__main__":
    main()
