"""A repository snapshot from GitHub's tarball, read in memory, never extracted to disk.

One tarball per commit keeps the number of API calls independent of repository size. The
archive comes from a repository anyone may push to, so it is read defensively: limits are
enforced while it streams (compressed size, unpacked size, member count, file size), and
only regular files under the archive's root directory are kept.
"""

from __future__ import annotations

import io
import logging
import posixpath
import tarfile
import zlib
from dataclasses import dataclass

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024
# Never inflate more than this in one step, so a gzip bomb hits the limit before memory does.
_MAX_INFLATE_STEP = 1024 * 1024


class SnapshotError(Exception):
    """The repository at a commit could not be read."""


class SnapshotTooLarge(SnapshotError):
    """The repository at a commit is over one of the configured limits."""


@dataclass(frozen=True)
class TarballLimits:
    max_compressed: int = 200 * 1024 * 1024
    max_unpacked: int = 512 * 1024 * 1024
    max_file: int = 10 * 1024 * 1024
    max_members: int = 200_000


class _GunzipReader(io.RawIOBase):
    """Inflates gzip data on demand, counting the output against a limit."""

    def __init__(self, data: bytes, limit: int) -> None:
        self._src = memoryview(data)
        self._pos = 0
        self._inflater = zlib.decompressobj(wbits=31)
        self._buf = bytearray()
        self._total = 0
        self._limit = limit
        self._eof = False

    def readable(self) -> bool:
        return True

    def _inflate(self) -> None:
        inflater = self._inflater
        if inflater.unconsumed_tail:
            out = inflater.decompress(inflater.unconsumed_tail, _MAX_INFLATE_STEP)
        elif inflater.eof or self._pos >= len(self._src):
            out = inflater.flush()
            self._eof = True
        else:
            chunk = self._src[self._pos : self._pos + _CHUNK]
            self._pos += len(chunk)
            out = inflater.decompress(chunk, _MAX_INFLATE_STEP)
        self._total += len(out)
        if self._total > self._limit:
            raise SnapshotTooLarge(
                f"the repository unpacks to more than {self._limit} bytes (MAX_UNPACKED_BYTES)"
            )
        self._buf += out

    def read(self, size: int | None = -1) -> bytes:
        want = -1 if size is None else size
        while (want < 0 or len(self._buf) < want) and not self._eof:
            self._inflate()
        if want < 0:
            want = len(self._buf)
        out = bytes(self._buf[:want])
        del self._buf[:want]
        return out


class _CountingReader(io.RawIOBase):
    """An uncompressed tar (when a proxy already decoded the gzip), counted the same way."""

    def __init__(self, data: bytes, limit: int) -> None:
        self._data = io.BytesIO(data)
        self._total = 0
        self._limit = limit

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        out = self._data.read(-1 if size is None else size)
        self._total += len(out)
        if self._total > self._limit:
            raise SnapshotTooLarge(
                f"the repository unpacks to more than {self._limit} bytes (MAX_UNPACKED_BYTES)"
            )
        return out


def safe_relative_path(name: str) -> str | None:
    """The path below the archive's top directory, or None when it must be skipped.

    GitHub puts everything under `<owner>-<repo>-<sha7>/`; anything absolute, anything
    with `..`, or anything outside that directory is not part of the repository.
    """
    if not name or name.startswith("/") or "\\" in name.split("/", 1)[0]:
        return None
    parts = name.split("/")
    if len(parts) < 2:
        return None
    rest = [p for p in parts[1:] if p not in ("", ".")]
    if not rest or any(p == ".." for p in rest):
        return None
    return posixpath.join(*rest)


@dataclass(frozen=True)
class TarballContents:
    files: dict[str, bytes]
    # Entries no git repository can produce (absolute or `..` paths, entries outside the
    # archive's root, hard links, devices, FIFOs): skipped, and worth telling the user about.
    # Symlinks are normal in git and are skipped silently.
    anomalies: int = 0
    too_large: int = 0


def read_tarball(data: bytes, limits: TarballLimits) -> dict[str, bytes]:
    """Regular files of a GitHub tarball, keyed by path relative to the repository root."""
    return read_tarball_contents(data, limits).files


def read_tarball_contents(data: bytes, limits: TarballLimits) -> TarballContents:
    """`read_tarball`, with a count of what was skipped."""
    if len(data) > limits.max_compressed:
        raise SnapshotTooLarge(
            f"the tarball is over the limit of {limits.max_compressed} bytes (MAX_TARBALL_BYTES)"
        )
    reader: io.RawIOBase
    if data[:2] == b"\x1f\x8b":
        reader = _GunzipReader(data, limits.max_unpacked)
    else:
        reader = _CountingReader(data, limits.max_unpacked)
    files: dict[str, bytes] = {}
    root: str | None = None
    members = 0
    skipped_large = 0
    anomalies = 0
    try:
        # "r|": stream mode, one pass, no seeking; the limits above hold while it reads.
        # Nothing is ever extracted: member data is read into memory with extractfile().
        with tarfile.open(fileobj=reader, mode="r|") as archive:
            for member in archive:
                members += 1
                if members > limits.max_members:
                    raise SnapshotTooLarge(
                        f"the repository has more than {limits.max_members} entries "
                        "(MAX_TARBALL_MEMBERS)"
                    )
                top = member.name.split("/", 1)[0]
                if root is None:
                    root = top
                elif top != root:
                    anomalies += 1
                    continue
                if member.isdir() or member.issym():
                    # A symlink can point anywhere, and the cluster never reads one from git
                    # as a manifest.
                    continue
                if not member.isreg():
                    # Hard links, devices and FIFOs cannot come from git.
                    anomalies += 1
                    continue
                path = safe_relative_path(member.name)
                if path is None:
                    anomalies += 1
                    continue
                if member.size > limits.max_file:
                    skipped_large += 1
                    continue
                handle = archive.extractfile(member)
                if handle is None:
                    continue
                files[path] = handle.read()
    except SnapshotError:
        raise
    except (tarfile.TarError, zlib.error, EOFError, OSError) as exc:
        raise SnapshotError(f"the tarball could not be read ({exc})") from None
    if skipped_large:
        log.info("skipped %d files over %d bytes (MAX_FILE_BYTES)", skipped_large, limits.max_file)
    if anomalies:
        log.warning("skipped %d tarball entries that cannot come from git", anomalies)
    return TarballContents(files, anomalies=anomalies, too_large=skipped_large)
