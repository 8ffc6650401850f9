"""Console: runbooks (dry run, run with confirmation), remediation policies and recent runs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from waimai.core.errors import AppError
from waimai.firewall import runbooks
from waimai.web.i18n import gettext, say, words
from waimai.web.routes import _need, back, render

router = APIRouter(include_in_schema=False)


@router.get("/ops/runbooks")
def runbooks_page(request: Request) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    with request.app.state.db.read_session() as db:
        rem = runbooks.remediation_status(getattr(request.app.state, "remediation", None), db)
    plan = request.query_params.get("plan")
    return render(request, "ops_runbooks.html", {"books": runbooks.describe(), "rem": rem,
                                                 "plan": plan.split("\n") if plan else None})


@router.post("/ops/runbooks/{name}")
async def run_from_console(request: Request, name: str) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    form = await request.form()
    action = str(form.get("action", "plan"))
    confirm = str(form.get("confirm", ""))
    params: dict[str, Any] = {k[2:]: v for k, v in form.items() if k.startswith("p_") and v != ""}
    ctx = runbooks.Context(request.app.state, f"{p.role}:{p.user_id}", p.user_id)
    try:
        # A runbook (a database restore among them) takes seconds and locks: a worker thread's wait,
        # never the event loop's.
        if action == "plan":
            out = await run_in_threadpool(runbooks.execute, ctx, name[:60], params, dry_run=True)
            from urllib.parse import quote

            # The plan is worded here, in the language of the page that asked for it (the same reader's).
            plan = chr(10).join(words(line) for line in out["plan"])
            return RedirectResponse(f"/ops/runbooks?plan={quote(plan)}#rb-{name}", status_code=303)
        out = await run_in_threadpool(runbooks.execute, ctx, name[:60], params, confirm=confirm)
    except AppError as exc:
        return back("/ops/runbooks", err=say(exc))
    msg = words(out["lines"])
    return back("/ops/runbooks", msg=(gettext("Done: ") if out["ok"] else gettext("Failed: ")) + msg)
