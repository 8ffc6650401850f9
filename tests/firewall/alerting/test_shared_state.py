"""Alert state in the database: two services on one database behave as two replicas (each with its own
memory), on SQLite and PostgreSQL. What one ingests, acknowledges or silences the other sees; a new leader
continues the escalation where the old one stopped and never sends a step twice; retention prunes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from sqlalchemy import func, select, update

from tests.firewall.alerting.test_pipeline import Recorder
from waimai.core.database import Database
from waimai.firewall.alerting.models import AlertHistory, AlertRow, NotificationRow
from waimai.firewall.alerting.pipeline import AlertPipeline, PipelineConfig
from waimai.firewall.alerting.rules import Alert
from waimai.firewall.alerting.service import AlertingService
from waimai.firewall.monitoring.store import MetricStore

pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
T0 = dt.datetime.now(dt.UTC).replace(microsecond=0)
CONFIG = {"route": {"receiver": "ops", "group_by": ["alertname"], "group_wait": "0s", "group_interval": "10s",
                    "repeat_interval": "1h", "routes": [{"match": {"severity": "P1"}, "escalation": "p1"}]},
          "receivers": {"ops": [], "lead": []},
          "escalation_policies": {"p1": [{"after": "0s", "targets": ["receiver:lead"]},
                                         {"after": "5m", "targets": ["receiver:lead"]}]}}


class Replica:
    """One process's alerting service; `leading` says whether it holds the notifier lock."""

    def __init__(self, db: Database, cfg: Path, name: str, now: list[dt.datetime], *, leading: bool) -> None:
        self.leading = leading
        rules = cfg.with_name("rules.yml")
        rules.write_text("groups: []\n")  # the shipped rules would fire on an empty store
        self.svc = AlertingService(source=MetricStore("sqlite:///:memory:"), database=db, config_file=cfg,
                                   rules_file=rules,
                                   link_secret="s", public_url="", clock=lambda: now[0], leads=lambda: self.leading,
                                   me=name)
        self.rx = {n: Recorder(n) for n in ("ops", "lead")}
        self.svc.channels = {k: [v] for k, v in self.rx.items()}  # type: ignore[dict-item]


def alert(name: str, sev: str = "P2", status: str = "firing", **labels: str) -> Alert:
    return Alert(labels={"alertname": name, "severity": sev, **labels}, annotations={"summary": name},
                 status=status, starts_at=T0)  # type: ignore[arg-type]


@pytest.fixture
def pair(db_url: str, tmp_path: Path) -> tuple[Replica, Replica, list[dt.datetime], Database]:
    cfg = tmp_path / "alerting.yml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    db = Database(db_url)
    now = [T0]
    return Replica(db, cfg, "api-1", now, leading=False), Replica(db, cfg, "notifier-1", now, leading=True), now, db


def test_what_one_replica_does_the_other_sees(pair) -> None:  # type: ignore[no-untyped-def]
    api, leader, now, _db = pair
    api.svc.ingest([alert("DiskFull", component="disk"), alert("QueueLong")])
    assert not api.rx["ops"].messages  # a non-leader stores, it does not send
    assert {st.alert.name for st in leader.svc.view().alerts.values()} == {"DiskFull", "QueueLong"}
    leader.svc.evaluate()  # the leader's round advances what the api replica took in
    assert sorted(m.title for m in leader.rx["ops"].messages) == ["DiskFull", "QueueLong"]
    s = api.svc.add_silence({"alertname": "DiskFull"}, ends_at=T0 + dt.timedelta(hours=1), created_by="user:9")
    key = next(k for k, g in api.svc.view().groups.items() if "QueueLong" in k)
    api.svc.acknowledge(key, by="user:9")
    assert [x.id for x in leader.svc.silences()] == [s.id]
    assert leader.svc.view().groups[key].acked_by == "user:9"
    leader.svc.evaluate()  # the acknowledgement message, decided on the api replica, goes out from the leader
    assert [m.status for m in leader.rx["ops"].messages] == ["firing", "firing", "acknowledged"]
    api.svc.ingest([alert("DiskFull", component="disk", instance="b")])  # new in the silenced group
    now[0] += dt.timedelta(minutes=2)
    leader.svc.evaluate()
    assert len(leader.rx["ops"].messages) == 3  # silenced, and acknowledged: nothing more
    assert api.svc.event("resolve", "QueueLong") == 1 and api.svc.event("resolve", "nothing") == 0
    now[0] += dt.timedelta(seconds=11)
    leader.svc.evaluate()
    assert leader.rx["ops"].messages[-1].status == "resolved"


def test_a_new_leader_continues_and_never_sends_a_step_twice(pair) -> None:  # type: ignore[no-untyped-def]
    old, new, now, db = pair
    old.leading, new.leading = True, False
    old.svc.ingest([alert("GatewayDown", "P1")])
    assert [m.title for m in old.rx["lead"].messages] == ["[escalation 1] GatewayDown"]
    # The old leader decided the second escalation step and took it for sending, then died before recording.
    now[0] += dt.timedelta(minutes=5)
    with old.svc._change() as p:  # noqa: SLF001 - the decision, as the old leader's round makes it
        p.tick()
    with db.session() as s:
        from waimai.firewall.alerting import state

        [taken] = state.claim(s, "notifier-1-dead", now[0])
        s.commit()
    assert taken.reason == "escalation"
    old.leading, new.leading = False, True
    now[0] += dt.timedelta(seconds=1)
    new.svc.evaluate()
    new.svc.evaluate()
    # The taken step is not sent again (marked unknown); the group goes on: its repeat comes from the new leader.
    assert new.rx["lead"].messages == [] and new.rx["ops"].messages == []
    now[0] += dt.timedelta(hours=1)
    new.svc.evaluate()
    new.svc.evaluate()
    assert [m.title for m in new.rx["ops"].messages] == ["GatewayDown"]
    with db.read_session() as s:
        states = dict(s.execute(select(NotificationRow.state, func.count()).group_by(NotificationRow.state)).all())
        steps = s.execute(select(NotificationRow.step, NotificationRow.receiver)).all()
    assert states == {"sent": 3, "unknown": 1}
    assert len(steps) == len(set(steps))


def test_retention_prunes_everything_finished(pair) -> None:  # type: ignore[no-untyped-def]
    _api, leader, now, db = pair
    leader.svc.ingest([alert("Old"), alert("Fresh")])
    leader.svc.ingest([alert("Old", status="resolved")])
    leader.svc.add_silence({"alertname": "Old"}, ends_at=T0 + dt.timedelta(minutes=1), created_by="t")
    with db.session() as s:  # a month-old world
        s.execute(update(NotificationRow).values(at=T0 - dt.timedelta(days=30)))
        s.add(AlertHistory(event="acknowledged", at=T0 - dt.timedelta(days=40)))
        s.commit()
    now[0] += dt.timedelta(days=8)
    leader.svc.ingest([alert("Fresh")])  # still firing: stays
    out = leader.svc.prune()
    assert out["alerts"] == 1 and out["silences"] == 1 and out["notifications"] >= 2 and out["history"] == 1
    with db.read_session() as s:
        assert [a for a in s.scalars(select(AlertRow.labels))] == [{"alertname": "Fresh", "severity": "P2"}]
    # The Old group sent its "resolved" in that last round; a day later, empty, it goes too.
    assert leader.svc.view().groups["root|alertname=Old"].members == set()
    now[0] += dt.timedelta(days=2)
    assert leader.svc.prune()["groups"] == 1
    assert set(leader.svc.view().groups) == {"root|alertname=Fresh"}


def test_one_broken_group_does_not_stop_the_others(db_url: str) -> None:
    rx = {"ops": Recorder("ops")}
    p = AlertPipeline(PipelineConfig.model_validate({"route": {"receiver": "ops", "group_wait": "0s"}}),
                      {k: [v] for k, v in rx.items()}, clock=lambda: T0)
    p.ingest([alert("A"), alert("B")])
    bad = p.groups["root|alertname=A"]
    bad.members.add("no-such-alert")  # a corrupt group: looking up its members raises
    p.tick()
    assert [m.title for m in rx["ops"].messages] == ["B"] and p.failed_groups == [bad.key]


@pytest.mark.parametrize("target", ["reciever:ops", "oncall:primry", "person:nobody", "receiver:nope"])
def test_a_misspelt_escalation_target_is_a_config_error(db_url: str, target: str) -> None:
    cfg = {**CONFIG, "escalation_policies": {"p1": [{"after": "0s", "targets": [target]}]}}
    with pytest.raises(ValidationError, match="p1\\[0\\]"):
        PipelineConfig.model_validate(cfg)
    with pytest.raises(ValidationError, match="not an escalation policy"):
        PipelineConfig.model_validate({**CONFIG, "escalation_policies": {}})
