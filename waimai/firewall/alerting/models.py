"""What the alerting keeps in the database: the rule set edited in the console, and the history
(every notification, delivery attempt and acknowledgement) the console shows and reports quote."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from waimai.core.database import Base, utcnow


class AlertRuleSet(Base):
    __tablename__ = "alert_rule_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    yaml: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AlertHistory(Base):
    __tablename__ = "alert_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    event: Mapped[str] = mapped_column(String(40))  # notified:first, delivery:failed, acknowledged, rules:updated …
    group_key: Mapped[str] = mapped_column(String(300), default="")
    title: Mapped[str] = mapped_column(String(300), default="")
    severity: Mapped[str] = mapped_column(String(4), default="")
    status: Mapped[str] = mapped_column(String(16), default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


# --- the live alert state, shared by every replica (read and written under the alerting lock) -------------
class AlertRow(Base):
    """One alert instance by fingerprint: the last status a rule or a sender gave it, its acknowledgement."""

    __tablename__ = "alert_states"

    fingerprint: Mapped[str] = mapped_column(String(32), primary_key=True)
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    annotations: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(10))
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime | None]
    value: Mapped[float | None]
    generator: Mapped[str] = mapped_column(String(40), default="waimai")
    acked_by: Mapped[str | None] = mapped_column(String(80))
    acked_at: Mapped[dt.datetime | None]
    flaps: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class AlertGroupRow(Base):
    """One notification group: its route, members, flush and escalation position (`seq` numbers the sends)."""

    __tablename__ = "alert_groups"

    key: Mapped[str] = mapped_column(String(500), primary_key=True)
    route: Mapped[dict[str, Any]] = mapped_column(default=dict)
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    members: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[dt.datetime | None]
    last_flush: Mapped[dt.datetime | None]
    last_sent_at: Mapped[dt.datetime | None]
    last_digest: Mapped[str] = mapped_column(String(64), default="")
    first_firing_at: Mapped[dt.datetime | None]
    escalation_step: Mapped[int] = mapped_column(default=0)
    acked_by: Mapped[str | None] = mapped_column(String(80))
    acked_at: Mapped[dt.datetime | None]
    seq: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class SilenceRow(Base):
    __tablename__ = "alert_silences"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    matchers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime] = mapped_column(index=True)
    created_by: Mapped[str] = mapped_column(String(80))
    comment: Mapped[str] = mapped_column(String(300), default="")


class NotificationRow(Base):
    """The notification log and outbox: written `pending` with the decision, `sending` when the leader takes it,
    `sent` / `failed` with the receipt, `unknown` when a leader died between taking and recording it
    (never sent again: at most once per group, step and receiver)."""

    __tablename__ = "alert_notifications"
    __table_args__ = (UniqueConstraint("group_key", "step", "receiver", name="uq_alert_notifications_step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    group_key: Mapped[str] = mapped_column(String(500))
    step: Mapped[str] = mapped_column(String(40))
    receiver: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(120))
    claimed_at: Mapped[dt.datetime | None]
    message: Mapped[dict[str, Any]] = mapped_column(default=dict)
    members: Mapped[list[Any]] = mapped_column(default=list)
    title: Mapped[str] = mapped_column(String(300), default="")
    ok: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(String(300))
