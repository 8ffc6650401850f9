"""Message ids built at run time (`_("status." ~ o.status)`): listed here so that `pybabel extract` keeps them.

Add a key when a new enum value appears; the catalog test fails while one is missing or untranslated.
"""

from __future__ import annotations

from waimai.core.messages import N_

__all__ = ["KEYS", "N_"]


KEYS = (
    N_("adjustment.bonus"), N_("adjustment.correction"), N_("adjustment.deduction"), N_("adjustment.tip"),
    N_("app.short_name"),  # the installed app's name under its icon, and push titles
    N_("alert.acknowledged"), N_("alert.firing"), N_("alert.resolved"),
    N_("component.degraded_performance"), N_("component.major_outage"), N_("component.no_data"),
    N_("component.operational"), N_("component.partial_outage"), N_("component.under_maintenance"),
    N_("indicator.critical"), N_("indicator.maintenance"), N_("indicator.major"), N_("indicator.minor"),
    N_("indicator.none"),
    N_("pay.cod"), N_("pay.gateway"), N_("pay.platform"),
    N_("payline.adjustment"), N_("payline.guarantee"), N_("payline.late"), N_("payline.order"), N_("payline.tip"),
    N_("period.closed"), N_("period.draft"), N_("period.paid"), N_("period.preview"),
    N_("period_kind.day"), N_("period_kind.week"),
    N_("resolution.coupon"), N_("resolution.no_action"), N_("resolution.redelivery"), N_("resolution.refund"),
    N_("role.commander"), N_("role.communications"), N_("role.operations"), N_("role.scribe"),
    N_("role_name.customer"), N_("role_name.merchant"), N_("role_name.ops"), N_("role_name.rider"),
    N_("role_name.support"), N_("role_name.system"),
    N_("sla.breached"), N_("sla.due"), N_("sla.met"),
    N_("stage.identified"), N_("stage.investigating"), N_("stage.monitoring"), N_("stage.resolved"),
    N_("status.accepted"), N_("status.cancelled"), N_("status.cod_confirmed"), N_("status.created"),
    N_("status.delivered"), N_("status.failed"), N_("status.paid"), N_("status.picked_up"), N_("status.preparing"),
    N_("status.ready"), N_("status.refunded"), N_("status.rejected"),
    N_("step.accepted"), N_("step.created"), N_("step.delivered"), N_("step.picked_up"), N_("step.preparing"),
    N_("step.ready"),
    N_("verification.failed"), N_("verification.passed"), N_("verification.unverified"),
    N_("ticket.in_progress"), N_("ticket.open"), N_("ticket.resolved"),
    N_("ticket_event.created"), N_("ticket_event.linked"), N_("ticket_event.note"), N_("ticket_event.photo"),
    N_("ticket_event.refund_failed"), N_("ticket_event.reply"), N_("ticket_event.resolved"),
    N_("ticket_event.status"),
    # service failures, by code (details fill the %(name)s places)
    N_("error.illegal_transition"), N_("error.payment_cod_only"), N_("error.merchant_closed"),
    N_("error.out_of_stock"), N_("error.rider_off_shift"), N_("error.rider_not_found"), N_("error.photo_too_large"),
    N_("error.photo_limit"), N_("error.switch_unknown"), N_("error.http.400"), N_("error.http.401"),
    N_("error.http.403"), N_("error.http.404"), N_("error.http.409"), N_("error.http.413"), N_("error.http.422"),
    N_("error.http.429"), N_("error.http.503"),
    # what each switch does (the ops switches page)
    N_("switch.payment.cod_only"), N_("switch.ordering.simple_mode"), N_("switch.dispatch.manual"),
    N_("switch.delivery.pickup_points"), N_("switch.merchant.<id>.paused"), N_("switch.intake.<platform>.paused"),
    N_("switch.coupons.paused"), N_("switch.system.read_only"), N_("switch.module.<name>.off"),
    # runbook titles and descriptions (the ops runbooks page)
    N_("runbook.drain_replica.title"), N_("runbook.drain_replica.description"), N_("runbook.pause_intake.title"),
    N_("runbook.pause_intake.description"), N_("runbook.pause_merchant.title"),
    N_("runbook.pause_merchant.description"), N_("runbook.rebuild_caches.title"),
    N_("runbook.rebuild_caches.description"), N_("runbook.restart_job.title"), N_("runbook.restart_job.description"),
    N_("runbook.restore_latest_verified_backup.title"), N_("runbook.restore_latest_verified_backup.description"),
    N_("runbook.switch_to_cod.title"), N_("runbook.switch_to_cod.description"),
    # the reasons the platform records on an order's history
    N_("cash on delivery"), N_("switched to cash on delivery"), N_("manual"), N_("declined"), N_("payment refunded"),
    N_("delivery failed"), N_("customer switched to cash on delivery"),
    # incident timeline entries (the commander's page)
    N_("incident_event.opened"), N_("incident_event.ack"), N_("incident_event.action"), N_("incident_event.alert"),
    N_("incident_event.alert_resolved"), N_("incident_event.anomaly"), N_("incident_event.changed"),
    N_("incident_event.checklist"), N_("incident_event.compensation"), N_("incident_event.note"),
    N_("incident_event.notified"), N_("incident_event.notice"), N_("incident_event.reminder"),
    N_("incident_event.review"), N_("incident_event.role"), N_("incident_event.ticket"), N_("incident_event.update"),
    N_("incident_event.restore"), N_("incident_event.resolved"),
)
