"""`waimai fake-wechatpay` and `waimai fake-alipay`: local stand-ins for the parts of each provider's
published API that Waimai calls, over real HTTP, written from the providers' documents and not from
our client code.

WeChat Pay API v3 (pay.weixin.qq.com/docs/merchant): every request's `Authorization:
WECHATPAY2-SHA256-RSA2048 mchid=..,nonce_str=..,signature=..,timestamp=..,serial_no=..` is checked
(SHA256withRSA over `METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n` with the merchant certificate named by
serial_no; five minutes of skew; a nonce once); answers and callbacks are signed with the platform key
(`TIMESTAMP\\nNONCE\\nBODY\\n`, headers `Wechatpay-*`); callback resources are AEAD_AES_256_GCM under the API
v3 key. Paths: /v3/pay/transactions/{native,h5,jsapi}, /v3/pay/transactions/out-trade-no/{no}[/close],
/v3/refund/domestic/refunds, /v3/bill/tradebill, /v3/billdownload/file, /v3/certificates.

Alipay (opendocs.alipay.com): one gateway, `gateway.do`; every call is `method` plus common parameters
signed RSA2 over the sorted `k=v` string without `sign`/`sign_type`, checked with the application's
public key; answers are `{"<method>_response": {...}, "sign": ".."}` with the signature over the exact
response object text; notifications are form posts signed the same way with Alipay's key. Methods:
alipay.trade.wap.pay / page.pay (the cashier), .query, .close, .refund,
alipay.data.dataservice.bill.downloadurl.query.

Both have a cashier page a person (or a browser test) pays on, send callbacks with retries, serve the
day's bill, and are broken at run time with `PUT /admin/config` (latency, failure rate, hang, callbacks
off, auto-confirm). `POST /admin/pay-silently` settles a trade without any callback (a lost callback),
and `POST /admin/plant-bill-row` adds a bill line we never saw, for reconciliation tests.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import gzip
import hashlib
import html
import io
import json
import random
import secrets
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlencode
from zoneinfo import ZoneInfo

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from waimai.platform.payments.sandbox import AlipaySandbox, WechatSandbox

SHANGHAI = ZoneInfo("Asia/Shanghai")
MAX_SKEW_S = 300


class StandInConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(default=0, ge=0, le=120_000)
    failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)  # share of API calls answered 503
    auto_confirm: bool = False  # every payment is paid at once (drills, load)
    callbacks_enabled: bool = True


@dataclass
class Trade:
    out_trade_no: str
    amount_fen: int
    description: str
    notify_url: str
    trade_no: str
    channel: str
    return_url: str = ""
    status: str = "NOTPAY"  # WeChat trade_state / Alipay trade_status, per stand-in
    paid_at: dt.datetime | None = None
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    payer: str = ""


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _fen(amount: str) -> int:
    from decimal import Decimal

    return int((Decimal(amount) * 100).to_integral_value())


def _shanghai(t: dt.datetime) -> str:
    return t.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def _page(title: str, body: str) -> str:
    return f"""<!doctype html><html lang="zh-CN"><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title>
<body style="font-family:'PingFang SC','Noto Sans CJK SC',system-ui,sans-serif;max-width:420px;margin:0 auto;padding:1rem">
<p style="background:#fff3cd;color:#5c4400;padding:.5rem;border-radius:4px" id="sandbox">沙箱 · Sandbox — 不会扣款 No real money</p>
{body}</body></html>"""


def _cashier(brand: str, colour: str, t: Trade, action: str) -> str:
    state = html.escape(t.status)
    return _page(f"{brand} 收银台", f"""<h1 style="color:{colour}">{brand}</h1>
<p>{html.escape(t.description)}</p><p style="font-size:2rem;font-variant-numeric:tabular-nums" id="amount">¥{_yuan(t.amount_fen)}</p>
<p>订单 Order: <span id="out-trade-no">{html.escape(t.out_trade_no)}</span> · 状态 Status: <span id="state">{state}</span></p>
<form method="post" action="{action}"><button id="confirm" style="font-size:1.2rem;padding:.8rem 2rem;min-height:44px;
background:{colour};color:#fff;border:0;border-radius:6px;width:100%">确认支付 Pay ¥{_yuan(t.amount_fen)}</button></form>""")


class _Chaos:
    def __init__(self, seed: int | None) -> None:
        self.config = StandInConfig()
        self.rng = random.Random(seed)  # noqa: S311 - fault injection, not security

    async def __call__(self) -> None:
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000)
        if self.config.failure_rate and self.rng.random() < self.config.failure_rate:
            raise HTTPException(503, "stand-in failure (injected)")


_CLIENTS: dict[int, httpx.AsyncClient] = {}


def _client() -> httpx.AsyncClient:
    """One client per event loop: building one (its TLS context) takes long enough to stall a busy loop."""
    loop = id(asyncio.get_running_loop())
    if loop not in _CLIENTS:
        _CLIENTS[loop] = httpx.AsyncClient(timeout=5)
    return _CLIENTS[loop]


async def _deliver(url: str, content: Any, headers_for: Any, log: list[dict[str, Any]], ok: Any) -> None:
    """POST a callback, retrying (six times, doubling delays) until the receiver acknowledges it;
    `content` is the body, or makes it anew for each attempt (Alipay signs its notify_time)."""
    delay = 0.2
    client = _client()
    for _ in range(6):
        try:
            body = content() if callable(content) else content
            r = await client.post(url, content=body, headers=headers_for())
            log.append({"url": url, "status": r.status_code, "body": r.text[:100]})
            if ok(r):
                return
        except httpx.HTTPError as exc:
            log.append({"url": url, "status": 0, "body": exc.__class__.__name__})
        await asyncio.sleep(delay)
        delay *= 2


def _admin(app: FastAPI, chaos: _Chaos, trades: dict[str, Trade], state: dict[str, Any], settle: Any) -> None:
    @app.get("/admin/config")
    async def get_config() -> StandInConfig:
        return chaos.config

    @app.put("/admin/config")
    async def put_config(cfg: StandInConfig) -> StandInConfig:
        chaos.config = cfg
        return cfg

    @app.get("/admin/stats")
    async def stats() -> dict[str, Any]:
        return {"trades": len(trades), "paid": sum(1 for t in trades.values() if t.paid_at is not None),
                "charged_twice": state["charged_twice"], "callbacks": len(state["callbacks"]),
                "refunds": sum(len(t.refunds) for t in trades.values()), "last_callbacks": state["callbacks"][-5:]}

    @app.post("/admin/pay-silently")
    async def pay_silently(body: dict[str, str]) -> dict[str, str]:
        """The customer paid but the callback was lost: settled here, no notification sent."""
        t = trades.get(body.get("out_trade_no", ""))
        if t is None:
            raise HTTPException(404, "no such trade")
        settle(t, notify=False)
        return {"status": t.status}

    @app.post("/admin/plant-bill-row")
    async def plant(body: dict[str, Any]) -> dict[str, str]:
        """A paid trade in the bill that Waimai never created (reconciliation must list it)."""
        state["planted"].append({"out_trade_no": str(body["out_trade_no"]), "amount_fen": int(body["amount_fen"])})
        return {"status": "planted"}


def _bill_rows(trades: dict[str, Trade], state: dict[str, Any], day: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for t in trades.values():
        if t.paid_at is None or _shanghai(t.paid_at)[:10] != day:
            continue
        rows.append({"kind": "payment", "t": t, "amount_fen": t.amount_fen, "refund_no": "", "refund_id": ""})
        for no, r in t.refunds.items():
            rows.append({"kind": "refund", "t": t, "amount_fen": r["amount_fen"], "refund_no": no,
                         "refund_id": r["refund_id"]})
    for p in state["planted"]:
        t = Trade(out_trade_no=p["out_trade_no"], amount_fen=p["amount_fen"], description="planted", notify_url="",
                  trade_no=f"planted{secrets.token_hex(6)}", channel="native", status="SUCCESS",
                  paid_at=dt.datetime.now(dt.UTC))
        rows.append({"kind": "payment", "t": t, "amount_fen": p["amount_fen"], "refund_no": "", "refund_id": ""})
    return rows


# ---------------------------------------------------------------- WeChat Pay API v3


def create_wechatpay_app(sandbox: WechatSandbox, *, seed: int | None = None) -> FastAPI:
    app = FastAPI(title="WeChat Pay API v3 stand-in (sandbox)", docs_url=None, redoc_url=None)
    chaos = _Chaos(seed)
    trades: dict[str, Trade] = {}
    by_prepay: dict[str, str] = {}
    bills: dict[str, bytes] = {}
    state: dict[str, Any] = {"nonces": {}, "callbacks": [], "planted": [], "charged_twice": 0}
    app.state.standin = {"trades": trades, "state": state, "chaos": chaos}
    merchant_key = x509.load_pem_x509_certificate(sandbox.merchant_cert_pem.encode()).public_key()
    platform_key = serialization.load_pem_private_key(sandbox.platform_key_pem.encode(), password=None)
    assert isinstance(platform_key, rsa.RSAPrivateKey)
    assert isinstance(merchant_key, rsa.RSAPublicKey)
    aes = AESGCM(sandbox.apiv3_key.encode())

    def signed_headers(body: str) -> dict[str, str]:
        ts, nonce = str(int(time.time())), secrets.token_hex(16)
        sig = platform_key.sign(f"{ts}\n{nonce}\n{body}\n".encode(), padding.PKCS1v15(), hashes.SHA256())
        return {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce, "Wechatpay-Serial": sandbox.platform_serial,
                "Wechatpay-Signature": base64.b64encode(sig).decode(),
                "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}

    def answer(data: dict[str, Any] | None, status: int = 200) -> Response:
        if data is None:
            return Response(status_code=204, headers=signed_headers(""))
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        return Response(body, status_code=status, media_type="application/json", headers=signed_headers(body))

    def error(status: int, code: str, message: str) -> Response:
        return answer({"code": code, "message": message}, status)

    def verify(request: Request, body: bytes) -> str | None:
        """None when the request is signed as documented, else why not."""
        auth = request.headers.get("authorization", "")
        scheme, _, rest = auth.partition(" ")
        if scheme != "WECHATPAY2-SHA256-RSA2048":
            return "unknown authorization scheme"
        fields = {}
        for part in rest.split(","):
            k, _, v = part.strip().partition("=")
            fields[k] = v.strip('"')
        if fields.get("mchid") != sandbox.mchid:
            return "unknown mchid"
        if fields.get("serial_no", "").upper() != sandbox.merchant_serial:
            return "unknown merchant certificate serial"
        try:
            if abs(time.time() - int(fields.get("timestamp", ""))) > MAX_SKEW_S:
                return "timestamp out of range"
        except ValueError:
            return "bad timestamp"
        nonce = fields.get("nonce_str", "")
        url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        message = f"{request.method}\n{url}\n{fields['timestamp']}\n{nonce}\n".encode() + body + b"\n"
        try:
            merchant_key.verify(base64.b64decode(fields.get("signature", "")), message, padding.PKCS1v15(),
                                hashes.SHA256())
        except (InvalidSignature, ValueError):
            return "signature does not verify"
        seen = state["nonces"]
        if nonce in seen:
            return "nonce replayed"
        seen[nonce] = time.time()
        return None

    async def guarded(request: Request) -> tuple[bytes, Response | None]:
        await chaos()  # a failing service fails before it looks at anything
        body = await request.body()
        why = verify(request, body)
        if why is not None:
            return body, error(401, "SIGN_ERROR", why)
        return body, None

    def transaction(t: Trade) -> dict[str, Any]:
        out: dict[str, Any] = {"appid": sandbox.appid, "mchid": sandbox.mchid, "out_trade_no": t.out_trade_no,
                               "trade_type": {"h5": "MWEB"}.get(t.channel, t.channel.upper()),
                               "trade_state": t.status, "trade_state_desc": t.status,
                               "amount": {"total": t.amount_fen, "currency": "CNY"}}
        if t.paid_at is not None:
            out.update(transaction_id=t.trade_no, bank_type="OTHERS",
                       success_time=t.paid_at.astimezone(SHANGHAI).isoformat(timespec="seconds"),
                       payer={"openid": t.payer or "sandbox-openid"},
                       amount={"total": t.amount_fen, "payer_total": t.amount_fen, "currency": "CNY",
                               "payer_currency": "CNY"})
        return out

    def notify(url: str, event_type: str, original_type: str, resource: dict[str, Any], summary: str) -> None:
        if not chaos.config.callbacks_enabled or not url:
            return
        nonce = secrets.token_hex(6)  # 12 characters, as WeChat Pay's
        ct = aes.encrypt(nonce.encode(), json.dumps(resource, ensure_ascii=False).encode(), original_type.encode())
        body = json.dumps({"id": secrets.token_hex(16), "create_time": dt.datetime.now(SHANGHAI).isoformat(
            timespec="seconds"), "resource_type": "encrypt-resource", "event_type": event_type, "summary": summary,
            "resource": {"original_type": original_type, "algorithm": "AEAD_AES_256_GCM",
                         "ciphertext": base64.b64encode(ct).decode(), "associated_data": original_type,
                         "nonce": nonce}}, ensure_ascii=False, separators=(",", ":"))
        asyncio.get_running_loop().create_task(_deliver(
            url, body.encode(), lambda: {"content-type": "application/json", **signed_headers(body)},
            state["callbacks"], lambda r: r.status_code < 300))

    def settle(t: Trade, *, send: bool = True) -> None:
        if t.status == "SUCCESS":
            state["charged_twice"] += 1  # a second payment for one trade: must never happen
            return
        t.status, t.paid_at, t.trade_no = "SUCCESS", dt.datetime.now(dt.UTC), f"4200{secrets.randbelow(10**24):024d}"
        if send:
            notify(t.notify_url, "TRANSACTION.SUCCESS", "transaction", transaction(t), "支付成功")

    @app.get("/v3/certificates")
    async def certificates(request: Request) -> Response:
        body, refused = await guarded(request)
        if refused:
            return refused
        nonce = secrets.token_hex(6)
        ct = aes.encrypt(nonce.encode(), sandbox.platform_cert_pem.encode(), b"certificate")
        cert = x509.load_pem_x509_certificate(sandbox.platform_cert_pem.encode())
        return answer({"data": [{"serial_no": sandbox.platform_serial,
                                 "effective_time": cert.not_valid_before_utc.isoformat(),
                                 "expire_time": cert.not_valid_after_utc.isoformat(),
                                 "encrypt_certificate": {"algorithm": "AEAD_AES_256_GCM", "nonce": nonce,
                                                         "associated_data": "certificate",
                                                         "ciphertext": base64.b64encode(ct).decode()}}]})

    @app.post("/v3/pay/transactions/{kind}")
    async def pay(kind: str, request: Request) -> Response:
        body, refused = await guarded(request)
        if refused:
            return refused
        if kind not in ("native", "h5", "jsapi"):
            return error(404, "NOT_FOUND", "no such API")
        try:
            data = json.loads(body)
            no, total = str(data["out_trade_no"]), int(data["amount"]["total"])
            notify_url, desc = str(data["notify_url"]), str(data["description"])
            if data["mchid"] != sandbox.mchid or data["appid"] != sandbox.appid:
                return error(400, "PARAM_ERROR", "appid/mchid mismatch")
            if kind == "h5" and not data.get("scene_info", {}).get("payer_client_ip"):
                return error(400, "PARAM_ERROR", "scene_info.payer_client_ip required")
            if kind == "jsapi" and not data.get("payer", {}).get("openid"):
                return error(400, "PARAM_ERROR", "payer.openid required")
        except (ValueError, KeyError, TypeError):
            return error(400, "PARAM_ERROR", "malformed request")
        if total <= 0:
            return error(400, "PARAM_ERROR", "amount.total must be positive")
        t = trades.get(no)
        if t is not None:
            if t.status == "SUCCESS":
                return error(400, "ORDERPAID", "该订单已支付")
            if t.amount_fen != total:
                return error(400, "OUT_TRADE_NO_USED", "商户订单号重复")
        else:
            t = Trade(out_trade_no=no, amount_fen=total, description=desc[:127], notify_url=notify_url,
                      trade_no="", channel=kind, payer=str(data.get("payer", {}).get("openid", "")))
            trades[no] = t
        prepay = f"wx{secrets.token_hex(14)}"
        by_prepay[prepay] = no
        if chaos.config.auto_confirm:
            settle(t)
        base = str(request.base_url).rstrip("/")
        if kind == "native":
            return answer({"code_url": f"weixin://wxpay/bizpayurl?pr={prepay}"})
        if kind == "h5":
            return answer({"h5_url": f"{base}/cashier/h5?prepay_id={prepay}"})
        return answer({"prepay_id": prepay})

    @app.get("/v3/pay/transactions/out-trade-no/{no}")
    async def query(no: str, request: Request) -> Response:
        _, refused = await guarded(request)
        if refused:
            return refused
        if request.query_params.get("mchid") != sandbox.mchid:
            return error(400, "PARAM_ERROR", "mchid required")
        t = trades.get(no)
        if t is None:
            return error(404, "ORDER_NOT_EXIST", "订单不存在")
        return answer(transaction(t))

    @app.post("/v3/pay/transactions/out-trade-no/{no}/close")
    async def close(no: str, request: Request) -> Response:
        _, refused = await guarded(request)
        if refused:
            return refused
        t = trades.get(no)
        if t is None:
            return error(404, "ORDER_NOT_EXIST", "订单不存在")
        if t.status == "SUCCESS":
            return error(400, "ORDERPAID", "订单已支付")
        t.status = "CLOSED"
        return answer(None)

    @app.post("/v3/refund/domestic/refunds")
    async def refund(request: Request) -> Response:
        body, refused = await guarded(request)
        if refused:
            return refused
        try:
            data = json.loads(body)
            t = trades.get(str(data.get("out_trade_no")))
            no, amount = str(data["out_refund_no"]), int(data["amount"]["refund"])
        except (ValueError, KeyError, TypeError):
            return error(400, "PARAM_ERROR", "malformed request")
        if t is None:
            return error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        if no in t.refunds:
            r = t.refunds[no]
        else:
            if t.status not in ("SUCCESS", "REFUND") or amount <= 0 or \
                    sum(x["amount_fen"] for x in t.refunds.values()) + amount > t.amount_fen:
                return error(400, "INVALID_REQUEST", "退款金额超过订单可退金额")
            r = {"refund_id": f"5030{secrets.randbelow(10**24):024d}", "amount_fen": amount,
                 "notify_url": str(data.get("notify_url", ""))}
            t.refunds[no], t.status = r, "REFUND"

            async def later() -> None:  # the bank takes a moment; then REFUND.SUCCESS
                await asyncio.sleep(0.3)
                notify(r["notify_url"] or t.notify_url, "REFUND.SUCCESS", "refund", {
                    "mchid": sandbox.mchid, "out_trade_no": t.out_trade_no, "transaction_id": t.trade_no,
                    "out_refund_no": no, "refund_id": r["refund_id"], "refund_status": "SUCCESS",
                    "success_time": dt.datetime.now(SHANGHAI).isoformat(timespec="seconds"),
                    "amount": {"total": t.amount_fen, "refund": amount, "payer_total": t.amount_fen,
                               "payer_refund": amount}}, "退款成功")
            asyncio.get_running_loop().create_task(later())
        return answer({"refund_id": r["refund_id"], "out_refund_no": no, "transaction_id": t.trade_no,
                       "out_trade_no": t.out_trade_no, "channel": "ORIGINAL", "status": "PROCESSING",
                       "amount": {"total": t.amount_fen, "refund": r["amount_fen"], "currency": "CNY"}})

    @app.get("/v3/refund/domestic/refunds/{no}")
    async def refund_query(no: str, request: Request) -> Response:
        _, refused = await guarded(request)
        if refused:
            return refused
        for t in trades.values():
            if no in t.refunds:
                r = t.refunds[no]
                return answer({"refund_id": r["refund_id"], "out_refund_no": no, "transaction_id": t.trade_no,
                               "out_trade_no": t.out_trade_no, "channel": "ORIGINAL", "status": "SUCCESS",
                               "amount": {"total": t.amount_fen, "refund": r["amount_fen"], "currency": "CNY"}})
        return error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")

    @app.get("/v3/bill/tradebill")
    async def tradebill(request: Request) -> Response:
        _, refused = await guarded(request)
        if refused:
            return refused
        day = request.query_params.get("bill_date", "")
        lines = ["交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
                 "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,"
                 "商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"]
        total = refunds = 0
        rows = _bill_rows(trades, state, day)
        for r in rows:
            t, is_refund = r["t"], r["kind"] == "refund"
            cells = [_shanghai(t.paid_at), sandbox.appid, sandbox.mchid, "0", "", t.trade_no, t.out_trade_no,
                     t.payer or "sandbox-openid", {"h5": "MWEB"}.get(t.channel, t.channel.upper()),
                     "REFUND" if is_refund else "SUCCESS", "OTHERS", "CNY",
                     "0.00" if is_refund else _yuan(t.amount_fen), "0.00", r["refund_id"], r["refund_no"],
                     _yuan(r["amount_fen"]) if is_refund else "0.00", "0.00",
                     "ORIGINAL" if is_refund else "", "SUCCESS" if is_refund else "", t.description, "", "0.00",
                     "0.60%", _yuan(t.amount_fen), _yuan(r["amount_fen"]) if is_refund else "0.00", ""]
            lines.append(",".join("`" + c for c in cells))
            if is_refund:
                refunds += r["amount_fen"]
            else:
                total += t.amount_fen
        lines.append("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额")
        lines.append(",".join("`" + c for c in [str(len(rows)), _yuan(total), _yuan(refunds), "0.00", "0.00",
                                                 _yuan(total), _yuan(refunds)]))
        raw = gzip.compress(("\n".join(lines) + "\n").encode("utf-8"))
        token = secrets.token_urlsafe(12)
        bills[token] = raw
        base = str(request.base_url).rstrip("/")
        return answer({"hash_type": "SHA1", "hash_value": hashlib.sha1(raw, usedforsecurity=False).hexdigest(),
                       "download_url": f"{base}/v3/billdownload/file?token={token}"})

    @app.get("/v3/billdownload/file")
    async def download(request: Request) -> Response:
        _, refused = await guarded(request)
        if refused:
            return refused
        raw = bills.get(request.query_params.get("token", ""))
        if raw is None:
            return error(404, "NOT_FOUND", "no such bill")
        return Response(raw, media_type="application/octet-stream")  # bills are not signed (documented)

    def by_prepay_id(prepay: str) -> Trade:
        t = trades.get(by_prepay.get(prepay, ""))
        if t is None:
            raise HTTPException(404, "no such prepay_id")
        return t

    @app.get("/cashier/h5", response_class=HTMLResponse)
    async def h5_cashier(prepay_id: str, redirect_url: str = "") -> str:
        t = by_prepay_id(prepay_id)
        return _cashier("微信支付 WeChat Pay", "#07c160", t,
                        f"/cashier/confirm?prepay_id={quote_plus(prepay_id)}&redirect_url={quote_plus(redirect_url)}")

    @app.get("/cashier/scan", response_class=HTMLResponse)
    async def scan(code_url: str) -> str:
        """What a phone shows after scanning a Native QR code (weixin://wxpay/bizpayurl?pr=...)."""
        prepay = code_url.rpartition("pr=")[2]
        t = by_prepay_id(prepay)
        return _cashier("微信支付 WeChat Pay", "#07c160", t, f"/cashier/confirm?prepay_id={quote_plus(prepay)}")

    @app.post("/cashier/confirm")
    async def confirm(prepay_id: str, redirect_url: str = "") -> Response:
        t = by_prepay_id(prepay_id)
        await chaos()
        if t.status in ("NOTPAY", "USERPAYING"):
            settle(t)
        if redirect_url:
            return RedirectResponse(redirect_url, status_code=303)
        return HTMLResponse(_page("支付成功", f"<h1 id='done'>支付成功 Paid ¥{_yuan(t.amount_fen)}</h1>"))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        await chaos()
        return {"status": "ok"}

    _admin(app, chaos, trades, state, lambda t, notify=True: settle(t, send=notify))
    return app


# ---------------------------------------------------------------- Alipay


def create_alipay_app(sandbox: AlipaySandbox, *, seed: int | None = None) -> FastAPI:
    app = FastAPI(title="Alipay open platform stand-in (sandbox)", docs_url=None, redoc_url=None)
    chaos = _Chaos(seed)
    trades: dict[str, Trade] = {}
    bills: dict[str, bytes] = {}
    state: dict[str, Any] = {"callbacks": [], "planted": [], "charged_twice": 0}
    app.state.standin = {"trades": trades, "state": state, "chaos": chaos}
    app_key = serialization.load_pem_public_key(sandbox.app_public_key_pem.encode())
    alipay_key = serialization.load_pem_private_key(sandbox.alipay_private_key_pem.encode(), password=None)
    assert isinstance(app_key, rsa.RSAPublicKey)
    assert isinstance(alipay_key, rsa.RSAPrivateKey)

    def content(params: dict[str, str], *, request: bool = False) -> str:
        """The string signed: sorted `k=v` pairs without `sign` and empty values; a request keeps `sign_type`
        in it, notifications and returns leave it out (as Alipay documents each)."""
        skip = ("sign",) if request else ("sign", "sign_type")
        return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in skip and v != "")

    def sign(text: str) -> str:
        return base64.b64encode(alipay_key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()

    def verify(params: dict[str, str]) -> str | None:
        if params.get("app_id") != sandbox.appid:
            return "isv.invalid-app-id"
        if params.get("sign_type") != "RSA2":
            return "isv.invalid-signature-type"
        try:
            sent = dt.datetime.strptime(params.get("timestamp", ""), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return "isv.invalid-timestamp"
        # The SDK writes the caller's local wall-clock time; accept it as local or as Beijing time.
        now_local, now_bj = dt.datetime.now(), dt.datetime.now(SHANGHAI).replace(tzinfo=None)
        if min(abs((sent - now_local).total_seconds()), abs((sent - now_bj).total_seconds())) > 15 * 60:
            return "isv.invalid-timestamp"
        try:
            app_key.verify(base64.b64decode(params.get("sign", "")), content(params, request=True).encode(),
                           padding.PKCS1v15(),
                           hashes.SHA256())
        except (InvalidSignature, ValueError):
            return "isv.invalid-signature"
        return None

    def answer(method: str, body: dict[str, Any]) -> Response:
        inner = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        key = method.replace(".", "_") + "_response"
        text = f'{{"{key}":{inner},"sign":"{sign(inner)}"}}'
        return Response(text, media_type="application/json;charset=utf-8")

    def fail(method: str, code: str, msg: str, sub_code: str, sub_msg: str) -> Response:
        return answer(method, {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg})

    def notify(t: Trade, extra: dict[str, str]) -> None:
        if not chaos.config.callbacks_enabled or not t.notify_url:
            return

        def body() -> bytes:  # notify_time is the time of each attempt, so signed anew each time
            now = dt.datetime.now(dt.UTC)
            params = {"notify_time": _shanghai(now), "notify_type": "trade_status_sync",
                      "notify_id": state.setdefault(f"nid:{t.out_trade_no}:{extra.get('trade_status')}",
                                                    secrets.token_hex(16)),
                      "app_id": sandbox.appid, "charset": "utf-8", "version": "1.0", "trade_no": t.trade_no,
                      "out_trade_no": t.out_trade_no, "total_amount": _yuan(t.amount_fen),
                      "receipt_amount": _yuan(t.amount_fen), "buyer_pay_amount": _yuan(t.amount_fen),
                      "subject": t.description, "gmt_create": _shanghai(t.paid_at or now),
                      "gmt_payment": _shanghai(t.paid_at or now), "seller_id": "2088000000000001",
                      "buyer_id": "2088102177846880", **extra}
            params["sign"], params["sign_type"] = sign(content(params)), "RSA2"
            return urlencode(params).encode()

        form = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
        asyncio.get_running_loop().create_task(_deliver(
            t.notify_url, body, lambda: form, state["callbacks"],
            lambda r: r.status_code == 200 and r.text.strip() == "success"))

    def settle(t: Trade, *, send: bool = True) -> None:
        if t.status == "TRADE_SUCCESS":
            state["charged_twice"] += 1
            return
        t.status, t.paid_at = "TRADE_SUCCESS", dt.datetime.now(dt.UTC)
        if send:
            notify(t, {"trade_status": "TRADE_SUCCESS"})

    def return_params(t: Trade, method: str) -> dict[str, str]:
        params = {"charset": "utf-8", "out_trade_no": t.out_trade_no, "method": f"{method}.return",
                  "total_amount": _yuan(t.amount_fen), "trade_no": t.trade_no, "auth_app_id": sandbox.appid,
                  "version": "1.0", "app_id": sandbox.appid, "seller_id": "2088000000000001",
                  "timestamp": _shanghai(dt.datetime.now(dt.UTC))}
        params["sign"], params["sign_type"] = sign(content(params)), "RSA2"
        return params

    async def params_of(request: Request) -> dict[str, str]:
        params = dict(request.query_params)
        if request.method == "POST":
            params.update(dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True)))
        return params

    @app.api_route("/gateway.do", methods=["GET", "POST"])
    async def gateway(request: Request) -> Response:
        params = await params_of(request)
        method = params.get("method", "")
        if method not in ("alipay.trade.wap.pay", "alipay.trade.page.pay"):
            await chaos()  # (the cashier pages fail when the customer confirms)
        why = verify(params)
        if why is not None:
            return fail(method or "error", "40002", "Invalid Arguments", why, "签名或参数错误")
        try:
            biz = json.loads(params.get("biz_content", "{}"))
        except ValueError:
            return fail(method, "40002", "Invalid Arguments", "isv.invalid-biz-content", "biz_content")
        if method in ("alipay.trade.wap.pay", "alipay.trade.page.pay"):
            no, amount = str(biz.get("out_trade_no", "")), _fen(str(biz.get("total_amount", "0")))
            t = trades.get(no)
            if t is None:
                t = Trade(out_trade_no=no, amount_fen=amount, description=str(biz.get("subject", ""))[:256],
                          notify_url=params.get("notify_url", ""), return_url=params.get("return_url", ""),
                          trade_no=f"2026{secrets.randbelow(10**24):024d}",
                          channel="wap" if method.endswith("wap.pay") else "page", status="WAIT_BUYER_PAY")
                trades[no] = t
            elif t.amount_fen != amount:
                return HTMLResponse(_page("错误", "<h1>交易信息被篡改 Trade tampered</h1>"), status_code=400)
            if chaos.config.auto_confirm and t.status == "WAIT_BUYER_PAY":
                settle(t)
            return HTMLResponse(_cashier("支付宝 Alipay", "#1677ff", t,
                                         f"/cashier/confirm?out_trade_no={quote_plus(no)}&m={method}"))
        no = str(biz.get("out_trade_no", ""))
        t = trades.get(no)
        if method == "alipay.trade.query":
            if t is None:
                return fail(method, "40004", "Business Failed", "ACQ.TRADE_NOT_EXIST", "交易不存在")
            return answer(method, {"code": "10000", "msg": "Success", "trade_no": t.trade_no, "out_trade_no": no,
                                   "trade_status": t.status, "total_amount": _yuan(t.amount_fen),
                                   "buyer_logon_id": "sand***@sandbox.com",
                                   **({"send_pay_date": _shanghai(t.paid_at)} if t.paid_at else {})})
        if method == "alipay.trade.close":
            if t is None:
                return fail(method, "40004", "Business Failed", "ACQ.TRADE_NOT_EXIST", "交易不存在")
            if t.status != "WAIT_BUYER_PAY":
                return fail(method, "40004", "Business Failed", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            t.status = "TRADE_CLOSED"
            return answer(method, {"code": "10000", "msg": "Success", "trade_no": t.trade_no, "out_trade_no": no})
        if method == "alipay.trade.refund":
            if t is None:
                return fail(method, "40004", "Business Failed", "ACQ.TRADE_NOT_EXIST", "交易不存在")
            req_no = str(biz.get("out_request_no") or no)
            amount = _fen(str(biz.get("refund_amount", "0")))
            if req_no not in t.refunds:
                refunded = sum(r["amount_fen"] for r in t.refunds.values())
                if t.paid_at is None or amount <= 0 or refunded + amount > t.amount_fen:
                    return fail(method, "40004", "Business Failed", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
                t.refunds[req_no] = {"refund_id": req_no, "amount_fen": amount}
                refunded += amount
                if refunded == t.amount_fen:
                    t.status = "TRADE_CLOSED"
                notify(t, {"trade_status": t.status, "refund_fee": _yuan(refunded), "out_biz_no": req_no,
                           "gmt_refund": _shanghai(dt.datetime.now(dt.UTC)) + ".000"})
                fund_change = "Y"
            else:
                fund_change = "N"  # the same request again: nothing moves twice
            return answer(method, {"code": "10000", "msg": "Success", "trade_no": t.trade_no, "out_trade_no": no,
                                   "buyer_logon_id": "sand***@sandbox.com", "fund_change": fund_change,
                                   "refund_fee": _yuan(sum(r["amount_fen"] for r in t.refunds.values()))})
        if method == "alipay.data.dataservice.bill.downloadurl.query":
            day = str(biz.get("bill_date", ""))
            token = secrets.token_urlsafe(12)
            bills[token] = alipay_bill(day)
            base = str(request.base_url).rstrip("/")
            return answer(method, {"code": "10000", "msg": "Success",
                                   "bill_download_url": f"{base}/bills/download?token={token}"})
        return fail(method or "error", "40004", "Business Failed", "isv.invalid-method", "不存在的方法名")

    def alipay_bill(day: str) -> bytes:
        header = ("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,"
                  "订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,"
                  "券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注")
        lines = ["#支付宝业务明细查询", f"#账号：[{sandbox.appid}]", f"#起始日期：[{day} 00:00:00]   终止日期：[{day} 23:59:59]",
                 "#-----------------------------------------业务明细列表----------------------------------------", header]
        for r in _bill_rows(trades, state, day):
            t, is_refund = r["t"], r["kind"] == "refund"
            amount = _yuan(r["amount_fen"])
            lines.append(",".join([t.trade_no, t.out_trade_no, "退款" if is_refund else "交易", t.description,
                                   _shanghai(t.paid_at), _shanghai(t.paid_at), "", "", "", "", "sand***@sandbox.com",
                                   ("-" if is_refund else "") + amount, ("-" if is_refund else "") + amount,
                                   "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00", "0.00", r["refund_no"],
                                   "0.00", "0.00", ""]))
        lines += ["#-----------------------------------------业务明细列表结束------------------------------------",
                  f"#导出时间：[{_shanghai(dt.datetime.now(dt.UTC))}]"]
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr(f"{sandbox.appid}_{day.replace('-', '')}_业务明细.csv", "\n".join(lines).encode("gbk"))
        return buf.getvalue()

    @app.get("/bills/download")
    async def download(token: str) -> Response:
        raw = bills.get(token)
        if raw is None:
            raise HTTPException(404, "no such bill")
        return Response(raw, media_type="application/zip")

    @app.post("/cashier/confirm")
    async def confirm(out_trade_no: str, m: str = "alipay.trade.wap.pay") -> Response:
        t = trades.get(out_trade_no)
        if t is None:
            raise HTTPException(404, "no such trade")
        await chaos()
        if t.status == "WAIT_BUYER_PAY":
            settle(t)
        if t.return_url:
            sep = "&" if "?" in t.return_url else "?"
            return RedirectResponse(f"{t.return_url}{sep}{urlencode(return_params(t, m))}", status_code=303)
        return HTMLResponse(_page("支付成功", f"<h1 id='done'>支付成功 Paid ¥{_yuan(t.amount_fen)}</h1>"))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        await chaos()
        return {"status": "ok"}

    _admin(app, chaos, trades, state, lambda t, notify=True: settle(t, send=notify))
    return app
