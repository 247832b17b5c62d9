"""A real Redis for the shared-queue tests: `REDIS_URL` when set, else a `redis-server`
of the test run's own on a free loopback port (no persistence, in a temporary directory).

Each test gets its own key prefix, so tests never see each other's queues."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class RedisServer:
    url: str
    prefix: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def own_redis_server(binary: str) -> Iterator[str]:
    """A redis-server on a free loopback port, without persistence, until the block ends;
    yields its URL."""
    with tempfile.TemporaryDirectory(prefix="flux-review-redis-") as workdir:
        port = _free_port()
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                workdir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while not _ping(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {port}")
                time.sleep(0.02)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "no redis-server binary and no REDIS_URL: the shared-queue tests cannot run"
        print(f"\nSKIPPED: {reason}")
        pytest.skip(reason)
    with own_redis_server(binary) as url:
        yield url


@pytest.fixture
def redis_server(redis_url: str) -> RedisServer:
    return RedisServer(redis_url, f"flux-review-test-{uuid.uuid4().hex[:10]}")


class RedisProcess:
    """A redis-server of one test's own, to kill (SIGKILL), pause (SIGSTOP), fill
    (`maxmemory` with `noeviction`) and start again on the same port, with its data
    directory kept: with `appendonly`, what it acknowledged survives a kill."""

    def __init__(self, binary: str, workdir: str, *, appendonly: bool = False) -> None:
        self.binary = binary
        self.workdir = workdir
        self.appendonly = appendonly
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, appendonly: bool | None = None) -> None:
        if appendonly is not None:
            self.appendonly = appendonly
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--appendfsync",
                "always",
                "--dir",
                self.workdir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _ping(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last write."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def redis_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """A redis-server started for the test alone (not yet started: `start()` it)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server binary: the Redis fault tests cannot run")
    server = RedisProcess(binary, str(tmp_path_factory.mktemp("redis")))
    try:
        yield server
    finally:
        server.close()
