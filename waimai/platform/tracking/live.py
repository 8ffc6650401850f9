"""Feed the live-tracking broker: order status changes (a subscriber of the one event path) and rider positions.

Status changes are outbox events (`order.<status>`, written with the change); the dispatcher hands them to
`status_publisher(broker)` after they commit, and the broker fans them out (over LISTEN/NOTIFY to every
replica on PostgreSQL). Rider positions are not domain events — nothing else reacts to them and they are
not kept — so the position route publishes them straight to the app's broker.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from waimai.core.database import utcnow
from waimai.core.events import Event, Handler
from waimai.platform.ordering.models import Order
from waimai.platform.tracking.broker import Broker


def status_publisher(broker: Broker) -> Handler:
    """Subscriber of `order.*`: every state change (an event carrying `status`) goes to the order's watchers."""

    def publish_status(_db: Session, ev: Event) -> None:
        status = ev.payload.get("status")
        if status is None or ev.payload.get("order_id") is None:
            return  # order.placed, order.assigned: not a state change (the stream starts with the current state)
        broker.publish(int(ev.payload["order_id"]), "status",
                       {"status": status, "rider_id": ev.payload.get("rider_id"), "reason": ev.payload.get("reason"),
                        "at": ev.created_at.isoformat()})

    return publish_status


def rider_moved(broker: Broker, db: Session, rider_id: int, x: float, y: float) -> int:
    """Publish the rider's position and a fresh ETA to every order the rider carries; returns how many."""
    from waimai.platform.catalog.models import DeliveryPoint
    from waimai.platform.tracking.routes import eta_minutes

    rows = db.execute(select(Order.id, Order.status, DeliveryPoint.x, DeliveryPoint.y)
                      .join(DeliveryPoint, DeliveryPoint.id == Order.delivery_point_id)
                      .where(Order.rider_id == rider_id,
                             Order.status.in_(("accepted", "preparing", "ready", "picked_up")))).all()
    for oid, status, px, py in rows:
        data = {"x": x, "y": y, "at": utcnow().isoformat()}
        if status == "picked_up":
            data["eta_minutes"] = eta_minutes(x, y, px, py)
        broker.publish(oid, "position", data)
    return len(rows)
