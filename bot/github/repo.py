"""What the review reads from GitHub: the PR's files, the repository at a commit, the config."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gidgethub
from cachetools import LRUCache, TTLCache

from bot.analysis import (
    CONFIG_PATH,
    ChangedFile,
    ChangeStatus,
    Config,
    ConfigError,
    DictTree,
    Tree,
    parse_config,
)
from bot.github.client import GitHubClient, GitHubUnavailable, UnexpectedResponse
from bot.github.gitdata import CommitNotFound, GitApiLimits, read_via_git_api
from bot.github.tarball import (
    ArchiveDamaged,
    SnapshotError,
    SnapshotTooLarge,
    TarballContents,
    TarballLimits,
    read_tarball_contents,
)
from bot.github.treecache import TreeCache, blob_ids

log = logging.getLogger(__name__)

# After the tarball endpoint failed with 5xx for a repository, how long to read that
# repository through the Git database API without trying the tarball first.
TARBALL_DOWN_TTL = 300.0
# Downloads of one commit's tarball when what arrives is cut short or corrupt (a proxy or a
# connection that ends early without a length to check against): then the Git database.
TARBALL_DOWNLOADS = 2
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
    listed = 0
    async for item in gh.getiter(
        "/repos/{owner}/{repo}/pulls/{pull_number}/files{?per_page}",
        repo.vars(pull_number=number, per_page=100),
    ):
        listed += 1
        if not isinstance(item, dict) or not isinstance(item.get("filename"), str):
            raise UnexpectedResponse(f"GitHub's list of the files of #{number} is malformed")
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
    # Counted as listed, not as kept: "unchanged" entries count towards GitHub's ceiling too.
    return PullRequestFiles(tuple(files), complete=listed < MAX_PR_FILES)


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


# A full commit SHA as GitHub writes it.
SHA = re.compile(r"[0-9a-f]{40}")


async def get_pull(gh: GitHubClient, repo: RepoRef, number: int) -> Any:
    """GitHub's pull request object, or None when GitHub answers 404 (deleted, or the
    repository is no longer in the installation)."""
    try:
        return await gh.getitem(
            "/repos/{owner}/{repo}/pulls/{pull_number}", repo.vars(pull_number=number)
        )
    except gidgethub.BadRequest as exc:
        if int(exc.status_code) == 404 and not isinstance(exc, gidgethub.RateLimitExceeded):
            return None
        raise


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
        if not isinstance(pull, dict) or not isinstance(pull.get("number"), int):
            raise UnexpectedResponse(
                f"GitHub's list of the pull requests of {sha[:12]} is malformed"
            )
        head = pull.get("head")
        if pull.get("state") == "open" and isinstance(head, dict) and head.get("sha") == sha:
            numbers.append(int(pull["number"]))
    return numbers


class MergeBases:
    """Where each pull request's head branched off its base, by (base, head) commit.

    GitHub's "Files changed" and the PR files list compare the head with this commit, not
    with the base branch's tip; a problem the base branch gained or fixed after the branch
    point is none of the PR's doing. The merge base of two commits never changes, so it is cached.
    """

    def __init__(self, maxsize: int = 4096) -> None:
        self._cache: LRUCache[tuple[str, str, str], str] = LRUCache(maxsize=maxsize)

    async def find(self, gh: GitHubClient, repo: RepoRef, base: str, head: str) -> str:
        # Keyed by repository too, like the trees: one installation must not learn another's.
        key = (repo.full_name.lower(), base, head)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        # The comparison lists the commits between the two (250 without paging) and, on its
        # first page only, up to 300 changed files. No parameter leaves the files out, so
        # one commit per page is the smallest answer GitHub gives.
        data = await gh.getitem(
            "/repos/{owner}/{repo}/compare/{basehead}{?per_page}",
            repo.vars(basehead=f"{base}...{head}", per_page=1),
        )
        commit = data.get("merge_base_commit") if isinstance(data, dict) else None
        sha = commit.get("sha") if isinstance(commit, dict) else None
        if not isinstance(sha, str) or not SHA.fullmatch(sha):
            raise UnexpectedResponse(
                f"GitHub's comparison of {base[:12]}...{head[:12]} names no merge base commit"
            )
        self._cache[key] = sha
        return sha


@dataclass(frozen=True)
class FetchedTree:
    """A commit's files, and what the user should know about how they were read."""

    tree: Tree
    nbytes: int
    notes: tuple[str, ...] = ()
    # False when only the files the review reads were fetched (the Git database API).
    complete: bool = True


# Why a request to GitHub failed (a tarball could not be used, say), in words for the check run.
def github_problem(exc: BaseException) -> str:
    if isinstance(exc, gidgethub.HTTPException):
        return f"GitHub answered {int(exc.status_code)}"
    if isinstance(exc, GitHubUnavailable):
        return "GitHub could not be reached"
    if isinstance(exc, UnexpectedResponse):
        return f"GitHub sent an answer flux-review could not understand: {exc}"
    return str(exc)


def _falls_back(exc: BaseException) -> bool:
    """Tarball failures that the Git database API may get around."""
    if isinstance(exc, SnapshotError | GitHubUnavailable | gidgethub.GitHubBroken):
        return True
    # A 404 for a commit that exists happens while the archive service lags behind a push;
    # a rate limit or a permission error would hit the Git database API just the same.
    return (
        isinstance(exc, gidgethub.BadRequest)
        and not isinstance(exc, gidgethub.RateLimitExceeded)
        and int(exc.status_code) == 404
    )


def _read_and_hash(data: bytes, limits: TarballLimits) -> tuple[TarballContents, dict[str, str]]:
    # Off the event loop both: unpacking, and hashing every file (what shares contents
    # between cached commits, and keys the analysis's parse cache).
    contents = read_tarball_contents(data, limits)
    return contents, blob_ids(contents.files)


class TreeStore:
    """Repository trees by commit, from one tarball each (or, when the tarball cannot be
    used, from the Git database API), cached within a memory bound; and, in `merge_bases`,
    which commit each pull request's tree is compared with."""

    def __init__(
        self,
        limits: TarballLimits,
        cache_bytes: int,
        download_timeout: float = 120.0,
        git_api: GitApiLimits | None = None,
    ) -> None:
        self.limits = limits
        self.git_api = git_api or GitApiLimits(
            max_file=limits.max_file, max_entries=limits.max_members
        )
        self._timeout = download_timeout
        self._cache: TreeCache[FetchedTree] = TreeCache(cache_bytes)
        self._cache_bytes = cache_bytes
        # Blobs read through the Git database, per repository: at most four repositories
        # of a sixteenth of the tree cache each.
        self._blobs: LRUCache[str, LRUCache[str, bytes]] = LRUCache(maxsize=4)
        self._tarball_down: TTLCache[str, BaseException] = TTLCache(
            maxsize=1024, ttl=TARBALL_DOWN_TTL
        )
        self.merge_bases = MergeBases()

    async def tree(self, gh: GitHubClient, repo: RepoRef, sha: str) -> Tree:
        return (await self.fetch(gh, repo, sha)).tree

    async def fetch(self, gh: GitHubClient, repo: RepoRef, sha: str) -> FetchedTree:
        # Keyed by repository too: a commit SHA alone must not let one installation read a
        # tree cached for another.
        key = (repo.full_name.lower(), sha)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        repo_key = repo.full_name.lower()
        cause = self._tarball_down.get(repo_key)
        if cause is None:
            try:
                return await self._from_tarball(gh, repo, sha)
            except Exception as exc:
                if not _falls_back(exc):
                    raise
                if isinstance(exc, GitHubUnavailable | gidgethub.GitHubBroken):
                    # The archive service is down, not this commit's archive: the next
                    # commits (the base of this very PR) go straight to the Git database
                    # instead of spending the retries again.
                    self._tarball_down[repo_key] = exc
                cause = exc
        snapshot = await self._from_git_api(gh, repo, sha, cause)
        # Its contents are not pooled: the Git database's blobs are cached per repository.
        self._cache.put(key, snapshot, {}, {}, extra_bytes=snapshot.nbytes)
        return snapshot

    async def _from_tarball(self, gh: GitHubClient, repo: RepoRef, sha: str) -> FetchedTree:
        """The commit's files from its tarball, cached, each content shared with the
        cached commits that have it too. A damaged archive is downloaded again; never is
        part of one taken for the commit."""
        download = 1
        while True:
            try:
                return await self._download_tarball(gh, repo, sha)
            except ArchiveDamaged as exc:
                if download >= TARBALL_DOWNLOADS:
                    raise
                gh.log.warning(
                    "the tarball of %s is unusable (%s); downloading it again", sha[:12], exc
                )
                download += 1

    async def _download_tarball(self, gh: GitHubClient, repo: RepoRef, sha: str) -> FetchedTree:
        data = await gh.download(
            "/repos/{owner}/{repo}/tarball/{ref}",
            repo.vars(ref=sha),
            max_bytes=self.limits.max_compressed,
            timeout=self._timeout,
        )
        contents, ids = await asyncio.to_thread(_read_and_hash, data, self.limits)
        del data
        if not contents.files:
            raise SnapshotError(f"the tarball of {sha[:12]} has no files")
        notes: tuple[str, ...] = ()
        if contents.anomalies:
            notes = (
                f"The archive GitHub sent for `{sha[:12]}` had {contents.anomalies} "
                "entries that cannot come from a git repository (absolute or `..` paths, "
                "hard links, devices); they were ignored.",
            )
        files = self._cache.share(contents.files, ids)
        del contents
        fetched = FetchedTree(
            DictTree(files, ids), sum(len(v) + len(k) for k, v in files.items()), notes
        )
        self._cache.put((repo.full_name.lower(), sha), fetched, files, ids)
        return fetched

    async def _from_git_api(
        self, gh: GitHubClient, repo: RepoRef, sha: str, cause: BaseException
    ) -> FetchedTree:
        problem = github_problem(cause)
        gh.log.warning(
            "the tarball of %s cannot be used (%s); reading it through the Git database API",
            sha[:12],
            problem,
        )
        blobs = self._blobs.get(repo.full_name.lower())
        if blobs is None:
            blobs = self._blobs[repo.full_name.lower()] = LRUCache(
                maxsize=max(self._cache_bytes // 16, 1), getsizeof=len
            )
        try:
            tree = await read_via_git_api(gh, repo.vars(), sha, self.git_api, blobs)
        except CommitNotFound:
            raise CommitNotFound(
                f"GitHub no longer has commit `{sha[:12]}` (the tarball: {problem}; the "
                "Git database: 404); the branch was probably force-pushed or deleted"
            ) from None
        except SnapshotTooLarge as exc:
            raise SnapshotTooLarge(
                f"{exc}; this was needed because the tarball could not be used ({problem})"
            ) from None
        except gidgethub.RateLimitExceeded:
            raise
        except (gidgethub.HTTPException, GitHubUnavailable, UnexpectedResponse) as exc:
            # Say what happened to both ways of reading the commit, not only the last one.
            both = (
                f"its tarball could not be used ({problem}), and reading it through the Git "
                f"database API failed too ({github_problem(exc)})"
            )
            if isinstance(cause, SnapshotTooLarge):
                raise SnapshotTooLarge(both) from None
            raise SnapshotError(both) from None
        note = (
            f"The tarball of `{sha[:12]}` could not be used ({problem}), so flux-review read "
            "the files it reviews through GitHub's Git database API instead."
        )
        return FetchedTree(tree, tree.nbytes, (note,), complete=False)

    def cached(self, repo: RepoRef, sha: str) -> bool:
        return (repo.full_name.lower(), sha) in self._cache

    @property
    def cached_bytes(self) -> int:
        """Memory the cached commits hold (each distinct content once)."""
        return self._cache.nbytes
