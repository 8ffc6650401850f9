"""Backup, verify and restore a database of a million orders, beside the raw tools doing the bare copy.

    python bench/backup_restore.py [--orders 1000000] [--engines sqlite,postgresql] [--repeat 3] [--pg URL]

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
Each measurement runs --repeat times, the raw tool right before ours each time (so a busy shared machine
weighs on both alike); medians are printed. Targets: backup ≤ 30 s, restore ≤ 60 s, both within 1.5× of
the raw tools. PostgreSQL uses a scratch
database on the server of --pg (dropped at the end).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
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
from waimai.core.benchenv import environment, header  # noqa: E402
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


def med(xs: list[float]) -> float:
    return statistics.median(xs)


class Run:
    """Our backup, verify and restore, each measured `repeat` times; `raw_backup` / `raw_restore` are
    called right before each of ours, so both see the same load on a shared machine."""

    def __init__(self, cfg: BackupConfig, url: str, repeat: int) -> None:
        self.cfg, self.url, self.repeat = cfg, url, repeat
        self.t: dict[str, list[float]] = {k: [] for k in ("backup", "raw_backup", "raw_backup_api", "verify",
                                                          "restore", "raw_restore", "rollback")}
        self.out: dict[str, Any] = {}

    def backups(self, raw: Any, raw_api: Any = None) -> None:
        for _ in range(self.repeat):
            self.t["raw_backup"].append(raw())
            if raw_api is not None:
                self.t["raw_backup_api"].append(raw_api())
            t, m = timed(create_backup, self.cfg, self.url)
            assert m.status == "complete"
            self.t["backup"].append(t)
        t, m = timed(verify_backup, self.cfg, self.url, m.id)
        assert m.verification.status == "passed", m.verification.checks
        self.t["verify"].append(t)
        self.out.update(size=m.size, raw_size=m.raw_size, orders=m.tables["orders"], id=m.id)

    def restores(self, raw: Any) -> None:
        db = Database(self.url)
        try:
            for _ in range(self.repeat):
                self.t["raw_restore"].append(raw())
                t, r = timed(restore_backup, self.cfg, db, self.out["id"])
                self.t["rollback"].append(t)
                self.t["restore"].append(r.durations["fetch"] + r.durations["restore"])
                self.out["durations"] = r.durations
        finally:
            db.dispose()

    def result(self) -> dict[str, Any]:
        return {**self.out, **{k: med(v) for k, v in self.t.items() if v}, "n": self.repeat}


def bench_sqlite(n: int, work: Path, repeat: int) -> dict[str, Any]:
    live = work / "live.db"
    url = f"sqlite:///{live}"
    t_fill, _ = timed(fill, url, n)
    console.print(f"sqlite: {n:,} orders in {t_fill:.1f} s, {live.stat().st_size / 1e6:,.0f} MB")
    raw_file, api_file = work / "raw-cli.db", work / "raw-api.db"

    def raw_cli() -> float:
        raw_file.unlink(missing_ok=True)
        return run(["sqlite3", str(live), f".backup {raw_file}"])

    def raw_api() -> float:
        api_file.unlink(missing_ok=True)
        src, dst = sqlite3.connect(live), sqlite3.connect(api_file)
        t, _ = timed(src.backup, dst)
        src.close()
        dst.close()
        return t

    target = work / "restore-target.db"

    def raw_restore() -> float:
        shutil.copy(live, target)
        return run(["sqlite3", str(target), f".restore {raw_file}"])

    r = Run(BackupConfig(directory=work / "backups"), url, repeat)
    r.backups(raw_cli, raw_api)
    r.restores(raw_restore)
    return {**r.result(), "raw_size_file": raw_file.stat().st_size}


def bench_pg(n: int, work: Path, admin_url: str, repeat: int) -> dict[str, Any]:
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

        def raw_backup() -> float:
            return run(["pg_dump", "--format=custom", "-f", str(dump), "-d", pg.conninfo(password=False)], env)

        def raw_restore() -> float:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{scratch}"'))
                c.execute(text(f'CREATE DATABASE "{scratch}"'))
            return run(["pg_restore", "-d", pg.conninfo(scratch, password=False), str(dump)], env)

        r = Run(BackupConfig(directory=work / "backups"), url, repeat)
        r.backups(raw_backup)
        r.restores(raw_restore)
        return {**r.result(), "raw_size_file": dump.stat().st_size}
    finally:
        with admin.connect() as c:
            for db in (name, scratch):
                c.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


def report(results: dict[str, dict[str, Any]]) -> None:
    n = next(iter(results.values()))["n"]
    t = Table(title=f"Backup and restore, median of {n} run(s) each, raw tool and ours alternating (seconds, MB)")
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
    ap.add_argument("--repeat", type=int, default=3, help="runs of each measurement (medians are shown)")
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                    help="an admin URL; a scratch database is created beside it")
    ap.add_argument("--smoke", action="store_true", help="2,000 orders, once: only checks the bench works")
    args = ap.parse_args()
    if args.smoke:
        args.orders, args.repeat = 2_000, 1
    engines = args.engines.split(",")
    console.print(header(environment({e: args.pg if e == "postgresql" else "sqlite://" for e in engines},
                                     {"orders": f"{args.orders:,}", "repeat": args.repeat})))
    results: dict[str, dict[str, Any]] = {}
    for engine in engines:
        with tempfile.TemporaryDirectory(prefix=f"waimai-bench-{engine}-") as tmp:
            if engine == "sqlite":
                results[engine] = bench_sqlite(args.orders, Path(tmp), args.repeat)
            elif engine == "postgresql":
                results[engine] = bench_pg(args.orders, Path(tmp), args.pg, args.repeat)
            else:
                raise SystemExit(f"unknown engine {engine}")
    report(results)


if __name__ == "__main__":
    main()
