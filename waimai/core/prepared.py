"""Hot-path writes compiled once to the driver's SQL and executed on the driver's cursor.

`Prepared(stmt)` compiles a Core statement once per dialect (its SQL text, the order of its
parameters, each parameter's bind processor from its column type: `UTCDateTime`, JSON, booleans),
then runs it with a plain cursor. That skips SQLAlchemy's per-execution work (execution context,
cache-key lookup, result wrapping), about 30 µs a statement, which was a fifth of an order's CPU.
The driver still prepares: sqlite3 keeps a per-connection statement cache, and psycopg 3 prepares
server-side any query run more than `prepare_threshold` (5) times on a connection.

The engine's `before_cursor_execute` / `after_cursor_execute` listeners are still called around
each statement, so statement timing (monitoring) and injected delays (chaos drills) see these
writes like any other. Only for statements whose results need no type processing (row counts,
integer ids); reads keep going through SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # parameter names, in the order a positional driver wants them
    positional: bool
    processors: dict[str, Callable[[Any], Any]]
    constants: dict[str, Any]


class Prepared:
    """A statement compiled once per dialect; `run` executes it on the connection's driver cursor."""

    def __init__(self, stmt: ClauseElement) -> None:
        self.stmt = stmt
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def _compile(self, dialect: Dialect, keys: tuple[str, ...]) -> _Compiled:
        """Compiled for this dialect and these parameter names (an INSERT sets exactly those columns)."""
        c = self._compiled.get((dialect.name, keys))
        if c is None:
            compiled = cast(SQLCompiler, self.stmt.compile(dialect=dialect, column_keys=list(keys)))
            processors: dict[str, Callable[[Any], Any]] = {}
            for name, bind in compiled.binds.items():
                proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
                if proc is not None:
                    processors[name] = proc
            names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(compiled.binds)
            computed = [col.key for col in [*compiled.insert_prefetch, *compiled.update_prefetch]
                        if col.key not in keys]
            if computed:  # Python-side defaults (`onupdate=utcnow`) are the execution context's job: pass them
                raise ValueError(f"prepared statement needs explicit values for {computed}")
            constants: dict[str, Any] = {}
            for name in set(names) - set(keys):
                bind = compiled.binds[name]
                if bind.required or bind.callable is not None:  # a value SQLAlchemy would compute per row
                    raise ValueError(f"prepared statement needs an explicit value for {name!r}")
                constants[name] = bind.value  # a literal in the statement (`.values(state="done")`)
            c = self._compiled[(dialect.name, keys)] = _Compiled(compiled.string, names, bool(compiled.positional),
                                                                 processors, constants)
        return c

    def _params(self, c: _Compiled, params: dict[str, Any]) -> Any:
        procs = c.processors
        if c.constants:
            params = {**c.constants, **params}
        if c.positional:
            return tuple(procs[n](params[n]) if n in procs else params[n] for n in c.names)
        return {n: (procs[n](params[n]) if n in procs else params[n]) for n in c.names}

    def execute(self, conn: Connection, params: dict[str, Any] | list[dict[str, Any]]) -> None:
        """Execute with one parameter dict, or a list of them (executemany)."""
        self._run(conn, params).close()

    def _run(self, conn: Connection, params: dict[str, Any] | list[dict[str, Any]]) -> Any:
        many = isinstance(params, list)
        c = self._compile(conn.dialect, tuple(params[0] if many else params))  # type: ignore[index,arg-type]
        args: Any = [self._params(c, p) for p in params] if many else self._params(c, params)  # type: ignore[arg-type]
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        dispatch = conn.dispatch
        for fn in dispatch.before_cursor_execute:
            fn(conn, cursor, c.sql, args, None, many)
        try:
            if many:
                cursor.executemany(c.sql, args)
            else:
                cursor.execute(c.sql, args)
        except Exception as exc:
            # A driver error goes through SQLAlchemy's own handling, as for any statement: it comes out as a
            # DBAPIError naming the statement with its parameters hidden (the engine's hide_parameters: no
            # phone or proof code in a log), a dropped connection is invalidated, and is_connection_error
            # (the order spool) recognises an outage.
            conn._handle_dbapi_exception(exc, c.sql, args, cursor, None)  # always raises
            raise  # not reached
        for fn in dispatch.after_cursor_execute:
            fn(conn, cursor, c.sql, args, None, many)
        return cursor

    def rowcount(self, conn: Connection, params: dict[str, Any]) -> int:
        cursor = self._run(conn, params)
        n = int(cursor.rowcount)
        cursor.close()
        return n

    def first_value(self, conn: Connection, params: dict[str, Any]) -> Any:
        """The first column of the first row (an INSERT … RETURNING id), or None when no row came back."""
        cursor = self._run(conn, params)
        row = cursor.fetchone()
        cursor.close()
        return None if row is None else row[0]
