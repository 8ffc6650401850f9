"""Plain data types shared by the dispatcher, the simulator and the MDRP tools.

Times are minutes (floats allowed, MDRP uses whole minutes), coordinates are metres.
The live service builds :class:`Snapshot` objects from its tables; the simulator builds
them from an :class:`Instance`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

# travel_time(x1, y1, x2, y2) -> minutes; must broadcast over numpy arrays.
TravelTime = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def euclid_ceil(meters_per_minute: float) -> TravelTime:
    """MDRP travel time: ceil(euclidean distance / speed), whole minutes."""
    speed = float(meters_per_minute)

    def travel_time(x1, y1, x2, y2):
        dx = np.asarray(x1, dtype=float) - np.asarray(x2, dtype=float)
        dy = np.asarray(y1, dtype=float) - np.asarray(y2, dtype=float)
        # sqrt is correctly rounded (IEEE), so every caller agrees on the ceiling.
        return np.ceil(np.sqrt(dx * dx + dy * dy) / speed)

    travel_time.meters_per_minute = speed  # type: ignore[attr-defined]
    return travel_time


def travel_minutes(x1: float, y1: float, x2: float, y2: float, meters_per_minute: float) -> int:
    """Scalar MDRP travel time (used by the independent feasibility checker)."""
    dx = float(x1) - float(x2)
    dy = float(y1) - float(y2)
    return int(math.ceil(math.sqrt(dx * dx + dy * dy) / float(meters_per_minute)))


# --------------------------------------------------------------------------- dispatcher I/O


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """An order that has been placed and is not yet assigned."""

    id: str
    restaurant: str
    x: float
    y: float
    placed: float
    ready: float  # estimate of the food-ready time


@dataclass(frozen=True, slots=True)
class CourierState:
    """A courier as the dispatcher sees it.

    ``free_at`` is when the courier finishes what it is already committed to (``<= now``
    when idle) and ``x, y`` where it will be then.  ``on_time``/``off_time`` bound the
    shift: it cannot leave before ``on_time`` and cannot pick up after ``off_time``.
    """

    id: str
    x: float
    y: float
    free_at: float
    on_time: float
    off_time: float
    capacity: int = 4


@dataclass(frozen=True, slots=True)
class Snapshot:
    now: float
    orders: list[OpenOrder]
    couriers: list[CourierState]
    restaurants: dict[str, tuple[float, float]]
    pickup_service: float = 4.0
    dropoff_service: float = 4.0


@dataclass(frozen=True, slots=True)
class Assignment:
    """Send ``courier`` to ``restaurant``, pick up ``orders`` and drop them off in that order."""

    courier: str
    orders: tuple[str, ...]
    restaurant: str
    planned_pickup: float
    planned_departure: float = 0.0


# --------------------------------------------------------------------------- instances


@dataclass(slots=True)
class Order:
    id: str
    x: float
    y: float
    placed: float
    restaurant: str
    ready: float


@dataclass(slots=True)
class Courier:
    id: str
    x: float
    y: float
    on_time: float
    off_time: float
    capacity: int = 4


@dataclass(slots=True)
class Params:
    meters_per_minute: float = 320.0
    pickup_service: float = 4.0
    dropoff_service: float = 4.0
    target_ctd: float = 40.0
    max_ctd: float = 90.0
    pay_per_order: float = 10.0
    pay_per_hour: float = 15.0


@dataclass(slots=True)
class Instance:
    name: str
    orders: list[Order]
    restaurants: dict[str, tuple[float, float]]
    couriers: list[Courier]
    params: Params = field(default_factory=Params)

    def travel_time(self) -> TravelTime:
        return euclid_ceil(self.params.meters_per_minute)


# --------------------------------------------------------------------------- solutions


@dataclass(slots=True)
class AssignmentRecord:
    assignment_time: float
    pickup_time: float
    courier: str
    orders: tuple[str, ...]


@dataclass(slots=True)
class OrderRecord:
    order: str
    placement_time: float
    ready_time: float
    pickup_time: float
    dropoff_time: float
    courier: str


@dataclass(slots=True)
class MoveRecord:
    courier: str
    departure_time: float
    origin: str  # "0" (on-location), a restaurant id or an order id
    destination: str


@dataclass(slots=True)
class Solution:
    assignments: list[AssignmentRecord] = field(default_factory=list)
    orders: list[OrderRecord] = field(default_factory=list)
    moves: list[MoveRecord] = field(default_factory=list)
    decision_seconds: list[float] = field(default_factory=list)
    rejected: int = 0  # assignments the simulator refused (dispatcher bugs)
