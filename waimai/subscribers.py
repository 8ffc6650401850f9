"""Every cross-domain reaction and incident plug-in, composed in one place.

Producers only write outbox events (`waimai.core.outbox.emit`); this module says who reacts to which topic,
and `waimai.core.events.Dispatcher` delivers them (at least once, each subscriber's database effects
committed with its delivery record, retried, dead-lettered after too many failures). A new reaction is a
function `(session, event) -> None` in its own domain, added here with a test (tests/core/test_events.py
checks that every name below has one).

| subscriber | topics | effect |
|---|---|---|
| tracking.status | order.* (state changes) | the order's live-tracking watchers (SSE) get the new status |
| intake.status_callback | order.* (state changes) | a status callback owed to the platform the order came from |
| coupons.give_back | order.cancelled, order.rejected | the order's coupon is usable again |
| incidents.switch_timeline | switch.changed | a line on every open incident's timeline |
| incidents.restore_timeline | backup.restored, backup.restore_failed | a line on the open incidents, or an internal incident |
| payroll.shift_log | rider.shift | the shift in rider pay's shift log (the hourly minimum is paid from it) |
| push.order_status | order.* (state changes) | a Web Push owed to each browser of the customer (not for their own changes) |

Plug-ins that are not reactions but extend a report or a plan are listed in `incident_plugins`.
"""

from __future__ import annotations

from dataclasses import dataclass

from waimai.core.events import Registry
from waimai.firewall.compensation import MadeGood
from waimai.firewall.incidents.report import Section
from waimai.firewall.incidents.service import Sop
from waimai.platform.tracking.broker import Broker


def order_changes() -> tuple[str, ...]:
    """The topics of an order's state changes (`order.accepted` …): not `order.placed` or `order.assigned`, which
    no subscriber reacts to — an event nobody wants is marked delivered without a savepoint or a delivery row,
    and placements are the busiest topic there is."""
    from waimai.platform.ordering.state import Status

    return tuple(f"order.{s.value}" for s in Status if s is not Status.created)


def build_registry(*, broker: Broker, sop: Sop) -> Registry:
    from waimai.firewall.incidents.setup import restore_recorder, switch_on_timeline
    from waimai.platform.coupons.service import give_back
    from waimai.platform.integrations.service import queue_callback
    from waimai.platform.payroll.shifts import log_shift
    from waimai.platform.push.service import queue_order_update
    from waimai.platform.tracking.live import status_publisher

    reg = Registry()
    changes = order_changes()
    reg.add("tracking.status", changes, status_publisher(broker))
    reg.add("intake.status_callback", changes, queue_callback)
    reg.add("coupons.give_back", ("order.cancelled", "order.rejected"), give_back)
    reg.add("incidents.switch_timeline", ("switch.changed",), switch_on_timeline)
    reg.add("incidents.restore_timeline", ("backup.restored", "backup.restore_failed"), restore_recorder(sop))
    reg.add("payroll.shift_log", ("rider.shift",), log_shift)
    reg.add("push.order_status", changes, queue_order_update)
    return reg


@dataclass(frozen=True)
class IncidentPlugins:
    """What other domains add to incident work: sections of the root-cause report, and the orders already made
    good another way that compensation skips."""

    report_sections: tuple[Section, ...] = ()
    already_compensated: tuple[MadeGood, ...] = ()


def incident_plugins() -> IncidentPlugins:
    from waimai.platform.support import service as tickets

    return IncidentPlugins(report_sections=(tickets.report_section,),
                           already_compensated=(tickets.compensated_orders,))
