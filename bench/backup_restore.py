"""Backup, verify and restore a database of a million orders, beside the raw tools doing the bare copy.

    python bench/backup_restore.py [--orders 1000000] [--engines sqlite,postgresql] [--pg URL]

For each engine: fill a scratch database (orders, one line and two transitions each, by set-based SQL),
then in the same run
  raw backup   SQLite: `sqlite3 DB ".backup F"` and Python's `Connection.backup()`; PostgreSQL: `pg_dump -Fc`
  our backup   `create_backup` (snapshot, zstd, sha256, stored in the local target, manifest)
  verify       `verify_backup` (checksum, restore into a scratch database, integrity, counts, newest order)
  raw restore  SQLite: `sqlite3 DB ".restore F"` over a copy of the live file; PostgreSQL: `pg_restore -d`
               into a new database
  our restore  `restore_backup` over the live database; the ratio uses its fetch + restore steps
               (checksum, decompress, load); the whole rollback adds the safety backup, the export of
               later orders and the switch flips.
Targets: backup ≤ 30 s, restore ≤ 60 s, both within 1.5× of the raw tools. PostgreSQL uses a scratch
database on the server of --pg (dropped at the end).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bigdb import fill  # noqa: E402
from waimai.core.database import Database  # noqa: E402
from waimai.firewall.recovery.backup import BackupConfig, create_backup, verify_backup  # noqa: E402
from waimai.firewall.recovery.engines import PostgresEngine  # noqa: E402
from waimai.firewall.recovery.restore import restore_backup  # noqa: E402

console = Console(width=170)


def timed(fn: Any, *args: Any, **kw: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t, out


def run(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def ours(cfg: BackupConfig, url: str) -> dict[str, Any]:
    t_backup, m = timed(create_backup, cfg, url)
    assert m.status == "complete"
    t_verify, m = timed(verify_backup, cfg, url, m.id)
    assert m.verification.status == "passed", m.verification.checks
    db = Database(url)
    try:
        t_rollback, r = timed(restore_backup, cfg, db, m.id)
    finally:
        db.dispose()
    return {"backup": t_backup, "verify": t_verify, "rollback": t_rollback,
            "restore": r.durations["fetch"] + r.durations["restore"], "size": m.size, "raw_size": m.raw_size,
            "orders": m.tables["orders"], "durations": r.durations}


def bench_sqlite(n: int, work: Path) -> dict[str, Any]:
    live = work / "live.db"
    url = f"sqlite:///{live}"
    t_fill, _ = timed(fill, url, n)
    console.print(f"sqlite: {n:,} orders in {t_fill:.1f} s, {live.stat().st_size / 1e6:,.0f} MB")
    raw_cli = run(["sqlite3", str(live), f".backup {work / 'raw-cli.db'}"])
    src, dst = sqlite3.connect(live), sqlite3.connect(work / "raw-api.db")
    raw_api, _ = timed(src.backup, dst)
    src.close()
    dst.close()
    cfg = BackupConfig(directory=work / "backups")
    res = ours(cfg, url)
    target = work / "restore-target.db"
    shutil.copy(live, target)
    raw_restore = run(["sqlite3", str(target), f".restore {work / 'raw-cli.db'}"])
    return {**res, "raw_backup": raw_cli, "raw_backup_api": raw_api, "raw_restore": raw_restore,
            "raw_size_file": (work / "raw-cli.db").stat().st_size}


def bench_pg(n: int, work: Path, admin_url: str) -> dict[str, Any]:
    name = f"waimai_bench_backup_{uuid.uuid4().hex[:8]}"
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    scratch = f"{name}_raw"
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        t_fill, _ = timed(fill, url, n)
        with admin.connect() as c:
            size = c.execute(text(f"SELECT pg_database_size('{name}')")).scalar_one()
        console.print(f"postgresql: {n:,} orders in {t_fill:.1f} s, {size / 1e6:,.0f} MB")
        pg = PostgresEngine(url)
        env = pg._env()
        dump = work / "raw.dump"
        raw_backup = run(["pg_dump", "--format=custom", "-f", str(dump), "-d", pg.conninfo(password=False)], env)
        res = ours(BackupConfig(directory=work / "backups"), url)
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{scratch}"'))
        raw_restore = run(["pg_restore", "-d", pg.conninfo(scratch, password=False), str(dump)], env)
        return {**res, "raw_backup": raw_backup, "raw_restore": raw_restore, "raw_size_file": dump.stat().st_size}
    finally:
        with admin.connect() as c:
            for db in (name, scratch):
                c.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


def report(results: dict[str, dict[str, Any]]) -> None:
    t = Table(title="Backup and restore, 1 run each (seconds, sizes in MB)")
    for col in ("engine", "orders", "backup", "raw backup", "ratio", "verify", "restore", "raw restore", "ratio",
                "whole rollback", "artefact", "raw tool's file"):
        t.add_column(col, justify="right")
    for engine, r in results.items():
        t.add_row(engine, f"{r['orders']:,}", f"{r['backup']:.2f}", f"{r['raw_backup']:.2f}",
                  f"{r['backup'] / r['raw_backup']:.2f}", f"{r['verify']:.2f}", f"{r['restore']:.2f}",
                  f"{r['raw_restore']:.2f}", f"{r['restore'] / r['raw_restore']:.2f}", f"{r['rollback']:.2f}",
                  f"{r['size'] / 1e6:.1f}", f"{r['raw_size_file'] / 1e6:.1f}")
    console.print(t)
    for engine, r in results.items():
        extra = (f"; Python's Connection.backup() {r['raw_backup_api']:.2f} s (ratio "
                 f"{r['backup'] / r['raw_backup_api']:.2f})" if "raw_backup_api" in r else "")
        console.print(f"{engine}: raw dump {r['raw_size'] / 1e6:.0f} MB before compression{extra}; rollback steps "
                      + ", ".join(f"{k} {v:.2f}" for k, v in r["durations"].items()))
        ok = (r["backup"] <= 30 and r["restore"] <= 60 and r["backup"] / r["raw_backup"] <= 1.5
              and r["restore"] / r["raw_restore"] <= 1.5)
        console.print(f"  targets (backup ≤ 30 s, restore ≤ 60 s, ≤ 1.5× raw): {'met' if ok else 'NOT met'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--engines", default="sqlite,postgresql")
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                    help="an admin URL; a scratch database is created beside it")
    args = ap.parse_args()
    results: dict[str, dict[str, Any]] = {}
    for engine in args.engines.split(","):
        with tempfile.TemporaryDirectory(prefix=f"waimai-bench-{engine}-") as tmp:
            if engine == "sqlite":
                results[engine] = bench_sqlite(args.orders, Path(tmp))
            elif engine == "postgresql":
                results[engine] = bench_pg(args.orders, Path(tmp), args.pg)
            else:
                raise SystemExit(f"unknown engine {engine}")
    report(results)


if __name__ == "__main__":
    main()
