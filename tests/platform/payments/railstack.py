"""A running Waimai with WeChat Pay and Alipay pointed (by settings only) at their stand-ins, over real HTTP."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from tests.conftest import DEMO_ACCOUNTS, DEMO_PASSWORD, make_settings
from tests.servers import free_port, serve
from waimai.app import create_app
from waimai.platform.accounts.models import Role
from waimai.platform.payments import sandbox
from waimai.platform.payments.standins import create_alipay_app, create_wechatpay_app


@dataclass
class RailStack:
    base: str
    wechat: str
    alipay: str
    http: httpx.Client
    token: str
    app: FastAPI
    sandbox_dir: Path

    def h(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}

    def login(self, role: Role) -> str:
        r = self.http.post(f"{self.base}/api/v1/auth/login",
                           json={"phone": DEMO_ACCOUNTS[role][0], "password": DEMO_PASSWORD})
        return str(r.json()["access_token"])

    def login_as(self, role: str) -> str:
        return self.login(Role(role))

    def place(self) -> dict[str, Any]:
        r = self.http.post(f"{self.base}/api/v1/orders", headers=self.h(**{"Idempotency-Key": uuid.uuid4().hex}),
                           json={"merchant_id": 1, "delivery_point_id": 1, "payment_method": "gateway",
                                 "items": [{"item_id": 5, "quantity": 2}]})
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def pay(self, oid: int, provider: str | None = None, channel: str | None = None, **extra: str) -> httpx.Response:
        params = {k: v for k, v in {"provider": provider, "channel": channel, **extra}.items() if v}
        return self.http.post(f"{self.base}/api/v1/orders/{oid}/pay", params=params, headers=self.h())

    def order(self, oid: int) -> dict[str, Any]:
        return self.http.get(f"{self.base}/api/v1/orders/{oid}", headers=self.h()).json()  # type: ignore[no-any-return]

    def wait_status(self, oid: int, status: str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.time() + timeout
        o = self.order(oid)
        while time.time() < deadline:
            o = self.order(oid)
            if o["status"] == status:
                return o
            time.sleep(0.05)
        raise AssertionError(f"order {oid} stayed {o['status']}, wanted {status}")

    def config(self, which: str, **cfg: object) -> None:
        r = self.http.put(f"{getattr(self, which)}/admin/config", json=cfg)
        assert r.status_code == 200, r.text

    def stats(self, which: str) -> dict[str, Any]:
        return self.http.get(f"{getattr(self, which)}/admin/stats").json()  # type: ignore[no-any-return]


@contextmanager
def rail_stack(db_url: str, tmp_path: Path, **settings_kw: object) -> Iterator[RailStack]:
    wx_port, ali_port, app_port = free_port(), free_port(), free_port()
    sandbox_dir = tmp_path / "payments-sandbox"
    wx, ali = sandbox.ensure(sandbox_dir)
    settings = make_settings(db_url, payment_rails="wechat,alipay", payments_sandbox_dir=str(sandbox_dir),
                             wechatpay_url=f"http://127.0.0.1:{wx_port}",
                             alipay_url=f"http://127.0.0.1:{ali_port}/gateway.do",
                             public_url=f"http://127.0.0.1:{app_port}", **settings_kw)
    app = create_app(settings, background=False)
    with serve(create_wechatpay_app(wx, seed=1), wx_port) as wx_url, \
            serve(create_alipay_app(ali, seed=1), ali_port) as ali_url, serve(app, app_port) as base, \
            httpx.Client(timeout=15) as http:
        s = RailStack(base=base, wechat=wx_url, alipay=ali_url, http=http, token="", app=app,
                      sandbox_dir=sandbox_dir)
        s.token = s.login(Role.customer)
        yield s
