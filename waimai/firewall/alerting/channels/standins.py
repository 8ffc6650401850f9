"""Local stand-ins for every alerting provider, for tests and drills (like `waimai fake-gateway`).

Each factory returns a FastAPI app (the SMTP one an aiosmtpd server) that checks the URL, query, body
and signature the way the provider documents them, with its own code written from the published
scheme (not by calling our senders' helpers), answers in the provider's own reply and error shapes,
and keeps what it accepted in `app.state.standin` (a `StandinState`):

* `accepted`: the messages it took, `rejected`: what it refused and why, `request_times`: the clock
  time of every request received (to count requests per window).
* `fail_next(times, status=503, retry_after=None)`: answer the next requests with that status (and
  `Retry-After`), e.g. 503 twice, or 429 with Retry-After.
* The same over HTTP for drills: `GET /_standin/state`, `POST /_standin/fail`, `POST /_standin/reset`.

Stale signatures: DingTalk and Feishu refuse timestamps more than one hour off; Standard Webhooks five
minutes; Alibaba Cloud 15 minutes (`InvalidTimeStamp.Expired`). All stand-ins take the `clock` the
senders use, so tests move time without sleeping. Where a provider's exact code for some refusal is not
published (e.g. DingTalk's malformed body) the stand-in's choice is marked "stand-in's choice".
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
import warnings
from collections.abc import Mapping
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote, unquote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from waimai.core.extras import require
from waimai.core.standin import Clock, StandinState, failure_response, new_app


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def _is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


def _str(v: Any, max_len: int | None = None) -> bool:
    return isinstance(v, str) and bool(v.strip()) and (max_len is None or len(v) <= max_len)


def _url(v: Any) -> bool:
    return isinstance(v, str) and v.startswith(("http://", "https://")) and len(v) <= 3000


# ------------------------------------------------------------------------------------------------ DingTalk
def _dingtalk_body_error(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "body is not a JSON object"
    kind = body.get("msgtype")
    if kind == "text":
        ok = isinstance(body.get("text"), dict) and _str(body["text"].get("content"))
    elif kind == "markdown":
        md = body.get("markdown")
        ok = isinstance(md, dict) and _str(md.get("title")) and _str(md.get("text"))
    elif kind == "actionCard":
        card = body.get("actionCard")
        ok = isinstance(card, dict) and _str(card.get("title")) and _str(card.get("text"))
        if ok and isinstance(card, dict):
            btns = card.get("btns")
            single = _str(card.get("singleTitle")) and _url(card.get("singleURL"))
            multi = isinstance(btns, list) and bool(btns) and all(
                isinstance(b, dict) and _str(b.get("title")) and _url(b.get("actionURL")) for b in btns)
            ok = single or multi
    elif kind in ("link", "feedCard"):
        ok = isinstance(body.get(kind), dict)
    else:
        return f"unknown msgtype {kind!r}"
    if not ok:
        return f"malformed {kind}"
    at = body.get("at")
    if at is not None and not (isinstance(at, dict) and all(isinstance(m, str) for m in at.get("atMobiles", []))):
        return "malformed at"
    return None


def create_dingtalk_standin(*, access_token: str, secret: str | None = None, clock: Clock = time.time,
                            limit: tuple[int, float] | None = (20, 60.0)) -> FastAPI:
    """DingTalk custom robot: POST /robot/send?access_token=…[&timestamp=ms&sign=…]."""
    state = StandinState(clock=clock)
    app = new_app("DingTalk robot stand-in", state)

    def refuse(errcode: int, errmsg: str) -> JSONResponse:
        state.reject(errmsg, errcode=errcode)
        return JSONResponse({"errcode": errcode, "errmsg": errmsg})

    @app.post("/robot/send")
    async def send(request: Request) -> Response:
        if (f := state.hit()) is not None:
            return failure_response(f)
        q = request.query_params
        if not hmac.compare_digest(q.get("access_token", ""), access_token):
            return refuse(300001, "token is not exist")
        if secret is not None:
            ts, sign = q.get("timestamp", ""), q.get("sign", "")
            if not ts.isdigit():
                return refuse(310000, "invalid timestamp")
            if abs(clock() * 1000 - int(ts)) > 3600 * 1000:
                return refuse(310000, "invalid timestamp")
            mac = hmac.new(secret.encode("utf-8"), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(base64.b64encode(mac).decode(), sign):
                return refuse(310000, "sign not match")
        if not _is_json(request):
            return refuse(43004, "无效的HTTP HEADER Content-Type")  # stand-in's choice of code
        body = await _json_body(request)
        if (problem := _dingtalk_body_error(body)) is not None:
            return refuse(40035, f"缺少参数 json: {problem}")  # stand-in's choice of code
        if limit is not None and state.accepted_within(limit[1]) >= limit[0]:
            return refuse(130101, "send too fast, exceed 20 times per minute")
        state.accept({"body": body, "signed": secret is not None, "timestamp": q.get("timestamp")})
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    return app


# --------------------------------------------------------------------------------------------------- WeCom
def create_wecom_standin(*, key: str, clock: Clock = time.time,
                         limit: tuple[int, float] | None = (20, 60.0)) -> FastAPI:
    """WeCom group robot: POST /cgi-bin/webhook/send?key=…, text (2048 bytes) / markdown (4096 bytes)."""
    state = StandinState(clock=clock)
    app = new_app("WeCom robot stand-in", state)

    def refuse(errcode: int, errmsg: str) -> JSONResponse:
        state.reject(errmsg, errcode=errcode)
        return JSONResponse({"errcode": errcode, "errmsg": errmsg})

    @app.post("/cgi-bin/webhook/send")
    async def send(request: Request) -> Response:
        if (f := state.hit()) is not None:
            return failure_response(f)
        if not hmac.compare_digest(request.query_params.get("key", ""), key):
            return refuse(93000, "invalid webhook url, hint: [standin]")
        body = await _json_body(request)
        if not isinstance(body, dict):
            return refuse(40008, "invalid message type")
        kind = body.get("msgtype")
        if kind not in ("text", "markdown"):
            return refuse(40008, "invalid message type")
        part = body.get(kind)
        content = part.get("content") if isinstance(part, dict) else None
        if not _str(content):
            return refuse(44004, "empty content")
        assert isinstance(content, str)
        if len(content.encode("utf-8")) > (2048 if kind == "text" else 4096):
            return refuse(40058, "content exceed max length")
        mentioned = part.get("mentioned_mobile_list", []) if isinstance(part, dict) else []
        if kind == "text" and not all(isinstance(m, str) for m in mentioned):
            return refuse(40058, "invalid mentioned_mobile_list")
        if limit is not None and state.accepted_within(limit[1]) >= limit[0]:
            return refuse(45009, "api freq out of limit")
        state.accept({"body": body})
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    return app


# -------------------------------------------------------------------------------------------------- Feishu
FEISHU_TEMPLATES = {"blue", "wathet", "turquoise", "green", "yellow", "orange", "red", "carmine", "violet",
                    "purple", "indigo", "grey", "default"}


def _feishu_card_error(card: Any) -> str | None:
    if not isinstance(card, dict):
        return "card is not an object"
    header = card.get("header")
    if header is not None:
        title = header.get("title") if isinstance(header, dict) else None
        if not (isinstance(title, dict) and title.get("tag") == "plain_text" and _str(title.get("content"))):
            return "bad header.title"
        if header.get("template", "default") not in FEISHU_TEMPLATES:
            return "bad header.template"
    elements = card.get("elements")
    if not isinstance(elements, list) or not elements:
        return "card.elements missing"
    for el in elements:
        tag = el.get("tag") if isinstance(el, dict) else None
        if tag == "div":
            text, fields = el.get("text"), el.get("fields")
            if text is None and fields is None:
                return "div without text or fields"
            texts = ([text] if text is not None else []) + [f.get("text") for f in (fields or [])]
            if not all(isinstance(t, dict) and t.get("tag") in ("plain_text", "lark_md") and isinstance(
                    t.get("content"), str) for t in texts):
                return "bad div text"
        elif tag == "action":
            actions = el.get("actions")
            if not isinstance(actions, list) or not actions:
                return "action without actions"
            for b in actions:
                if not (isinstance(b, dict) and b.get("tag") == "button" and isinstance(b.get("text"), dict)
                        and _str(b["text"].get("content")) and _url(b.get("url"))):
                    return "bad button"
        elif tag not in ("hr", "markdown", "note", "img"):
            return f"unknown element {tag!r}"
    return None


def create_feishu_standin(*, token: str, secret: str | None = None, clock: Clock = time.time) -> FastAPI:
    """Feishu/Lark custom bot: POST /open-apis/bot/v2/hook/{token}, sign in the JSON body."""
    state = StandinState(clock=clock)
    app = new_app("Feishu bot stand-in", state)

    def refuse(code: int, msg: str) -> JSONResponse:
        state.reject(msg, code=code)
        return JSONResponse({"code": code, "msg": msg, "data": {}})

    @app.post("/open-apis/bot/v2/hook/{hook}")
    async def send(hook: str, request: Request) -> Response:
        if (f := state.hit()) is not None:
            return failure_response(f)
        if not hmac.compare_digest(hook, token):
            return refuse(19001, "param invalid: incoming webhook access token invalid")
        body = await _json_body(request)
        if not isinstance(body, dict):
            return refuse(9499, "Bad Request")
        if secret is not None:
            ts, sign = str(body.get("timestamp", "")), body.get("sign")
            stale = not ts.isdigit() or abs(clock() - int(ts)) > 3600
            key = f"{ts}\n{secret}".encode()
            expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
            if stale or not isinstance(sign, str) or not hmac.compare_digest(expected, sign):
                return refuse(19021, "sign match fail or timestamp is not within one hour from current time")
        kind = body.get("msg_type")
        if kind == "text":
            content = body.get("content")
            problem = None if isinstance(content, dict) and _str(content.get("text")) else "bad content.text"
        elif kind == "interactive":
            problem = _feishu_card_error(body.get("card"))
        elif kind in ("post", "image", "share_chat"):
            problem = None if isinstance(body.get("content"), dict) else "bad content"
        else:
            problem = f"unknown msg_type {kind!r}"
        if problem is not None:
            return refuse(9499, f"Bad Request: {problem}")
        state.accept({"body": body, "signed": secret is not None})
        return JSONResponse({"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}, "msg": "success"})

    return app


# --------------------------------------------------------------------------------------------------- Slack
def _slack_blocks_error(blocks: Any) -> str | None:
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "invalid_blocks"
    for b in blocks:
        kind = b.get("type") if isinstance(b, dict) else None
        if kind == "header":
            t = b.get("text")
            if not (isinstance(t, dict) and t.get("type") == "plain_text" and _str(t.get("text"), 150)):
                return "invalid_blocks"
        elif kind == "section":
            t = b.get("text")
            if not (isinstance(t, dict) and t.get("type") in ("mrkdwn", "plain_text") and _str(t.get("text"), 3000)):
                return "invalid_blocks"
        elif kind == "context":
            els = b.get("elements")
            if not (isinstance(els, list) and 0 < len(els) <= 10):
                return "invalid_blocks"
        elif kind == "actions":
            els = b.get("elements")
            if not (isinstance(els, list) and 0 < len(els) <= 25):
                return "invalid_blocks"
            for e in els:
                if not (isinstance(e, dict) and e.get("type") == "button" and isinstance(e.get("text"), dict)
                        and e["text"].get("type") == "plain_text" and _str(e["text"].get("text"), 75)
                        and ("url" not in e or _url(e["url"]))
                        and e.get("style", "primary") in ("primary", "danger")):
                    return "invalid_blocks"
        elif kind != "divider":
            return "invalid_blocks"
    return None


def create_slack_standin(*, webhook_path: str, clock: Clock = time.time,
                         limit: tuple[int, float] | None = (1, 1.0)) -> FastAPI:
    """Slack incoming webhook: POST /services/T…/B…/X…; 200 `ok`, errors as plain strings."""
    state = StandinState(clock=clock)
    app = new_app("Slack incoming webhook stand-in", state)
    expected_path = webhook_path.strip("/")

    def refuse(status: int, error: str) -> PlainTextResponse:
        state.reject(error, status=status)
        return PlainTextResponse(error, status_code=status)

    @app.post("/services/{path:path}")
    async def send(path: str, request: Request) -> Response:
        if (f := state.hit()) is not None:
            return failure_response(f, "rate_limited" if f.status == 429 else "service_unavailable")
        if not hmac.compare_digest(path.strip("/"), expected_path):
            return refuse(404, "no_service")
        body = await _json_body(request) if _is_json(request) else None
        if not isinstance(body, dict):
            return refuse(400, "invalid_payload")
        if not _str(body.get("text")) and not body.get("blocks"):
            return refuse(400, "no_text")
        if "blocks" in body and (problem := _slack_blocks_error(body["blocks"])) is not None:
            return refuse(400, problem)
        if limit is not None and state.accepted_within(limit[1]) >= limit[0]:
            state.reject("rate_limited", status=429)
            return PlainTextResponse("rate_limited", status_code=429, headers={"retry-after": str(int(limit[1]))})
        state.accept({"body": body})
        return PlainTextResponse("ok")

    return app


# ----------------------------------------------------------------------------------------------- PagerDuty
PD_SEVERITIES = {"critical", "error", "warning", "info"}


def create_pagerduty_standin(*, routing_keys: list[str], clock: Clock = time.time,
                             limit: tuple[int, float] | None = (120, 60.0)) -> FastAPI:
    """PagerDuty Events API v2: POST /v2/enqueue; alert state per dedup_key in `state.extra["alerts"]`."""
    state = StandinState(clock=clock)
    app = new_app("PagerDuty Events API v2 stand-in", state)
    alerts: dict[str, dict[str, Any]] = {}
    state.extra["alerts"] = alerts

    def invalid(*errors: str) -> JSONResponse:
        state.reject("invalid event", errors=list(errors))
        return JSONResponse({"status": "invalid event", "message": "Event object is invalid",
                             "errors": list(errors)}, status_code=400)

    @app.post("/v2/enqueue")
    async def enqueue(request: Request) -> Response:
        if (f := state.hit()) is not None:
            return failure_response(f)
        ev = await _json_body(request)
        if not isinstance(ev, dict):
            return invalid("Invalid JSON")
        if ev.get("routing_key") not in routing_keys:
            return invalid("Invalid routing key")
        action = ev.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            return invalid("'event_action' is invalid (must be one of: trigger, acknowledge, resolve)")
        key = ev.get("dedup_key")
        if key is not None and not (isinstance(key, str) and 0 < len(key) <= 255):
            return invalid("'dedup_key' must be a string of at most 255 characters")
        errors = []
        if action == "trigger":
            p = ev.get("payload")
            if not isinstance(p, dict):
                return invalid("'payload' is missing or invalid")
            if not _str(p.get("summary"), 1024):
                errors.append("'payload.summary' is missing or blank")
            if not _str(p.get("source")):
                errors.append("'payload.source' is missing or blank")
            if p.get("severity") not in PD_SEVERITIES:
                errors.append("'payload.severity' is invalid (must be one of: critical, error, warning, info)")
            for link in ev.get("links", []):
                if not (isinstance(link, dict) and _url(link.get("href"))):
                    errors.append("'links' entry is invalid")
        elif key is None:
            errors.append("'dedup_key' is required for acknowledge and resolve")
        if errors:
            return invalid(*errors)
        if limit is not None and state.accepted_within(limit[1]) >= limit[0]:
            state.reject("throttle event", status=429)
            return JSONResponse({"status": "throttle event", "message": "Requests for this service are arriving "
                                 "too quickly. Please retry later."}, status_code=429)
        key = key or uuid.uuid4().hex
        alert = alerts.get(key)
        if action == "trigger":
            if alert is None or alert["status"] == "resolved":
                alert = alerts[key] = {"status": "triggered", "events": []}
            alert["events"].append(ev)
        elif alert is not None and alert["status"] != "resolved":  # otherwise dropped, as PagerDuty does
            alert["status"] = "acknowledged" if action == "acknowledge" else "resolved"
            alert["events"].append(ev)
        state.accept({"body": ev, "dedup_key": key})
        return JSONResponse({"status": "success", "message": "Event processed", "dedup_key": key},
                            status_code=202)

    return app


# ------------------------------------------------------------------------------------------ Standard Webhooks
def create_webhook_standin(*, secret: str, path: str = "/hooks/alerts", clock: Clock = time.time,
                           tolerance_s: float = 300.0) -> FastAPI:
    """A Standard Webhooks receiver: verifies webhook-id/-timestamp/-signature, idempotent on webhook-id.
    `app.state.gone = True` makes it answer 410 Gone."""
    state = StandinState(clock=clock)
    app = new_app("Standard Webhooks receiver stand-in", state)
    app.state.gone = False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    seen: set[str] = set()
    state.extra["ids"] = []  # the webhook-id of every request, failed ones included

    def refuse(status: int, error: str) -> JSONResponse:
        state.reject(error, status=status)
        return JSONResponse({"error": error}, status_code=status)

    @app.post(path)
    async def receive(request: Request) -> Response:
        state.extra["ids"].append(request.headers.get("webhook-id"))
        if (f := state.hit()) is not None:
            return failure_response(f)
        if app.state.gone:
            return refuse(410, "gone")
        h = request.headers
        msg_id, ts, sigs = h.get("webhook-id"), h.get("webhook-timestamp", ""), h.get("webhook-signature")
        if not msg_id or not ts or not sigs:
            return refuse(400, "missing webhook-id, webhook-timestamp or webhook-signature")
        if not ts.isdigit():
            return refuse(400, "bad webhook-timestamp")
        if abs(clock() - int(ts)) > tolerance_s:
            return refuse(401, "timestamp outside tolerance")
        body = await request.body()
        expected = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest())
        ok = any(v == "v1" and hmac.compare_digest(s.encode(), expected)
                 for v, _, s in (entry.partition(",") for entry in sigs.split(" ")))
        if not ok:
            return refuse(401, "no matching signature")
        if msg_id in seen:
            return JSONResponse({"duplicate": True})
        seen.add(msg_id)
        try:
            payload = json.loads(body)
        except ValueError:
            return refuse(400, "body is not JSON")
        state.accept({"id": msg_id, "timestamp": int(ts), "body": payload})
        return JSONResponse({"received": True})

    return app


# ----------------------------------------------------------------------------------------- Alibaba Cloud SMS
def _pe(value: str) -> str:
    return quote(value, safe="-_.~")


def _pop_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"RequestId": str(uuid.uuid4()).upper(), "HostId": "dysmsapi.aliyuncs.com", "Code": code,
                         "Message": message}, status_code=status)


_CN_MOBILE = re.compile(r"^(?:\+?86)?1\d{10}$")
_INTL = re.compile(r"^(?:\+|00)?[1-9]\d{6,14}$")


def create_aliyun_sms_standin(*, access_keys: Mapping[str, str], sign_names: list[str],
                              templates: Mapping[str, list[str]], clock: Clock = time.time,
                              per_number_limit: tuple[int, float] | None = (1, 60.0)) -> FastAPI:
    """Alibaba Cloud SMS `SendSms` (RPC style, GET /?…&Signature=…). `templates`: code -> variable names."""
    state = StandinState(clock=clock)
    app = new_app("Alibaba Cloud SMS stand-in", state)
    nonces: set[str] = set()

    def refuse(status: int, code: str, message: str) -> JSONResponse:
        state.reject(code, status=status)
        return _pop_error(status, code, message)

    def biz(code: str, message: str) -> JSONResponse:
        state.reject(code, status=200)
        return JSONResponse({"RequestId": str(uuid.uuid4()).upper(), "Code": code, "Message": message})

    @app.get("/")
    async def rpc(request: Request) -> Response:
        if (f := state.hit()) is not None:
            return failure_response(f)
        raw = request.url.query
        pairs = [p.split("=", 1) for p in raw.split("&") if p]
        if any(len(p) != 2 for p in pairs):
            return refuse(400, "InvalidParameter", "Malformed query string.")
        params = {unquote(k): unquote(v) for k, v in pairs}
        signature = params.pop("Signature", None)
        required = ("AccessKeyId", "Action", "SignatureMethod", "SignatureNonce", "SignatureVersion", "Timestamp",
                    "Version")
        missing = [k for k in required if not params.get(k)]
        if missing or not signature:
            return refuse(400, "MissingParameter", f"The input parameter {(missing or ['Signature'])[0]} that is "
                          "mandatory for processing this request is not supplied.")
        secret = access_keys.get(params["AccessKeyId"])
        if secret is None:
            return refuse(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            return refuse(400, "InvalidParameter", "SignatureMethod must be HMAC-SHA1 and SignatureVersion 1.0.")
        try:
            ts = calendar.timegm(time.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ"))
        except ValueError:
            return refuse(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
        if abs(clock() - ts) > 900:
            return refuse(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        canonical = "&".join(f"{_pe(k)}={_pe(v)}" for k, v in sorted(params.items()))
        to_sign = f"GET&{_pe('/')}&{_pe(canonical)}"
        expected = base64.b64encode(hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()).decode()
        if not hmac.compare_digest(expected, signature):
            return refuse(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation. "
                          f"server string to sign is:{to_sign}")
        if params["SignatureNonce"] in nonces:
            return refuse(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        nonces.add(params["SignatureNonce"])
        if params["Action"] != "SendSms":
            return refuse(404, "InvalidAction.NotFound", "Specified api is not found, please check your url "
                          "and method.")
        if params["Version"] != "2017-05-25":
            return refuse(400, "InvalidVersion", "Specified parameter Version is not valid.")
        numbers = [n for n in params.get("PhoneNumbers", "").split(",") if n]
        if not numbers or len(numbers) > 1000 or not all(_CN_MOBILE.match(n) or _INTL.match(n) for n in numbers):
            return biz("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        if params.get("SignName") not in sign_names:
            return biz("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        variables = templates.get(params.get("TemplateCode", ""))
        if variables is None:
            return biz("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        try:
            tpl_params = json.loads(params.get("TemplateParam", "{}"))
        except ValueError:
            return biz("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        if not isinstance(tpl_params, dict) or not all(isinstance(v, str) for v in tpl_params.values()):
            return biz("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        if any(v not in tpl_params for v in variables):
            return biz("isv.TEMPLATE_MISSING_PARAMETERS", "模板缺少变量")
        if any(len(v) > 35 for v in tpl_params.values()):
            return biz("isv.PARAM_LENGTH_LIMIT", "参数超出长度限制")
        if per_number_limit is not None:
            n, window = per_number_limit
            for number in numbers:
                if state.accepted_within(window, lambda a, num=number: num in a["phone_numbers"]) >= n:  # type: ignore[misc]
                    return biz("isv.BUSINESS_LIMIT_CONTROL", f"触发分钟级流控Permits:{n}")
        biz_id = f"{secrets.randbelow(10**15):015d}^0"
        state.accept({"phone_numbers": numbers, "sign_name": params["SignName"],
                      "template_code": params["TemplateCode"], "template_param": tpl_params,
                      "out_id": params.get("OutId"), "biz_id": biz_id})
        return JSONResponse({"RequestId": str(uuid.uuid4()).upper(), "Code": "OK", "Message": "OK", "BizId": biz_id})

    return app


# -------------------------------------------------------------------------------------------------- SMTP
class SmtpStandin:
    """An SMTP server (aiosmtpd) that requires AUTH, checks the alert mail's headers and keeps what it took.

    Injected failures (`state.fail_next`) answer DATA with `451 4.3.0` (a temporary failure: the SMTP
    counterpart of an HTTP 5xx/429). Use as a context manager; `port` is where it listens."""

    def __init__(self, *, username: str, password: str, clock: Clock = time.time, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.state = StandinState(clock=clock)
        self.username, self._password = username, password
        self.host, self.port = host, port
        self._controller: Any = None

    def __repr__(self) -> str:
        return f"<SmtpStandin {self.host}:{self.port}>"

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.username
              and hmac.compare_digest(auth_data.password.decode(), self._password))
        if not ok:
            self.state.reject("535 authentication failed")
        return AuthResult(success=ok, handled=False)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd hook
        if (f := self.state.hit()) is not None:
            return "451 4.3.0 Temporary failure (injected)" if f.status >= 400 else "250 OK"
        if not session.authenticated:
            self.state.reject("530 authentication required")
            return "530 5.7.0 Authentication required"
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=email_policy.default)
        assert isinstance(msg, EmailMessage)
        for header in ("From", "To", "Subject", "Date", "Message-ID"):
            if not msg.get(header):
                self.state.reject(f"missing {header}")
                return f"550 5.6.0 Missing {header} header"
        if envelope.mail_from not in str(msg["From"]):
            self.state.reject("From does not match MAIL FROM")
            return "550 5.7.1 From header does not match the envelope sender"
        if not re.match(r"^\[P[1-4]\]", str(msg["Subject"])):
            self.state.reject("subject without severity")  # our alert-mail contract, not SMTP's
            return "550 5.6.0 Alert subject must start with the severity, e.g. [P1]"
        plain = msg.get_body(preferencelist=("plain",))
        html_part = msg.get_body(preferencelist=("html",))
        self.state.accept({"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                           "headers": {k: str(v) for k, v in msg.items()},
                           "text": plain.get_content() if plain is not None else "",
                           "html": html_part.get_content() if html_part is not None else ""})
        return "250 2.0.0 OK: queued"

    def start(self) -> SmtpStandin:
        require("aiosmtpd", "dev", "The SMTP stand-in")
        from aiosmtpd.controller import Controller

        if not self.port:
            import socket

            with socket.socket() as s:
                s.bind((self.host, 0))
                self.port = int(s.getsockname()[1])
        class QuietController(Controller):  # type: ignore[misc]
            def factory(self) -> Any:
                with warnings.catch_warnings():  # AUTH without TLS is on purpose: a local stand-in
                    warnings.simplefilter("ignore", UserWarning)
                    return super().factory()

        self._controller = QuietController(self, hostname=self.host, port=self.port,
                                           authenticator=self._authenticate, auth_require_tls=False,
                                           auth_required=True)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
