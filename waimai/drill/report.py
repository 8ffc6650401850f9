"""The drill's report: scorecard, orders, load per step, and charts of load, latency, payment success
and switches over the drill, with the fault's injection and removal marked."""

from __future__ import annotations

import csv
import datetime as dt
import html
from pathlib import Path
from typing import Any

from waimai.core.timeutil import LOCAL


def _history(folder: Path) -> list[dict[str, str]]:
    f = folder / "locust_stats_history.csv"
    if not f.exists():
        return []
    return [r for r in csv.DictReader(f.open(encoding="utf-8")) if r.get("Name") == "Aggregated"]


def _series(folder: Path, name: str, start: float, end: float) -> list[tuple[float, float]]:
    from waimai.firewall.monitoring.store import MetricStore

    store = MetricStore(f"sqlite:///{folder / 'metrics.db'}")
    try:
        return [(p.ts, p.value) for p in store.query(name, start, end)]
    finally:
        store.dispose()


def _switches(db_url: str) -> list[tuple[float, str, bool]]:
    from sqlalchemy import select

    from waimai.core.audit import AuditEntry
    from waimai.core.database import Database

    db = Database(db_url)
    try:
        with db.read_session() as s:
            rows = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "switch.set")
                                  .order_by(AuditEntry.at)))
            return [(r.at.timestamp(), r.target, bool(r.details.get("to"))) for r in rows]
    except Exception:  # noqa: BLE001 - the scratch database is gone (PostgreSQL, dropped): no switch lane
        return []
    finally:
        db.dispose()


def chart(d: Any, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    def x(ts: float) -> float:
        return float(mdates.date2num(dt.datetime.fromtimestamp(ts, dt.UTC).astimezone(LOCAL)))

    hist = _history(d.folder)
    start = float(hist[0]["Timestamp"]) if hist else d.t0 - d.cfg.warmup_s
    end = float(hist[-1]["Timestamp"]) if hist else d.t1 + 30
    fig, axes = plt.subplots(4, 1, figsize=(9, 8.5), sharex=True, dpi=100)
    ts = [x(float(r["Timestamp"])) for r in hist]
    axes[0].plot(ts, [float(r["Requests/s"]) for r in hist], label="requests/s", color="#0969da")
    axes[0].plot(ts, [float(r["Failures/s"]) for r in hist], label="failures/s", color="#cf222e")
    axes[0].set_title("Load (Locust)", loc="left", fontsize=10)
    p95 = [(t, float(r["95%"])) for t, r in zip(ts, hist, strict=True) if r["95%"] not in ("", "N/A")]
    axes[1].plot([t for t, _ in p95], [v for _, v in p95], color="#bc4c00", label="p95 ms")
    axes[1].set_title("Latency p95 (ms)", loc="left", fontsize=10)
    pay = _series(d.folder, "payment_success_ratio", start, end)
    px: list[float] = []
    py: list[float] = []
    for i, (t, v) in enumerate(pay):
        if i and t - pay[i - 1][0] > 3:  # no gateway calls (cash only): leave a gap, do not draw a line over it
            px.append(x(t - 1))
            py.append(float("nan"))
        px.append(x(t))
        py.append(v)
    axes[2].plot(px, py, color="#1a7f37", marker=".", ls="-")
    axes[2].set_ylim(-0.05, 1.05)
    axes[2].set_title("Payment success rate", loc="left", fontsize=10)
    flips = _switches(d.db_url)
    names = sorted({n for _, n, _ in flips})
    for i, name in enumerate(names):
        pts = [(t, on) for t, n, on in flips if n == name]
        xs, ys = [x(start)], [float(i)]
        for t, on in pts:
            xs += [x(t), x(t)]
            ys += [ys[-1], i + (0.8 if on else 0)]
        xs.append(x(end))
        ys.append(ys[-1])
        axes[3].plot(xs, ys, lw=2, label=name)
    axes[3].set_yticks(range(len(names)), names, fontsize=8)
    axes[3].set_title("Switches (raised = on)", loc="left", fontsize=10)
    for ax in axes:
        ax.axvline(x(d.t0), color="#cf222e", ls="--", lw=1)
        if d.t1:
            ax.axvline(x(d.t1), color="#1a7f37", ls="--", lw=1)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left")
    axes[3].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S", tz=LOCAL))
    fig.suptitle(f"Drill {d.cfg.fault}: fault injected (red) and removed (green)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(d: Any) -> Path:
    card = d.card
    png = d.folder / "drill.png"
    chart(d, png)
    import base64

    img = base64.b64encode(png.read_bytes()).decode()
    rows = "".join(
        f"<tr><td>{html.escape(s.name)}</td><td class=\"{'ok' if s.ok else 'bad' if s.ok is False else 'na'}\">"
        f"{'pass' if s.ok else 'FAIL' if s.ok is False else 'not reached'}</td><td>"
        f"{'' if s.at_s is None else f'{s.at_s:+.1f} s'}</td><td>{html.escape(s.target)}</td>"
        f"<td>{html.escape(s.detail)}</td></tr>" for s in card.steps)
    targets = "".join(f"<tr><td>{html.escape(k)}</td><td class=\"{'ok' if v else 'bad'}\">{'met' if v else 'MISSED'}"
                      f"</td></tr>" for k, v in card.targets.items())
    orders = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                     for k, v in card.orders.items())
    load = "".join(f"<tr><td>{html.escape(n)}</td><td>{v['requests']}</td><td>{v['failures']}</td><td>{v['rps']}</td>"
                   f"<td>{v['p50_ms']}</td><td>{v['p95_ms']}</td><td>{v['p99_ms']}</td></tr>" for n, v in card.load.items())
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Drill {card.fault}</title>
<style>body{{font-family:"Noto Sans CJK SC",system-ui,sans-serif;max-width:1000px;margin:2rem auto;padding:0 1rem;color:#1f2328}}
table{{border-collapse:collapse;width:100%;margin-bottom:1rem}}td,th{{border-bottom:1px solid #d9dde3;padding:.3rem;text-align:left}}
.ok{{color:#1a7f37;font-weight:700}}.bad{{color:#cf222e;font-weight:700}}.na{{color:#5b636d}}img{{max-width:100%}}</style></head><body>
<h1>Drill: lunch rush with {html.escape(card.fault)} — {'PASSED' if card.passed else 'FAILED'}</h1>
<p>Started {html.escape(card.started_at)} · folder {html.escape(card.folder)} ·
<a href="incident-report.html">incident root-cause report</a></p>
<h2>Scorecard (times from the injection)</h2><table><tr><th>step</th><th></th><th>at</th><th>target</th><th>detail</th></tr>{rows}</table>
<h2>Targets</h2><table>{targets}</table>
<h2>Orders</h2><table>{orders}</table>
<h2>Load per step</h2><table><tr><th>request</th><th>count</th><th>failures</th><th>req/s</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th></tr>{load}</table>
<h2>Charts</h2><img alt="load, latency, payment success and switches" src="data:image/png;base64,{img}">
</body></html>"""
    out = d.folder / "report.html"
    out.write_text(page, encoding="utf-8")
    return out
