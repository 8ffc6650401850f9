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
