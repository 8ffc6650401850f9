"""Streaming anomaly detectors for the fault firewall (issue 5).

``base`` defines the :class:`~waimai.firewall.detect.base.Detector` plug-in interface and the
registry; ``detectors``/``novelty``/``baselines`` the implementations; ``nab`` the NAB v1.1 scorer
and benchmark; ``cli`` the Typer commands.
"""

from waimai.firewall.detect import baselines, detectors, product  # noqa: F401  (registers the detectors)
from waimai.firewall.detect.base import DEFAULT_DETECTOR, DETECTORS, Detector, get_detector

__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "Detector", "get_detector"]
