"""Internal security alerts: attack symptoms (guessing proof codes, sign-in floods) told to ops, never
to the public.

An alert is a row in `security_alerts`, written in the same transaction as the lockout that caused it, so
every replica and the console see it; an outbox event `security.alert` with it, and a warning log line
(`security_alert`, searchable at /api/v1/logs). One alert per kind and subject per window: a flood of
wrong codes is one alert, not a flood of alerts. Public incidents come from user-facing symptoms only,
so nothing here touches incidents or the status page.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import structlog
from sqlalchemy import Index, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from waimai.core.database import Base, utcnow
from waimai.core.outbox import emit

log = structlog.get_logger(__name__)
DEDUPE = dt.timedelta(minutes=10)


class SecurityAlert(Base):
    __tablename__ = "security_alerts"
    __table_args__ = (Index("ix_security_alerts_kind_subject_at", "kind", "subject", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # proof_code_locked, rider_proof_locked, login_lockout
    subject: Mapped[str] = mapped_column(String(120))  # order:42, rider-user:7, address:10.0.0.5, phone:138****0001
    source: Mapped[str] = mapped_column(String(64), default="")  # the client address, when known
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


def raise_alert(db: Session, *, kind: str, subject: str, source: str = "", dedupe: dt.timedelta = DEDUPE,
                **details: Any) -> SecurityAlert | None:
    """Record an alert in the caller's transaction; None when the same kind and subject alerted within
    `dedupe` (the existing alert already tells ops)."""
    now = utcnow()
    recent = db.scalar(select(SecurityAlert.id).where(SecurityAlert.kind == kind, SecurityAlert.subject == subject,
                                                      SecurityAlert.created_at >= now - dedupe).limit(1))
    if recent is not None:
        return None
    alert = SecurityAlert(kind=kind, subject=subject[:120], source=source[:64], details=details, created_at=now)
    db.add(alert)
    emit(db, "security.alert", key=subject[:64], kind=kind, subject=subject, source=source, **details)
    log.warning("security_alert", kind=kind, subject=subject, source=source, **details)
    return alert


def recent(db: Session, *, limit: int = 100) -> list[SecurityAlert]:
    return list(db.scalars(select(SecurityAlert).order_by(SecurityAlert.id.desc()).limit(limit)))
