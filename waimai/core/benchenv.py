"""The environment a benchmark ran in, printed beside its figures so a reader can reproduce them.

A figure without its machine is a rumour: throughput depends on the cores, on what else was
running (load average), on library versions, on how many BLAS threads numpy was allowed, on the
number of server workers and on the database engine and its version. Every benchmark under
``bench/`` and every ``waimai bench`` command prints :func:`header` before its figures and puts
:func:`environment` into any JSON it writes.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess  # nosec B404
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path

KEY_LIBRARIES = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "psycopg", "pydantic", "numpy", "scipy")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE")
_ROOT = Path(__file__).resolve().parents[2]


def git_commit(root: Path = _ROOT) -> str:
    """Short commit of the tree the code runs from, with ``+changes`` when it differs from it."""
    git = shutil.which("git")
    if git is None:
        return "unknown (git not available)"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([git, *args], cwd=root, capture_output=True, text=True, timeout=5)  # noqa: S603  # nosec B603

    try:
        head = run("rev-parse", "--short", "HEAD")
        if head.returncode != 0:
            return "unknown (not a git checkout)"
        dirty = run("status", "--porcelain", "--untracked-files=no").stdout.strip()
        return head.stdout.strip() + (" +changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (git did not answer)"


def library_versions(names: Iterable[str] = KEY_LIBRARIES) -> dict[str, str]:
    """Installed versions of the libraries that shape the figures (missing ones left out)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def blas_threads() -> str:
    """What numpy's BLAS may use: the thread variables that are set and the pools threadpoolctl sees."""
    parts = [f"{v}={os.environ[v]}" for v in THREAD_VARIABLES if v in os.environ]
    try:
        import numpy  # noqa: F401 - loads the BLAS so threadpoolctl can see it
        from threadpoolctl import threadpool_info

        seen = [f"{p['internal_api']} {p['num_threads']} thread(s)" for p in threadpool_info()
                if p.get("user_api") == "blas"]
        # numpy and scipy each bundle a BLAS: say each kind once, with how many copies are loaded
        pools = [f"{k} ×{seen.count(k)}" if seen.count(k) > 1 else k for k in dict.fromkeys(seen)]
    except ImportError:
        pools = []
    return ", ".join(pools + parts) or "no BLAS loaded"


def database_version(url: str) -> str:
    """Engine name and server version of a SQLAlchemy URL (asks the server; 'unreachable' if it cannot)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url, connect_args={"connect_timeout": 3} if url.startswith("postgresql") else {})
    try:
        with engine.connect() as c:
            if engine.dialect.name == "sqlite":
                return f"SQLite {c.execute(text('select sqlite_version()')).scalar()}"
            if engine.dialect.name == "postgresql":
                return f"PostgreSQL {c.execute(text('show server_version')).scalar()}".split(" (")[0]
            return f"{engine.dialect.name} {engine.dialect.server_version_info}"
    except Exception as exc:  # noqa: BLE001 - a header line, not a failure of the benchmark
        return f"{engine.dialect.name} (unreachable: {exc.__class__.__name__})"
    finally:
        engine.dispose()


def environment(
    databases: Mapping[str, str] | None = None, extra: Mapping[str, object] | None = None
) -> dict[str, object]:
    """The facts of this run: cores, load, Python, libraries, threads, databases, commit, and ``extra``."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 0
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cores": usable,
        "load_average": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}",
        "libraries": library_versions(),
        "blas_threads": blas_threads(),
        "databases": {name: database_version(url) for name, url in (databases or {}).items()},
        "commit": git_commit(),
        **dict(extra or {}),
    }


def header(env: Mapping[str, object], width: int = 80) -> str:
    """The environment as a few lines that read at ``width`` columns."""
    load = " ".join(f"{x:.2f}" for x in env["load_average"])  # type: ignore[attr-defined]
    libs = env["libraries"]
    dbs = env["databases"]
    items = [
        f"{env['cores']} cores",
        f"load {load}",
        f"Python {env['python']}",
        f"commit {env['commit']}",
        *(f"{k} {v}" for k, v in libs.items()),  # type: ignore[attr-defined]
        f"BLAS: {env['blas_threads']}",
        *(f"{k}: {v}" for k, v in dbs.items()),  # type: ignore[attr-defined]
        *(f"{k}: {v}" for k, v in env.items()
          if k not in {"cores", "load_average", "python", "machine", "libraries", "blas_threads",
                       "databases", "commit"}),
    ]
    lines, line = [], "environment:"
    for item in items:
        if len(line) + 3 + len(item) > width and line.strip():
            lines.append(line)
            line = "  " + item
        else:
            line = f"{line} {item}" if line.endswith(":") else f"{line} · {item}"
    lines.append(line)
    return "\n".join(lines)
