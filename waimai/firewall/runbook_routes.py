"""Runbooks over HTTP (ops only): list, dry-run plan, run; remediation policies and what they did."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from waimai.core.deps import API_PREFIX, OpsDep, ReadSessionDep
from waimai.firewall import runbooks

router = APIRouter(prefix=API_PREFIX + "/runbooks", tags=["runbooks"])
Name = Annotated[str, Field(max_length=60, pattern=r"^[a-z_]+$")]


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    params: dict[str, Any] = {}
    confirm: str = Field(default="", max_length=60, description="destructive runbooks: repeat the runbook's name")


def context(request: Request, p: Any) -> runbooks.Context:
    return runbooks.Context(request.app.state, f"{p.role}:{p.user_id}", p.user_id)


@router.get("")
def list_runbooks(_p: OpsDep) -> list[dict[str, Any]]:
    """Every runbook with its parameters (JSON schema) and whether it is destructive."""
    return runbooks.describe()


@router.post("/{name}/plan")
def plan(name: Name, body: RunIn, p: OpsDep, request: Request) -> dict[str, Any]:
    """The dry run: what the runbook would do with these parameters. Nothing changes."""
    return runbooks.execute(context(request, p), name, body.params, dry_run=True)


@router.post("/{name}/run")
def run(name: Name, body: RunIn, p: OpsDep, request: Request) -> dict[str, Any]:
    """Run it (one at a time); on the audit log and the open incidents' timelines."""
    return runbooks.execute(context(request, p), name, body.params, confirm=body.confirm)


@router.get("/remediation")
def remediation(_p: OpsDep, request: Request, db: ReadSessionDep) -> dict[str, Any]:
    return runbooks.remediation_status(getattr(request.app.state, "remediation", None), db)
