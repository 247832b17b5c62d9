"""What the review reads from GitHub: the PR's files, the repository at a commit, the config."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gidgethub
from cachetools import LRUCache

from bot.analysis import (
    CONFIG_PATH,
    ChangedFile,
    ChangeStatus,
    Config,
    ConfigError,
    DictTree,
    parse_config,
)
from bot.github.client import GitHubClient
from bot.github.tarball import SnapshotError, TarballLimits, read_tarball

log = logging.getLogger(__name__)

# GitHub's documented ceiling for the PR files endpoint; a list this long may be cut.
MAX_PR_FILES = 3000

_STATUSES = {
    "added": ChangeStatus.ADDED,
    "copied": ChangeStatus.ADDED,
    "removed": ChangeStatus.REMOVED,
    "modified": ChangeStatus.MODIFIED,
    "changed": ChangeStatus.MODIFIED,  # only the mode changed
    "renamed": ChangeStatus.RENAMED,
}


@dataclass(frozen=True)
class RepoRef:
    owner: str
    name: str

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @classmethod
    def from_payload(cls, repository: Mapping[str, Any]) -> RepoRef:
        return cls(owner=str(repository["owner"]["login"]), name=str(repository["name"]))

    def vars(self, **more: object) -> dict[str, Any]:
        return {"owner": self.owner, "repo": self.name, **more}


@dataclass(frozen=True)
class PullRequestFile:
    path: str
    status: ChangeStatus
    previous_path: str | None = None
    # The unified diff of the file; GitHub leaves it out for binary files and, without
    # saying so in its docs, for very large diffs.
    patch: str | None = None


@dataclass(frozen=True)
class PullRequestFiles:
    files: tuple[PullRequestFile, ...]
    # False when GitHub's 3000-file ceiling was reached: the list may be cut short, so the
    # analysis works out the changes from the two trees instead.
    complete: bool = True

    def changed(self) -> list[ChangedFile] | None:
        if not self.complete:
            return None
        return [ChangedFile(f.path, f.status, f.previous_path) for f in self.files]

    def patches(self) -> dict[str, str | None]:
        return {f.path: f.patch for f in self.files}


async def list_pull_request_files(gh: GitHubClient, repo: RepoRef, number: int) -> PullRequestFiles:
    files: list[PullRequestFile] = []
    async for item in gh.getiter(
        "/repos/{owner}/{repo}/pulls/{pull_number}/files{?per_page}",
        repo.vars(pull_number=number, per_page=100),
    ):
        status = _STATUSES.get(str(item.get("status")))
        if status is None:  # "unchanged": listed, but nothing to review
            continue
        previous = item.get("previous_filename") if status is ChangeStatus.RENAMED else None
        patch = item.get("patch")
        files.append(
            PullRequestFile(
                path=str(item["filename"]),
                status=status,
                previous_path=str(previous) if previous else None,
                patch=patch if isinstance(patch, str) else None,
            )
        )
    return PullRequestFiles(tuple(files), complete=len(files) < MAX_PR_FILES)


async def fetch_config(gh: GitHubClient, repo: RepoRef, ref: str) -> Config:
    """The repository config at `ref`: the default Config when there is none.

    Raises ConfigError when it exists but is invalid: a broken config is reported, never
    silently replaced by the defaults.
    """
    try:
        item = await gh.getitem(
            "/repos/{owner}/{repo}/contents/{+path}{?ref}",
            repo.vars(path=CONFIG_PATH, ref=ref),
        )
    except gidgethub.BadRequest as exc:
        if int(exc.status_code) == 404:
            return Config()
        raise
    if not isinstance(item, dict) or item.get("type") != "file":
        raise ConfigError(f"{CONFIG_PATH}: is not a file")
    content = item.get("content")
    if item.get("encoding") != "base64" or not isinstance(content, str):
        # The contents API leaves out the content of files over 1 MB.
        raise ConfigError(f"{CONFIG_PATH}: too large to read (over 1 MB)")
    try:
        raw = base64.b64decode(content)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{CONFIG_PATH}: GitHub returned undecodable content") from None
    return parse_config(raw, source=CONFIG_PATH)


async def open_pulls_for_commit(gh: GitHubClient, repo: RepoRef, sha: str) -> list[int]:
    """Open PRs whose head is `sha`.

    Check suite and check run payloads list no PRs when the head branch is in a fork, so
    they are looked up from the commit.
    """
    numbers: list[int] = []
    async for pull in gh.getiter(
        "/repos/{owner}/{repo}/commits/{commit_sha}/pulls{?per_page}",
        repo.vars(commit_sha=sha, per_page=100),
    ):
        if pull.get("state") == "open" and pull.get("head", {}).get("sha") == sha:
            numbers.append(int(pull["number"]))
    return numbers


@dataclass(frozen=True)
class _Snapshot:
    tree: DictTree
    nbytes: int


class TreeStore:
    """Repository trees by commit, from one tarball each, cached within a memory bound."""

    def __init__(
        self, limits: TarballLimits, cache_bytes: int, download_timeout: float = 120.0
    ) -> None:
        self.limits = limits
        self._timeout = download_timeout
        self._cache: LRUCache[tuple[str, str], _Snapshot] = LRUCache(
            maxsize=max(cache_bytes, 1), getsizeof=lambda snap: snap.nbytes
        )
        self._cache_bytes = cache_bytes

    async def tree(self, gh: GitHubClient, repo: RepoRef, sha: str) -> DictTree:
        # Keyed by repository too: a commit SHA alone must not let one installation read a
        # tree cached for another.
        key = (repo.full_name.lower(), sha)
        cached = self._cache.get(key)
        if cached is not None:
            return cached.tree
        data = await gh.download(
            "/repos/{owner}/{repo}/tarball/{ref}",
            repo.vars(ref=sha),
            max_bytes=self.limits.max_compressed,
            timeout=self._timeout,
        )
        files = await asyncio.to_thread(read_tarball, data, self.limits)
        del data
        if not files:
            raise SnapshotError(f"the tarball of {sha[:12]} has no files")
        snapshot = _Snapshot(DictTree(files), sum(len(v) + len(k) for k, v in files.items()))
        if snapshot.nbytes <= self._cache_bytes:
            self._cache[key] = snapshot
        return snapshot.tree

    def cached(self, repo: RepoRef, sha: str) -> bool:
        return (repo.full_name.lower(), sha) in self._cache
