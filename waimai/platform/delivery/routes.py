from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select

from waimai.core import uow
from waimai.core.database import utcnow
from waimai.core.deps import API_PREFIX, OpsDep, ReadSessionDep, RiderDep, SessionDep
from waimai.platform.delivery import service
from waimai.platform.delivery.models import Rider
from waimai.platform.delivery.schemas import PositionIn, RiderOut, ShiftIn
from waimai.platform.ordering import service as ordering
from waimai.platform.ordering.schemas import OrderOut

router = APIRouter(prefix=API_PREFIX, tags=["riders"])


@router.get("/riders/me", response_model=RiderOut)
def me(p: RiderDep, db: ReadSessionDep) -> Rider:
    return service.rider_for_user(db, p.user_id)


@router.post("/riders/me/shift", response_model=RiderOut)
def shift(body: ShiftIn, p: RiderDep, db: SessionDep) -> Rider:
    rider = service.set_shift(db, service.rider_for_user(db, p.user_id), on=body.on_shift, hours=body.hours)
    return rider


@router.post("/riders/me/position", response_model=RiderOut)
def position(body: PositionIn, p: RiderDep, db: SessionDep, request: Request) -> Rider:
    rider = service.rider_for_user(db, p.user_id)
    rider.x, rider.y, rider.position_at = body.x, body.y, utcnow()
    from waimai.platform.tracking.live import rider_moved

    def fan_out() -> None:
        with request.app.state.db.read_session() as rs:  # fan-out reads only: never hold the write lock for it
            rider_moved(request.app.state.broker, rs, rider.id, body.x, body.y)

    uow.after_commit(db, fan_out)  # riders' followers hear of the position once it is stored
    return rider


@router.get("/riders/me/tasks", response_model=list[OrderOut])
def my_tasks(p: RiderDep, db: ReadSessionDep) -> list[OrderOut]:
    rider = service.rider_for_user(db, p.user_id)
    return [ordering.to_out(o, viewer=p, viewer_is_carrier=True) for o in service.tasks(db, rider)]


@router.get("/riders", response_model=list[RiderOut])
def riders(_p: OpsDep, db: ReadSessionDep) -> list[Rider]:
    return list(db.scalars(select(Rider).order_by(Rider.id)))
