"""The renderer's child process: `python -m bot.helm.child CONFIG_JSON`.

It loads the Helm SDK once, then renders one request at a time from its stdin, answering
on its stdout, until stdin closes. Limits (Linux: enforced by the kernel), so that a
hostile chart costs this process and not the review:

- memory: RLIMIT_DATA bounds the heap (Go's and Python's); Go aborts with "out of
  memory" when it cannot grow, and the parent starts a new child. Go's own soft limit
  (GOMEMLIMIT, set by the parent) makes it collect before that.
- time: the parent kills the child at the wall-clock limit; RLIMIT_CPU, raised by one
  render's budget before each render, stops a child whose parent is gone.
- no files written (RLIMIT_FSIZE 0), no core dumps, few descriptors.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from typing import IO, Any

from bot.helm.wire import read_frame, write_frame

try:
    import resource
except ImportError:  # not on Windows: the wall-clock limit still applies
    resource = None  # type: ignore[assignment]


def _limit(name: str, value: int) -> None:
    if resource is None or not hasattr(resource, name):
        return
    kind = getattr(resource, name)
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(kind, (value, hard))


def _apply_limits(config: dict[str, Any]) -> None:
    _limit("RLIMIT_DATA", int(config["memory_limit"]))
    _limit("RLIMIT_CORE", 0)
    _limit("RLIMIT_FSIZE", 0)
    _limit("RLIMIT_NOFILE", 64)
    if hasattr(signal, "SIGXFSZ"):
        # A write to a file fails with an error instead of killing the process.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _cpu_budget(seconds: float) -> None:
    if resource is None:
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    _limit("RLIMIT_CPU", int(usage.ru_utime + usage.ru_stime + seconds) + 1)


def serve(config: dict[str, Any], requests: IO[bytes], answers: IO[bytes]) -> None:
    from bot.helm import sdk

    _apply_limits(config)
    write_frame(answers, {"ready": True, **sdk.versions()})
    limit = int(config["max_request"])
    while True:
        frame = read_frame(requests, limit)
        if frame is None:
            return
        header, body = frame
        files: dict[str, bytes] = {}
        offset = 0
        for name, size in header["files"]:
            files[name] = body[offset : offset + size]
            offset += size
        _cpu_budget(float(config["time_limit"]))
        try:
            result = sdk.render(
                files, header["values"], header["options"], int(config["max_output"])
            )
        except MemoryError:
            result = {"ok": False, "limit": "memory"}
        write_frame(answers, result)


def main() -> None:
    config = json.loads(sys.argv[1])
    # The frames get the real stdout; anything else that writes to fd 1 (a library's
    # stray print) lands on stderr instead of corrupting them.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    with contextlib.suppress(BrokenPipeError):
        serve(config, sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
