"""`waimai fake-gateway`: a stand-in payment gateway speaking Waimai Pay v1 over real HTTP.

It checks every request's signature, keeps payments in memory, serves a cashier page where a
person (or a test) confirms the payment, and sends signed callbacks with retries. Drills break it
at run time through `PUT /admin/config` (latency, failure rate, callback behaviour).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import json
import random
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

MAX_SKEW_S = 300


class GatewayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(default=0, ge=0, le=60_000)
    failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    # auto_confirm: every payment succeeds at once, as if the customer paid instantly (load, drills).
    auto_confirm: bool = False
    # decline_rate: share of confirmed payments that the bank declines.
    decline_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    callbacks_enabled: bool = True


@dataclass
class FakePayment:
    payment_id: str
    out_trade_no: str
    amount_fen: int
    description: str
    notify_url: str
    return_url: str
    status: str = "pending"
    refunded_fen: int = 0
    created: float = field(default_factory=time.time)


def create_gateway_app(*, app_id: str, secret: str, seed: int | None = None) -> FastAPI:
    app = FastAPI(title="Waimai fake payment gateway", docs_url=None, redoc_url=None)
    state: dict[str, Any] = {"config": GatewayConfig(), "payments": {}, "by_trade_no": {}, "nonces": {},
                             "callbacks": [], "refunds": {}, "rng": random.Random(seed)}
    app.state.gw = state

    def verify(request: Request, body: bytes) -> None:
        h = request.headers
        if h.get("x-pay-app-id") != app_id:
            raise HTTPException(401, "unknown app id")
        ts, nonce, sig = h.get("x-pay-timestamp", ""), h.get("x-pay-nonce", ""), h.get("x-pay-signature", "")
        try:
            skew = abs(time.time() - int(ts))
        except ValueError:
            raise HTTPException(401, "bad timestamp") from None
        if skew > MAX_SKEW_S:
            raise HTTPException(401, "stale request")
        # Independent of the client's code on purpose: the stand-in checks the published scheme.
        canonical = f"{request.method}\n{request.url.path}\n{ts}\n{nonce}\n{hashlib.sha256(body).hexdigest()}"
        expected = hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sig):
            raise HTTPException(401, "bad signature")
        seen = state["nonces"]
        if nonce in seen:
            raise HTTPException(401, "replayed nonce")
        seen[nonce] = time.time()
        if len(seen) > 100_000:
            cutoff = time.time() - MAX_SKEW_S
            for k in [k for k, v in seen.items() if v < cutoff]:
                del seen[k]

    async def chaos() -> None:
        cfg: GatewayConfig = state["config"]
        if cfg.latency_ms:
            await asyncio.sleep(cfg.latency_ms / 1000)
        if cfg.failure_rate and state["rng"].random() < cfg.failure_rate:
            raise HTTPException(503, "gateway failure (injected)")

    async def send_callback(p: FakePayment) -> None:
        if not state["config"].callbacks_enabled:
            return
        body = json.dumps({"payment_id": p.payment_id, "out_trade_no": p.out_trade_no, "status": p.status,
                           "amount_fen": p.amount_fen}, separators=(",", ":")).encode()
        event_id = f"evt_{secrets.token_hex(8)}"
        delay = 0.2
        async with httpx.AsyncClient(timeout=5) as client:
            for _ in range(6):
                ts = str(int(time.time()))
                sig = hmac.new(secret.encode(), f"{ts}.{event_id}.".encode() + body, hashlib.sha256).hexdigest()
                try:
                    r = await client.post(p.notify_url, content=body, headers={
                        "content-type": "application/json", "x-pay-timestamp": ts, "x-pay-event-id": event_id,
                        "x-pay-signature": sig})
                    state["callbacks"].append({"event_id": event_id, "payment_id": p.payment_id,
                                               "status": r.status_code})
                    if r.status_code < 300:
                        return
                except httpx.HTTPError:
                    state["callbacks"].append({"event_id": event_id, "payment_id": p.payment_id, "status": 0})
                await asyncio.sleep(delay)
                delay *= 2

    def settle(p: FakePayment) -> None:
        declined = state["rng"].random() < state["config"].decline_rate
        p.status = "failed" if declined else "succeeded"
        asyncio.get_running_loop().create_task(send_callback(p))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        await chaos()
        return {"status": "ok"}

    @app.post("/v1/payments")
    async def create_payment(request: Request) -> JSONResponse:
        body = await request.body()
        verify(request, body)
        await chaos()
        try:
            data = json.loads(body)
            trade_no, amount = str(data["out_trade_no"]), int(data["amount_fen"])
            notify, ret = str(data["notify_url"]), str(data.get("return_url", ""))
        except (ValueError, KeyError, TypeError):
            raise HTTPException(400, "malformed request") from None
        if amount <= 0:
            raise HTTPException(400, "amount must be positive")
        existing = state["by_trade_no"].get(trade_no)
        if existing is not None:  # idempotent on the merchant's trade number
            p = state["payments"][existing]
            if p.amount_fen != amount:
                raise HTTPException(409, "out_trade_no reused with another amount")
        else:
            p = FakePayment(payment_id=f"pay_{secrets.token_hex(8)}", out_trade_no=trade_no, amount_fen=amount,
                            description=str(data.get("description", ""))[:100], notify_url=notify, return_url=ret)
            state["payments"][p.payment_id] = p
            state["by_trade_no"][trade_no] = p.payment_id
            if state["config"].auto_confirm:
                settle(p)
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"payment_id": p.payment_id, "status": p.status,
                             "pay_url": f"{base}/pay/{p.payment_id}"})

    @app.get("/v1/payments/{payment_id}")
    async def query(payment_id: str, request: Request) -> dict[str, Any]:
        verify(request, b"")
        await chaos()
        p = state["payments"].get(payment_id)
        if p is None:
            raise HTTPException(404, "no such payment")
        return asdict(p)

    @app.post("/v1/refunds")
    async def refund(request: Request) -> dict[str, Any]:
        body = await request.body()
        verify(request, body)
        await chaos()
        data = json.loads(body)
        p = state["payments"].get(str(data.get("payment_id")))
        if p is None:
            raise HTTPException(404, "no such payment")
        refund_no = str(data.get("out_refund_no"))
        if refund_no in state["refunds"]:
            return state["refunds"][refund_no]  # type: ignore[no-any-return]
        amount = int(data.get("amount_fen", 0))
        if p.status != "succeeded" or amount <= 0 or p.refunded_fen + amount > p.amount_fen:
            raise HTTPException(400, "refund not possible")
        p.refunded_fen += amount
        result = {"refund_id": f"ref_{secrets.token_hex(8)}", "status": "succeeded", "amount_fen": amount}
        state["refunds"][refund_no] = result
        return result

    @app.get("/pay/{payment_id}", response_class=HTMLResponse)
    async def cashier(payment_id: str) -> str:
        p = state["payments"].get(payment_id)
        if p is None:
            raise HTTPException(404, "no such payment")
        yuan = f"¥{p.amount_fen // 100}.{p.amount_fen % 100:02d}"
        return f"""<!doctype html><html lang="zh-CN"><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>收银台 Cashier</title>
<body style="font-family:system-ui;max-width:420px;margin:2rem auto;padding:1rem">
<h1>模拟收银台 · Test cashier</h1><p>{html.escape(p.description)}</p>
<p style="font-size:2rem;font-variant-numeric:tabular-nums">{yuan}</p><p>状态 Status: {p.status}</p>
<form method="post" action="/pay/{p.payment_id}/confirm">
<button style="font-size:1.2rem;padding:.8rem 2rem;min-height:44px" id="confirm">确认支付 Pay</button></form>
</body></html>"""

    @app.post("/pay/{payment_id}/confirm")
    async def confirm(payment_id: str) -> RedirectResponse:
        p = state["payments"].get(payment_id)
        if p is None:
            raise HTTPException(404, "no such payment")
        await chaos()
        if p.status == "pending":
            settle(p)
        return RedirectResponse(p.return_url or "/", status_code=303)

    @app.get("/admin/config")
    async def get_config() -> GatewayConfig:
        return state["config"]  # type: ignore[no-any-return]

    @app.put("/admin/config")
    async def put_config(cfg: GatewayConfig) -> GatewayConfig:
        state["config"] = cfg
        return cfg

    @app.get("/admin/stats")
    async def stats() -> dict[str, Any]:
        ps = state["payments"].values()
        return {"payments": len(state["payments"]),
                "succeeded": sum(1 for p in ps if p.status == "succeeded"),
                "callbacks": len(state["callbacks"]), "refunds": len(state["refunds"])}

    return app
