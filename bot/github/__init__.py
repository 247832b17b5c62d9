"""Talking to GitHub as a GitHub App: authentication, a resilient client, and reading repos.

Nothing here knows about Flux or findings; `bot.review` puts the pieces together.
"""

from bot.github.auth import AppAuth, InstallationGone
from bot.github.client import (
    GitHubClient,
    GitHubUnavailable,
    RetryPolicy,
    UnexpectedResponse,
    WriteThrottle,
    no_blind_retry,
)
from bot.github.gitdata import CommitNotFound, GitApiLimits, SparseTree, read_via_git_api
from bot.github.repo import (
    FetchedTree,
    MergeBases,
    PullRequestFile,
    PullRequestFiles,
    RepoRef,
    TreeStore,
    fetch_config,
    list_pull_request_files,
    open_pulls_for_commit,
)
from bot.github.tarball import SnapshotError, SnapshotTooLarge, TarballLimits, read_tarball

__all__ = [
    "AppAuth",
    "CommitNotFound",
    "FetchedTree",
    "GitApiLimits",
    "GitHubClient",
    "GitHubUnavailable",
    "InstallationGone",
    "MergeBases",
    "PullRequestFile",
    "PullRequestFiles",
    "RepoRef",
    "RetryPolicy",
    "SnapshotError",
    "SnapshotTooLarge",
    "SparseTree",
    "TarballLimits",
    "TreeStore",
    "UnexpectedResponse",
    "WriteThrottle",
    "fetch_config",
    "list_pull_request_files",
    "no_blind_retry",
    "open_pulls_for_commit",
    "read_tarball",
    "read_via_git_api",
]
