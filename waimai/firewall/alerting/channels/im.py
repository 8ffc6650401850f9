"""Group-chat robots: DingTalk, WeCom (企业微信), Feishu/Lark and Slack incoming webhooks.

Formats and signatures, as published (checked against the providers' docs and public SDKs):

* DingTalk custom robot (钉钉自定义机器人, open.dingtalk.com "自定义机器人接入" and its Python/Java
  samples): `POST {base}/robot/send?access_token=T`, JSON, UTF-8. With 加签 the query also carries
  `timestamp` (ms) and `sign` = urlencode(base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")));
  the timestamp may be at most one hour off. msgtype `text` | `markdown` {title, text} | `actionCard`
  {title, text, btnOrientation, btns[{title, actionURL}]}; `at.atMobiles` (text/markdown) with `@mobile`
  in the text. Reply `{"errcode": 0, "errmsg": "ok"}`; 310000 "sign not match" / "invalid timestamp";
  130101 "send too fast, exceed 20 times per minute". Limit: 20 messages per minute per robot.
* WeCom group robot (developer.work.weixin.qq.com/document/path/91770 "群机器人配置说明"):
  `POST {base}/cgi-bin/webhook/send?key=K`, msgtype `text` {content, mentioned_mobile_list} (2048 bytes)
  | `markdown` {content} (4096 bytes). Reply errcode/errmsg; 93000 invalid webhook url; 45009 api freq
  out of limit. Limit: 20 messages per minute per robot. No signature: the key is the secret.
* Feishu custom bot (open.feishu.cn "自定义机器人使用指南", its Python/Go/Java sign demos):
  `POST {base}/open-apis/bot/v2/hook/{token}`; with 签名校验 the JSON body carries `timestamp` (seconds,
  as a string) and `sign` = base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b"")) — the string is the
  KEY and the message is empty; at most one hour off. msg_type `text` {content.text} | `interactive`
  {card: {header{title, template}, elements[...]}}. Reply `{"code": 0, "msg": "success", ...}`; 19021 "sign
  match fail or timestamp is not within one hour from current time". Limit: 100/min and 5/s per bot.
* Slack incoming webhook (api.slack.com/messaging/webhooks, changelog 2016-05-17 on webhook errors):
  `POST {base}/services/T…/B…/X…` JSON {text, blocks}; reply 200 `ok`; 400 invalid_payload, 403
  action_prohibited, 404 no_service/channel_not_found, 410 channel_is_archived; 429 with `Retry-After`.
  Limit: about one message per second. No signature: the URL path is the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Any, ClassVar, Literal

from pydantic import SecretStr

from waimai.firewall.alerting.channels.base import AlertMessage, Clock, DeliveryLog, RateLimit, register
from waimai.firewall.alerting.channels.delivery import (
    ChannelConfig,
    Delivery,
    HttpChannel,
    PermanentError,
    Sent,
    TransientError,
    truncate_utf8,
)

SEVERITY_EMOJI = {"P1": "🔴", "P2": "🟠", "P3": "🟡", "P4": "🔵"}
STATUS_ZH = {"firing": "告警中 firing", "resolved": "已恢复 resolved", "acknowledged": "已确认 acknowledged"}


def dingtalk_sign(secret: str, timestamp_ms: str) -> str:
    """base64 of HMAC-SHA256(secret, "{timestamp}\\n{secret}"); the caller's URL encoding does the urlencode."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def feishu_sign(secret: str, timestamp_s: str) -> str:
    """base64 of HMAC-SHA256 keyed by "{timestamp}\\n{secret}" over an empty message."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _labels_line(m: AlertMessage) -> str:
    return " · ".join(f"{k}={v}" for k, v in sorted(m.labels.items()))


def markdown_text(m: AlertMessage, *, links: bool = True, mentions: str = "") -> str:
    parts = [f"### {SEVERITY_EMOJI[m.severity]} [{m.severity}] {m.title}",
             f"**状态 Status:** {STATUS_ZH[m.status]}"]
    if m.labels:
        parts.append(f"**标签 Labels:** {_labels_line(m)}")
    parts.append(m.body_markdown)
    if links and m.links():
        parts.append(" · ".join(f"[{label}]({url})" for label, url in m.links()))
    if mentions:
        parts.append(mentions)
    return "\n\n".join(p for p in parts if p)


def plain_text(m: AlertMessage) -> str:
    lines = [m.headline, m.body_markdown]
    lines += [f"{label}: {url}" for label, url in m.links()]
    return "\n".join(lines)


def _robot_reply(resp: Any, *, code_key: str, msg_key: str, throttled: set[int], busy: set[int]) -> Sent:
    if resp.status_code >= 400:
        raise PermanentError(f"HTTP {resp.status_code}: {resp.text[:120]}", resp.status_code)
    data = HttpChannel.json_of(resp)
    code = data.get(code_key, data.get("StatusCode"))
    if code == 0:
        return Sent(resp.status_code)
    msg = str(data.get(msg_key, data.get("StatusMessage", "")))[:160]
    if code in throttled:
        # The robot is throttled for a while (DingTalk says 10 minutes): queue rather than spin.
        raise TransientError(f"{code_key} {code}: {msg}", resp.status_code, retry_after=60.0)
    if code in busy:
        raise TransientError(f"{code_key} {code}: {msg}", resp.status_code)
    raise PermanentError(f"{code_key} {code}: {msg}", resp.status_code)


# --------------------------------------------------------------------------------------------- DingTalk
class DingTalkConfig(ChannelConfig):
    base_url: str = "https://oapi.dingtalk.com"
    access_token: SecretStr
    secret: SecretStr | None = None  # 加签 secret ("SEC…"); None when the robot uses keywords/IP lists
    msgtype: Literal["auto", "text", "markdown", "actionCard"] = "auto"


@register("dingtalk")
class DingTalkChannel(HttpChannel):
    """auto: actionCard with buttons when the alert has links and nobody is to be @-mentioned, else markdown."""

    Config: ClassVar[type[ChannelConfig]] = DingTalkConfig
    default_rate_limit: ClassVar[RateLimit] = RateLimit(20, 60.0)

    def __init__(self, config: DingTalkConfig, *, clock: Clock | None = None, log: DeliveryLog | None = None) -> None:
        super().__init__(config, base_url=config.base_url, clock=clock, log=log)
        self.cfg = config

    def payload(self, m: AlertMessage, recipients: tuple[str, ...] | None) -> dict[str, Any]:
        mobiles = list(recipients or ())
        mentions = " ".join(f"@{x}" for x in mobiles)
        at = {"atMobiles": mobiles, "isAtAll": False}
        kind = self.cfg.msgtype
        if kind == "auto":
            kind = "actionCard" if m.links() and not mobiles else "markdown"
        if kind == "text":
            return {"msgtype": "text", "text": {"content": plain_text(m) + (f"\n{mentions}" if mentions else "")},
                    "at": at}
        if kind == "markdown" or not m.links():  # an actionCard needs at least one button
            return {"msgtype": "markdown", "at": at,
                    "markdown": {"title": m.headline[:64], "text": markdown_text(m, mentions=mentions)}}
        card: dict[str, Any] = {"title": m.headline[:64], "text": markdown_text(m, links=not m.links()),
                                "btnOrientation": "1" if len(m.links()) > 2 else "0"}
        card["btns"] = [{"title": label, "actionURL": url} for label, url in m.links()]
        return {"msgtype": "actionCard", "actionCard": card}

    def _attempt(self, delivery: Delivery, attempt: int) -> Sent:
        params = {"access_token": self.cfg.access_token.get_secret_value()}
        if self.cfg.secret is not None:
            ts = str(int(self.clock() * 1000))
            params.update(timestamp=ts, sign=dingtalk_sign(self.cfg.secret.get_secret_value(), ts))
        body = self.dumps(self.payload(delivery.message, delivery.recipients))
        resp = self._request("POST", "/robot/send", params=params, body=body)
        return _robot_reply(resp, code_key="errcode", msg_key="errmsg", throttled={130101}, busy={-1})


# ------------------------------------------------------------------------------------------------ WeCom
class WeComConfig(ChannelConfig):
    base_url: str = "https://qyapi.weixin.qq.com"
    key: SecretStr
    msgtype: Literal["auto", "text", "markdown"] = "auto"


@register("wecom")
class WeComChannel(HttpChannel):
    """auto: markdown, or text with mentioned_mobile_list when recipients (mobiles) are given."""

    Config: ClassVar[type[ChannelConfig]] = WeComConfig
    default_rate_limit: ClassVar[RateLimit] = RateLimit(20, 60.0)

    def __init__(self, config: WeComConfig, *, clock: Clock | None = None, log: DeliveryLog | None = None) -> None:
        super().__init__(config, base_url=config.base_url, clock=clock, log=log)
        self.cfg = config

    def payload(self, m: AlertMessage, recipients: tuple[str, ...] | None) -> dict[str, Any]:
        kind = self.cfg.msgtype
        if kind == "auto":
            kind = "text" if recipients else "markdown"
        if kind == "text":
            return {"msgtype": "text", "text": {"content": truncate_utf8(plain_text(m), 2048),
                                                "mentioned_mobile_list": list(recipients or ())}}
        color = {"P1": "warning", "P2": "warning", "P3": "comment", "P4": "info"}[m.severity]
        lines = [f"**<font color=\"{color}\">[{m.severity}]</font> {m.title}**",
                 f"> 状态 Status: <font color=\"comment\">{STATUS_ZH[m.status]}</font>"]
        if m.labels:
            lines.append(f"> 标签 Labels: {_labels_line(m)}")
        lines += ["", m.body_markdown, ""]
        lines += [f"[{label}]({url})" for label, url in m.links()]
        return {"msgtype": "markdown", "markdown": {"content": truncate_utf8("\n".join(lines), 4096)}}

    def _attempt(self, delivery: Delivery, attempt: int) -> Sent:
        body = self.dumps(self.payload(delivery.message, delivery.recipients))
        resp = self._request("POST", "/cgi-bin/webhook/send", params={"key": self.cfg.key.get_secret_value()},
                             body=body)
        return _robot_reply(resp, code_key="errcode", msg_key="errmsg", throttled={45009}, busy={-1})


# ----------------------------------------------------------------------------------------------- Feishu
class FeishuConfig(ChannelConfig):
    base_url: str = "https://open.feishu.cn"  # Lark: https://open.larksuite.com
    token: SecretStr  # the {token} of /open-apis/bot/v2/hook/{token}
    secret: SecretStr | None = None
    msg_type: Literal["interactive", "text"] = "interactive"


FEISHU_TEMPLATE = {"P1": "red", "P2": "orange", "P3": "yellow", "P4": "blue"}


@register("feishu")
class FeishuChannel(HttpChannel):
    """Interactive card: coloured header by severity, lark_md body, buttons for ack/runbook/incident."""

    Config: ClassVar[type[ChannelConfig]] = FeishuConfig
    default_rate_limit: ClassVar[RateLimit] = RateLimit(100, 60.0, extra=((5, 1.0),))

    def __init__(self, config: FeishuConfig, *, clock: Clock | None = None, log: DeliveryLog | None = None) -> None:
        super().__init__(config, base_url=config.base_url, clock=clock, log=log)
        self.cfg = config

    @staticmethod
    def card(m: AlertMessage, recipients: tuple[str, ...] | None = None) -> dict[str, Any]:
        fields = [{"is_short": True, "text": {"tag": "lark_md", "content": f"**级别 Severity**\n{m.severity}"}},
                  {"is_short": True, "text": {"tag": "lark_md", "content": f"**状态 Status**\n{STATUS_ZH[m.status]}"}}]
        if m.labels:
            fields.append({"is_short": False, "text": {"tag": "lark_md", "content": f"**标签 Labels**\n{_labels_line(m)}"}})
        elements: list[dict[str, Any]] = [{"tag": "div", "fields": fields},
                                          {"tag": "div", "text": {"tag": "lark_md", "content": m.body_markdown}}]
        if recipients:
            ats = " ".join(f"<at email={r}></at>" if "@" in r else f"<at id={r}></at>" for r in recipients)
            elements.append({"tag": "div", "text": {"tag": "lark_md", "content": ats}})
        if m.links():
            elements.append({"tag": "hr"})
            elements.append({"tag": "action", "actions": [
                {"tag": "button", "text": {"tag": "plain_text", "content": label}, "url": url,
                 "type": "danger" if i == 0 and m.ack_url and m.status == "firing" else "default"}
                for i, (label, url) in enumerate(m.links())]})
        return {"config": {"wide_screen_mode": True},
                "header": {"template": FEISHU_TEMPLATE[m.severity],
                           "title": {"tag": "plain_text", "content": m.headline}},
                "elements": elements}

    def payload(self, m: AlertMessage, recipients: tuple[str, ...] | None) -> dict[str, Any]:
        if self.cfg.msg_type == "text":
            return {"msg_type": "text", "content": {"text": plain_text(m)}}
        return {"msg_type": "interactive", "card": self.card(m, recipients)}

    def _attempt(self, delivery: Delivery, attempt: int) -> Sent:
        payload: dict[str, Any] = {}
        if self.cfg.secret is not None:
            ts = str(int(self.clock()))
            payload.update(timestamp=ts, sign=feishu_sign(self.cfg.secret.get_secret_value(), ts))
        payload.update(self.payload(delivery.message, delivery.recipients))
        resp = self._request("POST", f"/open-apis/bot/v2/hook/{self.cfg.token.get_secret_value()}",
                             body=self.dumps(payload))
        return _robot_reply(resp, code_key="code", msg_key="msg", throttled=set(), busy=set())


# ------------------------------------------------------------------------------------------------ Slack
class SlackConfig(ChannelConfig):
    base_url: str = "https://hooks.slack.com"
    webhook_path: SecretStr  # "T…/B…/X…", the part after /services/


_MD_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_MD_BOLD = re.compile(r"\*\*(.+?)\*\*")


def to_mrkdwn(markdown: str) -> str:
    """Slack's mrkdwn: *bold*, <url|text> links, no # headings."""
    text = _MD_LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1)}>", markdown)
    text = _MD_BOLD.sub(lambda m: f"*{m.group(1)}*", text)
    return re.sub(r"(?m)^#{1,6}\s*(.+)$", r"*\1*", text)


@register("slack")
class SlackChannel(HttpChannel):
    Config: ClassVar[type[ChannelConfig]] = SlackConfig
    default_rate_limit: ClassVar[RateLimit] = RateLimit(1, 1.0)

    def __init__(self, config: SlackConfig, *, clock: Clock | None = None, log: DeliveryLog | None = None) -> None:
        super().__init__(config, base_url=config.base_url, clock=clock, log=log)
        self.cfg = config

    @staticmethod
    def payload(m: AlertMessage, recipients: tuple[str, ...] | None = None) -> dict[str, Any]:
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": m.headline[:150], "emoji": True}},
            {"type": "section", "text": {"type": "mrkdwn", "text": to_mrkdwn(m.body_markdown)[:3000] or " "}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": (
                f"*{m.severity}* · {m.status} · `{m.dedup_key}`"
                + (f" · {_labels_line(m)}" if m.labels else ""))[:3000]}]},
        ]
        if recipients:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": " ".join(
                f"<@{r}>" for r in recipients)[:3000]}})
        if m.links():
            blocks.append({"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": label[:75]}, "url": url,
                 **({"style": "danger"} if i == 0 and m.ack_url and m.status == "firing" else {})}
                for i, (label, url) in enumerate(m.links())]})
        return {"text": f"{SEVERITY_EMOJI[m.severity]} {m.headline}", "blocks": blocks}

    def _attempt(self, delivery: Delivery, attempt: int) -> Sent:
        path = self.cfg.webhook_path.get_secret_value().strip("/")
        resp = self._request("POST", f"/services/{path}",
                             body=self.dumps(self.payload(delivery.message, delivery.recipients)))
        if resp.status_code == 200 and resp.text.strip() == "ok":
            return Sent(200)
        raise PermanentError(f"HTTP {resp.status_code}: {resp.text[:80]}", resp.status_code)
