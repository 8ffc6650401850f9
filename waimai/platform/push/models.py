"""Push subscriptions (one per browser a user turned push on in), the push outbox, and the VAPID key
generated once when none is configured."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from waimai.core.database import Base, utcnow


class PushSubscription(Base):
    """A browser's push subscription (the Push API's endpoint and keys), owned by the user who made it.
    `auth` is the subscription's secret: it is stored to encrypt messages and never shown or logged."""

    __tablename__ = "push_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    endpoint: Mapped[str] = mapped_column(String(800), unique=True)
    p256dh: Mapped[str] = mapped_column(String(100))
    auth: Mapped[str] = mapped_column(String(40))
    locale: Mapped[str] = mapped_column(String(8), default="zh_CN")  # the page's language when it was made
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_sent_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class PushMessage(Base):
    """One message owed to one subscription, written in the transaction of the change it tells about;
    the sender delivers it. `ref` names what it is about (`order:12:accepted`, `notice:7`): a second copy
    for the same subscription is refused by the unique key, and the notice rate limit counts refs."""

    __tablename__ = "push_messages"
    __table_args__ = (UniqueConstraint("subscription_id", "ref", name="uq_push_message_sub_ref"),
                      Index("ix_push_messages_state_next", "state", "next_attempt_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("push_subscriptions.id", ondelete="CASCADE"),
                                                 index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # order | notice
    ref: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(String(500))
    url: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(8), default="pending")  # pending | sent | failed | dead
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class PushKey(Base):
    """The VAPID key pair generated once when WAIMAI_VAPID_PRIVATE_KEY is not set (one row, id 1)."""

    __tablename__ = "push_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    private_key: Mapped[str] = mapped_column(String(64))  # base64url of the raw P-256 scalar
    public_key: Mapped[str] = mapped_column(String(100))  # base64url of the uncompressed point
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
