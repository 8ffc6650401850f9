"""Making it up to users after an incident: who was hurt, a fair coupon each, within a budget.

Affected, inside the incident window (onset → resolution, or now):
- **failed** orders: placed in the window and then cancelled, rejected, failed or refunded;
- **payment failures**: an online payment that failed in the window (the user had to retry or switch);
- **late** orders: delivered after their promised time, placed or delivered in the window.

Coupon per user = base by severity (P1 ¥5, P2 ¥3, P3 ¥2, P4 ¥1) + 20% of the failed orders' value
(≤ ¥20) + ¥0.30 per minute late (≤ ¥15) + ¥2 for payment trouble, × 1.3 for regulars (≥ 10 orders
in the 30 days before) or × 1.15 (≥ 4), rounded to ¥0.50. Minimum spend: none for users whose
order failed; otherwise half their typical basket (the median of those 30 days), rounded down to ¥1.
Valid 14 days, any merchant. If the total exceeds the budget every coupon is scaled down by the same
factor (rounded down to ¥0.50; under ¥1 dropped and reported), so the total never exceeds it.

Orders already made good another way — a coupon from support for that order, or a hook
(`ALREADY_COMPENSATED`, e.g. tickets resolved with a refund) — do not count again.
Issuing is idempotent: at most one coupon per user per incident (a unique key), so a second run
issues nothing. Each coupon comes with an apology in the user's inbox, and the incident timeline
records the run.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from waimai.core.database import utcnow
from waimai.core.errors import Unprocessable
from waimai.core.inbox import Notice
from waimai.core.security import mask_phone
from waimai.firewall.incidents import service as incidents
from waimai.firewall.incidents.models import Incident
from waimai.platform.accounts import read as accounts
from waimai.platform.coupons import read as given
from waimai.platform.coupons import service as coupons
from waimai.platform.ordering import read as orders

BASE = {"P1": 500, "P2": 300, "P3": 200, "P4": 100}
VALID_DAYS = 14
# (db, user_id, order ids) -> the order ids already made good another way (tickets refunded, …)
ALREADY_COMPENSATED: list[Callable[[Session, int, set[int]], set[int]]] = []


@dataclass
class UserPlan:
    user_id: int
    phone: str  # masked
    orders: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    failed_fen: int = 0
    late_minutes: int = 0
    payment_trouble: bool = False
    recent_orders: int = 0
    typical_basket_fen: int = 0
    amount_fen: int = 0
    min_spend_fen: int = 0


@dataclass
class Plan:
    incident_id: int
    window: tuple[dt.datetime, dt.datetime]
    budget_fen: int
    users: list[UserPlan]
    total_fen: int
    scale: float
    dropped: list[int]  # users whose coupon fell under ¥1 after scaling
    skipped_orders: int  # already compensated another way

    def as_dict(self) -> dict[str, Any]:
        return {"incident_id": self.incident_id, "window": [t.isoformat() for t in self.window],
                "budget_fen": self.budget_fen, "total_fen": self.total_fen, "scale": round(self.scale, 4),
                "users": [asdict(u) for u in self.users], "dropped": self.dropped,
                "skipped_orders": self.skipped_orders}


def _round50(fen: float) -> int:
    return int(fen // 50 * 50)


def plan(db: Session, inc: Incident, *, budget_fen: int, now: dt.datetime | None = None) -> Plan:
    if budget_fen <= 0:
        raise Unprocessable("Set a budget above zero.", code="budget_invalid")
    start, end = inc.onset_at, inc.resolved_at or now or utcnow()
    per: dict[int, UserPlan] = {}

    def user(uid: int) -> UserPlan:
        return per.setdefault(uid, UserPlan(user_id=uid, phone=""))

    for o in orders.failed_in(db, start, end):
        u = user(o.customer_id)
        u.orders.append(o.id)
        u.failed_fen += o.total_fen
        u.reasons.append(f"order {o.number} {o.status}")
    for o in orders.with_failed_payment(db, start, end):
        u = user(o.customer_id)
        if not u.payment_trouble:
            u.payment_trouble = True
            u.reasons.append("online payment failed")
        if o.id not in u.orders:
            u.orders.append(o.id)
    for o in orders.late_in(db, start, end):
        assert o.delivered_at is not None and o.promised_at is not None
        minutes = int((o.delivered_at - o.promised_at).total_seconds() // 60)
        if minutes < 1:
            continue
        u = user(o.customer_id)
        u.late_minutes += minutes
        u.reasons.append(f"order {o.number} {minutes} min late")
        if o.id not in u.orders:
            u.orders.append(o.id)

    skipped = 0
    for u in list(per.values()):
        done = given.made_good(db, u.user_id, u.orders)
        for hook in ALREADY_COMPENSATED:
            done |= hook(db, u.user_id, set(u.orders))
        if done:
            skipped += len(done & set(u.orders))
            u.orders = [o for o in u.orders if o not in done]
            if not u.orders:
                del per[u.user_id]

    history_from = start - dt.timedelta(days=30)
    sev_base = BASE.get(inc.severity, 100)
    for u in per.values():
        totals = orders.totals_of(db, u.user_id, history_from, start)
        u.recent_orders = len(totals)
        u.typical_basket_fen = int(statistics.median(totals)) if totals else 0
        amount = sev_base + min(0.2 * u.failed_fen, 2000) + min(30 * u.late_minutes, 1500) + \
            (200 if u.payment_trouble else 0)
        amount *= 1.3 if u.recent_orders >= 10 else 1.15 if u.recent_orders >= 4 else 1.0
        u.amount_fen = _round50(amount)
        u.min_spend_fen = 0 if u.failed_fen else int(u.typical_basket_fen * 0.5 // 100 * 100)
    phones = accounts.phones(db, per)
    for u in per.values():
        u.phone = mask_phone(phones.get(u.user_id, ""))
    total = sum(u.amount_fen for u in per.values())
    scale, dropped = 1.0, []
    if total > budget_fen:
        scale = budget_fen / total
        for u in per.values():
            u.amount_fen = _round50(u.amount_fen * scale)
        dropped = [u.user_id for u in per.values() if u.amount_fen < 100]
        for uid in dropped:
            del per[uid]
    users = sorted(per.values(), key=lambda u: (-u.amount_fen, u.user_id))
    return Plan(incident_id=inc.id, window=(start, end), budget_fen=budget_fen, users=users,
                total_fen=sum(u.amount_fen for u in users), scale=scale, dropped=dropped, skipped_orders=skipped)


APOLOGY = {
    "zh": ("抱歉，给您添麻烦了", "{what}影响了您的订单。我们送您一张 ¥{amount} 优惠券（{terms}，{days} 天内有效），"
                           "下单时输入 {code} 即可使用。"),
    "en": ("Sorry for the trouble", "{what} affected your order. Here is a ¥{amount} coupon ({terms}, valid {days} days): "
                                    "enter {code} at checkout."),
}


def issue(db: Session, sop: incidents.Sop, inc: Incident, p: Plan, *, actor: str, actor_id: int | None = None
          ) -> dict[str, int]:
    """Issue the plan's coupons (idempotently), an apology in each inbox, and a timeline line."""
    created = existing = 0
    now = utcnow()
    locales = accounts.locales(db, [u.user_id for u in p.users])
    for u in p.users:
        c, new = coupons.issue(db, user_id=u.user_id, amount_fen=u.amount_fen, min_spend_fen=u.min_spend_fen,
                               days=VALID_DAYS, source="compensation", incident_id=inc.id, actor=actor,
                               actor_id=actor_id, reason="; ".join(u.reasons)[:200], now=now,
                               order_id=u.orders[0] if len(u.orders) == 1 else None)
        if not new:
            existing += 1
            continue
        created += 1
        lang = "en" if (locales.get(u.user_id) or "zh_CN").startswith("en") else "zh"
        title, body = APOLOGY[lang]
        loc = "en" if lang == "en" else "zh_CN"
        what = incidents.public_title(sop, inc, loc)
        if lang == "zh":
            terms = "无门槛" if not c.min_spend_fen else f"满 ¥{c.min_spend_fen / 100:.0f} 可用"
        else:
            terms = "no minimum" if not c.min_spend_fen else f"on orders of ¥{c.min_spend_fen / 100:.0f} or more"
        db.add(Notice(user_id=u.user_id, incident_id=inc.id, title=title,
                      body=body.format(what=what, amount=f"{c.amount_fen / 100:.2f}", terms=terms, days=VALID_DAYS,
                                       code=c.code), sms="off", created_at=now))
    cost = given.incident_cost_fen(db, inc.id)
    incidents.record(db, inc, "compensation", f"compensation: {created} coupons issued ({existing} already had one), "
                     f"¥{cost / 100:.2f} in total of a ¥{p.budget_fen / 100:.2f} budget", actor=actor,
                     details={"created": created, "existing": existing, "cost_fen": cost, "budget_fen": p.budget_fen})
    return {"created": created, "existing": existing, "cost_fen": cost}


def report(db: Session, incident_id: int) -> dict[str, Any]:
    """Users compensated, total cost, and how many coupons have been used so far."""
    rows = given.of_incident(db, incident_id)
    redeemed = [c for c in rows if c.status == "redeemed"]
    by_status: dict[str, int] = defaultdict(int)
    for c in rows:
        by_status[coupons.state(c)] += 1
    return {"users": len({c.user_id for c in rows}), "coupons": len(rows), "cost_fen": sum(c.amount_fen for c in rows),
            "redeemed": len(redeemed), "redemption_rate": round(len(redeemed) / len(rows), 3) if rows else None,
            "redeemed_value_fen": sum(c.amount_fen for c in redeemed), "by_status": dict(by_status)}
