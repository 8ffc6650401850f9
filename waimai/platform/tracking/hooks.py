"""Feed the broker: order state changes (published after their transaction commits) and rider positions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from waimai.core.database import utcnow
from waimai.platform.ordering.models import Order
from waimai.platform.ordering.state import Status
from waimai.platform.tracking.broker import Broker

_BROKER: Broker | None = None


def install(broker: Broker) -> None:
    global _BROKER
    _BROKER = broker


def on_transition(db: Session, order: Order, to: Status, reason: str | None) -> None:
    """Transition hook: remember the change on the session; it goes out only if the commit does."""
    if isinstance(db, Session):
        db.info.setdefault("tracking", []).append(
            (order.id, "status", {"status": to.value, "rider_id": order.rider_id, "reason": reason,
                                  "at": utcnow().isoformat()}))


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    pending: list[tuple[int, str, dict[str, Any]]] = session.info.pop("tracking", [])
    if _BROKER is not None:
        for order_id, kind, data in pending:
            _BROKER.publish(order_id, kind, data)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop("tracking", None)


def rider_moved(db: Session, rider_id: int, x: float, y: float) -> int:
    """Publish the rider's position and a fresh ETA to every order the rider carries; returns how many."""
    from waimai.platform.catalog.models import DeliveryPoint
    from waimai.platform.tracking.routes import eta_minutes

    if _BROKER is None:
        return 0
    rows = db.execute(select(Order.id, Order.status, DeliveryPoint.x, DeliveryPoint.y)
                      .join(DeliveryPoint, DeliveryPoint.id == Order.delivery_point_id)
                      .where(Order.rider_id == rider_id,
                             Order.status.in_(("accepted", "preparing", "ready", "picked_up")))).all()
    for oid, status, px, py in rows:
        data = {"x": x, "y": y, "at": utcnow().isoformat()}
        if status == "picked_up":
            data["eta_minutes"] = eta_minutes(x, y, px, py)
        _BROKER.publish(oid, "position", data)
    return len(rows)
