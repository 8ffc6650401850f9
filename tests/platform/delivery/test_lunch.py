"""A simulated lunch hour through the public API delivers every order, and its payslips reconcile with them."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import make_settings
from waimai.app import create_app
from waimai.platform.delivery.lunch import LunchConfig, LunchHour
from waimai.platform.delivery.service import dispatch_round
from waimai.platform.payroll import service as payroll
from waimai.platform.payroll.models import PayPeriod


def test_lunch_hour_delivers_every_order_and_pay_reconciles(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url), background=False)
    with TestClient(app) as c:
        def dispatcher() -> None:  # the service's job, run each tick since background jobs are off here
            with app.state.db.session() as s:
                if dispatch_round(s):
                    s.commit()

        said: list[str] = []
        first_day = payroll.local_today()
        rep = LunchHour(c, LunchConfig(orders=12, minutes=20, speed=240, riders=5, tick_s=0.2, grace_s=60),
                        on_tick=dispatcher, say=said.append).run()
        assert rep.all_delivered, rep
        assert len(rep.per_rider) >= 2 and sum(rep.per_rider.values()) == 12
        assert any("/orders/" in line for line in said)
        riders = c.get("/api/v1/riders", headers={"Authorization": "Bearer " + _ops(c)}).json()
        assert [r["id"] for r in riders if r["on_shift"]] == [1]  # the crew went off shift again (1 was on before)
        with app.state.db.session() as s:  # every delivered order is on exactly one day's payslip lines
            results = [payroll.compute(s, campus_id=1, kind="day", day=d)
                       for d in sorted({first_day, payroll.local_today()})]
            s.commit()
            recs = [payroll.reconcile(s, s.get(PayPeriod, r.period_id)) for r in results]  # type: ignore[arg-type]
        assert all(r.ok for r in recs), [r.as_dict() for r in recs]
        assert sum(r.lines for r in recs) == sum(r.orders for r in recs) == rep.delivered

def _ops(c: TestClient) -> str:
    return str(c.post("/api/v1/auth/login", json={"phone": "13800000009", "password": "waimai-demo"}).json()[
        "access_token"])
