"""Per-provider formats over the wire: what each stand-in received, and the provider-specific refusals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import httpx

from tests.firewall.alerting.conftest import PD_KEY, PHONE, PHONE_2, WHSEC, FakeClock, Harness, alert
from waimai.firewall.alerting.channels import DeliveryLog, build_channel


def _cfg(h: Harness, **over: object) -> dict[str, object]:
    cfg = h.config()
    cfg.update(over)
    return cfg


# ---------------------------------------------------------------------------------------------- DingTalk
def test_dingtalk_action_card_carries_the_ack_button(harnesses: dict[str, Harness], clock: FakeClock) -> None:
    h = harnesses["dingtalk"]
    ch = build_channel("dingtalk", h.config(), clock=clock)
    assert ch.send(alert("dt-1")).ok
    acc = h.state.accepted[0]
    body = acc["body"]
    assert body["msgtype"] == "actionCard"
    card = body["actionCard"]
    assert card["title"].startswith("[P1][FIRING] Order API 5xx")
    assert card["btns"][0] == {"title": "确认 Acknowledge", "actionURL": "https://waimai.test/alerts/dt-1/ack"}
    assert [b["actionURL"] for b in card["btns"][1:]] == ["https://waimai.test/runbooks/order-api",
                                                          "https://waimai.test/incidents/dt-1"]
    assert acc["signed"] and len(acc["timestamp"]) == 13  # milliseconds


def test_dingtalk_markdown_mentions_and_links(harnesses: dict[str, Harness], clock: FakeClock) -> None:
    h = harnesses["dingtalk"]
    ch = build_channel("dingtalk", _cfg(h, msgtype="markdown"), clock=clock)
    assert ch.send(alert("dt-2"), recipients=[PHONE_2]).ok
    body = h.state.accepted[0]["body"]
    assert body["msgtype"] == "markdown"
    assert body["at"] == {"atMobiles": [PHONE_2], "isAtAll": False}
    text = body["markdown"]["text"]
    assert "[确认 Acknowledge](https://waimai.test/alerts/dt-2/ack)" in text
    assert f"@{PHONE_2}" in text and "Order API 5xx rate above 5%" in text


def test_dingtalk_refuses_stale_and_unencoded_signatures(harnesses: dict[str, Harness], clock: FakeClock) -> None:
    h = harnesses["dingtalk"]
    late = build_channel("dingtalk", h.config(), clock=lambda: clock() - 3601)
    r = late.send(alert("dt-3"))
    assert not r.ok and r.error and "310000" in r.error and "invalid timestamp" in r.error
    # The sign must be URL-encoded: sent raw, its '+' turns into a space and the robot refuses it.
    secret = "SECding-secret"
    ts = int(clock() * 1000)
    while True:
        sign = base64.b64encode(hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()).decode()
        if "+" in sign:
            break
        ts += 1
    base = h.config()["base_url"]
    body = {"msgtype": "text", "text": {"content": "hi"}}
    raw = httpx.post(f"{base}/robot/send?access_token=ding-token&timestamp={ts}&sign={sign}", json=body)
    assert raw.json() == {"errcode": 310000, "errmsg": "sign not match"}
    ok = httpx.post(f"{base}/robot/send", params={"access_token": "ding-token", "timestamp": str(ts), "sign": sign},
                    json=body)
    assert ok.json() == {"errcode": 0, "errmsg": "ok"}


# ------------------------------------------------------------------------------------------------- WeCom
def test_wecom_markdown_and_text_with_mentions(harnesses: dict[str, Harness], clock: FakeClock) -> None:
    h = harnesses["wecom"]
    ch = build_channel("wecom", _cfg(h, rate_limit={"limit": 5, "window_s": 60}), clock=clock)
    assert ch.send(alert("wc-1")).ok
    assert ch.send(alert("wc-2"), recipients=[PHONE_2]).ok
    md, text = (a["body"] for a in h.state.accepted)
    assert md["msgtype"] == "markdown" and "[确认 Acknowledge](https://waimai.test/alerts/wc-1/ack)" in md["markdown"]["content"]
    assert text["msgtype"] == "text" and text["text"]["mentioned_mobile_list"] == [PHONE_2]


# ------------------------------------------------------------------------------------------------ Feishu
def test_feishu_interactive_card(harnesses: dict[str, Harness], clock: FakeClock) -> None:
    h = harnesses["feishu"]
    ch = build_channel("feishu", h.config(), clock=clock)
    assert ch.send(alert("fs-1")).ok
    body = h.state.accepted[0]["body"]
    assert body["msg_type"] == "interactive"
    assert isinstance(body["timestamp"], str) and body["timestamp"].isdigit() and len(body["timestamp"]) == 10
    card = body["card"]
    assert card["header"]["template"] == "red"
    assert card["header"]["title"] == {"tag": "plain_text", "content": "[P1][FIRING] Order API 5xx rate above 5%"}
    buttons = next(e for e in card["elements"] if e["tag"] == "action")["actions"]
    assert buttons[0]["url"] == "https://waimai.test/alerts/fs-1/ack" and buttons[0]["type"] == "danger"
    resolved = build_channel("feishu", h.config(), clock=clock)
    clock.advance(2)
    assert resolved.send(alert("fs-1", status="resolved", severity="P3")).ok
    assert h.state.accepted[1]["body"]["card"]["header"]["template"] == "yellow"


def test_feishu_refuses_stale_signature(harnesses: dict[str, Harness], clock: FakeClock) -> None:
    h = harnesses["feishu"]
    r = build_channel("feishu", h.config(), clock=lambda: clock() - 3700).send(alert("fs-2"))
    assert not r.ok and r.error and "19021" in r.error
    assert not h.state.accepted


# ------------------------------------------------------------------------------------------------- Slack
def test_slack_blocks(harnesses: dict[str, Harness], clock: FakeClock) -> None:
    h = harnesses["slack"]
    assert build_channel("slack", h.config(), clock=clock).send(alert("sl-1")).ok
    body = h.state.accepted[0]["body"]
    assert "[P1][FIRING] Order API 5xx" in body["text"]
    kinds = [b["type"] for b in body["blocks"]]
    assert kinds == ["header", "section", "context", "actions"]
    assert "*5xx ratio*" in body["blocks"][1]["text"]["text"]  # markdown bold turned into mrkdwn
    ack = body["blocks"][3]["elements"][0]
    assert ack["url"] == "https://waimai.test/alerts/sl-1/ack" and ack["style"] == "danger"


def test_slack_429_retry_after_is_honoured(harnesses: dict[str, Harness], clock: FakeClock) -> None:
    h = harnesses["slack"]
    log = DeliveryLog()
    ch = build_channel("slack", h.config(), clock=clock, log=log)
    h.state.fail_next(1, 429, retry_after=3)
    r = ch.send(alert("sl-2"))
    assert r.ok and r.attempts == 2
    first = log.records_for("sl-2")[0]
    assert (first.event, first.status_code, first.retry_after_s) == ("retried", 429, 3.0)
    # A long Retry-After does not block the caller: the alert waits in the queue until then.
    clock.advance(2)
    h.state.fail_next(1, 429, retry_after=120)
    r = ch.send(alert("sl-3"))
    assert r.queued and not r.ok and ch.pending == 1
    clock.advance(60)
    assert ch.flush() is None
    clock.advance(61)
    r2 = ch.flush()
    assert r2 is not None and r2.ok and r2.dedup_key == "sl-3"
    assert [x.event for x in log.records_for("sl-3")] == ["failed", "queued", "sent"]


# --------------------------------------------------------------------------------------------- PagerDuty
def test_pagerduty_trigger_acknowledge_resolve(harnesses: dict[str, Harness], clock: FakeClock) -> None:
    h = harnesses["pagerduty"]
    ch = build_channel("pagerduty", h.config(), clock=clock)
    app_alerts = None
    for status, expected in (("firing", "triggered"), ("acknowledged", "acknowledged"), ("resolved", "resolved")):
        r = ch.send(alert("pd-1", status=status))
        assert r.ok and r.status_code == 202 and r.provider_id == "pd-1"
        app_alerts = [a["body"] for a in h.state.accepted]
        assert app_alerts[-1]["dedup_key"] == "pd-1" and app_alerts[-1]["routing_key"] == PD_KEY
        assert h.state.extra["alerts"]["pd-1"]["status"] == expected
    assert app_alerts is not None
    trigger, ack, resolve = app_alerts
    assert (trigger["event_action"], ack["event_action"], resolve["event_action"]) == ("trigger", "acknowledge",
                                                                                     "resolve")
    assert trigger["payload"]["severity"] == "critical" and trigger["payload"]["summary"].startswith("[P1] Order")
    assert trigger["payload"]["custom_details"]["service"] == "order-api"
    assert {"href": "https://waimai.test/alerts/pd-1/ack", "text": "确认 Acknowledge"} in trigger["links"]
    assert "payload" not in ack and "payload" not in resolve


def test_pagerduty_states_follow_the_dedup_key(harnesses: dict[str, Harness], clock: FakeClock) -> None:
    h = harnesses["pagerduty"]
    ch = build_channel("pagerduty", h.config(), clock=clock)
    ch.send(alert("pd-2", severity="P4"))
    ch.send(alert("pd-2", status="acknowledged"))
    base = h.config()["base_url"]
    state = httpx.get(f"{base}/_standin/state").json()
    assert [a["body"]["event_action"] for a in state["accepted"]] == ["trigger", "acknowledge"]
    assert state["accepted"][0]["body"]["payload"]["severity"] == "info"
    assert state["extra"]["alerts"]["pd-2"]["status"] == "acknowledged"
    ch.send(alert("pd-2", status="resolved"))
    ch.send(alert("pd-2", status="acknowledged"))  # too late: PagerDuty drops events for a resolved alert
    assert h.state.extra["alerts"]["pd-2"]["status"] == "resolved"


# ---------------------------------------------------------------------------------------------- Webhook
def test_standard_webhook_id_is_stable_across_retries(harnesses: dict[str, Harness], clock: FakeClock) -> None:
    h = harnesses["webhook"]
    ch = build_channel("webhook", h.config(), clock=clock)
    h.state.fail_next(1, 502)
    r = ch.send(alert("wh-1"))
    assert r.ok and r.attempts == 2 and r.provider_id and r.provider_id.startswith("msg_")
    acc = h.state.accepted[0]
    assert acc["id"] == r.provider_id
    assert h.state.extra["ids"] == [r.provider_id, r.provider_id]  # the failed attempt carried the same id
    assert acc["body"]["type"] == "alert.firing" and acc["body"]["data"]["dedup_key"] == "wh-1"
    assert acc["body"]["data"]["links"]["ack_url"] == "https://waimai.test/alerts/wh-1/ack"


def test_standard_webhook_refuses_stale_and_stops_on_410(harnesses: dict[str, Harness], clock: FakeClock) -> None:
    h = harnesses["webhook"]
    r = build_channel("webhook", h.config(), clock=lambda: clock() - 301).send(alert("wh-2"))
    assert not r.ok and r.status_code == 401
    # A valid signature with several entries (key rotation): one match is enough.
    from waimai.firewall.alerting.channels.webhook import sign

    ts, body = int(clock()), b'{"type":"alert.firing"}'
    sigs = f"v1,{base64.b64encode(b'x' * 32).decode()} {sign(WHSEC, 'msg_rot', ts, body)}"
    url = h.config()["url"]
    resp = httpx.post(str(url), content=body, headers={"webhook-id": "msg_rot", "webhook-timestamp": str(ts),
                                                       "webhook-signature": sigs})
    assert resp.status_code == 200
    dup = httpx.post(str(url), content=body, headers={"webhook-id": "msg_rot", "webhook-timestamp": str(ts),
                                                      "webhook-signature": sigs})
    assert dup.json() == {"duplicate": True} and len(h.state.accepted) == 1


# ------------------------------------------------------------------------------------------------- Email
def test_email_headers_subject_and_threading(harnesses: dict[str, Harness], clock: FakeClock) -> None:
    h = harnesses["email"]
    ch = build_channel("email", h.config(), clock=clock)
    assert ch.send(alert("em-1")).ok
    assert ch.send(alert("em-1", status="resolved", severity="P3")).ok
    firing, resolved = h.state.accepted
    fh, rh = firing["headers"], resolved["headers"]
    assert fh["Subject"] == "[P1][FIRING] Order API 5xx rate above 5%"
    assert (fh["X-Priority"], fh["Importance"], fh["X-Alert-Severity"]) == ("1 (Highest)", "high", "P1")
    assert fh["From"] == "alerts@waimai.test" and fh["To"] == "oncall@waimai.test"
    assert fh["X-Alert-Dedup-Key"] == "em-1" and fh["Message-ID"] != rh["Message-ID"]
    assert fh["In-Reply-To"] == rh["In-Reply-To"] == fh["References"]  # one thread per alert
    assert rh["Subject"].startswith("[P3][RESOLVED]") and rh["X-Priority"] == "3 (Normal)"
    assert "https://waimai.test/alerts/em-1/ack" in firing["text"] and "https://waimai.test/alerts/em-1/ack" in firing["html"]
    assert firing["rcpt_tos"] == ["oncall@waimai.test"]


# --------------------------------------------------------------------------------------------------- SMS
def test_sms_template_params_and_masking(harnesses: dict[str, Harness], clock: FakeClock) -> None:
    h = harnesses["sms"]
    log = DeliveryLog()
    ch = build_channel("sms", _cfg(h, phone_numbers=[PHONE]), clock=clock, log=log)
    long_title = "食堂东区订单接口 5xx 比例持续超过百分之五，影响午高峰下单，请立即处理并同步进展"
    r = ch.send(alert("sms-1", title=long_title))
    assert r.ok and r.provider_id and r.provider_id.endswith("^0")
    acc = h.state.accepted[0]
    assert acc["phone_numbers"] == [PHONE] and acc["sign_name"] == "校园外卖"
    assert acc["template_code"] == "SMS_465000001" and acc["out_id"] == "sms-1"
    params = acc["template_param"]
    assert params["severity"] == "P1" and params["status"] == "告警"
    assert len(params["title"]) == 35 and params["title"].endswith("…")
    assert log.records_for("sms-1")[0].recipients == ("138****5678",)
    assert PHONE not in repr(ch) and "138****5678" in repr(ch)


def test_sms_refusals_and_provider_flow_control(harnesses: dict[str, Harness], clock: FakeClock) -> None:
    h = harnesses["sms"]
    stale = build_channel("sms", h.config(), clock=lambda: clock() - 901).send(alert("sms-2"), recipients=[PHONE])
    assert not stale.ok and stale.status_code == 400 and stale.error == "InvalidTimeStamp.Expired"
    # Our own window is wider than Alibaba's per-number flow control: the provider says "later", we queue.
    ch = build_channel("sms", _cfg(h, rate_limit={"limit": 5, "window_s": 60}), clock=clock)
    assert ch.send(alert("sms-3"), recipients=[PHONE]).ok
    r = ch.send(alert("sms-4"), recipients=[PHONE])
    assert r.queued and not r.ok and r.error and "BUSINESS_LIMIT_CONTROL" in r.error and ch.pending == 1
    clock.advance(61)
    later = ch.flush()
    assert later is not None and later.ok and later.dedup_key == "sms-4"


def test_aliyun_signature_matches_the_documented_example() -> None:
    from waimai.firewall.alerting.channels.sms import rpc_signature

    params = {"AccessKeyId": "testId", "Action": "SendSms", "Format": "XML", "OutId": "123",
              "PhoneNumbers": "15300000001", "RegionId": "cn-hangzhou", "SignName": "阿里云短信测试专用",
              "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
              "SignatureVersion": "1.0", "TemplateCode": "SMS_71390007",
              "TemplateParam": json.dumps({"customer": "test"}, separators=(",", ":")),
              "Timestamp": "2017-07-12T02:42:19Z", "Version": "2017-05-25"}
    assert rpc_signature("testSecret", params) == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
