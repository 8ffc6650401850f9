"""The packages only benchmarks, drills and tests need: pyproject.toml's extras `bench`, `drill` and `dev`.

A production install (`pip install --require-hashes -r requirements.lock`, then the package) has none of
them, so the code that uses one imports it inside the command or class that needs it, through `require`:
a missing package is then a one-line answer naming the extra to install, not a traceback from deep inside
a benchmark. tests/test_packaging.py holds every such import to this rule.
"""

from __future__ import annotations

import importlib.util


class MissingExtra(RuntimeError):
    """A feature needs a package from one of waimai's extras that is not installed."""


def require(module: str, extra: str, feature: str) -> None:
    """Raise MissingExtra saying `pip install 'waimai[<extra>]'` unless the top-level `module` can be imported.

    Finds it without importing it: importing Locust monkey-patches the standard library (gevent), which only
    the Locust process itself may do."""
    if importlib.util.find_spec(module) is None:
        raise MissingExtra(f"{feature} needs the {module!r} package, which a production install leaves out: "
                           f"pip install 'waimai[{extra}]' (or make venv)")
