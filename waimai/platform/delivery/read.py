"""What the layers above may read about delivery (the firewall's gauges): through these functions, never
the `riders` table (the `firewall-through-services` contract)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from waimai.platform.delivery.models import Rider


def riders_on_shift(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(Rider).where(Rider.on_shift.is_(True))) or 0)
