"""What differs between SQLite and PostgreSQL: taking a consistent dump, restoring it into a scratch
database to check it, and restoring it over the live database.

SQLite: the online backup API copies the live file page by page inside one read transaction (writers
carry on in WAL mode); restore copies the other way, holding the writers' lock file, so the database
is replaced in one transaction. PostgreSQL: `pg_dump --format=custom` reads a snapshot exported by our
own repeatable-read transaction (so the row counts in the manifest are of exactly what was dumped);
restore drops every object in the schema and replays the dump in ONE psql transaction — either the
whole rollback happens or the database is left as it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from sqlalchemy.engine import make_url

from waimai.firewall.recovery.catalog import Check, NewestOrder
from waimai.firewall.recovery.errors import BackupError

try:
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

MAX_GAPS = 10_000  # order id ranges remembered per backup (in-flight or rolled-back ids)
RAM_SCRATCH_MAX = 2 << 30  # scratch copies up to this size may go to /dev/shm (a RAM disk)


@contextlib.contextmanager
def scratch_dir(work: Path, size: int | None) -> Iterator[Path]:
    """A private directory for scratch copies of `size` bytes: on the RAM disk when they are small
    there (copying and compressing is then not slowed by the disk), else inside `work`."""
    shm = Path("/dev/shm")  # noqa: S108 # nosec B108
    base = work
    try:
        if size is not None and size <= RAM_SCRATCH_MAX and shutil.disk_usage(shm).free > 4 * size:
            base = shm
    except OSError:
        pass
    path = Path(tempfile.mkdtemp(prefix="waimai-backup-", dir=base))  # mode 0700
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class Stats:
    """What a database holds, as recorded in a manifest and checked after a scratch restore."""

    schema_version: str | None = None
    tables: dict[str, int] = field(default_factory=dict)
    newest_order: NewestOrder | None = None
    max_ids: dict[str, int] = field(default_factory=dict)
    order_id_gaps: list[tuple[int, int]] = field(default_factory=list)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _aware(v: Any) -> dt.datetime | None:
    if v is None:
        return None
    t = v if isinstance(v, dt.datetime) else dt.datetime.fromisoformat(str(v))
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def collect_stats(cur: Any, tables: list[str]) -> Stats:
    """Row counts, schema version, newest order and order-id gaps through a DB-API cursor."""
    st = Stats()
    for t in sorted(tables):
        cur.execute("SELECT count(*) FROM " + _q(t))  # nosec B608
        st.tables[t] = int(cur.fetchone()[0])
    if "alembic_version" in st.tables:
        cur.execute("SELECT version_num FROM alembic_version")
        row = cur.fetchone()
        st.schema_version = row[0] if row else None
    for t in ("order_transitions", "audit_log"):
        if t in st.tables:
            cur.execute("SELECT coalesce(max(id), 0) FROM " + t)  # nosec B608
            st.max_ids[t] = int(cur.fetchone()[0])
    if "orders" not in st.tables:
        return st
    cur.execute("SELECT count(*), coalesce(min(id), 0), coalesce(max(id), 0) FROM orders")
    n, lo, hi = (int(x) for x in cur.fetchone())
    st.max_ids["orders"] = hi
    if hi:
        cur.execute("SELECT id, number, created_at FROM orders ORDER BY id DESC LIMIT 1")
        oid, number, created = cur.fetchone()
        st.newest_order = NewestOrder(id=oid, number=number, created_at=_aware(created))
    if n and n != hi:  # some ids below the highest are missing: remember which (newest first)
        gaps: list[tuple[int, int]] = [(1, lo - 1)] if lo > 1 else []
        cur.execute("SELECT id + 1, nxt - 1 FROM (SELECT id, lead(id) OVER (ORDER BY id) AS nxt FROM orders) g "
                    "WHERE nxt > id + 1")
        gaps += [(int(a), int(b)) for a, b in cur.fetchall()]
        st.order_id_gaps = gaps[-MAX_GAPS:]
    return st


def compare(expected: Stats, actual: Stats) -> list[Check]:
    """The verification checks beyond integrity: schema version, row counts, newest order."""
    checks = [Check(name="schema version", ok=expected.schema_version == actual.schema_version,
                    detail=f"backup {actual.schema_version or 'none'}, recorded {expected.schema_version or 'none'}")]
    wrong = {t: (n, actual.tables.get(t)) for t, n in expected.tables.items() if actual.tables.get(t) != n}
    extra = sorted(set(actual.tables) - set(expected.tables))
    detail = f"{len(expected.tables)} tables, {sum(expected.tables.values()):,} rows"
    if wrong or extra:
        detail = "; ".join([f"{t}: {a} rows, recorded {e}" for t, (e, a) in sorted(wrong.items())] +
                           [f"unexpected table {t}" for t in extra])
    checks.append(Check(name="row counts", ok=not wrong and not extra, detail=detail))
    exp, got = expected.newest_order, actual.newest_order
    if exp is None:
        checks.append(Check(name="newest order", ok=got is None, detail="no orders recorded"))
    else:
        ok = got is not None and got.id == exp.id and got.number == exp.number
        checks.append(Check(name="newest order", ok=ok,
                            detail=f"#{exp.id} {exp.number}" + ("" if ok else f", found {got.number if got else 'none'}")))
    return checks


class Engine(Protocol):
    name: str
    format: str
    ext: str

    def describe(self) -> str: ...

    def dump(self, work: Path) -> contextlib.AbstractContextManager[tuple[IO[bytes], Future[Stats]]]: ...

    def verify_scratch(self, raw: Path) -> tuple[list[Check], Stats]: ...

    def restore_live(self, raw: Path) -> None: ...

    def after_restore(self) -> None: ...


def engine_for(url: str, *, pg_bindir: str | None = None) -> Engine:
    if url.startswith("sqlite"):
        return SqliteEngine(url)
    if url.startswith("postgresql"):
        return PostgresEngine(url, bindir=pg_bindir)
    raise BackupError(f"Backups support SQLite and PostgreSQL, not {url.split(':', 1)[0]}.")


# ------------------------------------------------------------------------------------------------ SQLite
def _sqlite_tables(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                       "AND name NOT LIKE 'sqlite_%'")]


class SqliteEngine:
    name, format, ext = "sqlite", "sqlite3-backup", "sqlite"

    def __init__(self, url: str) -> None:
        raw = url.split("///", 1)[-1].split("?", 1)[0]
        if raw in ("", ":memory:"):
            raise BackupError("An in-memory SQLite database cannot be backed up.")
        self.path = Path(raw)

    def describe(self) -> str:
        return f"sqlite:{self.path.name}"

    def _live(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise BackupError(f"The database file {self.path} does not exist.")
        return sqlite3.connect(self.path, timeout=30)

    @contextlib.contextmanager
    def dump(self, work: Path) -> Iterator[tuple[IO[bytes], Future[Stats]]]:
        live = self._live()
        with scratch_dir(work, self.path.stat().st_size) as scratch, \
                ThreadPoolExecutor(1, thread_name_prefix="backup-stats") as pool:
            copy = scratch / "snapshot.sqlite"
            dst = sqlite3.connect(copy)
            try:
                # A scratch copy, compressed then deleted: no journal, no fsync.
                dst.execute("PRAGMA journal_mode=OFF")
                dst.execute("PRAGMA synchronous=OFF")
                live.backup(dst)  # one step: one read transaction, so a consistent snapshot
            finally:
                live.close()
                dst.close()
            stats = pool.submit(self._stats, copy)  # rows are counted while the copy is compressed
            with open(copy, "rb") as f:
                yield f, stats
            stats.result()

    @staticmethod
    def _stats(path: Path) -> Stats:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return collect_stats(conn.cursor(), _sqlite_tables(conn))
        finally:
            conn.close()

    def verify_scratch(self, raw: Path) -> tuple[list[Check], Stats]:
        conn = sqlite3.connect(f"file:{raw}?mode=ro", uri=True)
        try:
            try:
                result = [r[0] for r in conn.execute("PRAGMA integrity_check")]
            except sqlite3.DatabaseError as exc:
                return [Check(name="integrity", ok=False, detail=str(exc))], Stats()
            ok = result == ["ok"]
            checks = [Check(name="integrity", ok=ok, detail="PRAGMA integrity_check: " + "; ".join(result[:5]))]
            stats = collect_stats(conn.cursor(), _sqlite_tables(conn)) if ok else Stats()
        finally:
            conn.close()
        return checks, stats

    def restore_live(self, raw: Path) -> None:
        src = sqlite3.connect(f"file:{raw}?mode=ro", uri=True)
        dst = self._live()
        lock_fd = os.open(str(self.path) + ".writelock", os.O_RDWR | os.O_CREAT, 0o600) if fcntl else None
        try:
            if lock_fd is not None:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)  # writers of every process wait here meanwhile
            # Steps of 1000 pages: faster than one step into a WAL database; the destination stays
            # locked until the last step, and the source (our own scratch file) never changes.
            src.backup(dst, pages=1000)
        except sqlite3.Error as exc:
            raise BackupError(f"Restoring into {self.path.name} failed: {exc}") from None
        finally:
            if lock_fd is not None:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)
                os.close(lock_fd)
            src.close()
            dst.close()

    def after_restore(self) -> None:
        """Fold the restore's WAL back into the database file (it holds a copy of every page)."""
        conn = self._live()
        try:
            conn.execute("PRAGMA busy_timeout=2000")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()


# -------------------------------------------------------------------------------------------- PostgreSQL
_DROP_ALL = """
SELECT format('DROP %s IF EXISTS %I.%I CASCADE;', CASE c.relkind WHEN 'v' THEN 'VIEW'
         WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE'
         ELSE 'TABLE' END, n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('e', 'i', 'a'))
UNION ALL
SELECT format('DROP %s IF EXISTS %I.%I CASCADE;', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
              n.nspname, t.typname)
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE n.nspname = current_schema() AND t.typtype IN ('e', 'd', 'r')
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype IN ('e', 'i'))
UNION ALL
SELECT format('DROP ROUTINE IF EXISTS %I.%I(%s) CASCADE;', n.nspname, p.proname,
              pg_get_function_identity_arguments(p.oid))
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = current_schema()
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
"""


class PostgresEngine:
    name, format, ext = "postgresql", "pg_dump-custom", "pgdump"

    def __init__(self, url: str, *, bindir: str | None = None) -> None:
        self.url = make_url(url)
        self.bindir = bindir

    def describe(self) -> str:
        u = self.url
        return f"postgresql://{u.host or 'localhost'}:{u.port or 5432}/{u.database}"

    def _tool(self, name: str) -> str:
        found = shutil.which(name, path=self.bindir) if self.bindir else shutil.which(name)
        if not found:
            raise BackupError(f"{name} is not installed (PostgreSQL client tools are needed for PostgreSQL "
                              "backups; set WAIMAI_BACKUP_PG_BINDIR if they are elsewhere).")
        return found

    def conninfo(self, dbname: str | None = None, *, password: bool = True) -> str:
        from psycopg.conninfo import make_conninfo

        u = self.url
        parts: dict[str, Any] = {k: v for k, v in {"host": u.host, "port": u.port, "user": u.username,
                                                   "dbname": dbname or u.database}.items() if v}
        if password and u.password:
            parts["password"] = u.password
        parts.update({k: v for k, v in u.query.items() if isinstance(v, str)})
        return make_conninfo("", **parts)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.url.password:
            env["PGPASSWORD"] = self.url.password  # an environment variable, never an argument others can see
        env.setdefault("PGAPPNAME", "waimai-backup")
        return env

    def _connect(self, dbname: str | None = None, *, autocommit: bool = True) -> Any:
        import psycopg

        try:
            return psycopg.connect(self.conninfo(dbname), autocommit=autocommit, connect_timeout=10)
        except psycopg.Error as exc:
            raise BackupError(f"Cannot connect to PostgreSQL: {str(exc).strip().splitlines()[0]}") from None

    def _run(self, args: list[str], what: str, **kw: Any) -> None:
        with tempfile.TemporaryFile() as err:
            rc = subprocess.run(args, env=self._env(), stderr=err, check=False, **kw).returncode  # noqa: S603
            if rc != 0:
                err.seek(0)
                raise BackupError(f"{what} failed (exit {rc}): {_tail(err.read())}")

    @staticmethod
    def _tables(cur: Any) -> list[str]:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return [r[0] for r in cur.fetchall()]

    @contextlib.contextmanager
    def dump(self, work: Path) -> Iterator[tuple[IO[bytes], Future[Stats]]]:
        pg_dump = self._tool("pg_dump")
        conn = self._connect()
        err = tempfile.TemporaryFile()
        proc: subprocess.Popen[bytes] | None = None
        try:
            with conn.cursor() as cur:
                cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                cur.execute("SELECT pg_export_snapshot()")
                snapshot = cur.fetchone()[0]
                stats: Future[Stats] = Future()
                stats.set_result(collect_stats(cur, self._tables(cur)))
            # Our compression (zstd) replaces pg_dump's zlib: faster, and smaller.
            proc = subprocess.Popen(  # noqa: S603
                [pg_dump, "--format=custom", "--compress=0", f"--snapshot={snapshot}",
                 "-d", self.conninfo(password=False)], stdout=subprocess.PIPE, stderr=err, env=self._env())
            assert proc.stdout is not None
            yield proc.stdout, stats
            proc.stdout.close()
            if proc.wait() != 0:
                err.seek(0)
                raise BackupError(f"pg_dump failed (exit {proc.returncode}): {_tail(err.read())}")
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
            err.close()
            conn.close()

    def verify_scratch(self, raw: Path) -> tuple[list[Check], Stats]:
        name = f"waimai_verify_{uuid.uuid4().hex[:12]}"
        admin = self._connect()
        try:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
            try:
                self._run([self._tool("pg_restore"), "--exit-on-error", "--no-owner", "--no-privileges",
                           "--jobs=2", "-d", self.conninfo(name, password=False), str(raw)], "pg_restore")
            except BackupError as exc:
                return [Check(name="integrity", ok=False, detail=exc.message)], Stats()
            scratch = self._connect(name)
            try:
                with scratch.cursor() as cur:
                    stats = collect_stats(cur, self._tables(cur))
            finally:
                scratch.close()
            return [Check(name="integrity", ok=True, detail="pg_restore into a scratch database: no errors")], stats
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()

    def restore_live(self, raw: Path) -> None:
        conn = self._connect()
        try:
            drops = [r[0] for r in conn.execute(_DROP_ALL).fetchall()]
        finally:
            conn.close()
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as pro:
            pro.write("\n".join(drops) + "\n")
        env = self._env()
        env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + " -c lock_timeout=60s").strip()
        try:
            with tempfile.TemporaryFile() as err1, tempfile.TemporaryFile() as err2:
                dump = subprocess.Popen(  # noqa: S603
                    [self._tool("pg_restore"), "--no-owner", "--no-privileges", "-f", "-", str(raw)],
                    stdout=subprocess.PIPE, stderr=err1, env=env)
                # Drop everything, then the dump, in ONE transaction: all of it, or nothing.
                psql = subprocess.run(  # noqa: S603
                    [self._tool("psql"), "-X", "-q", "--single-transaction", "-v", "ON_ERROR_STOP=1",
                     "-d", self.conninfo(password=False), "-f", pro.name, "-f", "-"],
                    stdin=dump.stdout, stdout=subprocess.DEVNULL, stderr=err2, env=env, check=False)
                assert dump.stdout is not None
                dump.stdout.close()
                rc = dump.wait()
                if rc != 0 or psql.returncode != 0:
                    err1.seek(0)
                    err2.seek(0)
                    raise BackupError("The restore was rolled back, the database is unchanged: "
                                      f"{_tail(err2.read()) or _tail(err1.read())}")
        finally:
            os.unlink(pro.name)

    def after_restore(self) -> None:
        """Planner statistics for the restored tables (pg_restore leaves them empty)."""
        conn = self._connect()
        try:
            conn.execute("ANALYZE")
        finally:
            conn.close()


def _tail(data: bytes, n: int = 600) -> str:
    text = data.decode("utf-8", "replace").strip()
    return text[-n:] if text else "no message"
