"""The plug-in interface's pieces without a network: messages, merging, masking, the window, the registry."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from tests.firewall.alerting.conftest import FakeClock, alert
from tests.servers import free_port
from waimai.firewall.alerting.channels import (
    AlertMessage,
    DeliveryLog,
    RateLimit,
    build_channel,
    mask_phone,
    mask_recipient,
    merge_messages,
)
from waimai.firewall.alerting.channels.base import SlidingWindowLimiter
from waimai.firewall.alerting.channels.delivery import parse_retry_after
from waimai.firewall.alerting.channels.webhook import sign


def test_alert_message_validates() -> None:
    with pytest.raises(ValueError, match="timezone"):
        AlertMessage("t", "b", "P1", "k", created_at=datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="severity"):
        AlertMessage("t", "b", "P0", "k")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="status"):
        AlertMessage("t", "b", "P1", "k", status="open")  # type: ignore[arg-type]
    m = AlertMessage("t", "b", "P2", "k", created_at=datetime(2026, 1, 1, 8, tzinfo=UTC) + timedelta(0))
    assert m.created_at.tzinfo is UTC and m.headline == "[P2][FIRING] t"


def test_merge_keeps_every_alert_and_the_worst_severity() -> None:
    items = [alert("a", title="Disk", severity="P3", status="resolved"), alert("b", title="Queue", severity="P1"),
             alert("c", title="CPU", severity="P2", status="acknowledged")]
    m = merge_messages(items)
    assert m.title.startswith("3 more alerts: [P3] Disk; [P1] Queue; [P2] CPU")
    assert (m.severity, m.status, m.merged_from) == ("P1", "firing", ("a", "b", "c"))
    assert "https://waimai.test/alerts/b/ack" in m.body_markdown
    again = merge_messages([m, alert("d")])
    assert again.merged_from == ("a", "b", "c", "d")
    assert merge_messages([items[0]]) is items[0]


def test_masking() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+8613812345678") == "+86138****5678"
    assert mask_recipient("oncall@waimai.test") == "o***@waimai.test"
    assert mask_recipient("U024BE7LH") == "U024BE7LH"


def test_sliding_window() -> None:
    clock = FakeClock()
    lim = SlidingWindowLimiter(RateLimit(2, 10.0, extra=((3, 100.0),)), clock)
    for _ in range(2):
        assert lim.available()
        lim.record()
    assert not lim.available()
    clock.advance(10.01)
    assert lim.available()
    lim.record()
    clock.advance(10.01)
    assert not lim.available()  # 3 in the last 100 s
    clock.advance(80)
    assert lim.available()
    lim.block_until(clock() + 5)
    assert not lim.available()


def test_retry_after_forms() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=datetime(2015, 10, 21, 7, 27, tzinfo=UTC).timestamp()) == 60.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_standard_webhooks_known_vector() -> None:
    # The test vector of the Standard Webhooks reference libraries.
    body = b'{"test": 2432232314}'
    assert (sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
            == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")


def test_registry_and_config_validation() -> None:
    with pytest.raises(KeyError):
        build_channel("carrier-pigeon", {})
    with pytest.raises(ValidationError):
        build_channel("dingtalk", {"access_token": "t", "unknown": 1})
    with pytest.raises(ValidationError):
        build_channel("webhook", {"url": "http://x/h", "secret": "not-whsec"})
    with pytest.raises(ValidationError):
        build_channel("webhook", {"url": "http://x/h", "secret": "whsec_" + base64.b64encode(b"short").decode()})
    ch = build_channel("pagerduty", {"routing_key": "R" * 32, "name": "pd-oncall",
                                     "rate_limit": {"limit": 3, "window_s": 30}})
    assert ch.name == "pd-oncall" and ch.rate_limit == RateLimit(3, 30.0)
    assert "R" * 32 not in repr(ch) and "**********" in repr(ch.config)
    ch.close()


def test_unreachable_provider_is_retried_then_failed_without_leaking_the_token() -> None:
    log = DeliveryLog()
    ch = build_channel("dingtalk", {"base_url": f"http://127.0.0.1:{free_port()}", "access_token": "tok-SECRET",
                                    "retry": {"attempts": 3, "wait_initial_s": 0.01, "wait_max_s": 0.02}}, log=log)
    r = ch.send(alert("down"))
    assert not r.ok and not r.queued and r.attempts == 3 and r.error and "unreachable" in r.error
    assert [x.event for x in log.records_for("down")] == ["retried", "retried", "failed"]
    assert "tok-SECRET" not in repr(log.records()) + repr(r)
    ch.close()
