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
    TarballLimits,
    read_tarball,
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
    # The header of a member half way: its checksum no longer matches, and Python's tar
    # reader takes that for the end of the archive.
    tar[offsets[len(offsets) // 2] + 148 : offsets[len(offsets) // 2] + 156] = b"0000000\0"
    with pytest.raises(ArchiveDamaged, match="could not read"):
        read_tarball(gzip.compress(bytes(tar)), TarballLimits())
