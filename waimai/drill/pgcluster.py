"""Private PostgreSQL servers for the database drills, tests and the failover benchmark.

A fault that stops, kills or freezes the database must never touch a shared server: each run builds
its own cluster with `initdb` in a scratch directory, on a loopback port of its own. As root (CI), the
server programs run as the `postgres` user through `runuser`, which owns the directory.

`PgCluster` is one plain server (the outage and hang faults: stop it, SIGSTOP it). `AutoFailover`
is a pg_auto_failover formation — a monitor, a primary and a standby — built with `pg_autoctl`
(Debian `postgresql-15-auto-failover`): the standby is promoted by the monitor when the primary dies.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
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


class AutoFailover:
    """A pg_auto_failover formation on loopback: a monitor and two data nodes (primary and standby).

    Each node runs `pg_autoctl create … --run` (the keeper, which starts and supervises its PostgreSQL)
    in a session of its own, so `kill_primary` can kill -9 a whole node — keeper, postmaster and
    backends — like a machine that died. (Killing only the postmaster is not a failover: the keeper
    restarts it in a second or two.) The monitor's health checks are tightened so the standby is
    promoted within seconds instead of the default ~30 s; see deploy/pg_auto_failover.
    """

    # monitor GUCs (milliseconds): check every second, a node silent for 3 s is unhealthy
    TUNING = {"pgautofailover.health_check_period": 1000, "pgautofailover.health_check_timeout": 1000,
              "pgautofailover.health_check_max_retries": 1, "pgautofailover.health_check_retry_delay": 500,
              "pgautofailover.node_considered_unhealthy_timeout": 3000,
              # how long the monitor waits for a vanished primary to confirm its demotion before promoting
              # the standby (default 30 s): the old primary's keeper demotes itself when it loses both the
              # monitor and the standby, within its own network-partition timeout
              "pgautofailover.primary_demote_timeout": 5000}

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="waimai-paf-"))
        self.base.chmod(0o711)
        self.bin = pg_bindir()
        self.ports = {"monitor": free_port(), "a": free_port(), "b": free_port()}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.killed: str | None = None

    def _env(self, node: str) -> dict[str, str]:
        d = self.base / node
        return {"PATH": f"{self.bin}:/usr/bin:/bin:/usr/sbin:/sbin", "XDG_CONFIG_HOME": str(d / "cfg"),
                "XDG_DATA_HOME": str(d / "data"), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "HOME": str(d)}

    def _pgautoctl(self, node: str, args: list[str]) -> subprocess.Popen[bytes]:
        d = self.base / node
        _own(d)
        env = self._env(node)
        cmd = ["env", *[f"{k}={v}" for k, v in env.items()], "pg_autoctl", *args]
        log = (self.base / f"{node}.log").open("ab")
        return subprocess.Popen(_as_owner(cmd), stdout=log, stderr=subprocess.STDOUT, cwd="/",  # noqa: S603
                                start_new_session=True, env={**os.environ, **env})

    def monitor_uri(self) -> str:
        return f"postgres://autoctl_node@127.0.0.1:{self.ports['monitor']}/pg_auto_failover"

    def _monitor_sql(self, sql: str) -> list[tuple[str, ...]]:
        done = run([str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.ports["monitor"]), "-U", USER,
                    "-d", "pg_auto_failover", "-AtX", "-F", "|", "-c", sql], check=False, timeout=10)
        return [tuple(line.split("|")) for line in done.stdout.splitlines() if line]

    def states(self) -> dict[int, tuple[str, str]]:
        """port → (reported state, assigned state), as the monitor sees the data nodes."""
        rows = self._monitor_sql("SELECT nodeport, reportedstate, goalstate FROM pgautofailover.node")
        return {int(p): (r, g) for p, r, g in rows if p.isdigit()}

    def _wait(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return
            time.sleep(0.5)
        tails = {n: (self.base / f"{n}.log").read_text(errors="replace")[-600:] for n in self.procs}
        raise RuntimeError(f"pg_auto_failover: {what} not reached in {timeout:.0f} s; logs: {tails}")

    def start(self, timeout: float = 120) -> AutoFailover:
        common = ["--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl", "--run"]
        m = self.base / "monitor" / "pg"
        self.procs["monitor"] = self._pgautoctl("monitor", ["create", "monitor", "--pgdata", str(m),
                                                            "--pgport", str(self.ports["monitor"]), *common])
        self._wait(lambda: self._monitor_sql("SELECT 1") == [("1",)], timeout, "monitor up")
        for k, v in self.TUNING.items():
            self._monitor_sql(f"ALTER SYSTEM SET {k} = {int(v)}")
        self._monitor_sql("SELECT pg_reload_conf()")
        for node in ("a", "b"):
            self.procs[node] = self._pgautoctl(node, [
                "create", "postgres", "--pgdata", str(self.base / node / "pg"), "--pgport", str(self.ports[node]),
                "--monitor", self.monitor_uri(), *common])
            want = "single" if node == "a" else "secondary"  # alone, the first node is "single"
            self._wait(lambda n=node, w=want: self.states().get(self.ports[n], ("", ""))[0] == w,  # type: ignore[misc]
                       timeout, f"node {node} {want}")
        self._wait(lambda: self.states().get(self.ports["a"], ("", ""))[0] == "primary", timeout, "a primary")
        return self

    def url(self, dbname: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        """The multi-host URL an application uses: libpq connects to whichever node accepts writes."""
        hosts = "&".join(f"host=127.0.0.1:{self.ports[n]}" for n in ("a", "b"))
        return f"{driver}://{USER}@/{dbname}?{hosts}&target_session_attrs=read-write"

    def primary(self) -> str | None:
        st = self.states()
        for node in ("a", "b"):
            if st.get(self.ports[node], ("", ""))[0] in ("primary", "wait_primary", "single"):
                return node
        return None

    def create_database(self, name: str) -> str:
        node = self.primary()
        if node is None:
            raise RuntimeError("no primary")
        run([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.ports[node]), "-U", USER, name])
        return self.url(name)

    def kill_primary(self) -> str:
        """kill -9 the primary node: its keeper, its postmaster and every backend at once."""
        node = self.primary()
        if node is None:
            raise RuntimeError("no primary to kill")
        pid = _postmaster_pid(self.base / node / "pg")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.procs[node].pid, signal.SIGKILL)
        if pid is not None:
            for p in [pid, *_children(pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
        self.killed = node
        return node

    def destroy(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for node in ("monitor", "a", "b"):
            pid = _postmaster_pid(self.base / node / "pg")
            if pid is not None:
                for p in [pid, *_children(pid)]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p, signal.SIGKILL)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        shutil.rmtree(self.base, ignore_errors=True)


def _postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
