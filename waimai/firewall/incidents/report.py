"""The root-cause report of an incident: Markdown and HTML, with charts.

Sections: summary and times (MTTD / MTTA / MTTR); impact (orders and users affected, GMV at risk,
minutes of degradation per component); the metrics that moved first (ranked by their anomaly onset
before detection); charts of the key series around the incident; the full timeline; log excerpts
pulled by the ids of the orders involved and the errors in the window; contributions of other parts
(the `sections` plug-ins, e.g. complaint tickets); compensation; the team's five whys and root cause; action
items with owners, tracked to closure.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from waimai.core.database import utcnow
from waimai.core.messages import N_, english, english_words
from waimai.core.timeutil import LOCAL
from waimai.firewall.incidents import service as incidents
from waimai.firewall.incidents.models import ComponentStatusChange, Incident, IncidentAction, IncidentReview
from waimai.platform.ordering import read as orders

CHART_SERIES = [("orders_placed_per_min", N_("Orders per minute")), ("payment_success_ratio", N_("Payment success rate")),
                ("http_latency_p95_ms", N_("p95 latency (ms)")), ("http_error_ratio", N_("Server error rate")),
                ("dispatch_backlog", N_("Dispatch backlog"))]
FIRST_MOVER_LOOKBACK = dt.timedelta(minutes=30)
ANOMALY_SCORE = 0.8  # the watcher's signal threshold
# (db, incident) -> {"title": str, "count": int, "lines": [str]} or None: other parts add their evidence,
# passed to `build` from the plug-ins composed in one place (waimai.subscribers.incident_plugins).
Section = Callable[[Session, Incident], dict[str, Any] | None]


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
          with_charts: bool = True, sections: Sequence[Section] = (), sop: incidents.Sop | None = None) -> Report:
    from waimai.firewall import compensation

    start, end = inc.onset_at, inc.resolved_at or utcnow()
    review = db.get(IncidentReview, inc.id)
    actions = list(db.scalars(select(IncidentAction).where(IncidentAction.incident_id == inc.id)
                              .order_by(IncidentAction.id)))
    extra = [s for s in (section(db, inc) for section in sections) if s]
    return Report(
        incident={"id": inc.id, "title": inc.title, "severity": inc.severity, "status": inc.status,
                  "components": list(inc.components), "summary": inc.summary, "roles": dict(inc.roles),
                  "onset_at": inc.onset_at, "detected_at": inc.detected_at, "acknowledged_at": inc.acknowledged_at,
                  "resolved_at": inc.resolved_at, "source": inc.source,
                  "component_names": {c: {"en": incidents.component_names(sop, [c], "en"),
                                          "zh": incidents.component_names(sop, [c], "zh_CN")}
                                      for c in inc.components} if sop is not None else {}},
        window=(start, end), metrics=incidents.metrics(inc), impact=impact(db, inc, start, end),
        first_movers=first_movers(store, inc, start),
        timeline=[{"at": e.at, "kind": e.kind, "text": e.text, "actor": e.actor, "public": e.public,
                   "msg": (e.details or {}).get("msg"), "texts": (e.details or {}).get("text")}
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


def markdown(r: Report, *, image_dir: str | None = "charts", tr: Callable[[str], str] = english,
             words: Callable[[Any], str] = english_words) -> str:
    """The report as Markdown; everything people wrote goes through `md_text`, so it stays text.

    Worded in English (files, the API) unless a page passes its reader's `tr` (gettext) and `words` (how the
    system's own timeline lines, kept as msgids with values, read in that language)."""
    _ = tr  # the msgids below are extracted by `pybabel extract -k _`
    i, imp, m = r.incident, r.impact, r.metrics
    yuan = lambda f: f"¥{f / 100:,.2f}"  # noqa: E731
    names = i.get("component_names") or {}

    def comp(c: str) -> str:
        return words(names[c]) if c in names else c

    def line(text: str, **values: Any) -> str:  # line(_("msgid with %(places)s"), places=...)
        return text % values

    def key(prefix: str, value: str) -> str:  # a keyed msgid's words, or the value itself when there are none
        said = tr(f"{prefix}.{value}")
        return value if said == f"{prefix}.{value}" else said

    cs = i["components"]
    comps = md_text(words({"en": ", ".join(names[c]["en"] for c in cs), "zh": "、".join(names[c]["zh"] for c in cs)})
                    if all(c in names for c in cs) else ", ".join(cs)) or "—"
    out = [line(_("# Incident #%(id)s: %(title)s"), id=i["id"], title=md_text(i["title"])), "",
           line(_("**%(severity)s** · components: %(components)s · status: %(status)s · opened by %(source)s"),
                severity=i["severity"], components=comps, status=key("stage", i["status"]),
                source=md_text(key("source", i["source"]))), ""]
    if i["summary"]:
        out += [md_text(i["summary"]), ""]
    out += [_("## Times (Asia/Shanghai)"), "", _("| onset | detected | acknowledged | resolved |"), "|---|---|---|---|",
            f"| {_local(i['onset_at'])} | {_local(i['detected_at'])} | {_local(i['acknowledged_at'])} | "
            f"{_local(i['resolved_at'])} |", "",
            line(_("MTTD **%(mttd)s** (onset → detected) · MTTA **%(mtta)s** (detected → acknowledged) · "
                 "MTTR **%(mttr)s** (onset → resolved)"), mttd=_dur(m["mttd_s"]), mtta=_dur(m["mtta_s"]),
                 mttr=_dur(m["mttr_s"])), "",
            _("## Impact"), "",
            line(_("- Orders placed in the window: %(n)s (%(gmv)s)"), n=imp["orders_placed"],
                 gmv=yuan(imp["gmv_placed_fen"])),
            line(_("- Orders failed or cancelled: %(failed)s; online payments failed: %(payments)s; delivered late: "
                 "%(late)s"), failed=imp["orders_failed"], payments=imp["payment_failures"], late=imp["orders_late"]),
            line(_("- Users affected: %(users)s; GMV at risk: %(gmv)s"), users=imp["users_affected"],
                 gmv=yuan(imp["gmv_at_risk_fen"]))]
    for c, d in imp["degraded_minutes"].items():
        spans = [line(_("%(status)s %(min)s min"), status=key("component", s), min=f"{v:.1f}") for s, v in d.items()]
        out.append(line(_("- %(component)s: %(spans)s"), component=md_text(comp(c)), spans=", ".join(spans)))
    out += ["", _("## What moved first"), ""]
    if r.first_movers:
        out += [_("| series | anomaly from | score | ahead of detection |"), "|---|---|---|---|"]
        out += [f"| {f['series']} | {_local(f['at'])} | {f['score']} | {f['lead_s']:.0f} s |" for f in r.first_movers]
    else:
        out.append(_("No watched series crossed its anomaly threshold before detection."))
    if r.charts:
        out += ["", _("## Key series"), ""]
        for name in r.charts:
            out.append(f"![{name}]({image_dir}/{name}.png)" if image_dir else f"![{name}](data:image/png;base64,"
                       f"{base64.b64encode(r.charts[name]).decode()})")
    out += ["", _("## Timeline"), "", _("| time | kind | what | who |"), "|---|---|---|---|"]
    for e in r.timeline:
        kind = key("incident_event", e["kind"])
        said = e.get("msg") or (e.get("texts") if isinstance(e.get("texts"), dict) and "en" in e["texts"] else None)
        out.append(f"| {_local(e['at'])[11:]} | {line(_('%(kind)s (public)'), kind=md_text(kind)) if e['public'] else md_text(kind)} | "
                   f"{md_text(words(said) if said else e['text'])} | {md_text(e['actor'])} |")
    for s in r.extra:
        # The section title is written by our code; the quoted lines are people's words.
        out += ["", f"## {words(s['title'])}", "",
                line(_("%(n)s in the window."), n=s.get("count", len(s.get("lines", [])))), ""]
        out += [f"> {md_text(words(q))}" for q in s.get("lines", [])[:5]]
    out += ["", _("## Compensation"), ""]
    c = r.compensation
    if c["coupons"]:
        out.append(line(_("%(coupons)s coupons to %(users)s users, %(cost)s; redeemed %(redeemed)s"), coupons=c["coupons"],
                        users=c["users"], cost=yuan(c["cost_fen"]), redeemed=c["redeemed"])
                   + (f" ({c['redemption_rate']:.0%})" if c["redemption_rate"] is not None else ""))
    else:
        out.append(_("None issued."))
    if r.logs:
        lines = [f"{str(d['at'])[11:23]} {str(d['level']).upper():7} {d['message']} {d['fields'] or ''}"
                 for d in r.logs]
        fence = _fence(lines)
        out += ["", _("## Log excerpts"), "", fence, *(" ".join(ln.split()) for ln in lines), fence]
    out += ["", _("## Five whys"), ""]
    whys = r.review["whys"] or [""] * 5
    todo = _("_(to be filled by the team)_")
    out += [line(_("%(n)s. Why? %(why)s"), n=n, why=md_text(w) if w else todo) for n, w in enumerate(whys, 1)]
    out += ["", line(_("**Root cause:** %(cause)s"), cause=md_text(r.review["root_cause"]) or todo), ""]
    if r.review["notes"]:
        out += [md_text(r.review["notes"]), ""]
    out += [_("## Action items"), ""]
    out += [f"- [{'x' if a['status'] == 'done' else ' '}] {md_text(a['text'])} — {md_text(a['owner'])}"
            + (" " + line(_("(due %(day)s)"), day=_local(a["due_at"])[:10]) if a["due_at"] else "") for a in r.actions] \
        or [_("None yet.")]
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
