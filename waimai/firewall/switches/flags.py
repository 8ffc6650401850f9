"""Switches read through OpenFeature: the code asks the standard client, our provider answers from the
switches table, so an Unleash or Flagsmith provider can be swapped in without touching a call site.

    from waimai.core import flags          # the reading side (any layer)
    if flags.enabled("payment.cod_only"): ...

`SwitchProvider` keeps a snapshot of the whole table and reloads it at most every `ttl_s` (0.5 s by
default) in the background: readers never wait on the database once the first snapshot exists, so a
hot path pays a dictionary lookup (plus the SDK's ~10 µs), and a slow or failing database leaves the
last known switches in force (reported with reason STALE / ERROR). A flip made through `set_switch`
clears this process's snapshot when its transaction commits; other replicas see it within `ttl_s`
plus one reload.

To serve flags from another system, register its provider for the `waimai` domain instead:
`openfeature.api.set_provider(UnleashProvider(...), domain=flags.DOMAIN)`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import TypeMismatchError
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata
from sqlalchemy import select

from waimai.core.database import Database
from waimai.core.flags import DOMAIN, client, details, enabled, why
from waimai.firewall.switches.models import Switch

__all__ = ["DOMAIN", "FlagRow", "SwitchProvider", "client", "details", "enabled", "install", "invalidate", "why"]
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class FlagRow:
    enabled: bool
    reason: str
    updated_by: str
    updated_at: str


class SwitchProvider(AbstractProvider):
    """OpenFeature provider over the `switches` table (boolean flags named like the switches)."""

    def __init__(self, database: Database, *, ttl_s: float = 0.5) -> None:
        super().__init__()
        self.database = database
        self.ttl_s = ttl_s
        self._snapshot: dict[str, FlagRow] | None = None
        self._loaded_at = 0.0
        self._error: str | None = None
        self._reloading = threading.Lock()

    def get_metadata(self) -> Metadata:
        return Metadata(name="waimai-switches")

    # -- the snapshot -------------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            with self.database.read_session() as s:
                rows = s.execute(select(Switch.name, Switch.enabled, Switch.reason, Switch.updated_by,
                                        Switch.updated_at)).all()
            self._snapshot = {r.name: FlagRow(bool(r.enabled), r.reason, r.updated_by, r.updated_at.isoformat())
                              for r in rows}
            self._error = None
        except Exception as exc:  # noqa: BLE001 - keep the last known switches when the database fails
            if self._error is None:
                log.warning("switches_unreadable", error=exc.__class__.__name__, kept=self._snapshot is not None)
            self._error = exc.__class__.__name__
        finally:
            self._loaded_at = time.monotonic()

    def _reload_in_background(self) -> None:
        try:
            self._load()
        finally:
            self._reloading.release()

    def snapshot(self) -> dict[str, FlagRow]:
        snap = self._snapshot
        if snap is None:  # nothing known yet (start-up, or just invalidated): read now
            with self._reloading:
                if self._snapshot is None:
                    self._load()
            return self._snapshot or {}
        if time.monotonic() - self._loaded_at > self.ttl_s and self._reloading.acquire(blocking=False):
            threading.Thread(target=self._reload_in_background, name="switch-reload", daemon=True).start()
        return snap

    def invalidate(self) -> None:
        self._snapshot = None

    # -- OpenFeature ----------------------------------------------------------------------------------
    def resolve_boolean_details(self, flag_key: str, default_value: bool,
                                evaluation_context: EvaluationContext | None = None) -> FlagResolutionDetails[bool]:
        row = self.snapshot().get(flag_key)
        if row is None:
            return FlagResolutionDetails(value=default_value, reason=Reason.DEFAULT)
        reason = Reason.STALE if self._error else Reason.STATIC
        return FlagResolutionDetails(value=row.enabled, reason=reason, variant="on" if row.enabled else "off",
                                     flag_metadata={"reason": row.reason, "updated_by": row.updated_by,
                                                    "updated_at": row.updated_at})

    def _not_boolean(self, flag_key: str) -> FlagResolutionDetails[Any]:
        raise TypeMismatchError(f"switch {flag_key!r} is a boolean flag")

    def resolve_string_details(self, flag_key: str, default_value: str,
                               evaluation_context: EvaluationContext | None = None) -> FlagResolutionDetails[str]:
        return self._not_boolean(flag_key)

    def resolve_integer_details(self, flag_key: str, default_value: int,
                                evaluation_context: EvaluationContext | None = None) -> FlagResolutionDetails[int]:
        return self._not_boolean(flag_key)

    def resolve_float_details(self, flag_key: str, default_value: float,
                              evaluation_context: EvaluationContext | None = None) -> FlagResolutionDetails[float]:
        return self._not_boolean(flag_key)

    def resolve_object_details(
            self, flag_key: str, default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
            evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._not_boolean(flag_key)


_provider: SwitchProvider | None = None


def install(database: Database, *, ttl_s: float = 0.5) -> SwitchProvider:
    """Register the switches-table provider for this process (each app start does it for its database)."""
    global _provider
    provider = SwitchProvider(database, ttl_s=ttl_s)
    api.set_provider(provider, domain=DOMAIN)
    _provider = provider
    return provider


def invalidate() -> None:
    """Forget this process's snapshot (after a flip commits): the next read goes to the database."""
    if _provider is not None:
        _provider.invalidate()
