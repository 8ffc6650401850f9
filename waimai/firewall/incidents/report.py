"""The root-cause report of an incident: Markdown and HTML, with charts.

Sections: summary and times (MTTD / MTTA / MTTR); impact (orders and users affected, GMV at risk,
minutes of degradation per component); the metrics that moved first (ranked by their anomaly onset
before detection); charts of the key series around the incident; the full timeline; log excerpts
pulled by the ids of the orders involved and the errors in the window; contributions of other parts
(`EXTRA_SECTIONS`, e.g. complaint tickets); compensation; the team's five whys and root cause; action
items with owners, tracked to closure.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from waimai.core.database import utcnow
from waimai.core.messages import N_
from waimai.core.timeutil import LOCAL
from waimai.firewall.incidents import service as incidents
from waimai.firewall.incidents.models import ComponentStatusChange, Incident, IncidentAction, IncidentReview
from waimai.platform.ordering import read as orders

CHART_SERIES = [("orders_placed_per_min", N_("Orders per minute")), ("payment_success_ratio", N_("Payment success rate")),
                ("http_latency_p95_ms", N_("p95 latency (ms)")), ("http_error_ratio", N_("Server error rate")),
                ("dispatch_backlog", N_("Dispatch backlog"))]
FIRST_MOVER_LOOKBACK = dt.timedelta(minutes=30)
ANOMALY_SCORE = 0.8  # the watcher's signal threshold
# (db, incident) -> {"title": str, "count": int, "lines": [str]} or None: other parts add their evidence.
EXTRA_SECTIONS: list[Callable[[Session, Incident], dict[str, Any] | None]] = []


@dataclass
class Report:
    incident: dict[str, Any]
    window: tuple[dt.datetime, dt.datetime]
    metrics: dict[str, float | None]
    impact: dict[str, Any]
    first_movers: list[dict[str, Any]]
    timeline: list[dict[str, Any]]
    logs: list[dict[str, Any]]
    extra: list[dict[str, Any]]
    compensation: dict[str, Any]
    review: dict[str, Any]
    actions: list[dict[str, Any]]
    charts: dict[str, bytes] = field(default_factory=dict)  # name -> PNG


def _local(t: dt.datetime | None) -> str:
    return "–" if t is None else t.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M:%S")


def _dur(s: float | None) -> str:
    if s is None:
        return "–"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def impact(db: Session, inc: Incident, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    # Minutes each public component spent in each non-operational status inside the window.
    minutes: dict[str, dict[str, float]] = {}
    for comp in sop_components(inc):
        rows = list(db.scalars(select(ComponentStatusChange).where(ComponentStatusChange.component == comp)
                               .order_by(ComponentStatusChange.at, ComponentStatusChange.id)))
        state = "operational"
        marks = []
        for r in rows:
            if r.at <= start:
                state = r.status
            elif r.at < end:
                marks.append((r.at, r.status))
        t0 = start
        for t, st in [*marks, (end, "")]:
            if state != "operational":
                minutes.setdefault(comp, {}).setdefault(state, 0.0)
                minutes[comp][state] += (t - t0).total_seconds() / 60
            t0, state = t, st or state
    return {**orders.impact(db, start, end),
            "degraded_minutes": {c: {s: round(m, 1) for s, m in d.items()} for c, d in minutes.items()}}


def sop_components(inc: Incident) -> list[str]:
    return list(inc.components or [])


def first_movers(store: Any, inc: Incident, start: dt.datetime) -> list[dict[str, Any]]:
    """Series whose anomaly score crossed the signal threshold from 30 min before onset to detection
    (+1 min), earliest first, with how far ahead of detection each moved."""
    if store is None:
        return []
    lo, hi = start - FIRST_MOVER_LOOKBACK, inc.detected_at + dt.timedelta(minutes=1)
    out = []
    for name in store.names():
        if not name.startswith("anomaly."):
            continue
        pts = store.query(name, lo, hi)
        hit = next((p for p in pts if p.value >= ANOMALY_SCORE), None)
        if hit is None:
            continue
        at = dt.datetime.fromtimestamp(hit.ts, dt.UTC)
        out.append({"series": name.removeprefix("anomaly."), "at": at, "score": round(hit.value, 3),
                    "lead_s": round((inc.detected_at - at).total_seconds(), 1)})
    return sorted(out, key=lambda m: m["at"])


def charts(store: Any, inc: Incident, start: dt.datetime, end: dt.datetime) -> dict[str, bytes]:
    """One PNG per key series: 30 min before onset to 15 min after the end, onset / detection /
    resolution marked, the degraded span shaded."""
    if store is None:
        return {}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    lo, hi = start - dt.timedelta(minutes=30), end + dt.timedelta(minutes=15)
    out = {}
    for name, title in CHART_SERIES:
        pts = store.query(name, lo, hi)
        if not pts:
            continue
        def x(t: dt.datetime) -> float:
            return float(mdates.date2num(t.astimezone(LOCAL)))

        def xs(points: list[Any]) -> list[float]:
            return [x(dt.datetime.fromtimestamp(p.ts, dt.UTC)) for p in points]

        fig, ax = plt.subplots(figsize=(8, 2.6), dpi=100)
        ax.plot(xs(pts), [p.value for p in pts], color="#0969da", lw=1.4)
        band = store.query(f"band_low.{name}", lo, hi)
        high = store.query(f"band_high.{name}", lo, hi)
        if band and len(band) == len(high):
            ax.fill_between(xs(band), [p.value for p in band], [p.value for p in high], color="#8c959f", alpha=0.2,
                            label="expected")
        ax.axvspan(x(start), x(end), color="#cf222e", alpha=0.08, label="incident")
        for t, lab, col in ((start, "onset", "#bc4c00"), (inc.detected_at, "detected", "#cf222e"),
                            (inc.resolved_at, "resolved", "#1a7f37")):
            if t is not None:
                ax.axvline(x(t), color=col, ls="--", lw=1, label=lab)
        ax.set_title(title, fontsize=10, loc="left")
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=LOCAL))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best", ncol=5)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        out[name] = buf.getvalue()
    return out


def log_excerpts(log_file: Path | None, db: Session, start: dt.datetime, end: dt.datetime, limit: int = 25
                 ) -> list[dict[str, Any]]:
    """Error and warning lines in the window, then lines about a few of the orders involved."""
    if log_file is None:
        return []
    from waimai.firewall.monitoring.logsearch import search

    docs: list[dict[str, Any]] = []
    for level in ("error", "warning"):
        docs += search(log_file, since=start, until=end, level=level, limit=limit)
    ids = orders.failed_payment_order_ids(db, start, end, limit=3)
    for oid in ids:
        docs += search(log_file, order_id=oid, since=start - dt.timedelta(minutes=5), until=end, limit=5)
    seen, out = set(), []
    for d in sorted(docs, key=lambda d: str(d.get("@timestamp", ""))):
        key = (d.get("@timestamp"), d.get("message"))
        if key in seen:
            continue
        seen.add(key)
        out.append({"at": d.get("@timestamp"), "level": d.get("log", {}).get("level"), "message": d.get("message"),
                    "request_id": d.get("trace", {}).get("id"), "fields": d.get("waimai", {})})
    return out[:limit]


def build(db: Session, inc: Incident, *, store: Any = None, log_file: Path | None = None,
          with_charts: bool = True) -> Report:
    from waimai.firewall import compensation

    start, end = inc.onset_at, inc.resolved_at or utcnow()
    review = db.get(IncidentReview, inc.id)
    actions = list(db.scalars(select(IncidentAction).where(IncidentAction.incident_id == inc.id)
                              .order_by(IncidentAction.id)))
    extra = [s for s in (hook(db, inc) for hook in EXTRA_SECTIONS) if s]
    return Report(
        incident={"id": inc.id, "title": inc.title, "severity": inc.severity, "status": inc.status,
                  "components": list(inc.components), "summary": inc.summary, "roles": dict(inc.roles),
                  "onset_at": inc.onset_at, "detected_at": inc.detected_at, "acknowledged_at": inc.acknowledged_at,
                  "resolved_at": inc.resolved_at, "source": inc.source},
        window=(start, end), metrics=incidents.metrics(inc), impact=impact(db, inc, start, end),
        first_movers=first_movers(store, inc, start),
        timeline=[{"at": e.at, "kind": e.kind, "text": e.text, "actor": e.actor, "public": e.public}
                  for e in incidents.timeline(db, inc.id)],
        logs=log_excerpts(log_file, db, start, end), extra=extra, compensation=compensation.report(db, inc.id),
        review={"whys": list(review.whys) if review else [], "root_cause": review.root_cause if review else "",
                "notes": review.notes if review else ""},
        actions=[{"id": a.id, "text": a.text, "owner": a.owner, "due_at": a.due_at, "status": a.status,
                  "closed_at": a.closed_at} for a in actions],
        charts=charts(store, inc, start, end) if with_charts else {})


_MD_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character (CommonMark escapes them all)


def md_text(value: Any) -> str:
    """Text from people (ticket quotes, titles, timeline lines, the review) as Markdown that renders as that
    same text: every punctuation character backslash-escaped, line breaks folded, so `![x](http://…)` is
    no image, `[a](…)` no link, `<b>` no tag and `|` no table cell."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def _fence(lines: list[str]) -> str:
    """A code fence longer than any backtick run inside, so log text cannot close it early."""
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    return "`" * max(3, longest + 1)


def markdown(r: Report, *, image_dir: str | None = "charts") -> str:
    """The report as Markdown; everything people wrote goes through `md_text`, so it stays text."""
    i, imp, m = r.incident, r.impact, r.metrics
    yuan = lambda f: f"¥{f / 100:,.2f}"  # noqa: E731
    out = [f"# Incident #{i['id']}: {md_text(i['title'])}", "",
           f"**{i['severity']}** · components: {md_text(', '.join(i['components'])) or '—'} · status: {i['status']} · "
           f"opened by {md_text(i['source'])}", ""]
    if i["summary"]:
        out += [md_text(i["summary"]), ""]
    out += ["## Times (Asia/Shanghai)", "", "| onset | detected | acknowledged | resolved |", "|---|---|---|---|",
            f"| {_local(i['onset_at'])} | {_local(i['detected_at'])} | {_local(i['acknowledged_at'])} | "
            f"{_local(i['resolved_at'])} |", "",
            f"MTTD **{_dur(m['mttd_s'])}** (onset → detected) · MTTA **{_dur(m['mtta_s'])}** (detected → "
            f"acknowledged) · MTTR **{_dur(m['mttr_s'])}** (onset → resolved)", "",
            "## Impact", "",
            f"- Orders placed in the window: {imp['orders_placed']} ({yuan(imp['gmv_placed_fen'])})",
            f"- Orders failed or cancelled: {imp['orders_failed']}; online payments failed: {imp['payment_failures']}; "
            f"delivered late: {imp['orders_late']}",
            f"- Users affected: {imp['users_affected']}; GMV at risk: {yuan(imp['gmv_at_risk_fen'])}"]
    for comp, d in imp["degraded_minutes"].items():
        out.append(f"- {comp}: " + ", ".join(f"{s} {v:.1f} min" for s, v in d.items()))
    out += ["", "## What moved first", ""]
    if r.first_movers:
        out += ["| series | anomaly from | score | ahead of detection |", "|---|---|---|---|"]
        out += [f"| {f['series']} | {_local(f['at'])} | {f['score']} | {f['lead_s']:.0f} s |" for f in r.first_movers]
    else:
        out.append("No watched series crossed its anomaly threshold before detection.")
    if r.charts:
        out += ["", "## Key series", ""]
        for name in r.charts:
            out.append(f"![{name}]({image_dir}/{name}.png)" if image_dir else f"![{name}](data:image/png;base64,"
                       f"{base64.b64encode(r.charts[name]).decode()})")
    out += ["", "## Timeline", "", "| time | kind | what | who |", "|---|---|---|---|"]
    out += [f"| {_local(e['at'])[11:]} | {md_text(e['kind'])}{' (public)' if e['public'] else ''} | "
            f"{md_text(e['text'])} | {md_text(e['actor'])} |" for e in r.timeline]
    for s in r.extra:
        # The section title is written by our code (category codes); the quoted lines are people's words.
        out += ["", f"## {s['title']}", "", f"{s.get('count', len(s.get('lines', [])))} in the window.", ""]
        out += [f"> {md_text(line)}" for line in s.get("lines", [])[:5]]
    out += ["", "## Compensation", ""]
    c = r.compensation
    out.append(f"{c['coupons']} coupons to {c['users']} users, {yuan(c['cost_fen'])}; redeemed {c['redeemed']}"
               + (f" ({c['redemption_rate']:.0%})" if c["redemption_rate"] is not None else "") if c["coupons"]
               else "None issued.")
    if r.logs:
        lines = [f"{str(d['at'])[11:23]} {str(d['level']).upper():7} {d['message']} {d['fields'] or ''}"
                 for d in r.logs]
        fence = _fence(lines)
        out += ["", "## Log excerpts", "", fence, *(" ".join(line.split()) for line in lines), fence]
    out += ["", "## Five whys", ""]
    whys = r.review["whys"] or [""] * 5
    out += [f"{n}. Why? {md_text(w) if w else '_(to be filled by the team)_'}" for n, w in enumerate(whys, 1)]
    out += ["", f"**Root cause:** {md_text(r.review['root_cause']) or '_(to be filled by the team)_'}", ""]
    if r.review["notes"]:
        out += [md_text(r.review["notes"]), ""]
    out += ["## Action items", ""]
    out += [f"- [{'x' if a['status'] == 'done' else ' '}] {md_text(a['text'])} — {md_text(a['owner'])}"
            + (f" (due {_local(a['due_at'])[:10]})" if a["due_at"] else "") for a in r.actions] or ["None yet."]
    return "\n".join(out) + "\n"


def html(r: Report) -> str:
    """A standalone HTML page (charts embedded), from the same Markdown."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown(r, image_dir=None))
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Incident "
            f"#{r.incident['id']} report</title><style>body{{font-family:\"PingFang SC\",\"Noto Sans CJK SC\","
            "system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;color:#1f2328;line-height:1.5}"
            "table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #d9dde3;padding:.3rem;"
            "text-align:left;vertical-align:top}img{max-width:100%}pre{background:#f6f8fa;padding:.6rem;"
            "overflow:auto;font-size:.8rem}</style></head><body>" + body + "</body></html>")


def write(r: Report, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "charts").mkdir(exist_ok=True)
    for name, png in r.charts.items():
        (out_dir / "charts" / f"{name}.png").write_bytes(png)
    (out_dir / "report.md").write_text(markdown(r), encoding="utf-8")
    (out_dir / "report.html").write_text(html(r), encoding="utf-8")
    return {"markdown": out_dir / "report.md", "html": out_dir / "report.html", "charts": out_dir / "charts"}
