"""Wire Web Push into the app: the VAPID keys, the order hook, the sender job; returns its jobs."""

from __future__ import annotations

import threading

from fastapi import FastAPI

from waimai.config import Settings
from waimai.core.background import Job
from waimai.platform.push import service
from waimai.platform.push.vapid import VapidKeys, keys


def install(app: FastAPI, settings: Settings) -> list[Job]:
    from waimai.platform.ordering.service import TRANSITION_HOOKS

    db = app.state.db
    configured = settings.vapid_private_key.get_secret_value() if settings.vapid_private_key else None
    lock = threading.Lock()
    cached: list[VapidKeys] = []

    def push_keys() -> VapidKeys:
        """Read (or made) on first use, so a process started before its migrations still starts."""
        with lock:
            if not cached:
                cached.append(keys(db, configured))
            return cached[0]

    app.state.push_keys = push_keys
    if service.queue_order_update not in TRANSITION_HOOKS:
        TRANSITION_HOOKS.append(service.queue_order_update)
    sender = service.PushSender(db, push_keys, subject=settings.vapid_subject, ttl_s=settings.push_ttl_s,
                                resilience=getattr(app.state, "resilience", None))
    app.state.push_sender = sender
    from waimai.platform.push.routes import router

    app.include_router(router)
    return [Job("push_send", 1.0, sender.run_once, role="notifier", singleton=True)]
