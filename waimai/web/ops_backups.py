"""Console: backups (list, back up now, verify) and the one-click rollback with its confirmation.

The forms call the same actions as the JSON API (/api/v1/backups): firewall/recovery/flows.py, so they are
audited alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from waimai.core.deps import Principal
from waimai.core.errors import AppError
from waimai.firewall.recovery import flows
from waimai.firewall.recovery.restore import restores
from waimai.web.i18n import gettext, say
from waimai.web.routes import _need, back, render

router = APIRouter(include_in_schema=False)
BackupId = Annotated[str, Path(pattern=flows.BACKUP_ID)]
PAGE = "/ops/backups"


def _act(request: Request, fn: Callable[[Principal], str]) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    try:
        return back(PAGE, msg=fn(p))
    except AppError as exc:
        return back(PAGE, err=say(exc))


@router.get(PAGE)
def backups_page(request: Request) -> Response:
    p = _need(request, "ops")
    if isinstance(p, RedirectResponse):
        return p
    cfg = flows.config(request.app.state)
    return render(request, "ops_backups.html", {"backups": cfg.catalog().all(), "restores": restores(cfg)[:10],
                                                "retention": cfg.retention, "schedule": cfg.schedule,
                                                "targets": [t.describe() for t in cfg.targets()]})


@router.post(PAGE)
def back_up_now(request: Request, note: str = Form("", max_length=200)) -> Response:
    def go(p: Principal) -> str:
        m = flows.create(request.app.state, p, note=note)
        return gettext("Backup {id}: {status}, verification {v}.").format(id=m.id, status=m.status,
                                                                         v=m.verification.status)
    return _act(request, go)


@router.post(PAGE + "/{backup_id}/verify")
def verify(request: Request, backup_id: BackupId) -> Response:
    def go(p: Principal) -> str:
        m = flows.verify(request.app.state, p, backup_id)
        return gettext("Backup {id}: verification {v}.").format(id=m.id, v=m.verification.status)
    return _act(request, go)


@router.post(PAGE + "/{backup_id}/restore")
def restore(request: Request, backup_id: BackupId, confirm: str = Form("", max_length=60)) -> Response:
    def go(p: Principal) -> str:
        r = flows.restore(request.app.state, p, backup_id, confirm=confirm or "-")
        return gettext("Restored {id}; safety backup {safety}; {new} order(s) after the backup and {changed} changed "
                       "exported to {file}.").format(id=r.backup_id, safety=r.safety_backup_id, new=r.orders_new,
                                                     changed=r.orders_changed,
                                                     file=(r.export_csv or "").rsplit("/", 1)[-1])
    return _act(request, go)
