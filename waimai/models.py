"""Imports every table so metadata (and Alembic) sees the whole schema."""

from waimai.core.audit import AuditEntry
from waimai.core.database import Base
from waimai.core.inbox import Notice
from waimai.core.outbox import OutboxEvent
from waimai.core.security_alerts import SecurityAlert
from waimai.firewall.alerting.models import (
    AlertGroupRow,
    AlertHistory,
    AlertRow,
    AlertRuleSet,
    NotificationRow,
    SilenceRow,
)
from waimai.firewall.incidents.models import (
    ComponentStatus,
    ComponentStatusChange,
    Incident,
    IncidentAction,
    IncidentEvent,
    IncidentReview,
    Maintenance,
    StatusSubscriber,
)
from waimai.firewall.resilience.models import BreakerRow
from waimai.firewall.switches.models import ReplicaBeat, Switch
from waimai.platform.accounts.models import LoginAttempt, User
from waimai.platform.catalog.models import Campus, DeliveryPoint, MenuCategory, MenuItem, Merchant, Zone
from waimai.platform.coupons.models import Coupon
from waimai.platform.delivery.models import Rider
from waimai.platform.delivery.proof import ProofAttempt
from waimai.platform.integrations.models import ExternalOrderLink, PlatformCallback, PlatformShop
from waimai.platform.ordering.models import IdempotencyRecord, Order, OrderLine, OrderTransition
from waimai.platform.payments.models import Payment, PaymentCallback
from waimai.platform.payroll.models import PayAdjustment, PayLine, PayPeriod, PayRules, Payslip, RiderShift
from waimai.platform.push.models import PushKey, PushMessage, PushSubscription
from waimai.platform.support.models import Rating, Ticket, TicketEvent, TicketPhoto

__all__ = [
    "AlertGroupRow", "AlertRow", "NotificationRow", "ReplicaBeat", "SilenceRow",
    "AlertHistory", "AlertRuleSet", "AuditEntry", "Base", "BreakerRow", "ComponentStatus", "ComponentStatusChange", "Coupon", "IncidentAction", "IncidentReview", "Incident",
    "IncidentEvent", "Maintenance", "Notice", "StatusSubscriber", "ExternalOrderLink", "PlatformCallback", "PlatformShop", "Campus", "DeliveryPoint", "IdempotencyRecord", "LoginAttempt", "MenuCategory",
    "MenuItem", "Merchant", "Order", "OrderLine", "OrderTransition", "OutboxEvent", "Payment",
    "PaymentCallback", "PayAdjustment", "PushKey", "PushMessage", "PushSubscription", "ProofAttempt", "SecurityAlert", "PayLine", "PayPeriod", "PayRules", "Payslip", "Rating", "Rider", "RiderShift", "Switch", "Ticket", "TicketEvent", "TicketPhoto", "User", "Zone",
]
