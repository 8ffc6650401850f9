"""Customer-service pages: the support console (assisted ordering, the ticket queue), the customer's
"report a problem" and ticket pages, one-tap ratings, and the ops satisfaction page."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
