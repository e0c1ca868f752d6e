"""A pytest plugin (registered as ``tally_ledger``) for suites that use a real ledger.

Fixtures:

- ``tally_server`` (session): a real ``tally serve`` on a free loopback port and a temporary
  data directory, stopped at the end. The binary is ``TALLY_BIN``, else ``tally`` on ``PATH``,
  else built with cargo from the checkout the tests run in.
- ``tally``: a ``Tally`` client of that server, closed after the test.
- ``tally_prefix``: a prefix unique to the test (``t3f9a0c2d-``). The ledger is durable and
  shared by the whole session, while an app's own database is rolled back after each test:
  ids made with the prefix never meet another test's.

- ``tally_django``: for Django suites (needs Django, not pytest-django): ``settings.TALLY``
  points at ``tally_server`` with ``tally_prefix`` as its ``PREFIX`` for the test, so Django's
  rolled-back database and the durable ledger never meet across tests. Use it from a
  ``conftest.py`` fixture with ``autouse=True``.

``TallyServer`` is there for tests that must stop, kill or restart a server of their own.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ._sync import Tally

#: How long a server may take to answer its first health check.
START_TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def find_binary() -> str:
    """``TALLY_BIN``, ``tally`` on ``PATH``, or a build from the enclosing checkout."""
    explicit = os.environ.get("TALLY_BIN")
    if explicit:
        return explicit
    on_path = shutil.which("tally")
    if on_path:
        return on_path
    for directory in [Path.cwd(), *Path.cwd().parents]:
        if (directory / "crates" / "tally-cli" / "Cargo.toml").exists():
            subprocess.run(["cargo", "build", "-q", "-p", "tally-cli"], cwd=directory, check=True)
            return str(directory / "target" / "debug" / "tally")
    raise RuntimeError("no tally binary: set TALLY_BIN, put tally on PATH, or run inside a Tally checkout")


class TallyServer:
    """A ``tally serve`` process of its own: a data directory and a port that stay the same
    across ``kill`` and ``start``, so a restarted server is the same ledger at the same URL."""

    def __init__(self, binary: str | None = None, data_dir: Path | None = None, *extra: str) -> None:
        self.binary = binary or find_binary()
        self._owned = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="tally-test-"))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> TallyServer:
        command = [
            self.binary,
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--listen",
            f"127.0.0.1:{self.port}",
            *self.extra,
        ]
        environment = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self.process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self._wait_until_healthy(command)
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_until_healthy(self, command: list[str]) -> None:
        assert self.process is not None
        started = time.monotonic()
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"tally serve exited with {self.process.returncode}: {' '.join(command)}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code in (200, 401):
                    # The answer was ours only if our server still runs: one that lost the port
                    # to another process exits at once.
                    time.sleep(0.05)
                    if self.process.poll() is None:
                        return
                    continue
            except httpx.TransportError:
                pass
            if time.monotonic() - started > START_TIMEOUT:
                raise RuntimeError(f"tally serve did not answer within {START_TIMEOUT} s")
            time.sleep(0.02)

    def kill(self) -> None:
        """Stops it at once (SIGKILL), as a crash would."""
        self._stop(signal.SIGKILL)

    def stop(self) -> None:
        """Stops it cleanly (SIGTERM): requests in flight are answered first."""
        self._stop(signal.SIGTERM)

    def _stop(self, how: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(how)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def close(self) -> None:
        self.stop()
        if self._owned:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> TallyServer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *_: object) -> None:
        self.close()


@pytest.fixture(scope="session")
def tally_server() -> Iterator[TallyServer]:
    with TallyServer() as server:
        yield server


@pytest.fixture
def tally(tally_server: TallyServer) -> Iterator[Tally]:
    with Tally(tally_server.url) as client:
        yield client


@pytest.fixture
def tally_prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}-"


@pytest.fixture
def tally_django(tally_server: TallyServer, tally_prefix: str) -> Iterator[str]:
    from django.conf import settings
    from django.test.utils import override_settings

    from .django import reset_client

    tally = {**getattr(settings, "TALLY", {}), "URL": tally_server.url, "PREFIX": tally_prefix}
    with override_settings(TALLY=tally):
        reset_client()
        yield tally_prefix
    reset_client()
