"""A repository snapshot from GitHub's tarball, read in memory, never extracted to disk.

One tarball per commit keeps the number of API calls independent of repository size. The
archive comes from a repository anyone may push to, so it is read defensively: limits are
enforced while it streams (compressed size, unpacked size, member count, file size), and
only regular files under the archive's root directory are kept.

An archive is whole or it is an error. A download cut short by a proxy or a dropped
connection without a length to check it against still looks like an archive to Python's
readers: zlib hands out what it inflated so far, and the tar reader stops quietly at the
first missing header, so a partial tree would be reviewed as the whole commit (a file
that breaks the cluster, left out, turns a failing check green). So the gzip stream must
reach its trailer (zlib then checks its CRC-32 and length) and the tar stream its
end-of-archive blocks, with nothing after them but the zero padding tar writers add.
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


class ArchiveDamaged(SnapshotError):
    """The archive is cut short or corrupt: a problem of this download, which another
    download (or the Git database API) may not have."""


# Two zero blocks end a tar archive (POSIX); git archive and Python's tarfile pad them
# with zeros up to a multiple of 10 KiB, so the end of a whole archive is at most this far
# from the end of the stream. Farther, the tar reader stopped at a damaged header.
_BLOCK = 512
_MAX_TRAILER = 64 * 1024


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
        if inflater.eof:
            # zlib has checked this member's trailer (CRC-32 and length). What follows is
            # another member (RFC 1952 allows several), or nothing.
            self._pos -= len(inflater.unused_data)
            if self._pos >= len(self._src):
                self._eof = True
                return
            if bytes(self._src[self._pos : self._pos + 2]) != b"\x1f\x8b":
                raise ArchiveDamaged("the archive has data after the end of its gzip stream")
            self._inflater = inflater = zlib.decompressobj(wbits=31)
        if inflater.unconsumed_tail:
            out = inflater.decompress(inflater.unconsumed_tail, _MAX_INFLATE_STEP)
        elif self._pos >= len(self._src):
            raise ArchiveDamaged("the archive was cut short: its gzip stream has no end")
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


class _Tail(io.RawIOBase):
    """What the tar reader reads, passed through: how much, and the last bytes of it, to
    check the end of the archive once the reader has stopped."""

    def __init__(self, inner: io.RawIOBase) -> None:
        self._inner = inner
        self.total = 0
        self.tail = bytearray()

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        out = self._inner.read(-1 if size is None else size)
        if out:
            self.total += len(out)
            self.tail += out
            if len(self.tail) > 2 * _MAX_TRAILER:
                del self.tail[:-_MAX_TRAILER]
        return out or b""

    def check_end(self, end: int) -> None:
        """The tar reader stopped before a header at offset `end`: it must be the
        end-of-archive blocks, followed by zeros to the end of the stream."""
        while self.read(_CHUNK) and self.total - end <= _MAX_TRAILER:
            pass
        after = self.total - end
        trailer = bytes(self.tail[len(self.tail) - after :]) if 0 < after <= _MAX_TRAILER else b""
        if after > _MAX_TRAILER or (after >= _BLOCK and trailer[:_BLOCK].count(0) != _BLOCK):
            raise ArchiveDamaged(
                "the archive is damaged: the tar reader stopped at a header it could not "
                "read, before the end of the archive"
            )
        if after < 2 * _BLOCK or trailer.count(0) != after:
            raise ArchiveDamaged("the archive was cut short: it has no end-of-archive blocks")


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
    inner: io.RawIOBase
    if data[:2] == b"\x1f\x8b":
        inner = _GunzipReader(data, limits.max_unpacked)
    else:
        inner = _CountingReader(data, limits.max_unpacked)
    reader = _Tail(inner)
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
            reader.check_end(archive.offset)
    except SnapshotError:
        raise
    except zlib.error as exc:
        # zlib checks the gzip trailer's CRC-32 and length: the bytes are not the ones sent.
        raise ArchiveDamaged(f"the archive is damaged: {exc}") from None
    except tarfile.ReadError as exc:
        text = str(exc)
        if "unexpected end of data" in text:
            raise ArchiveDamaged("the archive was cut short: a file's data ends early") from None
        if text.startswith("zlib error: "):
            # tarfile's own wrapping of the zlib error above.
            raise ArchiveDamaged(f"the archive is damaged: {text[12:]}") from None
        # Not a tar stream at all (empty, an error page a proxy sent): this download's too.
        raise ArchiveDamaged(f"the tarball could not be read ({exc})") from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise SnapshotError(f"the tarball could not be read ({exc})") from None
    if skipped_large:
        log.info("skipped %d files over %d bytes (MAX_FILE_BYTES)", skipped_large, limits.max_file)
    if anomalies:
        log.warning("skipped %d tarball entries that cannot come from git", anomalies)
    return TarballContents(files, anomalies=anomalies, too_large=skipped_large)
