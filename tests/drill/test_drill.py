"""The short payment-outage drill (the acceptance test of the whole product), and the Chaos Toolkit
experiments' validity. The drill starts real processes (service, stand-in gateway, Locust) on 127.0.0.1
and stops by itself in about two minutes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from waimai.drill.faults import FAULTS
from waimai.drill.runner import Drill, DrillConfig

EXPERIMENTS = Path(__file__).resolve().parents[2] / "drills" / "experiments"
pytestmark = pytest.mark.xdist_group("drill")


def test_payment_outage_drill_meets_its_targets(tmp_path: Path) -> None:
    lines: list[str] = []
    card = Drill(DrillConfig(fault="payment-outage", out=tmp_path, users=10, pacing_s=2.0, warmup_s=12, fault_s=35,
                             recover_timeout_s=45, progress=lines.append)).run()
    print("\n".join(lines))
    print(json.dumps(card.targets, ensure_ascii=False), json.dumps(card.orders, ensure_ascii=False))
    assert all(card.targets.values()), card.targets
    for s in card.steps:
        assert s.ok, (s.name, s)
    o = card.orders
    assert o["lost"] == 0 and o["duplicated"] == 0 and o["acknowledged"] > 50 and o["by_cod_during_fault"] > 0
    assert card.step("detected").at_s <= 15  # type: ignore[operator]
    assert card.passed
    folder = Path(card.folder)
    for name in ("scorecard.json", "report.html", "drill.png", "incident-report.html", "incident-report.md"):
        assert (folder / name).stat().st_size > 0, name
    assert (folder / "drill.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((folder / "scorecard.json").read_text())["passed"] is True


@pytest.mark.parametrize("fault", ["wechat-outage", "alipay-outage"])
def test_one_payment_provider_down_drill(tmp_path: Path, fault: str) -> None:
    """One provider's stand-in fails, the other is up: the healthy one is offered within 10 s of detection,
    nothing is lost or charged twice, and cash-on-delivery-only never comes on."""
    lines: list[str] = []
    card = Drill(DrillConfig(fault=fault, out=tmp_path, users=10, pacing_s=2.0, warmup_s=12, fault_s=35,
                             recover_timeout_s=45, progress=lines.append)).run()
    print("\n".join(lines))
    print(json.dumps(card.targets, ensure_ascii=False), json.dumps(card.orders, ensure_ascii=False))
    assert all(card.targets.values()), card.targets
    assert card.step("COD switched on").ok is None
    o = card.orders
    assert o["lost"] == 0 and o["duplicated"] == 0 and o["charged_twice"] == 0 and o["acknowledged"] > 50
    assert card.passed


def test_every_experiment_is_valid_and_names_known_activities() -> None:
    from chaoslib.experiment import ensure_experiment_is_valid

    import waimai.drill.chaos as chaos

    files = sorted(EXPERIMENTS.glob("*.json"))
    assert {f.stem for f in files} <= set(FAULTS) and "payment-outage" in {f.stem for f in files}
    for f in files:
        exp = json.loads(f.read_text(encoding="utf-8"))
        ensure_experiment_is_valid(exp)
        acts = [*exp["steady-state-hypothesis"]["probes"], *exp["method"], *exp["rollbacks"]]
        assert all(hasattr(chaos, a["provider"]["func"]) for a in acts), f
