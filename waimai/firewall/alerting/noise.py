"""Noise per rule over the stored alert history, so a team sees which rule to fix.

Read only from the notification and acknowledgement history (`alert_history`), through
:func:`rule_noise` alone: when alert state moves elsewhere, this function is the one to re-point.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from waimai.firewall.alerting.models import AlertHistory

_COUNT = re.compile(r" \(\d+\)$")
_ESCALATION = re.compile(r"^\[escalation \d+\] ")
SHORT_LIVED = dt.timedelta(minutes=1)  # the floor for rules without `for`


@dataclass
class RuleNoise:
    rule: str
    fired: int = 0
    acknowledged: int = 0
    auto_resolved: int = 0  # resolved by itself within the rule's `for` (a flap that paged someone)

    @property
    def noisy_share(self) -> float:
        return self.auto_resolved / self.fired if self.fired else 0.0


def _names(title: str) -> list[str]:
    title = _COUNT.sub("", _ESCALATION.sub("", title))
    return [part.strip().split(" ")[0] for part in title.split(", ") if part.strip()]


def rule_noise(db: Session, *, since: dt.datetime, for_by_rule: dict[str, dt.timedelta]) -> list[RuleNoise]:
    """Per rule since ``since``: groups that fired (first notification), were acknowledged, and
    resolved by themselves within ``max(for, 1 min)`` of firing without an acknowledgement."""
    rows = db.scalars(select(AlertHistory).where(AlertHistory.at >= since,
                                                 AlertHistory.event.in_(("notified:first", "notified:resolved",
                                                                         "acknowledged")))
                      .order_by(AlertHistory.at, AlertHistory.id)).all()
    out: dict[str, RuleNoise] = {}
    firing: dict[str, tuple[dt.datetime, list[str], bool]] = {}  # group -> (since, rules, acked)

    def get(name: str) -> RuleNoise:
        return out.setdefault(name, RuleNoise(name))

    for r in rows:
        at = r.at if r.at.tzinfo else r.at.replace(tzinfo=dt.UTC)
        if r.event == "notified:first":
            if r.group_key in firing:  # one group notifies each receiver: count it once
                continue
            names = _names(r.title)
            firing[r.group_key] = (at, names, False)
            for n in names:
                get(n).fired += 1
        elif r.event == "acknowledged" and r.group_key in firing:
            start, names, acked = firing[r.group_key]
            if not acked:
                for n in names:
                    get(n).acknowledged += 1
            firing[r.group_key] = (start, names, True)
        elif r.event == "notified:resolved" and r.group_key in firing:
            start, names, acked = firing.pop(r.group_key)
            for n in names:
                if not acked and at - start <= max(for_by_rule.get(n, dt.timedelta(0)), SHORT_LIVED):
                    get(n).auto_resolved += 1
    return sorted(out.values(), key=lambda n: (-n.auto_resolved, -n.fired, n.rule))
