"""A private, throwaway PostgreSQL cluster for the example project's tests: ``initdb`` in a
temporary directory, a free port, a unix socket; as root the server runs as the ``postgres``
user (``initdb`` refuses root). Stopped and removed on exit."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        raise RuntimeError(
            f"{name} not found on PATH nor in /usr/lib/postgresql/<version>/bin: install PostgreSQL's server binaries"
        )
    return found


def _as_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        if subprocess.run(["id", user], capture_output=True).returncode == 0:
            return ["runuser", "-u", user, "--"]
    raise RuntimeError("running as root, and no postgres or nobody user to run PostgreSQL as")


class Cluster:
    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="tally-django-pg-"))
        self.prefix = _as_user()
        if self.prefix:
            subprocess.run(["chown", "-R", f"{self.prefix[2]}:", str(self.directory)], check=True)
        self.data = self.directory / "data"
        subprocess.run(
            [
                *self.prefix,
                _binary("initdb"),
                "-D",
                str(self.data),
                "-U",
                "tally",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ],
            check=True,
            capture_output=True,
        )
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        settings = f"-p {self.port} -k {self.directory} -c listen_addresses='' -c fsync=off -c max_connections=300"
        subprocess.run(
            [
                *self.prefix,
                _binary("pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.directory / "server.log"),
                "-w",
                "-o",
                settings,
                "start",
            ],
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            [*self.prefix, _binary("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(self.directory, ignore_errors=True)
