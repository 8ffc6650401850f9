"""Order-volume forecasting (issue 5): forecasters, rider recommendation and the MASE benchmark."""

from waimai.firewall.forecast.models import (
    DEFAULT_FORECASTER,
    FORECASTERS,
    Forecaster,
    recommend_riders,
)

__all__ = ["DEFAULT_FORECASTER", "FORECASTERS", "Forecaster", "recommend_riders"]
