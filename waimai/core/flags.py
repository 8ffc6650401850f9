"""Reading switches: the OpenFeature client every layer asks (`flags.enabled("payment.cod_only")`).

The answer comes from whichever provider is registered for the `waimai` domain: the firewall's
`SwitchProvider` over the `switches` table (waimai/firewall/switches/flags.py installs it at app start), or
an Unleash / Flagsmith provider tomorrow. This side lives in core so the platform can ask without importing
the firewall that owns the switches (the layers contract in pyproject.toml); with no provider installed
every switch reads off.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagEvaluationDetails

DOMAIN = "waimai"

_client: OpenFeatureClient | None = None


def client() -> OpenFeatureClient:
    """The domain's client: it looks its provider up on each evaluation, so a later `set_provider` applies."""
    global _client
    if _client is None:
        _client = api.get_client(DOMAIN)
    return _client


def enabled(name: str, context: Mapping[str, Any] | None = None) -> bool:
    """Is the switch on? Off when nobody ever set it, or when no provider is installed."""
    ctx = EvaluationContext(attributes=dict(context)) if context else None
    return client().get_boolean_value(name, False, ctx)


def details(name: str) -> FlagEvaluationDetails[bool]:
    """Value plus who set it, when and why (flag metadata) — for error messages and the ops pages."""
    return client().get_boolean_details(name, False)


def why(name: str) -> str:
    d = details(name)
    if d.error_code not in (None, ErrorCode.FLAG_NOT_FOUND):
        return ""
    return str(d.flag_metadata.get("reason", "")) if d.flag_metadata else ""
