"""Stand-in providers served over real HTTP (uvicorn in threads) and SMTP (aiosmtpd), one per provider,
plus a clock the tests move by hand: the senders and the stand-ins read the same clock."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import stamina

from tests.servers import serve
from waimai.firewall.alerting.channels import standins
from waimai.firewall.alerting.channels.base import AlertMessage
from waimai.firewall.alerting.channels.standins import StandinState


class FakeClock:
    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def reset(self) -> None:
        self.t = time.time()


WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
WHSEC_FORGED = "whsec_" + base64.b64encode(b"fedcba9876543210fedcba9876543210").decode()
PD_KEY = "R0123456789abcdef0123456789abcde"
SLACK_PATH = "T0001/B0001/XXXXXXXXXXXXXXXXXXXXXXXX"
PHONE = "13812345678"
PHONE_2 = "13900001111"


@dataclass
class Harness:
    kind: str
    state: StandinState
    make: Callable[[bool], dict[str, Any]]
    secrets: list[str]
    recipients: list[str] | None = None
    text: Callable[[dict[str, Any]], str] = field(
        default=lambda a: json.dumps(a.get("body"), ensure_ascii=False))

    def config(self, forged: bool = False) -> dict[str, Any]:
        cfg = self.make(forged)
        cfg.setdefault("retry", {"attempts": 4, "wait_initial_s": 0.01, "wait_max_s": 0.05, "wait_jitter_s": 0.01})
        return cfg


@pytest.fixture(scope="session")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def harnesses(clock: FakeClock) -> Iterator[dict[str, Harness]]:
    apps = {
        "dingtalk": standins.create_dingtalk_standin(access_token="ding-token", secret="SECding-secret", clock=clock),
        "wecom": standins.create_wecom_standin(key="wecom-key-0001", clock=clock),
        "feishu": standins.create_feishu_standin(token="feishu-hook-0001", secret="feishu-secret", clock=clock),
        "slack": standins.create_slack_standin(webhook_path=SLACK_PATH, clock=clock),
        "pagerduty": standins.create_pagerduty_standin(routing_keys=[PD_KEY], clock=clock),
        "webhook": standins.create_webhook_standin(secret=WHSEC, clock=clock),
        "sms": standins.create_aliyun_sms_standin(
            access_keys={"LTAIstandin": "aliyun-secret"}, sign_names=["校园外卖"],
            templates={"SMS_465000001": ["severity", "status", "title"]}, clock=clock),
    }
    from contextlib import ExitStack

    with ExitStack() as stack:
        url = {k: stack.enter_context(serve(app)) for k, app in apps.items()}
        smtp = stack.enter_context(standins.SmtpStandin(username="alerts", password="smtp-pass", clock=clock))
        st = {k: app.state.standin for k, app in apps.items()}
        h = {
            "dingtalk": Harness("dingtalk", st["dingtalk"], lambda f: {
                "base_url": url["dingtalk"], "access_token": "ding-token",
                "secret": "SECwrong-secret" if f else "SECding-secret"},
                ["ding-token", "SECding-secret", "SECwrong-secret"], recipients=[PHONE_2]),
            "wecom": Harness("wecom", st["wecom"], lambda f: {
                "base_url": url["wecom"], "key": "wecom-key-9999" if f else "wecom-key-0001"},
                ["wecom-key-0001", "wecom-key-9999"], recipients=[PHONE_2]),
            "feishu": Harness("feishu", st["feishu"], lambda f: {
                "base_url": url["feishu"], "token": "feishu-hook-0001",
                "secret": "feishu-wrong" if f else "feishu-secret"},
                ["feishu-hook-0001", "feishu-secret", "feishu-wrong"]),
            "slack": Harness("slack", st["slack"], lambda f: {
                "base_url": url["slack"], "webhook_path": "T0001/B0001/forgedforgedforged" if f else SLACK_PATH},
                [SLACK_PATH, "forgedforgedforged"]),
            "pagerduty": Harness("pagerduty", st["pagerduty"], lambda f: {
                "base_url": url["pagerduty"], "routing_key": "Rforgedforgedforgedforgedforged0" if f else PD_KEY},
                [PD_KEY, "Rforgedforgedforgedforgedforged0"]),
            "webhook": Harness("webhook", st["webhook"], lambda f: {
                "url": url["webhook"] + "/hooks/alerts", "secret": WHSEC_FORGED if f else WHSEC},
                [WHSEC, WHSEC_FORGED, WHSEC.removeprefix("whsec_")]),
            "email": Harness("email", smtp.state, lambda f: {
                "host": "127.0.0.1", "port": smtp.port, "starttls": False, "username": "alerts",
                "password": "forged-pass" if f else "smtp-pass", "sender": "alerts@waimai.test",
                "to": ["oncall@waimai.test"]},
                ["smtp-pass", "forged-pass"], recipients=["oncall@waimai.test", "lead@waimai.test"],
                text=lambda a: a["headers"]["Subject"] + "\n" + a["text"]),
            "sms": Harness("sms", st["sms"], lambda f: {
                "base_url": url["sms"], "access_key_id": "LTAIstandin",
                "access_key_secret": "forged-secret" if f else "aliyun-secret", "sign_name": "校园外卖",
                "template_code": "SMS_465000001"},
                ["aliyun-secret", "forged-secret"], recipients=[PHONE],
                text=lambda a: json.dumps(a["template_param"], ensure_ascii=False)),
        }
        yield h


@pytest.fixture(autouse=True)
def _fresh(request: pytest.FixtureRequest) -> Iterator[None]:
    """No backoff sleeps (stamina's test mode keeps our attempt counts), fresh clock and stand-ins."""
    if "harnesses" in request.fixturenames:
        clock: FakeClock = request.getfixturevalue("clock")
        clock.reset()
        for h in request.getfixturevalue("harnesses").values():
            h.state.reset()
    with stamina.set_testing(True, attempts=10, cap=True):
        yield


def alert(key: str = "order-api-5xx", *, title: str = "Order API 5xx rate above 5%", severity: str = "P1",
          status: str = "firing", **kw: Any) -> AlertMessage:
    defaults: dict[str, Any] = {
        "body_markdown": "**5xx ratio** 7.3% over 5 min on `POST /api/orders`.\n\n- canteen: east",
        "labels": {"service": "order-api", "env": "prod"},
        "ack_url": f"https://waimai.test/alerts/{key}/ack", "runbook_url": "https://waimai.test/runbooks/order-api",
        "incident_url": f"https://waimai.test/incidents/{key}"}
    defaults.update(kw)
    return AlertMessage(title=title, severity=severity, status=status, dedup_key=key,  # type: ignore[arg-type]
                        **defaults)
