"""Renders in child processes: a small pool, each child reused until it breaks a limit.

Starting a child costs a Python interpreter and loading the SDK's 85 MB library (0.1 s
here, three to four bare interpreters: bench/helm.py); a render of a small chart, 1-2 ms. So
children live across renders (and across reviews: `bot.helm.renderer()` shares one pool
per process), and one is replaced only when it was killed at its time limit, died at its
memory limit, or rendered `max_renders` charts.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import cachetools
import orjson

from bot.analysis.rendering import (
    FailureKind,
    Rendered,
    RenderFailure,
    RenderRequest,
    RenderResult,
    check_kube_version,
    failure_from_helm,
)
from bot.helm.wire import FrameTooLarge, read_frame, write_frame

DEFAULT_TIME_LIMIT = 10.0  # seconds of wall clock per render
DEFAULT_MEMORY_LIMIT = 1024 * 1024 * 1024  # bytes of heap for the child, SDK included
DEFAULT_MAX_OUTPUT = 64 * 1024 * 1024  # bytes of rendered manifests
START_TIMEOUT = 60.0

# Environment the child gets: nothing of the parent's but what starting Python needs.
_PASSED = ("PATH", "SYSTEMROOT", "LANG", "LC_ALL", "TMPDIR", "HELM_C_LIB")
_STDERR_KEPT = 8192


@dataclass(frozen=True)
class RendererInfo:
    helm: str  # the Helm SDK version inside the library (v4.x.y)
    library: str
    binding: str
    kube_version: str  # `.Capabilities.KubeVersion` when a request sets none
    network: str = ""  # "isolated" when the child has no network at all, else why not


class _Timeout:
    pass


class _Died:
    pass


_TIMEOUT = _Timeout()
_DIED = _Died()


class _Child:
    def __init__(self, command: list[str], env: dict[str, str], cwd: str, limit: int) -> None:
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            # Ctrl-C in a terminal reaches the parent, which closes the child's stdin.
            start_new_session=True,
        )
        self.frames: queue.Queue[tuple[dict[str, Any], bytes] | None] = queue.Queue()
        self.stderr = bytearray()
        self.stderr_done = threading.Event()
        self.renders = 0
        self.killed = False
        self.oversized = False
        self._limit = limit
        # Each reader closes its own pipe at its end (the child's exit): a pipe closed
        # under a blocked reader could see its descriptor reused by another file.
        threading.Thread(target=self._read_frames, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_frames(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        try:
            while True:
                frame = read_frame(stream, self._limit)
                self.frames.put(frame)
                if frame is None:
                    break
        except (OSError, ValueError, FrameTooLarge) as exc:
            self.oversized = isinstance(exc, FrameTooLarge)
            self.frames.put(None)
            # Whatever is left is not read: the child must not block on a full pipe.
            with contextlib.suppress(OSError):
                self.proc.kill()
        finally:
            stream.close()

    def _read_stderr(self) -> None:
        stream = self.proc.stderr
        assert stream is not None
        # The first bytes say why Go stopped ("fatal error: runtime: out of memory"); the
        # stack dump after them is dropped.
        try:
            with contextlib.suppress(OSError, ValueError):
                while chunk := stream.read1(65536):  # type: ignore[attr-defined]
                    if len(self.stderr) < _STDERR_KEPT:
                        self.stderr.extend(chunk[: _STDERR_KEPT - len(self.stderr)])
        finally:
            stream.close()
            self.stderr_done.set()

    def receive(self, timeout: float) -> tuple[dict[str, Any], bytes] | _Timeout | _Died:
        try:
            frame = self.frames.get(timeout=timeout)
        except queue.Empty:
            return _TIMEOUT
        return _DIED if frame is None else frame

    def send(self, header: dict[str, Any], body: bytes) -> bool:
        assert self.proc.stdin is not None
        try:
            write_frame(self.proc.stdin, header, body)
        except (BrokenPipeError, OSError, ValueError):
            return False
        return True

    def alive(self) -> bool:
        return not self.killed and self.proc.poll() is None

    def kill(self) -> None:
        self.killed = True
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()

    def stop(self) -> None:
        """Close stdin: an idle child ends by itself (killed if it does not)."""
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.kill()

    def why_dead(self) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.stderr_done.wait(timeout=5)
        return self.stderr.decode("utf-8", "replace")


def _memory_reason(stderr: str, returncode: int | None) -> bool:
    text = stderr.lower()
    return (
        "out of memory" in text
        or "cannot allocate memory" in text
        or "memoryerror" in text
        or "stack overflow" in text
        or "stack exceeds" in text
        or returncode == -9  # the kernel's OOM killer
    )


_POOLS: weakref.WeakSet[ChildRenderer] = weakref.WeakSet()


def _forget_in_forked_child() -> None:
    # A forked process (the YAML scan's workers) must not use, or kill, its parent's
    # renderer children.
    for pool in list(_POOLS):
        pool._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_forked_child)


class ChildRenderer:
    """A `Renderer` over child processes running the Helm SDK, with limits per render."""

    def __init__(
        self,
        workers: int = 1,
        time_limit: float = DEFAULT_TIME_LIMIT,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        max_output: int = DEFAULT_MAX_OUTPUT,
        max_renders: int = 1000,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.workers = max(1, workers)
        self.time_limit = time_limit
        self.memory_limit = memory_limit
        self.max_output = max_output
        self.max_renders = max_renders
        self.start_timeout = start_timeout
        self.starts = 0  # children started, for benchmarks and tests
        self._idle: list[_Child] = []
        self._busy: set[_Child] = set()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.workers)
        self._info: RendererInfo | None = None
        self._broken: str | None = None
        self._closed = False
        self._tripped: cachetools.LRUCache[str, RenderFailure] = cachetools.LRUCache(1024)
        self._dir = tempfile.mkdtemp(prefix="flux-review-helm-")
        self._owner = os.getpid()
        _POOLS.add(self)
        # Also at interpreter exit: no child outlives its parent's interpreter.
        self._finalizer = weakref.finalize(self, ChildRenderer._cleanup, self._idle, self._dir)

    # -- children ----------------------------------------------------------------------

    def _command(self) -> list[str]:
        config = {
            "memory_limit": self.memory_limit,
            "time_limit": self.time_limit,
            "max_output": self.max_output,
            # The largest chart the assembly passes, its values and file names.
            "max_request": 256 * 1024 * 1024,
        }
        return [sys.executable, "-m", "bot.helm.child", orjson.dumps(config).decode()]

    def _environment(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in _PASSED if k in os.environ}
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["HOME"] = self._dir
        # Templating is single-threaded; one core is all a runaway chart gets.
        env["GOMAXPROCS"] = "1"
        env["GOMEMLIMIT"] = str(self.memory_limit * 3 // 4)
        return env

    def _spawn(self) -> _Child:
        # Manifests and CRDs as JSON: escaping may double what the output limit counts.
        child = _Child(
            self._command(), self._environment(), self._dir, limit=2 * self.max_output + (1 << 20)
        )
        self.starts += 1
        hello = child.receive(self.start_timeout)
        if not isinstance(hello, tuple) or not hello[0].get("ready"):
            if isinstance(hello, _Timeout):
                child.kill()
                raise RuntimeError(f"no answer within {self.start_timeout:g} s")
            reason = child.why_dead().strip().splitlines()
            child.kill()
            raise RuntimeError(reason[-1] if reason else "it exited at once")
        header = hello[0]
        if self._info is None:
            self._info = RendererInfo(
                str(header.get("helm", "")),
                str(header.get("library", "")),
                str(header.get("binding", "")),
                str(header.get("kube_version", "")),
                str(header.get("network", "")),
            )
        return child

    def _checkout(self) -> _Child:
        with self._lock:
            while self._idle:
                child = self._idle.pop()
                if child.alive():
                    self._busy.add(child)
                    return child
                child.kill()
        child = self._spawn()
        with self._lock:
            self._busy.add(child)
        return child

    def _checkin(self, child: _Child) -> None:
        with self._lock:
            self._busy.discard(child)
            if (
                not self._closed
                and child.alive()
                and child.renders < self.max_renders
                and len(self._idle) < self.workers
            ):
                self._idle.append(child)
                return
        if child.alive():
            child.stop()
        else:
            child.kill()

    def info(self) -> RendererInfo | RenderFailure:
        """The SDK's versions (starting a child if none ran yet)."""
        if self._info is None:
            with self._slots:
                try:
                    self._checkin(self._checkout())
                except (RuntimeError, OSError) as exc:
                    return self._unavailable(str(exc))
        assert self._info is not None
        return self._info

    def _unavailable(self, reason: str) -> RenderFailure:
        self._broken = reason
        return RenderFailure(FailureKind.UNAVAILABLE, f"the Helm renderer did not start: {reason}")

    # -- rendering ---------------------------------------------------------------------

    def render(self, request: RenderRequest) -> RenderResult:
        if self._closed:
            return RenderFailure(FailureKind.UNAVAILABLE, "the Helm renderer is closed")
        if self._broken is not None:
            return RenderFailure(
                FailureKind.UNAVAILABLE, f"the Helm renderer did not start: {self._broken}"
            )
        key = request.chart.key
        with self._lock:
            tripped = self._tripped.get(key)
        if tripped is not None:
            return tripped
        with self._slots:
            try:
                child = self._checkout()
            except (RuntimeError, OSError) as exc:
                return self._unavailable(str(exc))
            try:
                result = self._render_in(child, request)
            except Exception as exc:  # a bug here must cost a render, not the review
                child.kill()
                return RenderFailure(FailureKind.UNAVAILABLE, f"the Helm renderer failed: {exc!r}")
            finally:
                self._checkin(child)
        if isinstance(result, RenderFailure) and result.kind is FailureKind.LIMIT:
            # A chart that broke a limit once is not rendered again (with other values,
            # for other HelmReleases): a hostile chart used by fifty HelmReleases must
            # not cost fifty time limits.
            skipped = RenderFailure(
                FailureKind.LIMIT,
                "not rendered: "
                + result.message.replace("the render", "an earlier render of this chart", 1),
            )
            with self._lock:
                self._tripped[key] = skipped
        return result

    def _render_in(self, child: _Child, request: RenderRequest) -> RenderResult:
        assert self._info is not None
        version = request.kube_version or self._info.kube_version
        refused = check_kube_version(request.chart, version)
        if refused is not None:
            return refused
        files = request.files()
        options: dict[str, Any] = {"name": request.release_name, "namespace": request.namespace}
        if request.kube_version:
            options["kube_version"] = request.kube_version
        if request.api_versions:
            options["api_versions"] = list(request.api_versions)
        try:
            values = request.values_json()
        except (TypeError, ValueError) as exc:
            return RenderFailure(FailureKind.VALUES, f"values are not JSON: {exc}")
        header = {
            "files": [[name, len(data)] for name, data in files.items()],
            "values": values,
            "options": options,
        }
        body = b"".join(files.values())
        child.renders += 1
        if not child.send(header, body):
            return self._died(child)
        answer = child.receive(self.time_limit)
        if isinstance(answer, _Timeout):
            child.kill()
            return RenderFailure(
                FailureKind.LIMIT, f"the render exceeded its time limit ({self.time_limit:g} s)"
            )
        if isinstance(answer, _Died):
            return self._died(child)
        result = answer[0]
        if result.get("ok"):
            return Rendered(
                manifests={
                    name: text
                    for name, text in result["manifests"].items()
                    # Helm keeps NOTES.txt out of the release and skips empty output.
                    if not name.endswith("NOTES.txt") and text.strip()
                },
                crds=dict(result.get("crds") or {}),
            )
        limit = result.get("limit")
        if limit == "output":
            return self._output_limit()
        if limit == "memory":
            child.kill()
            return self._memory_limit()
        return failure_from_helm(str(result.get("error_type")), str(result.get("message")))

    def _output_limit(self) -> RenderFailure:
        return RenderFailure(
            FailureKind.LIMIT,
            f"the render exceeded its output limit ({self.max_output // (1 << 20)} MiB)",
        )

    def _memory_limit(self) -> RenderFailure:
        return RenderFailure(
            FailureKind.LIMIT,
            f"the render exceeded its memory limit ({self.memory_limit // (1 << 20)} MiB)",
        )

    def _died(self, child: _Child) -> RenderFailure:
        stderr = child.why_dead()
        returncode = child.proc.returncode
        child.kill()
        if child.oversized:
            return self._output_limit()
        if _memory_reason(stderr, returncode):
            return self._memory_limit()
        if returncode is not None and returncode == -getattr(signal, "SIGXCPU", 0):
            return RenderFailure(
                FailureKind.LIMIT, f"the render exceeded its time limit ({self.time_limit:g} s)"
            )
        first = next((line for line in stderr.splitlines() if line.strip()), "")
        return RenderFailure(
            FailureKind.LIMIT,
            f"the renderer process ended during the render (exit {returncode}): {first}".rstrip(
                ": "
            ),
        )

    def render_all(self, requests: Sequence[RenderRequest]) -> list[RenderResult]:
        if self.workers == 1 or len(requests) < 2:
            return [self.render(r) for r in requests]
        with ThreadPoolExecutor(max_workers=min(self.workers, len(requests))) as executor:
            return list(executor.map(self.render, requests))

    # -- lifetime ----------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle[:] = list(self._idle), []
        for child in idle:
            child.stop()
        if os.getpid() == self._owner:  # a forked copy leaves its parent's directory be
            shutil.rmtree(self._dir, ignore_errors=True)

    def _forget(self) -> None:
        self._finalizer.detach()
        self._idle[:] = []
        self._busy = set()
        self._closed = True

    @staticmethod
    def _cleanup(idle: list[_Child], directory: str) -> None:
        for child in idle:
            child.kill()
        shutil.rmtree(directory, ignore_errors=True)
