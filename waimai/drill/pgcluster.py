"""Private PostgreSQL servers for the database drills, tests and the failover benchmark.

A fault that stops, kills or freezes the database must never touch a shared server: each run builds
its own cluster with `initdb` in a scratch directory, on a loopback port of its own. As root (CI), the
server programs run as the `postgres` user through `runuser`, which owns the directory.

`PgCluster` is one plain server (the outage and hang faults: stop it, SIGSTOP it). `AutoFailover`
is a pg_auto_failover formation — a monitor, a primary and a standby — built with `pg_autoctl`
(Debian `postgresql-15-auto-failover`): the standby is promoted by the monitor when the primary dies.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

USER = "postgres"


def pg_bindir() -> Path:
    """The newest installed PostgreSQL server programs (Debian keeps them out of PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL server programs not found (apt-get install postgresql)")
    return Path(initdb).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(cmd: list[str]) -> list[str]:
    """Run as `postgres` when we are root (the server refuses to run as root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", USER, "--", *cmd]
    return cmd


def _own(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(path, USER, USER)
        path.chmod(0o700)


def run(cmd: list[str], *, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(_as_owner(cmd), capture_output=True, text=True, timeout=timeout, check=False,  # noqa: S603
                          env={**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}, cwd="/")
    if check and done.returncode != 0:
        raise RuntimeError(f"{Path(cmd[0]).name} failed ({done.returncode}): {(done.stderr or done.stdout)[-800:]}")
    return done


def _children(pid: int) -> list[int]:
    out = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(Path(stat).parent.name))
    return out


class PgCluster:
    """One PostgreSQL server in `root/data`, listening on 127.0.0.1:`port` only."""

    def __init__(self, root: Path | None = None, port: int | None = None) -> None:
        # The server user must reach the directory: a fresh one under the temp dir, traversable by others
        # (a test's own tmp_path is private to its owner).
        if root is None:
            base = Path(tempfile.mkdtemp(prefix="waimai-pg-"))
            base.chmod(0o711)
            root = base / "cluster"
        self.root = Path(root)
        self.data = self.root / "data"
        self.port = port or free_port()
        self.bin = pg_bindir()
        self.log = self.root / "postgres.log"

    def url(self, dbname: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{USER}@127.0.0.1:{self.port}/{dbname}"

    def init(self) -> PgCluster:
        _own(self.root)
        run([str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8",
             "--no-sync"])
        with (self.data / "postgresql.conf").open("a") as f:
            f.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.root}'\n"
                    "fsync = on\nmax_connections = 200\nshared_buffers = 64MB\n")
        return self

    def start(self) -> None:
        run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start"])

    def stop(self, mode: str = "fast") -> None:
        run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"], check=False)

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def freeze(self) -> None:
        """SIGSTOP the postmaster and every backend: connections are accepted by the kernel, nothing answers."""
        pid = self.postmaster_pid()
        if pid is None:
            raise RuntimeError("the server is not running")
        for p in [pid, *_children(pid)]:
            os.kill(p, signal.SIGSTOP)

    def thaw(self) -> None:
        pid = self.postmaster_pid()
        if pid is None:
            return
        for p in [pid, *_children(pid)]:
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def create_database(self, name: str) -> str:
        run([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, name])
        return self.url(name)

    def destroy(self) -> None:
        self.thaw()
        self.stop("immediate")
        shutil.rmtree(self.root.parent if self.root.parent.name.startswith("waimai-pg-") else self.root,
                      ignore_errors=True)


def wait_port(port: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.2)
    return False
