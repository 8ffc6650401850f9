"""Complaint tickets (issue 12, acceptance 2 and 3): linked to the incident they belong to and on its
timeline, a complaint surge raising an alert, who may read which ticket, input checks, the SLA clock —
on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select, update

from tests.conftest import Api
from waimai.core.audit import AuditEntry
from waimai.firewall.incidents.complaints import publish_signals
from waimai.platform.support import service as tickets
from waimai.platform.support.models import Ticket


def order(api: Api, role: str = "customer", **body: object) -> int:
    r = api.place(role, **body)
    assert r.status_code == 201, r.text  # type: ignore[attr-defined]
    return int(r.json()["id"])  # type: ignore[attr-defined]


def report(api: Api, oid: int, category: str, role: str = "customer", text: str = "") -> Any:
    return api.c.post("/api/v1/tickets", json={"order_id": oid, "category": category, "description": text},
                      headers=api.h(role))


def open_incident(api: Api, components: list[str], severity: str = "P2") -> int:
    r = api.c.post("/api/v1/incidents", json={"title": "Payments fail", "severity": severity,
                                              "components": components}, headers=api.h("ops"))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def timeline(api: Api, iid: int) -> list[dict[str, Any]]:
    return api.c.get(f"/api/v1/incidents/{iid}", headers=api.h("ops")).json()["timeline"]  # type: ignore[no-any-return]


def new_customer(api: Api, phone: str) -> int:
    r = api.c.post("/api/v1/support/customers", json={"phone": phone, "name": f"顾客{phone[-4:]}"},
                   headers=api.h("support"))
    assert r.status_code in (200, 201), r.text
    return int(r.json()["id"])


def order_for(api: Api, customer_id: int) -> int:
    r = api.c.post("/api/v1/support/orders", json={"customer_id": customer_id, "merchant_id": 1, "delivery_point_id": 1,
                                                   "items": [{"item_id": 5, "quantity": 1}], "payment_method": "cod"},
                   headers=api.h("support", **{"Idempotency-Key": uuid.uuid4().hex}))
    assert r.status_code == 201, r.text
    return int(r.json()["order"]["id"])


def test_ticket_during_an_incident_is_linked_and_in_its_report(api: Api) -> None:
    iid = open_incident(api, ["payment"])
    oid = order(api)
    r = report(api, oid, "charged_twice", text="Paid twice, call me on 13812345678")
    assert r.status_code == 201, r.text
    tid = r.json()["id"]
    assert r.json()["incident_id"] is None  # the customer does not see incident internals
    staff_view = api.c.get(f"/api/v1/tickets/{tid}", headers=api.h("support")).json()
    assert staff_view["incident_id"] == iid
    # On the incident's timeline, phone number masked.
    line = next(e for e in timeline(api, iid) if e["kind"] == "ticket")
    assert f"ticket #{tid}" in line["text"] and "138****5678" in line["text"] and "13812345678" not in line["text"]
    # A complaint about another component is not part of this incident.
    late = report(api, oid, "late").json()
    assert api.c.get(f"/api/v1/tickets/{late['id']}", headers=api.h("ops")).json()["incident_id"] is None
    # What the root-cause report reads.
    listed = api.c.get("/api/v1/tickets", params={"incident_id": iid}, headers=api.h("ops")).json()
    assert [t["id"] for t in listed] == [tid]
    with api.c.app.state.db.read_session() as s:  # type: ignore[attr-defined]
        assert [t.id for t in tickets.tickets_for_incident(s, iid)] == [tid]
        summary = tickets.incident_summary(s, iid)
    assert summary["count"] == 1 and summary["by_category"] == {"charged_twice": 1}
    assert summary["sample"][0]["text"] == "Paid twice, call me on 138****5678"
    from waimai.firewall.incidents import report as rca
    from waimai.firewall.incidents.models import Incident

    with api.c.app.state.db.read_session() as s:  # type: ignore[attr-defined]
        md = rca.markdown(rca.build(s, s.get(Incident, iid), with_charts=False))
    # Customers' words enter the Markdown escaped, so they render as the same text (docs/security.md).
    assert "## Complaint tickets (charged_twice 1)" in md and f"> {rca.md_text('Paid twice, call me on 138****5678')}" in md

    # After the incident: a complaint about an order placed during it still belongs to it (taken by phone);
    # one about an order placed afterwards does not.
    during = order(api)
    r = api.c.post(f"/api/v1/incidents/{iid}/updates", json={"status": "resolved", "text_en": "Fixed."},
                   headers=api.h("ops"))
    assert r.status_code == 201
    later = report(api, during, "charged_twice", role="support", text="she called back").json()
    assert api.c.get(f"/api/v1/tickets/{later['id']}", headers=api.h("ops")).json()["incident_id"] == iid
    fresh = report(api, order(api), "charged_twice").json()
    assert api.c.get(f"/api/v1/tickets/{fresh['id']}", headers=api.h("ops")).json()["incident_id"] is None


def test_a_complaint_surge_raises_an_alert_and_its_tickets_join_the_incident(api: Api) -> None:
    app: Any = api.c.app
    tids = []
    for i in range(3):  # three different people call in: charged twice
        cid = new_customer(api, f"1371234000{i}")
        r = report(api, order_for(api, cid), "charged_twice", role="support", text=f"caller {i}")
        assert r.status_code == 201, r.text
        assert r.json()["source"] == "phone" and r.json()["first_response_at"] is not None
        tids.append(r.json()["id"])
    values = publish_signals(app.state.db, app.state.metric_store)
    assert values["complaints_per_10min.charged_twice"] == 3 and values["complaints_per_10min"] == 3
    app.state.alerting.evaluate()
    firing = [a.alert for a in app.state.alerting.pipeline.alerts.values() if a.alert.status == "firing"]
    assert [a.name for a in firing] == ["ComplaintsChargedTwice"]
    assert firing[0].severity == "P2" and firing[0].labels["component"] == "payment"
    # The P2 opened an incident on payment; the tickets that raised it are linked to it.
    [inc] = api.c.get("/api/v1/incidents", headers=api.h("ops")).json()
    assert inc["components"] == ["payment"] and any(a["name"] == "ComplaintsChargedTwice" for a in inc["alerts"])
    publish_signals(app.state.db, app.state.metric_store)
    linked = api.c.get("/api/v1/tickets", params={"incident_id": inc["id"]}, headers=api.h("ops")).json()
    assert sorted(t["id"] for t in linked) == sorted(tids)
    assert sum(1 for e in timeline(api, inc["id"]) if e["kind"] == "ticket") == 3
    # One person filing many tickets is one voice: no surge from a single customer.
    with app.state.db.read_session() as s:
        assert tickets.complaint_counts(s)["complaints_per_10min.late"] == 0


def test_a_customer_cannot_read_another_customers_tickets(api: Api) -> None:
    oid = order(api)
    tid = report(api, oid, "cold", text="soup was cold").json()["id"]
    r = api.c.post("/api/v1/users", json={"phone": "13700000077", "name": "Other", "role": "customer",
                                          "password": "other-pass-1"}, headers=api.h("ops"))
    assert r.status_code == 201, r.text
    tok = api.c.post("/api/v1/auth/login", json={"phone": "13700000077", "password": "other-pass-1"}).json()
    other = {"Authorization": f"Bearer {tok['access_token']}"}
    assert api.c.get(f"/api/v1/tickets/{tid}", headers=other).status_code == 404
    assert api.c.get(f"/api/v1/tickets/{tid}/photos/1", headers=other).status_code == 404
    assert api.c.post(f"/api/v1/tickets/{tid}/replies", json={"text": "hi"}, headers=other).status_code == 404
    assert api.c.put(f"/api/v1/tickets/{tid}/rating", json={"stars": 1}, headers=other).status_code == 404
    assert api.c.get("/api/v1/tickets", headers=other).json() == []
    assert report(api, oid, "late").status_code == 201  # the owner may
    r = api.c.post("/api/v1/tickets", json={"order_id": oid, "category": "late"}, headers=other)
    assert r.status_code == 404  # nor report on someone else's order
    assert api.c.get(f"/api/v1/tickets/{tid}").status_code == 401


def test_merchants_riders_and_support_see_what_their_role_allows(api: Api) -> None:
    oid = order(api)
    tid = report(api, oid, "missing_item", text="no egg").json()["id"]
    other_shop = order(api, merchant_id=2, items=[{"item_id": 14, "quantity": 1}])
    other_tid = report(api, other_shop, "wrong_item").json()["id"]
    sup, m, rider = api.h("support"), api.h("merchant"), api.h("rider")
    # Support: every ticket; takes it, answers, keeps an internal note.
    assert {t["id"] for t in api.c.get("/api/v1/tickets", headers=sup).json()} >= {tid, other_tid}
    assert api.c.post(f"/api/v1/tickets/{tid}/take", headers=sup).json()["status"] == "in_progress"
    api.c.post(f"/api/v1/tickets/{tid}/replies", json={"text": "Sorry, we will sort it out."}, headers=sup)
    r = api.c.post(f"/api/v1/tickets/{tid}/replies", json={"text": "merchant often forgets eggs", "internal": True},
                   headers=sup)
    assert r.status_code == 201 and any(not e["public"] for e in r.json()["events"])
    # … but none of ops' data: satisfaction figures, incidents, the audit log, linking tickets to incidents.
    assert api.c.get("/api/v1/ops/satisfaction", headers=sup).status_code == 403
    assert api.c.get("/api/v1/incidents", headers=sup).status_code == 403
    assert api.c.get("/api/v1/ops/audit", headers=sup).status_code == 403
    assert api.c.put(f"/api/v1/tickets/{tid}/incident", json={"incident_id": None}, headers=sup).status_code == 403
    # The merchant sees the ticket on its order, without the internal note; not another shop's.
    mt = api.c.get(f"/api/v1/tickets/{tid}", headers=m)
    assert mt.status_code == 200 and all(e["public"] for e in mt.json()["events"])
    assert "merchant often forgets eggs" not in mt.text
    assert api.c.get(f"/api/v1/tickets/{other_tid}", headers=m).status_code == 404
    assert [t["id"] for t in api.c.get("/api/v1/tickets", headers=m).json()] == [tid]
    # The customer sees the public answer, not the note; cannot act as staff.
    ct = api.c.get(f"/api/v1/tickets/{tid}", headers=api.h("customer")).json()
    assert [e["text"] for e in ct["events"] if e["kind"] == "reply"] == ["Sorry, we will sort it out."]
    assert api.c.post(f"/api/v1/tickets/{tid}/take", headers=api.h("customer")).status_code == 403
    assert api.c.post(f"/api/v1/tickets/{tid}/resolve", json={"resolution": "no_action"},
                      headers=api.h("customer")).status_code == 403
    r = api.c.post(f"/api/v1/tickets/{tid}/replies", json={"text": "x", "internal": True}, headers=api.h("customer"))
    assert r.status_code == 403
    # A rider sees tickets on orders they carry only.
    assert api.c.get(f"/api/v1/tickets/{tid}", headers=rider).status_code == 404
    rider_id = api.c.get("/api/v1/riders/me", headers=rider).json()["id"]
    api.c.post(f"/api/v1/orders/{oid}/accept", headers=m)
    assert api.c.post(f"/api/v1/orders/{oid}/assign", json={"rider_id": rider_id},
                      headers=api.h("ops")).status_code == 200
    assert api.c.get(f"/api/v1/tickets/{tid}", headers=rider).status_code == 200
    assert api.c.get(f"/api/v1/tickets/{other_tid}", headers=rider).status_code == 404
    # Riders and merchants report problems of their own kinds.
    r = report(api, oid, "customer_unreachable", role="rider")
    assert r.status_code == 201 and r.json()["reporter_role"] == "rider"
    assert report(api, oid, "late", role="rider").status_code == 422
    assert report(api, oid, "rider_no_show", role="merchant").status_code == 201
    assert report(api, other_shop, "rider_no_show", role="merchant").status_code == 404
    # Every staff action is audited.
    with api.c.app.state.db.read_session() as s:  # type: ignore[attr-defined]
        acts = list(s.scalars(select(AuditEntry.action).where(AuditEntry.target == f"ticket:{tid}")))
    assert acts == ["ticket.take", "ticket.reply", "ticket.note"]


def test_input_is_checked_and_duplicates_refused(api: Api) -> None:
    oid = order(api)
    assert report(api, oid, "hungry").status_code == 422
    r = report(api, oid, "customer_unreachable")  # a rider's category
    assert r.status_code == 422 and r.json()["error"]["code"] == "ticket_category_invalid"
    assert report(api, oid, "late", text="x" * 1001).status_code == 422
    assert api.c.post("/api/v1/tickets", json={"order_id": oid, "category": "late", "extra": 1},
                      headers=api.h("customer")).status_code == 422
    assert report(api, 99999999, "late").status_code == 404
    assert report(api, oid, "late").status_code == 201
    dup = report(api, oid, "late")
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "ticket_exists"
    r = api.c.post(f"/api/v1/tickets/{dup.json()['error']['details']['ticket_id']}/replies", json={"text": "  "},
                   headers=api.h("customer"))
    assert r.status_code == 422
    assert api.c.get("/api/v1/tickets", params={"status": "closed"}, headers=api.h("customer")).status_code == 422
    assert api.c.get("/api/v1/tickets", params={"incident_id": 1}, headers=api.h("customer")).status_code == 403
    assert api.c.get("/api/v1/tickets/0", headers=api.h("customer")).status_code == 422
    # An old order is for the phone.
    with api.c.app.state.db.session() as s:  # type: ignore[attr-defined]
        from waimai.platform.ordering.models import Order

        s.execute(update(Order).where(Order.id == oid).values(created_at=dt.datetime.now(dt.UTC)
                                                                - dt.timedelta(days=8)))
        s.commit()
    assert report(api, oid, "cold").json()["error"]["code"] == "ticket_order_too_old"


def test_sla_deadlines_met_due_and_breached(api: Api) -> None:
    oid = order(api)
    tid = report(api, oid, "late").json()["id"]
    t = api.c.get(f"/api/v1/tickets/{tid}", headers=api.h("support")).json()
    created = dt.datetime.fromisoformat(t["created_at"])
    assert dt.datetime.fromisoformat(t["first_response_due"]) - created == dt.timedelta(minutes=15)
    assert dt.datetime.fromisoformat(t["resolution_due"]) - created == dt.timedelta(hours=2)
    assert t["sla"] == {"first_response": "due", "resolution": "due"}
    db = api.c.app.state.db  # type: ignore[attr-defined]
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    with db.session() as s:
        s.execute(update(Ticket).where(Ticket.id == tid).values(first_response_due=past))
        s.commit()
    assert api.c.get(f"/api/v1/tickets/{tid}", headers=api.h("support")).json()["sla"]["first_response"] == "breached"
    with db.read_session() as s:
        assert [x.id for x in tickets.breached(s)] == [tid]
        assert tickets.complaint_counts(s)["tickets_sla_breached"] == 1
    took = api.c.post(f"/api/v1/tickets/{tid}/take", headers=api.h("support")).json()
    assert took["sla"] == {"first_response": "breached", "resolution": "due"}  # answered, but late
    done = api.c.post(f"/api/v1/tickets/{tid}/resolve", json={"resolution": "no_action", "note": "arrived 5 min late"},
                      headers=api.h("support")).json()
    assert done["status"] == "resolved" and done["sla"]["resolution"] == "met"
    again = api.c.post(f"/api/v1/tickets/{tid}/resolve", json={"resolution": "no_action"}, headers=api.h("support"))
    assert again.status_code == 409 and again.json()["error"]["code"] == "ticket_resolved"
    r = api.c.post(f"/api/v1/tickets/{tid}/reopen", json={"reason": "customer unhappy"}, headers=api.h("support"))
    assert r.status_code == 200 and r.json()["status"] == "in_progress" and r.json()["resolved_at"] is None
