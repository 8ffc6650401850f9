"""Dispatch engine, discrete-event simulator and MDRP benchmark."""

from .engine import EngineConfig, GreedyDispatcher, RollingHorizonDispatcher
from .model import Assignment, CourierState, Instance, OpenOrder, Snapshot, euclid_ceil
from .simulator import campus_day, simulate

__all__ = [
    "Assignment",
    "CourierState",
    "EngineConfig",
    "GreedyDispatcher",
    "Instance",
    "OpenOrder",
    "RollingHorizonDispatcher",
    "Snapshot",
    "campus_day",
    "euclid_ceil",
    "simulate",
]
