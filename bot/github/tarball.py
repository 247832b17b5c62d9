"""A repository snapshot from GitHub's tarball, read in memory, never extracted to disk.

One tarball per commit keeps the number of API calls independent of repository size. The
archive comes from a repository anyone may push to, so it is read defensively: limits are
enforced while it streams (compressed size, unpacked size, member count, file size), and
only regular files under the archive's root directory are kept.

An archive is whole or it is an error. A download cut short by a proxy or a dropped
connection without a length to check it against still looks like an archive: zlib hands
out what it inflated so far, and a tar reader that stops quietly at the first missing
header would hand out a partial tree, to be reviewed as the whole commit (a file that
breaks the cluster, left out, turns a failing check green). So the gzip stream must reach
its trailer (zlib then checks its CRC-32 and length) and the tar stream its end-of-archive
blocks, with nothing after them but the zero padding tar writers add; a header that fails
its checksum, or a member whose data runs past the end of the stream, is an error.

The tar reader is this module's own, not Python's `tarfile`: tarfile parses every header
field by field in Python, about 20 µs a member, 0.34 s for the archive of a repository of
10,553 files (14,584 members) that zlib inflates in 0.02 s, and a review reads two
archives. This one reads what GitHub and `git archive` write (ustar headers, pax extended
headers, the pax global header that carries the commit id) and the GNU long names Python
and GNU tar write, and where a rule allows two readings it reads tarfile's way, so that an
archive gives the same files either way.
"""

from __future__ import annotations

import logging
import posixpath
import zlib
from collections.abc import Iterator
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
# from the end of the stream.
_BLOCK = 512
_MAX_TRAILER = 64 * 1024
_ZERO_BLOCK = bytes(_BLOCK)
# A path in a pax extended header or a GNU long name is held whole: far longer is no path
# of a git repository. (Other pax records, a symlink's target above all, are skipped.)
_MAX_EXTENSION = 1024 * 1024
# A pax record's length and key: far more than the keys this reader acts on.
_RECORD_HEAD = 64
# Pax records per entry the archive may hold (in all, across its headers): git writes one
# or two per entry, GNU tar and tarfile up to eight. A budget for the whole archive, not a
# cap per header: hundreds of megabytes of tiny records spread over many headers cost
# about a microsecond each, minutes of a worker's time.
_RECORDS_PER_MEMBER = 16

# Type flags (one byte at offset 156 of a header).
_REGULAR = (ord("0"), 0, ord("7"))  # '7' is a contiguous file: a regular file to any reader
_HARD_LINK, _SYMLINK, _DIRECTORY = ord("1"), ord("2"), ord("5")
# Entries without data: tarfile skips data only after regular files and unknown types.
_NO_DATA = (_HARD_LINK, _SYMLINK, ord("3"), ord("4"), _DIRECTORY, ord("6"))
_PAX, _PAX_SOLARIS, _PAX_GLOBAL = ord("x"), ord("X"), ord("g")
_LONG_NAME, _LONG_LINK = ord("L"), ord("K")
_EXTENSIONS = (_PAX, _PAX_SOLARIS, _PAX_GLOBAL, _LONG_NAME, _LONG_LINK)
_GNU_SPARSE = ord("S")

_CUT_SHORT = "the archive was cut short: it has no end-of-archive blocks"
_DATA_CUT_SHORT = "the archive was cut short: a file's data ends early"
_BAD_HEADER = (
    "the archive is damaged: the tar reader stopped at a header it could not read, "
    "before the end of the archive"
)


@dataclass(frozen=True)
class TarballLimits:
    max_compressed: int = 200 * 1024 * 1024
    max_unpacked: int = 512 * 1024 * 1024
    max_file: int = 10 * 1024 * 1024
    max_members: int = 200_000


def _too_large(limit: int) -> SnapshotTooLarge:
    return SnapshotTooLarge(
        f"the repository unpacks to more than {limit} bytes (MAX_UNPACKED_BYTES)"
    )


def _gunzip(data: bytes, limit: int) -> Iterator[bytes]:
    """The inflated stream, a step of at most _MAX_INFLATE_STEP bytes at a time, counted
    against `limit` as it inflates."""
    src = memoryview(data)
    pos = 0
    total = 0
    inflater = zlib.decompressobj(wbits=31)
    while True:
        if inflater.eof:
            # zlib has checked this member's trailer (CRC-32 and length). What follows is
            # another member (RFC 1952 allows several), or nothing.
            pos -= len(inflater.unused_data)
            if pos >= len(src):
                return
            if bytes(src[pos : pos + 2]) != b"\x1f\x8b":
                raise ArchiveDamaged("the archive has data after the end of its gzip stream")
            inflater = zlib.decompressobj(wbits=31)
        if inflater.unconsumed_tail:
            out = inflater.decompress(inflater.unconsumed_tail, _MAX_INFLATE_STEP)
        elif pos >= len(src):
            raise ArchiveDamaged("the archive was cut short: its gzip stream has no end")
        else:
            chunk = src[pos : pos + _CHUNK]
            pos += len(chunk)
            out = inflater.decompress(chunk, _MAX_INFLATE_STEP)
        total += len(out)
        if total > limit:
            raise _too_large(limit)
        if out:
            yield out


def _plain(data: bytes, limit: int) -> Iterator[bytes]:
    """An uncompressed tar (when a proxy already decoded the gzip), counted the same way."""
    for start in range(0, len(data), _MAX_INFLATE_STEP):
        chunk = data[start : start + _MAX_INFLATE_STEP]
        if start + len(chunk) > limit:
            raise _too_large(limit)
        yield chunk


class _Stream:
    """The tar stream as it inflates: `buf[pos:]` has arrived and is not read yet, and
    `done` is the offset of `buf[0]` in the stream. Only what a member needs is kept."""

    __slots__ = ("_chunks", "buf", "done", "pos")

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self.buf = b""
        self.pos = 0
        self.done = 0

    @property
    def offset(self) -> int:
        return self.done + self.pos

    def fill(self, n: int) -> bool:
        """Whether `n` bytes follow `pos`, inflating more as needed; False when the stream
        ends first (everything to its end is then in `buf[pos:]`)."""
        have = len(self.buf) - self.pos
        if have >= n:
            return True
        parts = [self.buf[self.pos :]] if have else []
        for chunk in self._chunks:
            parts.append(chunk)
            have += len(chunk)
            if have >= n:
                break
        self.done += self.pos
        self.buf = parts[0] if len(parts) == 1 else b"".join(parts)
        self.pos = 0
        return have >= n

    def take(self, n: int) -> bytes | None:
        if not self.fill(n):
            return None
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def skip(self, n: int) -> bool:
        """Reads past `n` bytes without keeping them (a file over the limit is never held
        whole); False when the stream ends first."""
        while len(self.buf) - self.pos < n:
            n -= len(self.buf) - self.pos
            self.done += len(self.buf)
            self.buf, self.pos = b"", 0
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            self.buf = chunk
        self.pos += n
        return True


class _BadHeader(Exception):
    pass


def _number(field: bytes) -> int:
    """A numeric header field: octal digits padded with spaces or NULs, or (for sizes of
    8 GiB and more) GNU's base-256 after a 0x80 byte. A sign or anything but octal digits
    is no number a tar writer writes."""
    if field[0] == 0x80:
        return int.from_bytes(field[1:], "big")
    digits = field.split(b"\0", 1)[0].strip()
    if digits.strip(b"01234567"):
        raise _BadHeader
    return int(digits, 8) if digits else 0


def _checksum_ok(header: bytes) -> bool:
    """The checksum is the sum of the header's bytes with its own field taken as spaces."""
    field = header[148:156]
    stored = _number(field)
    unsigned = sum(header) - sum(field) + 8 * ord(" ")
    if stored == unsigned:
        return True
    # Some old tars summed signed chars; tarfile (and GNU tar) accept either sum.
    high = sum(1 for b in header if b >= 0x80) - sum(1 for b in field if b >= 0x80)
    return high > 0 and stored == unsigned - 256 * high


def _text(raw: bytes) -> str:
    # tarfile's decoding: UTF-8, with bytes that are not kept as they are.
    return raw.decode("utf-8", "surrogateescape")


class _Budget:
    """Pax records the rest of the archive may hold."""

    __slots__ = ("left", "limit")

    def __init__(self, members: int) -> None:
        self.left = self.limit = _RECORDS_PER_MEMBER * members

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise SnapshotTooLarge(
                f"the repository's archive has more than {self.limit} pax header records "
                f"({_RECORDS_PER_MEMBER} per entry of MAX_TARBALL_MEMBERS)"
            )


def _pax_header(
    stream: _Stream, size: int, budget: _Budget
) -> tuple[bytes | None, bytes | None, bool]:
    """What a pax extended header of `size` bytes says of the member after it: its
    `path`, its `size`, whether it is sparse. Read from the stream a record at a time
    ("%d %s=%s\\n", the length counting the whole record, each within the header's
    data and ending where its length says): only those keys' values are held, the rest
    are skipped unread, a symlink's target above all (git writes it as `linkpath`, and
    a symlink's target is a blob of any length). Within one header the last record of a
    key counts (tarfile's)."""
    path: bytes | None = None
    number: bytes | None = None
    sparse = False
    left = size
    while left > 0:
        want = min(left, _RECORD_HEAD)
        if not stream.fill(want):
            raise ArchiveDamaged(_DATA_CUT_SHORT)
        head = stream.buf[stream.pos : stream.pos + want]
        space = head.find(b" ", 0, 21)
        digits = head[:space] if space > 0 else b""
        if not digits.isdigit():
            # Zero padding after the last record, to the end of the header's data.
            while left:
                chunk = stream.take(min(left, _CHUNK))
                if chunk is None:
                    raise ArchiveDamaged(_DATA_CUT_SHORT)
                if chunk.count(0) != len(chunk):
                    raise _BadHeader
                left -= len(chunk)
            break
        length = int(digits)
        if length > left or length < space + 3:
            raise _BadHeader
        budget.spend()
        equals = head.find(b"=", space + 1, min(length, want))
        if equals == -1 and length <= want:
            raise _BadHeader  # a record without a key
        key = head[space + 1 : equals] if equals != -1 else None
        if key == b"":
            raise _BadHeader
        if key is not None and (key in (b"path", b"size") or key.startswith(b"GNU.sparse.")):
            if length > _MAX_EXTENSION:
                if key == b"path":
                    raise SnapshotTooLarge(f"the archive names a file by a path of {length} bytes")
                raise _BadHeader
            record = stream.take(length)
            if record is None:
                raise ArchiveDamaged(_DATA_CUT_SHORT)
            if record[-1] != 0x0A:
                raise _BadHeader
            value = record[equals + 1 : -1]
            if key == b"path":
                path = value
            elif key == b"size":
                # A size has at most 12 octal digits in a header; far more is no size
                # (and Python refuses to read a number of over 4,300 digits).
                if not value.isdigit() or len(value) > 20:
                    raise _BadHeader
                number = value
            else:
                sparse = True
        else:
            last = stream.take(1) if stream.skip(length - 1) else None
            if last is None:
                raise ArchiveDamaged(_DATA_CUT_SHORT)
            if last != b"\n":
                raise _BadHeader
        left -= length
    return path, number, sparse


def _check_end(stream: _Stream) -> None:
    """The stream is at a zero block: it must be the end-of-archive blocks, followed by
    zeros to the end of the stream."""
    if stream.fill(_MAX_TRAILER + 1):
        raise ArchiveDamaged(_BAD_HEADER)
    trailer = stream.buf[stream.pos :]
    if len(trailer) < 2 * _BLOCK or trailer.count(0) != len(trailer):
        raise ArchiveDamaged(_CUT_SHORT)


def safe_relative_path(name: str) -> str | None:
    """The path below the archive's top directory, or None when it must be skipped.

    GitHub puts everything under `<owner>-<repo>-<sha7>/`; anything absolute, anything
    with `..`, or anything outside that directory is not part of the repository.
    """
    if not name or name.startswith("/") or "\\" in name.split("/", 1)[0]:
        return None
    below = name.partition("/")[2]
    if "//" not in f"/{below}/" and "/." not in f"/{below}":
        # No empty, `.` or `..` part: the path as it is (most of them; one with a dotfile
        # in it is told from one with `..` by the walk below).
        return below
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
    if data[:2] == b"\x1f\x8b":
        stream = _Stream(_gunzip(data, limits.max_unpacked))
    else:
        stream = _Stream(_plain(data, limits.max_unpacked))
    try:
        contents = _read(stream, limits)
    except zlib.error as exc:
        # zlib checks the gzip trailer's CRC-32 and length: the bytes are not the ones sent.
        raise ArchiveDamaged(f"the archive is damaged: {exc}") from None
    if contents.too_large:
        log.info(
            "skipped %d files over %d bytes (MAX_FILE_BYTES)", contents.too_large, limits.max_file
        )
    if contents.anomalies:
        log.warning("skipped %d tarball entries that cannot come from git", contents.anomalies)
    return contents


def _read(stream: _Stream, limits: TarballLimits) -> TarballContents:
    files: dict[str, bytes] = {}
    root: str | None = None
    members = 0
    skipped_large = 0
    anomalies = 0
    budget = _Budget(limits.max_members)
    # What extension headers say of the member that follows them. Where several say the
    # same thing, the first wins, as in tarfile (each applies its own over the next's).
    long_name: str | None = None
    pax_size: int | None = None
    sparse = False
    extended = False
    while True:
        if not stream.fill(_BLOCK):
            if stream.offset == 0:
                # Not a tar stream at all (empty, an error page a proxy sent).
                left = len(stream.buf) - stream.pos
                why = "truncated header" if left else "empty file"
                raise ArchiveDamaged(f"the tarball could not be read ({why})")
            raise ArchiveDamaged(_CUT_SHORT)
        pos = stream.pos
        header = stream.buf[pos : pos + _BLOCK]
        if header == _ZERO_BLOCK:
            if extended:
                raise ArchiveDamaged(_BAD_HEADER)
            _check_end(stream)
            break
        try:
            ok = _checksum_ok(header)
            size = _number(header[124:136])
        except _BadHeader:
            ok = False
        if not ok:
            if stream.offset == 0:
                raise ArchiveDamaged("the tarball could not be read (bad checksum)")
            raise ArchiveDamaged(_BAD_HEADER)
        stream.pos = pos + _BLOCK
        kind = header[156]

        if kind in _EXTENSIONS:
            if kind in (_PAX_GLOBAL, _LONG_LINK):
                # git archive's global header holds the commit id, as a comment, and a
                # link's target is never read: neither says where a file's data is.
                if not stream.skip(size + (-size % _BLOCK)):
                    raise ArchiveDamaged(_DATA_CUT_SHORT)
                if kind == _LONG_LINK:
                    extended = True
                continue
            extended = True
            if kind == _LONG_NAME:
                if size > _MAX_EXTENSION:
                    raise SnapshotTooLarge(f"the archive names a file by a path of {size} bytes")
                extension = stream.take(size)
                if extension is None:
                    raise ArchiveDamaged(_DATA_CUT_SHORT)
                if long_name is None:
                    long_name = _text(extension.split(b"\0", 1)[0])
            else:
                try:
                    path_record, size_record, sparse_record = _pax_header(stream, size, budget)
                except _BadHeader:
                    raise ArchiveDamaged(_BAD_HEADER) from None
                sparse = sparse or sparse_record
                if path_record is not None and long_name is None:
                    long_name = _text(path_record)
                if size_record is not None and pax_size is None:
                    pax_size = int(size_record)
            if not stream.skip(-size % _BLOCK):
                raise ArchiveDamaged(_DATA_CUT_SHORT)
            continue

        raw_name = header[:100].split(b"\0", 1)[0]
        if long_name is not None:
            name = long_name
        else:
            prefix = header[345:500].split(b"\0", 1)[0] if kind != _GNU_SPARSE else b""
            name = _text(prefix + b"/" + raw_name if prefix else raw_name)
        if pax_size is not None:
            size = pax_size
        is_sparse = sparse or kind == _GNU_SPARSE
        long_name, pax_size, sparse, extended = None, None, False, False
        if kind == 0 and raw_name.endswith(b"/"):
            kind = _DIRECTORY  # an old tar's directory
        if kind == _GNU_SPARSE and header[482]:
            # Old GNU sparse files list their holes in extra header blocks.
            while True:
                more = stream.take(_BLOCK)
                if more is None:
                    raise ArchiveDamaged(_DATA_CUT_SHORT)
                if not more[504]:
                    break
        padded = 0 if kind in _NO_DATA else size + (-size % _BLOCK)

        members += 1
        if members > limits.max_members:
            raise SnapshotTooLarge(
                f"the repository has more than {limits.max_members} entries (MAX_TARBALL_MEMBERS)"
            )
        top = name.split("/", 1)[0]
        if root is None:
            root = top
        path = None
        if top != root:
            anomalies += 1
        elif kind in (_DIRECTORY, _SYMLINK):
            # A symlink can point anywhere, and the cluster never reads one from git as a
            # manifest.
            pass
        elif kind not in _REGULAR or is_sparse:
            # Hard links, devices, FIFOs and sparse files cannot come from git.
            anomalies += 1
        else:
            path = safe_relative_path(name)
            if path is None:
                anomalies += 1
            elif size > limits.max_file:
                skipped_large += 1
                path = None
        if path is None:
            if not stream.skip(padded):
                raise ArchiveDamaged(_DATA_CUT_SHORT)
            continue
        content = stream.take(size)
        if content is None or not stream.skip(padded - size):
            raise ArchiveDamaged(_DATA_CUT_SHORT)
        files[path] = content
    return TarballContents(files, anomalies=anomalies, too_large=skipped_large)
