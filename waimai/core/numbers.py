"""Numbers as people read them on pages, logs and incident timelines."""

from __future__ import annotations


def readable(x: float) -> str:
    """A number as people read it on a console: 10,000 not 1e+04, 0.985 not 9.85e-01."""
    if x != x:  # NaN
        return "–"
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 10 or ax == 0:
        return f"{x:.1f}".rstrip("0").rstrip(".")
    return f"{x:.3f}".rstrip("0").rstrip(".")
