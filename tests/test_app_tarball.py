"""Reading GitHub's tarball in memory, defensively."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Sequence

import pytest

from bot.github.tarball import (
    ArchiveDamaged,
    SnapshotError,
    SnapshotTooLarge,
    TarballContents,
    TarballLimits,
    read_tarball,
    read_tarball_contents,
    safe_relative_path,
)
from tests.fakegithub import GitRepo

ROOT = "octo-org-gitops-abc1234"


def make_tarball(
    entries: Sequence[tuple[str, bytes | None, bytes]], *, compress: bool = True
) -> bytes:
    """entries: (name, data, type); data None for non-files."""
    raw = io.BytesIO()
    with tarfile.open(
        fileobj=raw,
        mode="w",
        format=tarfile.PAX_FORMAT,
        pax_headers={"comment": "0123456789abcdef0123456789abcdef01234567"},
    ) as tar:
        for name, data, kind in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.SYMTYPE or kind == tarfile.LNKTYPE:
                info.linkname = "../../etc/passwd"
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return gzip.compress(raw.getvalue()) if compress else raw.getvalue()


def test_strips_root_and_keeps_only_regular_files() -> None:
    data = make_tarball(
        [
            (f"{ROOT}/", None, tarfile.DIRTYPE),
            (f"{ROOT}/apps/app.yaml", b"kind: Deployment\n", tarfile.REGTYPE),
            (f"{ROOT}/README.md", b"hi", tarfile.REGTYPE),
            (f"{ROOT}/link.yaml", None, tarfile.SYMTYPE),
            (f"{ROOT}/hard.yaml", None, tarfile.LNKTYPE),
            (f"{ROOT}/fifo", None, tarfile.FIFOTYPE),
            (f"{ROOT}/dev", None, tarfile.CHRTYPE),
            (f"{ROOT}/../escape.yaml", b"x", tarfile.REGTYPE),
            ("/etc/abs.yaml", b"x", tarfile.REGTYPE),
            ("elsewhere/x.yaml", b"x", tarfile.REGTYPE),
        ]
    )
    files = read_tarball(data, TarballLimits())
    assert files == {"apps/app.yaml": b"kind: Deployment\n", "README.md": b"hi"}


def test_uncompressed_tar_is_read_too() -> None:
    data = make_tarball([(f"{ROOT}/a.yaml", b"a: 1", tarfile.REGTYPE)], compress=False)
    assert read_tarball(data, TarballLimits()) == {"a.yaml": b"a: 1"}


def test_limits() -> None:
    entries = [(f"{ROOT}/f{n}.yaml", b"x" * 1000, tarfile.REGTYPE) for n in range(20)]
    data = make_tarball(entries)
    with pytest.raises(SnapshotTooLarge, match="MAX_TARBALL_BYTES"):
        read_tarball(data, TarballLimits(max_compressed=len(data) - 1))
    with pytest.raises(SnapshotTooLarge, match="MAX_UNPACKED_BYTES"):
        read_tarball(data, TarballLimits(max_unpacked=10_000))
    with pytest.raises(SnapshotTooLarge, match="MAX_TARBALL_MEMBERS"):
        read_tarball(data, TarballLimits(max_members=10))
    big = make_tarball(
        [
            (f"{ROOT}/big.bin", b"y" * 5000, tarfile.REGTYPE),
            (f"{ROOT}/small.yaml", b"s", tarfile.REGTYPE),
        ]
    )
    assert read_tarball(big, TarballLimits(max_file=4096)) == {"small.yaml": b"s"}


def test_gzip_bomb_stops_at_the_limit_not_at_the_end() -> None:
    bomb = make_tarball([(f"{ROOT}/zeros", b"\0" * (50 * 1024 * 1024), tarfile.REGTYPE)])
    assert len(bomb) < 200 * 1024
    with pytest.raises(SnapshotTooLarge):
        read_tarball(bomb, TarballLimits(max_unpacked=8 * 1024 * 1024))


def test_corrupt_tarball() -> None:
    with pytest.raises(SnapshotError):
        read_tarball(b"\x1f\x8b" + b"garbage" * 100, TarballLimits())
    with pytest.raises(SnapshotError):
        data = make_tarball([(f"{ROOT}/a.yaml", b"a" * 10000, tarfile.REGTYPE)])
        read_tarball(data[: len(data) // 2], TarballLimits())


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (f"{ROOT}/a/b.yaml", "a/b.yaml"),
        (f"{ROOT}/./a//b.yaml", "a/b.yaml"),
        (f"{ROOT}/a/../../x", None),
        (f"{ROOT}/a/..", None),
        (f"{ROOT}/a/b/", "a/b"),
        (f"{ROOT}/.github/ci.yaml", ".github/ci.yaml"),
        (f"{ROOT}/..x/.y", "..x/.y"),
        ("/abs/x", None),
        (ROOT, None),
        (f"{ROOT}/", None),
    ],
)
def test_safe_relative_path(name: str, expected: str | None) -> None:
    assert safe_relative_path(name) == expected


# -- an archive is whole or it is an error ---------------------------------------------------


@pytest.fixture
def real_archive(git_repo: GitRepo) -> tuple[str, dict[str, bytes]]:
    """A commit of 40 manifests in 4 directories, and its files."""
    files = {
        f"apps/team{n % 4}/app{n}.yaml": (
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app{n}\ndata:\n"
            + "".join(f"  key{k}: value-{n}-{k}\n" for k in range(n % 7 + 1))
        ).encode()
        for n in range(40)
    }
    sha = git_repo.commit("forty files", {k: v.decode() for k, v in files.items()})
    return sha, files


def test_a_gzip_archive_cut_at_any_byte_is_damaged_never_a_partial_tree(
    git_repo: GitRepo, real_archive: tuple[str, dict[str, bytes]]
) -> None:
    sha, files = real_archive
    whole = git_repo.archive(sha, f"octo-org-gitops-{sha[:7]}/")
    assert read_tarball(whole, TarballLimits()) == files
    for cut in range(len(whole)):
        with pytest.raises(ArchiveDamaged):
            read_tarball(whole[:cut], TarballLimits())


def test_an_uncompressed_archive_cut_anywhere_before_its_end_blocks_is_damaged(
    git_repo: GitRepo, real_archive: tuple[str, dict[str, bytes]]
) -> None:
    sha, files = real_archive
    whole = git_repo.archive(sha, f"octo-org-gitops-{sha[:7]}/", fmt="tar")
    with tarfile.open(fileobj=io.BytesIO(whole), mode="r|") as archive:
        for _member in archive:
            pass
        end = archive.offset  # where the two zero blocks start
    # Every block boundary, the bytes either side of it, and one in the middle of a block.
    cuts = sorted({c for b in range(0, end + 1024, 512) for c in (b - 1, b, b + 1, b + 256)})
    for cut in (c for c in cuts if 0 <= c < end + 1024):
        with pytest.raises(ArchiveDamaged):
            read_tarball(whole[:cut], TarballLimits())
    # Past the end blocks only git's zero padding is cut: the archive is whole.
    for cut in (end + 1024, end + 1025, len(whole) - 1, len(whole)):
        assert read_tarball(whole[:cut], TarballLimits()) == files


def test_a_damaged_gzip_stream_is_refused_by_its_checksum(
    git_repo: GitRepo, real_archive: tuple[str, dict[str, bytes]]
) -> None:
    sha, files = real_archive
    whole = git_repo.archive(sha, f"octo-org-gitops-{sha[:7]}/")
    # The last 8 bytes are the gzip trailer: CRC-32, then the length.
    for offset in (len(whole) - 8, len(whole) - 4, len(whole) - 1):
        damaged = bytearray(whole)
        damaged[offset] ^= 0xFF
        with pytest.raises(ArchiveDamaged, match="damaged"):
            read_tarball(bytes(damaged), TarballLimits())
    with pytest.raises(ArchiveDamaged, match="after the end of its gzip stream"):
        read_tarball(whole + b"<html>proxy error</html>", TarballLimits())
    # Two gzip members (RFC 1952 allows it) are one stream.
    tar = gzip.decompress(whole)
    split = len(tar) // 2
    assert read_tarball(
        gzip.compress(tar[:split]) + gzip.compress(tar[split:]), TarballLimits()
    ) == (files)


def test_a_tar_stopped_at_a_damaged_header_is_an_error_not_the_files_before_it(
    git_repo: GitRepo, real_archive: tuple[str, dict[str, bytes]]
) -> None:
    sha, _files = real_archive
    tar = bytearray(git_repo.archive(sha, f"octo-org-gitops-{sha[:7]}/", fmt="tar"))
    with tarfile.open(fileobj=io.BytesIO(bytes(tar)), mode="r|") as archive:
        offsets = [member.offset for member in archive]
    # The header of a member half way: its checksum no longer matches (a reader that
    # took that for the end of the archive, as Python's tarfile does, would hand out
    # the files before it as the whole commit).
    tar[offsets[len(offsets) // 2] + 148 : offsets[len(offsets) // 2] + 156] = b"0000000\0"
    with pytest.raises(ArchiveDamaged, match="could not read"):
        read_tarball(gzip.compress(bytes(tar)), TarballLimits())


# -- the same files as Python's tarfile reads -------------------------------------------------


def tarfile_reading(data: bytes, limits: TarballLimits) -> TarballContents:
    """What `read_tarball_contents` must give, read with Python's tarfile."""
    raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    files: dict[str, bytes] = {}
    root: str | None = None
    anomalies = too_large = 0
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as archive:
        for member in archive:
            top = member.name.split("/", 1)[0]
            if root is None:
                root = top
            elif top != root:
                anomalies += 1
                continue
            if member.isdir() or member.issym():
                continue
            path = safe_relative_path(member.name) if member.isreg() else None
            if path is None:
                anomalies += 1
            elif member.size > limits.max_file:
                too_large += 1
            else:
                handle = archive.extractfile(member)
                assert handle is not None
                files[path] = handle.read()
    return TarballContents(files, anomalies=anomalies, too_large=too_large)


DEEP = f"{ROOT}/" + "/".join(["d" * 60] * 5) + "/very-deep.yaml"  # over ustar's 255 too


def varied_members(form: int) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    """Members of every kind tarfile writes, in format `form` (ustar has no room for a
    name over 255 bytes or a link target over 100)."""
    entries: list[tuple[str, bytes, bytes | None, str]] = [
        (f"{ROOT}/", tarfile.DIRTYPE, None, ""),
        (f"{ROOT}/apps/app.yaml", tarfile.REGTYPE, b"kind: Deployment\n", ""),
        (f"{ROOT}/empty.yaml", tarfile.REGTYPE, b"", ""),
        (f"{ROOT}/block.bin", tarfile.REGTYPE, bytes(range(256)) * 2, ""),
        (f"{ROOT}/block-and-one.bin", tarfile.REGTYPE, b"b" * 513, ""),
        (f"{ROOT}/big.bin", tarfile.REGTYPE, b"y" * 5000, ""),
        (f"{ROOT}/contiguous.yaml", tarfile.CONTTYPE, b"c: 1\n", ""),
        (f"{ROOT}/ünïcødé/ファイル.yaml", tarfile.REGTYPE, "ключ: значение\n".encode(), ""),
        (f"{ROOT}/" + "p" * 120 + "/long-name.yaml", tarfile.REGTYPE, b"l: 1\n", ""),
        (f"{ROOT}/.github/workflows/ci.yaml", tarfile.REGTYPE, b"on: push\n", ""),
        (f"{ROOT}/./dots//x.yaml", tarfile.REGTYPE, b"x: 1\n", ""),
        (f"{ROOT}/apps", tarfile.DIRTYPE, None, ""),
        (f"{ROOT}/link.yaml", tarfile.SYMTYPE, None, "apps/app.yaml"),
        (f"{ROOT}/hard.yaml", tarfile.LNKTYPE, None, f"{ROOT}/apps/app.yaml"),
        (f"{ROOT}/fifo", tarfile.FIFOTYPE, None, ""),
        (f"{ROOT}/tty", tarfile.CHRTYPE, None, ""),
        (f"{ROOT}/disk", tarfile.BLKTYPE, None, ""),
        (f"{ROOT}/../escape.yaml", tarfile.REGTYPE, b"e", ""),
        (f"{ROOT}/apps/../../up.yaml", tarfile.REGTYPE, b"u", ""),
        ("/etc/absolute.yaml", tarfile.REGTYPE, b"a", ""),
        ("elsewhere/x.yaml", tarfile.REGTYPE, b"x", ""),
        (f"{ROOT}/last.yaml", tarfile.REGTYPE, b"the end\n", ""),
    ]
    if form != tarfile.USTAR_FORMAT:
        entries += [
            (DEEP, tarfile.REGTYPE, b"deep: 1\n", ""),
            (f"{ROOT}/long-link.yaml", tarfile.SYMTYPE, None, "t" * 150),
            (f"{ROOT}/long-hard.yaml", tarfile.LNKTYPE, None, DEEP),
            (DEEP.replace("very-deep", "deep-dir"), tarfile.DIRTYPE, None, ""),
            (f"{ROOT}/after-the-long-ones.yaml", tarfile.REGTYPE, b"a: 2\n", ""),
        ]
    members = []
    for name, kind, data, link in entries:
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.mtime = kind, link, 1_700_000_000
        info.size = len(data) if data is not None else 0
        members.append((info, data))
    return members


@pytest.mark.parametrize("compress", [True, False], ids=["tar.gz", "tar"])
@pytest.mark.parametrize(
    "form",
    [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT],
    ids=["ustar", "gnu", "pax"],
)
def test_reads_what_tarfile_writes_as_tarfile_reads_it(form: int, compress: bool) -> None:
    raw = io.BytesIO()
    # A pax global header, as git archive writes one (the commit id); tarfile writes it in
    # the pax format only.
    pax = {"comment": "0123456789abcdef0123456789abcdef01234567"}
    with tarfile.open(fileobj=raw, mode="w", format=form, pax_headers=pax) as tar:
        for info, data in varied_members(form):
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    data = gzip.compress(raw.getvalue()) if compress else raw.getvalue()
    limits = TarballLimits(max_file=4096)
    expected = tarfile_reading(data, limits)
    assert read_tarball_contents(data, limits) == expected
    # The reading is no empty agreement: every kind of member came through as it should.
    assert expected.files["ünïcødé/ファイル.yaml"] == "ключ: значение\n".encode()
    assert expected.files["dots/x.yaml"] == b"x: 1\n"
    # Hard links, devices, a FIFO, and names outside the root; one file over max_file.
    hard_links = 1 if form == tarfile.USTAR_FORMAT else 2
    assert (expected.anomalies, expected.too_large) == (7 + hard_links, 1)
    if form != tarfile.USTAR_FORMAT:
        assert expected.files[DEEP.split("/", 1)[1]] == b"deep: 1\n"


@pytest.mark.parametrize("fmt", ["tar.gz", "tar"])
def test_reads_what_git_archive_writes_as_tarfile_reads_it(git_repo: GitRepo, fmt: str) -> None:
    long_dir = "/".join(["segment-of-a-long-path"] * 8)  # over 155 bytes: a pax header
    git_repo.write(
        {
            "apps/app.yaml": "kind: Deployment\n",
            "empty.yaml": "",
            "block.bin": bytes(range(256)) * 2,
            "ünïcødé/ファイル.yaml": "ключ: значение\n",
            "p" * 120 + "/ustar-prefix.yaml": "p: 1\n",
            f"{long_dir}/pax-path.yaml": "x: 1\n",
            ".github/workflows/ci.yaml": "on: push\n",
            "big.bin": b"y" * 5000,
        }
    )
    git_repo.symlink("link.yaml", "apps/app.yaml")
    git_repo.symlink("long-link.yaml", "../" * 40 + "apps/app.yaml")
    sha = git_repo.commit("varied")
    data = git_repo.archive(sha, f"octo-org-gitops-{sha[:7]}/", fmt=fmt)
    limits = TarballLimits(max_file=4096)
    expected = tarfile_reading(data, limits)
    assert read_tarball_contents(data, limits) == expected
    assert len(expected.files) == 7 and expected.too_large == 1 and expected.anomalies == 0
    assert expected.files[f"{long_dir}/pax-path.yaml"] == b"x: 1\n"


# -- headers no tar writer writes ------------------------------------------------------------


def header(name: str, kind: bytes, size: bytes, *, signed: bool = False) -> bytes:
    """A ustar header with `size` as its size field, and its checksum (the sum of signed
    bytes, as some old tars wrote it, when `signed`)."""
    block = bytearray(512)
    raw = name.encode()
    block[: len(raw)] = raw
    block[100:108] = b"0000644\0"
    block[124:136] = size
    block[148:156] = b" " * 8
    block[156:157] = kind
    block[257:265] = b"ustar\x0000"
    total = sum(b - 256 if signed and b >= 128 else b for b in block)
    block[148:156] = b"%06o\0 " % total
    return bytes(block)


def member(name: str, data: bytes, kind: bytes = b"0", size: bytes | None = None) -> bytes:
    field = b"%011o\0" % len(data) if size is None else size
    return header(name, kind, field) + data + bytes(-len(data) % 512)


END = bytes(10240)


def test_a_checksum_of_signed_bytes_is_accepted_as_tarfile_accepts_it() -> None:
    name = f"{ROOT}/été.yaml"
    data = header(name, b"0", b"%011o\0" % 4, signed=True) + b"e: 1".ljust(512, b"\0") + END
    assert read_tarball_contents(data, TarballLimits()) == tarfile_reading(data, TarballLimits())
    assert read_tarball(data, TarballLimits()) == {"été.yaml": b"e: 1"}


def pax(records: bytes) -> bytes:
    return member(f"{ROOT}/PaxHeader/x.yaml", records, kind=b"x")


def record(key: str, value: str) -> bytes:
    """A well-formed pax record: its length counts its own digits too."""
    rest = f" {key}={value}\n"
    length = len(rest) + 1
    while len(str(length)) + len(rest) != length:
        length += 1
    return f"{length}{rest}".encode()


EXTENDED = {
    "the last of a key in one pax header": (
        pax(record("path", f"{ROOT}/first.yaml") + record("path", f"{ROOT}/last.yaml"))
        + member(f"{ROOT}/ustar.yaml", b"a"),
        "last.yaml",
    ),
    "the first of two pax headers": (
        pax(record("path", f"{ROOT}/first.yaml"))
        + pax(record("path", f"{ROOT}/second.yaml"))
        + member(f"{ROOT}/ustar.yaml", b"a"),
        "first.yaml",
    ),
    "a GNU long name before a pax header": (
        member("././@LongLink", f"{ROOT}/long.yaml".encode() + b"\0", kind=b"L")
        + pax(record("path", f"{ROOT}/pax.yaml"))
        + member(f"{ROOT}/ustar.yaml", b"a"),
        "long.yaml",
    ),
    "a pax size over the header's": (
        pax(record("size", "1")) + member(f"{ROOT}/sized.yaml", b"a", size=b"%011o\0" % 0),
        "sized.yaml",
    ),
}


@pytest.mark.parametrize(("entries", "path"), EXTENDED.values(), ids=EXTENDED.keys())
def test_extended_headers_say_what_they_say_to_tarfile(entries: bytes, path: str) -> None:
    tar = entries + member(f"{ROOT}/after.yaml", b"after") + END
    expected = tarfile_reading(tar, TarballLimits())
    assert read_tarball_contents(tar, TarballLimits()) == expected
    assert expected.files == {path: b"a", "after.yaml": b"after"}


# A member after each broken extension header: the header is refused for what it is, not
# for having no member after it (an error of its own, the last case).
AFTER = member(f"{ROOT}/after.yaml", b"a")
HOSTILE = {
    "a pax record longer than its header": pax(b"999 path=x\n") + AFTER,
    "a pax record of an absurd length": pax(b"9" * 40 + b" path=x\n") + AFTER,
    "a pax record with no end": pax(b"12 path=abc.") + AFTER,
    "a skipped pax record with no end": pax(b"13 mtime=123X") + AFTER,
    "a pax record with no key": pax(b"7 =abcd\n") + AFTER,
    "a pax record with no =": pax(b"7 abcd\n") + AFTER,
    "a pax size that is no number": pax(b"12 size=-12\n") + AFTER,
    "a pax size of 5,000 digits": pax(record("size", "0" * 4999 + "1")) + AFTER,
    "a pax header of a gigabyte, cut short": header(f"{ROOT}/x", b"x", b"%011o\0" % 2**30),
    "a long link of a gigabyte, cut short": header(f"{ROOT}/K", b"K", b"%011o\0" % 2**30),
    "a negative size (base-256)": header(f"{ROOT}/n.yaml", b"0", b"\xff" * 12),
    "a negative size": header(f"{ROOT}/n.yaml", b"0", b"-0000000001\0"),
    "a size in another base": header(f"{ROOT}/n.yaml", b"0", b"0o000000001\0"),
    "an absurd size (base-256)": header(f"{ROOT}/n.yaml", b"0", b"\x80" + b"\xff" * 11),
    "an absurd pax size": pax(record("size", "9" * 30)) + member(f"{ROOT}/a", b""),
    "an extension header and no member": pax(record("path", f"{ROOT}/a")),
}


@pytest.mark.parametrize("compress", [True, False], ids=["tar.gz", "tar"])
@pytest.mark.parametrize("entry", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_header_no_tar_writer_writes_is_refused(entry: bytes, compress: bool) -> None:
    tar = member(f"{ROOT}/first.yaml", b"a: 1\n") + entry + END
    data = gzip.compress(tar) if compress else tar
    limits = TarballLimits(max_unpacked=4 * 1024 * 1024)
    with pytest.raises(ArchiveDamaged):
        read_tarball(data, limits)


def test_a_symlink_whose_target_is_megabytes_long_is_read_as_tarfile_reads_it() -> None:
    # git archive writes a symlink's target in a pax `linkpath` record, and the target is a
    # blob anyone can push, of any length: the archive is as whole as any other.
    target = "x" * (3 * 1024 * 1024)
    tar = (
        member(f"{ROOT}/first.yaml", b"a: 1\n")
        + pax(record("linkpath", target))
        + member(f"{ROOT}/big-link", b"", kind=b"2")
        + member(f"{ROOT}/after.yaml", b"after")
        + END
    )
    for data in (tar, gzip.compress(tar)):
        contents = read_tarball_contents(data, TarballLimits())
        assert contents == tarfile_reading(tar, TarballLimits())
        assert contents.files == {"first.yaml": b"a: 1\n", "after.yaml": b"after"}


def test_pax_records_beyond_any_writers_count_are_too_many_for_the_archive() -> None:
    # Tiny records cost about a microsecond each: spread over many headers, a few hundred
    # kilobytes of gzip would keep a worker busy for minutes. The budget is the
    # archive's, 16 per entry it may hold.
    limits = TarballLimits(max_members=10)
    few = pax(record("mtime", "1") * 8) + member(f"{ROOT}/a.yaml", b"a")
    assert read_tarball(few * 10 + END, limits).keys() == {"a.yaml"}
    many = pax(record("mtime", "1") * 100) + pax(record("mtime", "1") * 61) + AFTER
    with pytest.raises(SnapshotTooLarge, match="pax header records"):
        read_tarball(many + END, limits)
    # One header may hold many, as GNU tar's old sparse format writes them (two a data
    # segment): the sparse entry is left out, the rest read.
    sparse = "".join(f"{k}=1\n" for k in ("GNU.sparse.offset", "GNU.sparse.numbytes") * 6000)
    records = b"".join(record(*r.split("=", 1)) for r in sparse.rstrip("\n").split("\n"))
    tar = pax(records) + member(f"{ROOT}/holes.yaml", b"") + AFTER + END
    contents = read_tarball_contents(tar, TarballLimits())
    assert (contents.files, contents.anomalies) == ({"after.yaml": b"a"}, 1)


def test_a_path_of_megabytes_is_too_large_not_damaged() -> None:
    # Nothing is wrong with the download: another one, or the Git database, would give the
    # same path, so the review says the repository is beyond what it reads.
    name = f"{ROOT}/" + "d/" * (600 * 1024) + "x.yaml"
    for entry in (pax(record("path", name)), member(f"{ROOT}/././@LongLink", name.encode(), b"L")):
        tar = entry + member(f"{ROOT}/short.yaml", b"a") + END
        with pytest.raises(SnapshotTooLarge, match="path of"):
            read_tarball(tar, TarballLimits())
