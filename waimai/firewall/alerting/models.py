"""What the alerting keeps in the database: the rule set edited in the console, and the history
(every notification, delivery attempt and acknowledgement) the console shows and reports quote."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import String, Text
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
