"""One contract, every channel, over real HTTP/SMTP against the providers' stand-ins."""

from __future__ import annotations

import logging

import pytest

from tests.firewall.alerting.conftest import PHONE, PHONE_2, FakeClock, Harness, alert
from waimai.firewall.alerting.channels import DeliveryLog, NotificationChannel, build_channel, channel_kinds

KINDS = ["dingtalk", "wecom", "feishu", "slack", "pagerduty", "webhook", "email", "sms"]


def test_every_registered_kind_is_under_contract() -> None:
    assert sorted(KINDS) == channel_kinds()


@pytest.mark.parametrize("kind", KINDS)
def test_channel_contract(kind: str, harnesses: dict[str, Harness], clock: FakeClock,
                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="waimai.firewall.alerting")
    h = harnesses[kind]
    log = DeliveryLog()
    ch = build_channel(kind, h.config(), clock=clock, log=log)
    bad = build_channel(kind, h.config(forged=True), clock=clock, log=log)
    assert isinstance(ch, NotificationChannel)
    step = ch.rate_limit.longest_window_s + 1
    try:
        # 1. A P1 firing alert is accepted by the stand-in, which checked the signature/token.
        r = ch.send(alert("k-accepted"), recipients=h.recipients)
        assert r.ok, r.error
        assert (r.channel, r.attempts, r.merged_count, r.queued, r.dedup_key) == (kind, 1, 1, False, "k-accepted")
        assert r.status_code in (200, 202, 250) and r.sent_at is not None and r.error is None
        assert len(h.state.accepted) == 1 and not h.state.rejected
        assert "Order API 5xx rate above 5%" in h.text(h.state.accepted[0])
        assert [x.event for x in log.records_for("k-accepted")] == ["sent"]

        # 2. Signed with the wrong secret (or the wrong token/key): refused, not retried, nothing delivered.
        clock.advance(step)
        r = bad.send(alert("k-forged"), recipients=h.recipients)
        assert not r.ok and not r.queued and r.attempts == 1 and r.error
        assert len(h.state.accepted) == 1 and len(h.state.rejected) >= 1  # SMTP clients try PLAIN, then LOGIN
        assert [x.event for x in log.records_for("k-forged")] == ["failed"]

        # 3. Two transient failures (503 / SMTP 451), then success: delivered on the third attempt.
        clock.advance(step)
        h.state.fail_next(2, 503)
        r = ch.send(alert("k-flaky"), recipients=h.recipients)
        assert r.ok and r.attempts == 3, r
        recs = log.records_for("k-flaky")
        assert [(x.event, x.attempt) for x in recs] == [("retried", 1), ("retried", 2), ("sent", 3)]
        assert len(h.state.accepted) == 2

        # 4. limit + 5 alerts inside one window: at most `limit` requests in that window, the rest queued
        #    and delivered later as ONE combined message.
        clock.advance(step)
        start = clock()
        before = len(h.state.accepted)
        n = ch.rate_limit.limit + 5
        receipts = [ch.send(alert(f"k-burst-{i}", title=f"Burst alert {i}", severity="P2"),
                            recipients=h.recipients) for i in range(n)]
        direct = [x for x in receipts if x.ok]
        queued = [x for x in receipts if x.queued]
        assert len(direct) + len(queued) == n
        assert 1 <= len(direct) <= ch.rate_limit.limit and len(queued) >= 5
        assert receipts[: len(direct)] == direct  # the first ones go, the rest wait
        assert h.state.requests_between(start, start + ch.rate_limit.window_s) <= ch.rate_limit.limit
        assert ch.pending == len(queued)
        assert ch.flush() is None  # the window is still spent
        due = ch.next_flush_at()
        assert due is not None and start < due <= start + ch.rate_limit.longest_window_s
        clock.t = due - 0.001
        assert ch.flush() is None
        clock.t = due
        merged = ch.flush()
        assert merged is not None and merged.ok and merged.merged_count == len(queued) and merged.attempts == 1
        assert ch.pending == 0 and ch.next_flush_at() is None
        assert len(h.state.accepted) == before + len(direct) + 1
        assert f"{len(queued)} more alerts" in h.text(h.state.accepted[-1])
        for i in range(len(direct), n):
            assert [x.event for x in log.records_for(f"k-burst-{i}")] == ["queued", "sent"]
        assert log.records_for(f"k-burst-{n - 1}")[-1].dedup_key == merged.dedup_key

        # 5. No secret in reprs, logs or the delivery log; phone numbers only masked.
        shown = "\n".join([repr(ch), repr(bad), repr(ch.config), repr(bad.config), caplog.text,
                           repr(log.records()), repr(receipts), repr(merged)])
        for secret in h.secrets:
            assert secret not in shown
        for phone in (PHONE, PHONE_2):
            assert phone not in shown
        if h.recipients and h.recipients[0] in (PHONE, PHONE_2):
            masked = h.recipients[0][:3] + "****" + h.recipients[0][-4:]
            assert masked in caplog.text and log.records_for("k-accepted")[0].recipients == (masked,)
    finally:
        ch.close()
        bad.close()
