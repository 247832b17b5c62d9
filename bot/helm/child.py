"""The renderer's child process: `python -m bot.helm.child CONFIG_JSON`.

It loads the Helm SDK once, then renders one request at a time from its stdin, answering
on its stdout, until stdin closes. Limits (Linux: enforced by the kernel), so that a
hostile chart costs this process and not the review:

- memory: RLIMIT_DATA bounds the heap (Go's and Python's); Go aborts with "out of
  memory" when it cannot grow, and the parent starts a new child. Go's own soft limit
  (GOMEMLIMIT, set by the parent) makes it collect before that.
- time: the parent kills the child at the wall-clock limit; RLIMIT_CPU, raised by one
  render's budget before each render, stops a child whose parent is gone.
- no files written (RLIMIT_FSIZE 0), no core dumps, few descriptors;
- no network: the child leaves the host's network namespace before it loads the SDK
  (Linux, where the kernel lets it: as root, or with unprivileged user namespaces).
  Helm's own template functions do not reach the network here (`lookup` renders offline,
  DNS lookups are off), and this keeps it so whatever a later SDK does.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
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


_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000


def isolate_network() -> str:
    """Leave the network namespace; "isolated", or why not. Only while the process has
    one thread: before the SDK's Go runtime starts its own."""
    if not sys.platform.startswith("linux"):
        return f"not on Linux ({sys.platform})"
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        unshare = libc.unshare
    except (OSError, AttributeError) as exc:
        return str(exc)
    code = 0
    for flags in (_CLONE_NEWNET, _CLONE_NEWUSER | _CLONE_NEWNET):
        if unshare(flags) == 0:
            return "isolated"
        code = ctypes.get_errno()
    return os.strerror(code or errno.EPERM)


def serve(
    config: dict[str, Any], requests: IO[bytes], answers: IO[bytes], network: str = ""
) -> None:
    from bot.helm import sdk

    _apply_limits(config)
    write_frame(answers, {"ready": True, "network": network, **sdk.versions()})
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
    network = isolate_network()
    config = json.loads(sys.argv[1])
    # The frames get the real stdout; anything else that writes to fd 1 (a library's
    # stray print) lands on stderr instead of corrupting them.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    with contextlib.suppress(BrokenPipeError):
        serve(config, sys.stdin.buffer, answers, network)


if __name__ == "__main__":
    main()
