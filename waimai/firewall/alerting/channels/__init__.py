"""Notification channels for multi-level alerting (issue 6).

    from waimai.firewall.alerting.channels import AlertMessage, DeliveryLog, build_channel

    log = DeliveryLog()
    ding = build_channel("dingtalk", {"access_token": "...", "secret": "SEC..."}, log=log)
    receipt = ding.send(AlertMessage(title="Order API 5xx > 5%", body_markdown="...", severity="P1",
                                     dedup_key="order-api-5xx", ack_url="https://.../ack/42"))
    ding.flush()  # call periodically: sends alerts queued by the rate limit as one combined message

Kinds: dingtalk, wecom, feishu, slack, pagerduty, webhook (Standard Webhooks), email, sms (Alibaba Cloud).
Local stand-ins of every provider, for tests and drills, are in `standins`.
"""

from waimai.firewall.alerting.channels.base import (
    CHANNELS,
    AlertMessage,
    DeliveryLog,
    DeliveryReceipt,
    DeliveryRecord,
    NotificationChannel,
    RateLimit,
    Severity,
    Status,
    build_channel,
    channel_kinds,
    mask_phone,
    mask_recipient,
    merge_messages,
)
from waimai.firewall.alerting.channels.delivery import (
    ManagedChannel,
    PermanentError,
    RetryPolicy,
    TransientError,
)

__all__ = [
    "CHANNELS",
    "AlertMessage",
    "DeliveryLog",
    "DeliveryReceipt",
    "DeliveryRecord",
    "ManagedChannel",
    "NotificationChannel",
    "PermanentError",
    "RateLimit",
    "RetryPolicy",
    "Severity",
    "Status",
    "TransientError",
    "build_channel",
    "channel_kinds",
    "mask_phone",
    "mask_recipient",
    "merge_messages",
]
