"""The order state machine: which transitions exist and who may make each."""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    created = "created"
    paid = "paid"
    cod_confirmed = "cod_confirmed"
    accepted = "accepted"
    preparing = "preparing"
    ready = "ready"
    picked_up = "picked_up"
    delivered = "delivered"
    cancelled = "cancelled"
    rejected = "rejected"
    refunded = "refunded"
    failed = "failed"


S = Status
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.created: frozenset({S.paid, S.cod_confirmed, S.cancelled, S.failed}),
    S.paid: frozenset({S.accepted, S.rejected, S.cancelled}),
    S.cod_confirmed: frozenset({S.accepted, S.rejected, S.cancelled}),
    S.accepted: frozenset({S.preparing, S.cancelled}),
    S.preparing: frozenset({S.ready, S.cancelled}),
    S.ready: frozenset({S.picked_up, S.cancelled}),
    S.picked_up: frozenset({S.delivered, S.failed}),
    S.delivered: frozenset(),
    S.cancelled: frozenset({S.refunded}),
    S.rejected: frozenset({S.refunded}),
    S.failed: frozenset({S.refunded}),
    S.refunded: frozenset(),
}

# Who may drive each target state (ops may make any legal transition; "system" is the platform itself).
ACTORS: dict[Status, frozenset[str]] = {
    S.paid: frozenset({"system"}),
    S.cod_confirmed: frozenset({"system", "customer", "support"}),
    S.accepted: frozenset({"merchant"}),
    S.rejected: frozenset({"merchant"}),
    S.preparing: frozenset({"merchant"}),
    S.ready: frozenset({"merchant"}),
    S.picked_up: frozenset({"rider"}),
    S.delivered: frozenset({"rider"}),
    S.failed: frozenset({"rider", "system"}),
    S.cancelled: frozenset({"customer", "merchant", "support", "system"}),
    S.refunded: frozenset({"system"}),
}

# A customer may cancel only before the kitchen has accepted.
CUSTOMER_CANCELLABLE = frozenset({S.created, S.paid, S.cod_confirmed})
ACTIVE = frozenset({S.created, S.paid, S.cod_confirmed, S.accepted, S.preparing, S.ready, S.picked_up})
KITCHEN = frozenset({S.accepted, S.preparing})
TERMINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


def can_transition(current: str, target: str) -> bool:
    try:
        return Status(target) in TRANSITIONS[Status(current)]
    except ValueError:
        return False
