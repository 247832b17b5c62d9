"""A commit read through GitHub's Git database API: the fallback when the tarball fails.

The tarball endpoint is one request per commit, but it can be unavailable: a 404 for a
commit that exists (seen while GitHub's archive service lags behind a push), 5xx that
outlast the retries, or an archive that is truncated or over a limit. The Git database
still answers then: one recursive tree listing (and, when GitHub truncates it, one call
per directory), then one blob per file the analysis reads. Every other file is listed
with its blob SHA but not downloaded. The number of blobs and their bytes are known from
the tree before any is fetched, so the limits are enforced up front.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import gidgethub

from bot.analysis import is_read
from bot.github.client import GitHubClient, UnexpectedResponse
from bot.github.tarball import SnapshotError, SnapshotTooLarge

MIB = 1024 * 1024
TREE_URL = "/repos/{owner}/{repo}/git/trees/{tree_sha}{?recursive}"
BLOB_URL = "/repos/{owner}/{repo}/git/blobs/{file_sha}"
# Git modes of entries that are not regular files in the working tree.
SYMLINK_MODE = "120000"
SUBMODULE_MODE = "160000"


def is_read_by_analysis(path: str) -> bool:
    """Whether the file is downloaded: exactly those the analysis says it may read."""
    return is_read(path)


class CommitNotFound(SnapshotError):
    """GitHub has no such commit (any more): force-pushed away, or its branch deleted."""


@dataclass(frozen=True)
class GitApiLimits:
    max_blobs: int = 1000
    max_bytes: int = 64 * MIB
    max_file: int = 10 * MIB
    # Sub-tree requests when GitHub truncates the recursive listing.
    max_trees: int = 2000
    max_entries: int = 200_000
    # GitHub's secondary limits allow 100 concurrent requests; stay far below.
    concurrency: int = 8


class SparseTree:
    """A tree whose every regular file is listed, but only the files the analysis reads
    have content. `blob_id` is git's blob SHA for every file, so changes to files that were
    not downloaded (a chart's `_helpers.tpl`) are still seen."""

    def __init__(self, files: Mapping[str, bytes], ids: Mapping[str, str]) -> None:
        self._files = dict(files)
        self._ids = dict(ids)

    def paths(self) -> Iterator[str]:
        return iter(self._ids)

    def read(self, path: str) -> bytes | None:
        return self._files.get(path)

    def blob_id(self, path: str) -> str | None:
        return self._ids.get(path)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def nbytes(self) -> int:
        return sum(len(v) for v in self._files.values()) + sum(len(k) + 40 for k in self._ids)


@dataclass(frozen=True)
class _Entry:
    path: str
    mode: str
    kind: str
    sha: str
    size: int


def _safe(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def _entries(data: Any, prefix: str, what: str) -> tuple[list[_Entry], bool]:
    if not isinstance(data, dict) or not isinstance(data.get("tree"), list):
        raise UnexpectedResponse(f"GitHub's listing of {what} has no `tree` array")
    out = []
    for item in data["tree"]:
        if not isinstance(item, dict):
            raise UnexpectedResponse(
                f"GitHub's listing of {what} has an entry that is not an object"
            )
        path, mode, kind, sha = (item.get(k) for k in ("path", "mode", "type", "sha"))
        if not all(isinstance(v, str) for v in (path, mode, kind, sha)):
            raise UnexpectedResponse(f"GitHub's listing of {what} has an incomplete entry")
        size = item.get("size")
        out.append(
            _Entry(
                f"{prefix}{path}",
                str(mode),
                str(kind),
                str(sha),
                size if isinstance(size, int) and size >= 0 else 0,
            )
        )
    return out, bool(data.get("truncated"))


async def _list_tree(
    gh: GitHubClient, owner_repo: dict[str, Any], sha: str, limits: GitApiLimits
) -> list[_Entry]:
    try:
        data = await gh.getitem(TREE_URL, {**owner_repo, "tree_sha": sha, "recursive": "1"})
    except gidgethub.BadRequest as exc:
        if int(exc.status_code) in (404, 409, 422):
            raise CommitNotFound(f"GitHub has no commit {sha[:12]}") from None
        raise
    entries, truncated = _entries(data, "", f"commit {sha[:12]}")
    if not truncated:
        return entries
    # GitHub cuts a recursive listing at 100,000 entries or 7 MB; its documented way out
    # is to list the sub-trees one at a time, without `recursive`.
    entries = []
    pending = [("", sha)]
    requests = 0
    while pending:
        prefix, tree_sha = pending.pop()
        requests += 1
        if requests > limits.max_trees:
            raise SnapshotTooLarge(
                f"the repository has more than {limits.max_trees} directories to list one by "
                "one through GitHub's Git database API"
            )
        data = await gh.getitem(TREE_URL, {**owner_repo, "tree_sha": tree_sha})
        level, _ = _entries(data, prefix, f"directory `{prefix or '/'}`")
        for entry in level:
            if entry.kind == "tree":
                pending.append((entry.path + "/", entry.sha))
            else:
                entries.append(entry)
        if len(entries) > limits.max_entries:
            break
    return entries


async def read_via_git_api(
    gh: GitHubClient,
    owner_repo: dict[str, Any],
    sha: str,
    limits: GitApiLimits,
    blob_cache: MutableMapping[str, bytes] | None = None,
) -> SparseTree:
    """The commit's regular files, with content for those the analysis reads.

    `blob_cache` (blob SHA -> content, for this repository) spares the second commit of a
    review the blobs the first one had: most files are the same at base and head."""
    entries = await _list_tree(gh, owner_repo, sha, limits)
    if len(entries) > limits.max_entries:
        raise SnapshotTooLarge(
            f"the repository has more than {limits.max_entries} entries (MAX_TARBALL_MEMBERS)"
        )
    ids: dict[str, str] = {}
    wanted: dict[str, int] = {}  # blob sha -> size
    for entry in entries:
        if entry.kind != "blob" or entry.mode in (SYMLINK_MODE, SUBMODULE_MODE):
            continue
        if not _safe(entry.path) or entry.size > limits.max_file:
            continue
        ids[entry.path] = entry.sha
        if is_read_by_analysis(entry.path):
            wanted[entry.sha] = entry.size
    total = sum(wanted.values())
    if len(wanted) > limits.max_blobs or total > limits.max_bytes:
        raise SnapshotTooLarge(
            f"reading it through GitHub's Git database API would take {len(wanted)} files "
            f"({total} bytes), over the limit of {limits.max_blobs} files "
            f"(GIT_API_MAX_BLOBS) or {limits.max_bytes} bytes (GIT_API_MAX_BYTES)"
        )

    blobs: dict[str, bytes] = {}
    if blob_cache is not None:
        for blob_sha in wanted:
            known = blob_cache.get(blob_sha)
            if known is not None:
                blobs[blob_sha] = known
    gate = asyncio.Semaphore(limits.concurrency)

    async def fetch(blob_sha: str, size: int) -> None:
        async with gate:
            data = await gh.getitem(BLOB_URL, {**owner_repo, "file_sha": blob_sha})
        blobs[blob_sha] = _decode_blob(data, blob_sha, size)
        if blob_cache is not None:
            blob_cache[blob_sha] = blobs[blob_sha]

    # Identical files (copies of a manifest across clusters) share one blob: fetched once.
    try:
        async with asyncio.TaskGroup() as group:
            for blob_sha, size in wanted.items():
                if blob_sha not in blobs:
                    group.create_task(fetch(blob_sha, size))
    except ExceptionGroup as failed:
        # The first failure says what went wrong; the others were cancelled with it.
        raise failed.exceptions[0] from None
    files = {path: blobs[blob] for path, blob in ids.items() if blob in blobs}
    return SparseTree(files, ids)


def _decode_blob(data: Any, sha: str, size: int) -> bytes:
    if not isinstance(data, dict) or not isinstance(data.get("content"), str):
        raise UnexpectedResponse(f"GitHub's blob {sha[:12]} has no content")
    content = data["content"]
    if data.get("encoding") == "base64":
        try:
            raw = base64.b64decode(content)
        except (binascii.Error, ValueError):
            raise UnexpectedResponse(f"GitHub's blob {sha[:12]} is not valid base64") from None
    else:
        raw = content.encode("utf-8")
    if len(raw) != size:
        raise UnexpectedResponse(
            f"GitHub's blob {sha[:12]} has {len(raw)} bytes, the tree said {size}"
        )
    return raw
