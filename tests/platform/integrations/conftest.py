"""Real HTTP: the three stand-in platforms, and a tiny receiver app that uses the adapters as our webhook will."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from tests.servers import free_port, serve
from waimai.platform.integrations.base import (
    ExternalOrder,
    OutboundRequest,
    PayloadInvalid,
    PlatformAdapter,
    SignatureRejected,
)
from waimai.platform.integrations.eleme import ElemeAdapter
from waimai.platform.integrations.http import to_inbound, to_response
from waimai.platform.integrations.jd import JdDaojiaAdapter, OrderDetailRequired
from waimai.platform.integrations.meituan import MeituanAdapter
from waimai.platform.integrations.standins import (
    create_eleme_standin,
    create_jd_standin,
    create_meituan_standin,
)

MT_APP_ID, MT_SECRET = "6001", "mt-consumer-secret"
EL_APP_ID, EL_KEY, EL_SECRET, EL_TOKEN = 78247922, "el-app-key", "el-secret", "el-access-token"
JD_KEY, JD_SECRET, JD_TOKEN = "jd-app-key", "jd-app-secret", "jd-token-0a1b"
PLATFORMS = ("meituan", "eleme", "jd")


@dataclass
class Received:
    orders: list[ExternalOrder] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    bills_to_fetch: list[str] = field(default_factory=list)


def make_receiver(adapters: dict[str, PlatformAdapter], rec: dict[str, Received]) -> FastAPI:
    app = FastAPI()

    @app.api_route("/hooks/{platform}", methods=["GET", "POST"])
    async def hook(platform: str, request: Request) -> Response:
        adapter, got = adapters[platform], rec[platform]
        inbound = await to_inbound(request)
        try:
            adapter.verify(inbound)
            order = adapter.parse(inbound)
        except SignatureRejected as exc:
            got.rejections.append(exc.reason)
            out = adapter.ack(False, str(exc))
        except OrderDetailRequired as exc:  # JD's real message: accept it, then fetch the order
            got.bills_to_fetch.append(exc.bill_id)
            out = adapter.ack(True, "ok")
        except PayloadInvalid as exc:
            got.invalid.append(str(exc))
            out = adapter.ack(False, str(exc))
        else:
            got.orders.append(order)
            out = adapter.ack(True, "ok")
        return to_response(out)

    return app


@dataclass
class Stack:
    hook_base: str
    standin: dict[str, str]
    adapters: dict[str, Any]
    received: dict[str, Received]
    http: httpx.Client

    def webhook(self, platform: str) -> str:
        return f"{self.hook_base}/hooks/{platform}"

    def push(self, platform: str, **spec: Any) -> dict[str, Any]:
        spec.setdefault("webhook_url", self.webhook(platform))
        spec.setdefault("items", [{"name": "宫保鸡丁", "sku": "GB01", "quantity": 2, "price": "18.80"},
                                  {"name": "米饭", "sku": "RICE", "quantity": 1, "price": "2"}])
        r = self.http.post(f"{self.standin[platform]}/admin/push_order", json=spec)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def send(self, out: OutboundRequest, timeout: float = 5) -> httpx.Response:
        return self.http.request(out.method, out.url, headers=dict(out.headers), content=out.body, timeout=timeout)

    def state(self, platform: str) -> dict[str, Any]:
        return self.http.get(f"{self.standin[platform]}/admin/state").json()  # type: ignore[no-any-return]

    def configure(self, platform: str, **cfg: Any) -> None:
        r = self.http.put(f"{self.standin[platform]}/admin/config", json=cfg)
        assert r.status_code == 200, r.text


def build_adapters(hook_base: str, standin: dict[str, str], **overrides: str) -> dict[str, Any]:
    return {
        "meituan": MeituanAdapter(app_id=MT_APP_ID, secret=overrides.get("meituan", MT_SECRET),
                                  push_url=f"{hook_base}/hooks/meituan", api_base=f"{standin['meituan']}/api/v1"),
        "eleme": ElemeAdapter(app_key=EL_KEY, secret=overrides.get("eleme", EL_SECRET), app_id=EL_APP_ID,
                              access_token=EL_TOKEN, api_url=f"{standin['eleme']}/api/v1/"),
        "jd": JdDaojiaAdapter(app_key=JD_KEY, secret=overrides.get("jd", JD_SECRET), token=JD_TOKEN,
                              api_base=f"{standin['jd']}/djapi"),
    }


def serve_standins(es: ExitStack) -> dict[str, str]:
    """The three platforms' stand-ins over real HTTP for as long as `es` lives: platform -> base URL."""
    return {
        "meituan": es.enter_context(serve(create_meituan_standin(app_id=MT_APP_ID, secret=MT_SECRET))),
        "eleme": es.enter_context(serve(create_eleme_standin(app_id=EL_APP_ID, app_key=EL_KEY, secret=EL_SECRET,
                                                             access_token=EL_TOKEN))),
        "jd": es.enter_context(serve(create_jd_standin(app_key=JD_KEY, secret=JD_SECRET, token=JD_TOKEN))),
    }


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    hook_port = free_port()
    hook_base = f"http://127.0.0.1:{hook_port}"
    with ExitStack() as es:
        standin = serve_standins(es)
        adapters = build_adapters(hook_base, standin)
        received = {p: Received() for p in PLATFORMS}
        es.enter_context(serve(make_receiver(adapters, received), hook_port))
        with httpx.Client(timeout=10) as http:
            yield Stack(hook_base, standin, adapters, received, http)
