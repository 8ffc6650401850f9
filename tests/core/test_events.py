"""The one event path (waimai/core/events.py, waimai/subscribers.py): at-least-once delivery that never re-runs a
subscriber that succeeded, retries with backoff, dead letters with retry and purge from the ops view, purge of
delivered rows, order per key; every subscriber of the registry with an event-in, effect-out test; and no
module-level hook list left anywhere in the package."""

from __future__ import annotations

import ast
import datetime as dt
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tests.conftest import DEMO_ACCOUNTS, Api, make_settings
from tests.web.test_pages import login
from waimai.app import create_app
from waimai.core.audit import AuditEntry
from waimai.core.database import Database, utcnow
from waimai.core.events import Dispatcher, Event, Registry, dead_letters, discard, retry
from waimai.core.outbox import OutboxDelivery, OutboxEvent, emit
from waimai.platform.accounts.models import Role

ROOT = Path(__file__).resolve().parents[2]
T0 = dt.datetime(2026, 12, 6, 4, 0, tzinfo=dt.UTC)


@pytest.fixture
def db(db_url: str) -> Any:
    database = Database(db_url)
    with database.session() as s:  # only this test's events: the seed's are delivered already
        s.execute(update(OutboxEvent).values(published_at=utcnow()))
        s.commit()
    yield database
    database.dispose()


def _emit(db: Database, topic: str, key: str = "", **payload: Any) -> int:
    with db.session() as s:
        emit(s, topic, key=key, **payload)
        s.commit()
        return int(s.scalar(select(func.max(OutboxEvent.id))) or 0)


def _audit(s: Session, ev: Event, who: str) -> None:
    """A subscriber effect in the database: one audit entry per delivery."""
    s.add(AuditEntry(actor_id=None, actor_role="test", action=f"test.{who}", target=str(ev.id), details={}))


def _entries(db: Database, who: str) -> int:
    with db.read_session() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == f"test.{who}"))
                   or 0)


def _row(db: Database, event_id: int) -> OutboxEvent:
    with db.read_session() as s:
        row = s.get(OutboxEvent, event_id)
        assert row is not None
        return row


def test_a_subscriber_that_fails_once_is_retried_and_the_others_are_not_run_again(db: Database) -> None:
    reg, calls = Registry(), {"steady": 0, "flaky": 0}

    @reg.subscribe("thing.*", name="steady")
    def steady(s: Session, ev: Event) -> None:
        calls["steady"] += 1
        _audit(s, ev, "steady")

    @reg.subscribe("thing.happened", name="flaky")
    def flaky(s: Session, ev: Event) -> None:
        calls["flaky"] += 1
        _audit(s, ev, "flaky")  # written, then rolled back with the failure
        if calls["flaky"] == 1:
            raise RuntimeError("downstream busy")

    d = Dispatcher(db, reg, backoff_s=2.0)
    eid = _emit(db, "thing.happened", key="7", n=1)
    assert d.run_once(T0) == {"retried": 1}
    row = _row(db, eid)
    assert row.published_at is None and row.attempts == 1 and row.next_attempt_at == T0 + dt.timedelta(seconds=2)
    assert "flaky: RuntimeError: downstream busy" in (row.last_error or "")
    assert (_entries(db, "steady"), _entries(db, "flaky")) == (1, 0)  # the failed savepoint left nothing
    assert d.run_once(T0 + dt.timedelta(seconds=1)) == {}  # not due yet
    assert d.run_once(T0 + dt.timedelta(seconds=2)) == {"delivered": 1}
    assert calls == {"steady": 1, "flaky": 2}  # the one that succeeded was not run again
    assert (_entries(db, "steady"), _entries(db, "flaky")) == (1, 1)
    assert _row(db, eid).published_at is not None
    with db.read_session() as s:
        ds = {d.subscriber: (d.status, d.attempts) for d in s.scalars(select(OutboxDelivery).where(
            OutboxDelivery.event_id == eid))}
    assert ds == {"steady": ("delivered", 1), "flaky": ("delivered", 2)}
    assert d.run_once(T0 + dt.timedelta(minutes=5)) == {}  # delivered once, at least and here exactly


def test_dead_letter_after_n_failures_then_retry_and_purge(db: Database) -> None:
    reg, broken = Registry(), {"on": True}

    @reg.subscribe("thing.happened", name="fragile")
    def fragile(s: Session, ev: Event) -> None:
        if broken["on"]:
            raise ValueError("no such shop")
        _audit(s, ev, "fragile")

    d = Dispatcher(db, reg, max_attempts=3, backoff_s=1.0)
    eid = _emit(db, "thing.happened", key="1")
    other = _emit(db, "thing.happened", key="2")
    now = T0
    for expected in ({"retried": 2}, {"retried": 2}, {"dead": 2}):
        assert d.run_once(now) == expected
        now += dt.timedelta(minutes=1)
    assert d.run_once(now) == {}  # dead letters wait for ops
    with db.read_session() as s:
        dead = {x["id"]: x for x in dead_letters(s)}
    assert set(dead) == {eid, other}
    assert dead[eid]["failed_subscribers"] == ["fragile"] and dead[eid]["attempts"] == 3
    assert "ValueError: no such shop" in dead[eid]["last_error"]

    broken["on"] = False  # the cause is fixed: ops retry one and purge the other
    with db.session() as s:
        retry(s, eid)
        discard(s, other)
        s.commit()
    assert d.run_once(now) == {"delivered": 1}
    assert _entries(db, "fragile") == 1
    with db.read_session() as s:
        assert s.get(OutboxEvent, other) is None and dead_letters(s) == []
        with pytest.raises(Exception, match="not a dead letter"):
            retry(s, eid)


def test_an_orders_later_event_waits_for_its_earlier_one(db: Database) -> None:
    reg, seen, fail = Registry(), [], {"first": True}

    @reg.subscribe("order.*", name="in_order")
    def in_order(_s: Session, ev: Event) -> None:
        if ev.topic == "order.accepted" and fail["first"]:
            fail["first"] = False
            raise RuntimeError("once")
        seen.append((ev.key, ev.topic))

    d = Dispatcher(db, reg)
    _emit(db, "order.accepted", key="5", order_id=5)
    _emit(db, "order.ready", key="5", order_id=5)
    _emit(db, "order.accepted", key="6", order_id=6)
    assert d.run_once(T0) == {"retried": 1, "held": 1, "delivered": 1}
    assert seen == [("6", "order.accepted")]  # another order is not held up
    assert d.run_once(T0 + dt.timedelta(seconds=0.5)) == {"held": 1}
    d.run_once(T0 + dt.timedelta(seconds=1))
    assert seen == [("6", "order.accepted"), ("5", "order.accepted"), ("5", "order.ready")]


def test_a_round_pages_past_held_rows_and_ends(db: Database) -> None:
    reg, seen = Registry(), []

    @reg.subscribe("order.*", name="picky")
    def picky(_s: Session, ev: Event) -> None:
        if ev.key == "5":
            raise RuntimeError("order 5 is stuck")
        seen.append(ev.key)

    d = Dispatcher(db, reg, batch=2)  # pages of two: order 5's later events fill whole pages
    for _ in range(4):
        _emit(db, "order.ready", key="5", order_id=5)
    _emit(db, "order.ready", key="8", order_id=8)
    assert d.run_once(T0) == {"retried": 1, "held": 3, "delivered": 1}
    assert seen == ["8"]
    assert d.run_once(T0) == {"held": 3}  # the stuck one waits for its retry; the round still ends


def test_purge_drops_delivered_rows_after_the_retention_only(db: Database) -> None:
    reg = Registry()

    @reg.subscribe("thing.failed", name="failing")
    def failing(_s: Session, _e: Event) -> None:
        raise RuntimeError("x")

    d = Dispatcher(db, reg, retention=dt.timedelta(hours=72), max_attempts=1)
    old, young, dead = _emit(db, "thing.old"), _emit(db, "thing.young"), _emit(db, "thing.failed")
    d.run_once(T0 - dt.timedelta(hours=80))
    with db.session() as s:
        s.execute(update(OutboxEvent).where(OutboxEvent.id == young).values(published_at=T0))
        s.commit()
    assert d.purge(T0 + dt.timedelta(hours=1)) >= 1
    with db.read_session() as s:
        assert s.get(OutboxEvent, old) is None  # delivered 81 h ago
        assert s.get(OutboxEvent, young) is not None  # delivered 1 h ago
        assert s.get(OutboxEvent, dead) is not None  # a dead letter waits for ops, however old
        assert s.scalar(select(func.count()).select_from(OutboxDelivery).where(OutboxDelivery.event_id == old)) == 0


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_wakes_the_dispatcher_at_commit(db: Database, db_url: str) -> None:
    import threading

    reg, delivered = Registry(), threading.Event()
    reg.add("waiter", ("thing.*",), lambda _s, _e: delivered.set())
    d = Dispatcher(db, reg, poll_s=30.0, database_url=db_url)  # a poll would not come within the test
    d.start(leads=lambda: True)
    try:
        time.sleep(1.0)  # listening
        t0 = time.monotonic()
        _emit(db, "thing.happened")
        assert delivered.wait(5.0), "the insert trigger's NOTIFY did not wake the dispatcher"
        print(f"\ncommit → delivered in {(time.monotonic() - t0) * 1000:.0f} ms")
    finally:
        d.stop()


def test_the_migration_marks_earlier_events_delivered(tmp_path: Path) -> None:
    """Before the dispatcher, hooks ran in each event's own transaction: history must not be replayed (platform
    callbacks twice)."""
    from sqlalchemy import text

    from waimai.core.migrate import upgrade

    database = Database(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(database.engine, "push1")
    with database.engine.begin() as c:
        c.execute(text("INSERT INTO outbox (topic, key, payload, created_at) "
                       "VALUES ('order.accepted', '1', '{}', '2026-01-01 00:00:00.000000')"))
    upgrade(database.engine)
    assert Dispatcher(database, Registry()).run_once() == {}
    assert _row(database, 1).published_at is not None
    database.dispose()


def test_registry_refuses_a_name_twice_and_matches_patterns() -> None:
    reg = Registry()
    reg.add("a", ("order.*",), lambda _s, _e: None)
    reg.add("b", ("order.cancelled", "switch.changed"), lambda _s, _e: None)
    with pytest.raises(ValueError, match="twice"):
        reg.add("a", ("x.y",), lambda _s, _e: None)
    assert [s.name for s in reg.for_topic("order.cancelled")] == ["a", "b"]
    assert [s.name for s in reg.for_topic("switch.changed")] == ["b"]
    assert reg.for_topic("ticket.created") == ()


# --- every subscriber of the app's registry: event in, effect out -------------------------------------------

def _deliver(api: Api) -> dict[str, int]:
    return api.c.app.state.events.run_once()  # type: ignore[attr-defined, no-any-return]


def _order(api: Api, **body: Any) -> dict[str, Any]:
    r = api.place(**body)
    assert r.status_code == 201, r.text  # type: ignore[attr-defined]
    return r.json()  # type: ignore[attr-defined, no-any-return]


def test_subscriber_tracking_status(api: Api) -> None:
    o = _order(api)
    broker = api.c.app.state.broker  # type: ignore[attr-defined]
    assert api.c.post(f"/api/v1/orders/{o['id']}/accept", headers=api.h("merchant")).status_code == 200
    assert o["id"] not in broker._topics  # nothing pushed before the dispatcher delivers
    _deliver(api)
    # In process on SQLite; on PostgreSQL through the bus (LISTEN/NOTIFY), as every replica hears it.
    deadline = time.monotonic() + 5
    while o["id"] not in broker._topics and time.monotonic() < deadline:
        time.sleep(0.02)
    [ev] = list(broker._topics[o["id"]].ring)
    assert (ev.kind, ev.data["status"], ev.data["order_id"]) == ("status", "accepted", o["id"])


def test_subscriber_intake_status_callback(api: Api) -> None:
    from waimai.platform.integrations.models import ExternalOrderLink, PlatformCallback
    from waimai.platform.ordering.models import Order

    o = _order(api)
    db: Database = api.c.app.state.db  # type: ignore[attr-defined]
    with db.session() as s:  # as if Meituan had sent it
        s.execute(update(Order).where(Order.id == o["id"]).values(source="meituan"))
        s.add(ExternalOrderLink(platform="meituan", external_id=f"mt-{uuid.uuid4().hex[:8]}", order_id=o["id"]))
        s.commit()
    api.c.post(f"/api/v1/orders/{o['id']}/accept", headers=api.h("merchant"))
    api.c.post(f"/api/v1/orders/{o['id']}/preparing", headers=api.h("merchant"))  # not a status Meituan hears
    _deliver(api)
    _deliver(api)  # delivered already: owed once
    with db.read_session() as s:
        owed = [(c.platform, c.status) for c in s.scalars(select(PlatformCallback).where(
            PlatformCallback.order_id == o["id"]))]
    assert owed == [("meituan", "accepted")]


def test_subscriber_coupons_give_back(api: Api) -> None:
    from waimai.platform.accounts.models import User
    from waimai.platform.coupons import service as coupons
    from waimai.platform.coupons.models import Coupon

    db: Database = api.c.app.state.db  # type: ignore[attr-defined]
    with db.session() as s:
        uid = s.scalar(select(User.id).where(User.phone == DEMO_ACCOUNTS[Role.customer][0]))
        c, _ = coupons.issue(s, user_id=int(uid or 0), amount_fen=300, source="manual", actor="ops:test")
        s.commit()
        code, cid = c.code, c.id
    o = _order(api, coupon_code=code)
    assert api.c.post(f"/api/v1/orders/{o['id']}/cancel", json={"reason": "changed my mind"},
                      headers=api.h("customer")).status_code == 200
    with db.read_session() as s:
        assert s.get(Coupon, cid).status == "redeemed"  # type: ignore[union-attr]
    _deliver(api)
    with db.read_session() as s:
        assert s.get(Coupon, cid).status == "active"  # type: ignore[union-attr]


def test_subscriber_incidents_switch_timeline(api: Api) -> None:
    from waimai.firewall.incidents import service as incidents
    from waimai.firewall.switches.service import set_switch

    db: Database = api.c.app.state.db  # type: ignore[attr-defined]
    with db.session() as s:
        inc = incidents.open_incident(s, api.c.app.state.sop, title="Gateway down", severity="P2",  # type: ignore[attr-defined]
                                      components=[], actor="ops:test")
        s.commit()
        iid = inc.id
    with db.session() as s:
        set_switch(s, "payment.cod_only", enabled=True, actor_id=None, actor_role="system:breaker", reason="gw down")
        s.commit()
    flipped = utcnow()
    _deliver(api)
    with db.read_session() as s:
        [line] = [e for e in incidents.timeline(s, iid) if e.kind == "switch"]
    assert line.text == "switch payment.cod_only ON: gw down" and line.actor == "system:breaker"
    assert line.at <= flipped  # on the timeline at the time of the flip, not of the delivery


def test_subscriber_incidents_restore_timeline(api: Api) -> None:
    from waimai.firewall.incidents.models import Incident, IncidentEvent

    db: Database = api.c.app.state.db  # type: ignore[attr-defined]
    with db.session() as s:
        emit(s, "backup.restore_failed", key="20261206T040000Z-ab12", restore_id="r1", backup="20261206T040000Z-ab12",
             status="incomplete", backup_created_at=T0.isoformat(), orders_after_backup=2, safety_backup="s1",
             error="migration failed", next_step="run waimai migrate", actor="ops:9")
        s.commit()
    _deliver(api)
    with db.read_session() as s:  # none was open: an internal incident keeps the rollback on record
        [inc] = s.scalars(select(Incident).where(Incident.title.contains("20261206T040000Z-ab12"))).all()
        [line] = s.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == inc.id,
                                                       IncidentEvent.kind == "restore")).all()
    assert not inc.public and "2 orders written after it" in line.text and "next: run waimai migrate" in line.text


def test_subscriber_payroll_shift_log(api: Api) -> None:
    from waimai.platform.payroll.models import RiderShift

    db: Database = api.c.app.state.db  # type: ignore[attr-defined]
    assert api.c.post("/api/v1/riders/me/shift", json={"on_shift": True, "hours": 4},
                      headers=api.h("rider")).status_code == 200
    assert api.c.post("/api/v1/riders/me/shift", json={"on_shift": False}, headers=api.h("rider")).status_code == 200
    _deliver(api)
    with db.read_session() as s:
        [row] = s.scalars(select(RiderShift).where(RiderShift.rider_id == 1, RiderShift.ends_at.is_not(None))
                          .order_by(RiderShift.started_at.desc()).limit(1)).all()
    assert row.ends_at is not None and dt.timedelta(0) <= row.ends_at - row.started_at < dt.timedelta(minutes=1)


def test_subscriber_push_order_status(api: Api) -> None:
    from tests.platform.push.test_push import subscribe
    from tests.servers import serve
    from waimai.platform.push.models import PushMessage
    from waimai.platform.push.standins import create_push_standin

    db: Database = api.c.app.state.db  # type: ignore[attr-defined]
    with serve(create_push_standin()) as base:
        subscribe(api.c, api.h("customer"), base)  # type: ignore[arg-type]
        mine, other = _order(api), _order(api)
        assert api.c.post(f"/api/v1/orders/{mine['id']}/accept", headers=api.h("merchant")).status_code == 200
        assert api.c.post(f"/api/v1/orders/{other['id']}/cancel", json={"reason": "changed my mind"},
                          headers=api.h("customer")).status_code == 200
        with db.read_session() as s:
            assert s.scalar(select(func.count()).select_from(PushMessage)) == 0  # owed only once delivered
        _deliver(api)
        _deliver(api)  # a second round owes nothing again
        with db.read_session() as s:
            refs = list(s.scalars(select(PushMessage.ref)))
    # the merchant's acceptance is pushed; the customer's own cancellation and the placements are not
    assert refs == [f"order:{mine['id']}:accepted"]


TESTED = {"tracking.status": test_subscriber_tracking_status,
          "push.order_status": test_subscriber_push_order_status,
          "intake.status_callback": test_subscriber_intake_status_callback,
          "coupons.give_back": test_subscriber_coupons_give_back,
          "incidents.switch_timeline": test_subscriber_incidents_switch_timeline,
          "incidents.restore_timeline": test_subscriber_incidents_restore_timeline,
          "payroll.shift_log": test_subscriber_payroll_shift_log}


def test_every_subscriber_in_the_registry_has_its_test(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url), background=False)
    assert sorted(app.state.events.registry.names()) == sorted(TESTED)
    app.state.db.dispose()


# --- the ops view --------------------------------------------------------------------------------------------

def test_ops_see_dead_letters_and_retry_or_purge_them_on_the_record(api: Api) -> None:
    db: Database = api.c.app.state.db  # type: ignore[attr-defined]
    ids = []
    with db.session() as s:
        for n in (1, 2):
            emit(s, "order.accepted", key=str(900_000 + n), order_id=900_000 + n, status="accepted")
        s.flush()
        ids = list(s.scalars(select(OutboxEvent.id).where(OutboxEvent.key.in_(["900001", "900002"]))
                             .order_by(OutboxEvent.id)))
        s.execute(update(OutboxEvent).where(OutboxEvent.id.in_(ids)).values(dead_at=utcnow(), attempts=8,
                                                                            last_error="intake: boom"))
        s.commit()
    assert api.c.get("/api/v1/ops/events", headers=api.h("customer")).status_code == 403
    assert api.c.post(f"/api/v1/ops/events/{ids[0]}/retry", headers=api.h("support")).status_code == 403
    view = api.c.get("/api/v1/ops/events", headers=api.h("ops")).json()
    assert view["dead"] == 2 and {d["id"] for d in view["dead_letters"]} == set(ids)
    assert "tracking.status" in {s["name"] for s in view["dispatcher"]["subscribers"]}
    assert api.c.post(f"/api/v1/ops/events/{ids[0]}/retry", headers=api.h("ops")).status_code == 200
    assert api.c.post(f"/api/v1/ops/events/{ids[0]}/retry", headers=api.h("ops")).status_code == 409
    assert api.c.post(f"/api/v1/ops/events/{ids[1]}/purge", headers=api.h("ops")).status_code == 204
    assert api.c.post("/api/v1/ops/events/999999999/purge", headers=api.h("ops")).status_code == 404
    assert _deliver(api).get("delivered", 0) >= 1
    audit = api.c.get("/api/v1/ops/audit", headers=api.h("ops")).json()
    assert {("event.retry", str(ids[0])), ("event.purge", str(ids[1]))} <= {(a["action"], a["target"]) for a in audit}
    view = api.c.get("/api/v1/ops/events", headers=api.h("ops")).json()
    assert view["dead"] == 0


def test_ops_events_page_in_both_languages(client: TestClient) -> None:
    db: Database = client.app.state.db  # type: ignore[attr-defined]
    with db.session() as s:
        emit(s, "switch.changed", key="x.y", name="x.y")
        s.execute(update(OutboxEvent).where(OutboxEvent.key == "x.y").values(dead_at=utcnow(), attempts=8,
                                                                            last_error="incidents: boom"))
        s.commit()
    login(client, DEMO_ACCOUNTS[Role.ops][0])
    zh = client.get("/ops/events")
    assert zh.status_code == 200 and "事件投递" in zh.text and "incidents: boom" in zh.text
    en = client.get("/ops/events?lang=en")
    assert "Event delivery" in en.text and "Retry" in en.text
    eid = int(re.search(r'data-event="(\d+)"', en.text).group(1))  # type: ignore[union-attr]
    r = client.post(f"/ops/events/{eid}/purge", follow_redirects=False)
    assert r.status_code == 303 and "/ops/events" in r.headers["location"]
    assert 'data-event="' not in client.get("/ops/events?lang=en").text
    login(client, DEMO_ACCOUNTS[Role.customer][0])
    assert client.post(f"/ops/events/{eid}/retry", follow_redirects=False).status_code in (303, 403)


# --- no hook lists ------------------------------------------------------------------------------------------

HOOKISH = re.compile(r"HOOKS|SECTIONS|COMPENSATED|LISTENERS|SUBSCRIBERS|CALLBACKS|HANDLERS|REACTIONS", re.IGNORECASE)
MUTABLE = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)


def _mutable(value: ast.expr | None, annotation: ast.expr | None) -> bool:
    if isinstance(value, MUTABLE):
        return True
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in (
            "list", "dict", "set", "defaultdict", "OrderedDict"):
        return True
    return annotation is not None and re.match(r"(list|dict|set|List|Dict|Set)\b", ast.unparse(annotation)) is not None


def test_no_module_level_hook_list_remains() -> None:
    found = []
    for path in sorted((ROOT / "waimai").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets, value, ann = node.targets, node.value, None
            elif isinstance(node, ast.AnnAssign):
                targets, value, ann = [node.target], node.value, node.annotation
            for t in targets:
                if isinstance(t, ast.Name) and HOOKISH.search(t.id) and _mutable(value, ann):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {t.id}")
    assert found == [], "cross-domain reactions are subscribers in waimai/subscribers.py, not module lists"


def test_plugin_catalogues_are_filled_by_their_own_package_only() -> None:
    """Class catalogues (detectors, forecasters, channels, runbooks) are filled by `@register` where their
    classes are defined, in their own package: none is appended to from another domain."""
    strays = []
    for path in sorted((ROOT / "waimai").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        registers = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef | ast.FunctionDef) and any(
            isinstance(d, ast.Call) and isinstance(d.func, ast.Name) and d.func.id == "register"
            for d in n.decorator_list)]
        if not registers:
            continue
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
        sources = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                   and any(a.name == "register" for a in n.names)]
        if any(not src.startswith(package) for src in sources):
            strays.append(f"{path.relative_to(ROOT)} registers into {sources}")
    assert strays == []


def test_no_session_wide_listener_carries_a_reaction() -> None:
    """SQLAlchemy listeners on the Session class run for every app in the process and leaked between apps:
    reactions go through the outbox instead."""
    pattern = re.compile(r"event\.(listen|listens_for)\(\s*Session\b")
    users = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "waimai").rglob("*.py")
                   if pattern.search(p.read_text(encoding="utf-8")))
    assert users == []
