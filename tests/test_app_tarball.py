"""Reading GitHub's tarball in memory, defensively."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Sequence

import pytest

from bot.github.tarball import (
    SnapshotError,
    SnapshotTooLarge,
    TarballLimits,
    read_tarball,
    safe_relative_path,
)

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
