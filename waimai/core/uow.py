"""One unit of work: whoever opens a session owns its commit, and only one place commits.

The pattern is Netflix Dispatch's request-scoped session: a request gets one write session from
`request_session` (the `SessionDep` dependency), the handler and the services it calls only add, change
and flush, and the session is committed once the handler has returned and its response has been built,
or rolled back if anything raised. The dependency is declared with `scope="function"`, so the commit
happens BEFORE the response is sent: a commit that fails (a conflict, a lost connection) reaches the
error handlers as a 4xx/5xx, and no client is ever told of a success that was not stored.

Pages, background jobs and CLI commands that open their own session use `unit_of_work(database)`, the
same rule as a context manager. Two named helpers cover what a single commit at the end cannot:

- `after_commit(session, fn)`: run `fn` once the work is stored (publish an event, invalidate a cache),
  never for work that is rolled back;
- `checkpoint(session, why=...)`: commit midway, with the reason written at the call site (a refusal that
  must stay counted although the request fails, a commit before a slow gateway call). Keep these few.

Services never commit. `tests/test_unit_of_work.py` walks the package and refuses a `.commit()` in any
route or page handler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from starlette.requests import Request

    from waimai.core.database import Database

log = logging.getLogger(__name__)

_AFTER_COMMIT = "waimai.uow.after_commit"


def after_commit(session: Session, fn: Callable[[], Any]) -> None:
    """Run `fn` after the unit of work (or its next checkpoint) is committed; dropped on rollback."""
    session.info.setdefault(_AFTER_COMMIT, []).append(fn)


def _commit(session: Session) -> None:
    session.commit()
    callbacks: list[Callable[[], Any]] = session.info.pop(_AFTER_COMMIT, [])
    for fn in callbacks:
        try:
            fn()
        except Exception:  # the work is stored: a failing follow-up must not turn it into an error reply
            log.exception("after_commit callback failed: %s", getattr(fn, "__qualname__", fn))


def checkpoint(session: Session, *, why: str) -> None:
    """Commit the work so far and go on in a new transaction. `why` says at the call site what must be
    stored before the rest (it is not logged: it is for the reader and for the unit-of-work test)."""
    if not why.strip():
        raise ValueError("a checkpoint says why it commits midway")
    _commit(session)


@contextmanager
def owning(session: Session) -> Iterator[Session]:
    """Make `session`'s current work one unit: committed when the block ends normally, rolled back if it
    raises (the exception goes on)."""
    try:
        yield session
    except BaseException:
        session.info.pop(_AFTER_COMMIT, None)
        session.rollback()
        raise
    _commit(session)


@contextmanager
def unit_of_work(database: Database) -> Iterator[Session]:
    """A write session for a page, job or command: committed at the end of the block, rolled back on error."""
    with database.session() as session, owning(session):
        yield session


def request_session(request: Request) -> Iterator[Session]:
    """The request's unit of work (FastAPI dependency, `scope="function"`: committed before the reply)."""
    with unit_of_work(request.app.state.db) as session:
        yield session
