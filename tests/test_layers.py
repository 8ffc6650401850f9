"""The layers hold (issue 22): the import-linter contracts in pyproject.toml are kept on this tree, and they
are not vacuous — an import reaching up a layer, a firewall module reading a platform table, or core
importing the firewall breaks them. `make lint` runs the same contracts through `lint-imports`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("importlinter")

from importlinter import configuration  # noqa: E402
from importlinter.application import use_cases  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = {"layers", "core-is-the-floor", "firewall-through-services", "web-is-the-top", "no-package-cycles"}


@pytest.fixture(scope="module")
def report():  # type: ignore[no-untyped-def]
    configuration.configure()
    use_cases._register_built_in_contract_types()  # what `lint-imports` does before it reads the contracts
    return use_cases.create_report(use_cases.read_user_options(str(ROOT / "pyproject.toml")), cache_dir=None)


def test_every_contract_is_kept(report) -> None:  # type: ignore[no-untyped-def]
    checks = {c.contract_options["id"]: check for c, check in report.get_contracts_and_checks()}
    assert set(checks) == CONTRACTS
    assert [i for i, check in checks.items() if not check.kept] == []
    assert "waimai.core.metrics" in report.graph.modules  # the graph is this tree's (instruments in core)


@pytest.mark.parametrize(("importer", "imported", "breaks"), [
    ("waimai.core.background", "waimai.firewall.monitoring.store", {"layers", "core-is-the-floor",
                                                                    "no-package-cycles"}),
    ("waimai.firewall.compensation", "waimai.platform.ordering.models", {"firewall-through-services"}),
    ("waimai.firewall.monitoring.probes", "waimai.platform.ordering.state", {"firewall-through-services"}),
    ("waimai.platform.ordering.service", "waimai.firewall.incidents.service", {"layers", "no-package-cycles"}),
    ("waimai.firewall.resilience.setup", "waimai.web.simple", {"layers", "web-is-the-top", "no-package-cycles"}),
    ("waimai.config", "waimai.core.roles", {"layers", "no-package-cycles"}),
])
def test_an_import_against_the_grain_breaks_them(report, importer: str, imported: str,  # type: ignore[no-untyped-def]
                                                  breaks: set[str]) -> None:
    graph = report.graph
    graph.add_import(importer=importer, imported=imported, line_number=1, line_contents=f"import {imported}")
    try:
        broken = {c.contract_options["id"] for c, _ in report.get_contracts_and_checks() if not c.check(graph, verbose=False).kept}
    finally:
        graph.remove_import(importer=importer, imported=imported)
    assert broken == breaks
