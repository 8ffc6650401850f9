from pathlib import Path

import pytest

from waimai.platform.dispatch.model import Courier, Instance, Order, Params

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "mdrplib"


@pytest.fixture
def mdrp_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip("MDRP data (../shared/data/mdrplib) not available")
    return DATA


@pytest.fixture
def tiny() -> Instance:
    """Two restaurants, two couriers, three orders; speed 100 m/min, 4 + 4 min service."""
    params = Params(meters_per_minute=100, pickup_service=4, dropoff_service=4)
    restaurants = {"r1": (0.0, 0.0), "r2": (1000.0, 0.0)}
    couriers = [Courier("c1", 0, 500, 0, 100), Courier("c2", 1000, 500, 0, 100)]
    orders = [
        Order("o1", 0, 1000, 10, "r1", 20),
        Order("o2", 0, 1500, 12, "r1", 22),
        Order("o3", 1000, 1000, 15, "r2", 25),
    ]
    return Instance("tiny", orders, restaurants, couriers, params)
