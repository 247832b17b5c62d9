"""A commit of a local git repository as an analysis tree, read with git itself.

`git ls-tree` and `git cat-file --batch` read the object database, never the working
tree, so the result is exactly what a PR at that commit gets.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from bot.analysis.tree import ChangedFile, ChangeStatus

# Files the analysis may read; everything else is fetched only when asked for.
_PREFETCH_SUFFIXES = (
    ".yaml",
    ".yml",
    ".YAML",
    ".YML",
    "Kustomization",
    ".helmignore",
    ".sourceignore",
)
_BLOB_MODES = {"100644", "100755"}


class GitError(Exception):
    """The repository or a revision cannot be read."""


def _git(repo: Path, *args: str, input: bytes | None = None) -> bytes:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), *args], input=input, capture_output=True, env=env, check=False
        )
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(err[-1] if err else f"git {args[0]} failed")
    return proc.stdout


def _decode_path(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _ensure_repository(repo: Path) -> None:
    if not (repo / ".git").exists() and not (repo / "HEAD").exists():
        try:
            _git(repo, "rev-parse", "--git-dir")
        except GitError:
            raise GitError(f"{repo} is not a git repository") from None


def resolve(repo: Path, rev: str) -> str:
    _ensure_repository(repo)
    try:
        return (
            _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
            .decode()
            .strip()
        )
    except GitError:
        raise GitError(f"unknown revision {rev!r} in {repo}{shallow_hint(repo)}") from None


# How far back a chart's versions are read: years of releases for most charts, and one
# bounded git call per chart for a repository with a long history.
CHART_HISTORY_COMMITS = 500
# A top-level `version:` line added or removed by a commit (a dependency's is indented).
_VERSION_DIFF_LINE = re.compile(rb"""^[-+]version:[ \t]*['"]?([^\s'"#]+)""", re.M)


def chart_history(repo: Path, rev: str | None) -> Callable[[str], frozenset[str]]:
    """The versions each Chart.yaml (by path) has had in the commits before `rev`, read
    from their diffs (`git log -p`, the last CHART_HISTORY_COMMITS that touch it). A
    clone whose history is shallow knows fewer; a path git cannot read has none."""
    cache: dict[str, frozenset[str]] = {}

    def versions(chart_path: str) -> frozenset[str]:
        if rev is None:
            return frozenset()
        if chart_path not in cache:
            try:
                out = _git(
                    repo,
                    "log",
                    f"-n{CHART_HISTORY_COMMITS}",
                    "--format=",
                    "-p",
                    "-U0",
                    "--no-color",
                    "--no-ext-diff",
                    "--no-renames",
                    rev,
                    "--",
                    f":(literal){chart_path}",
                )
            except GitError:
                out = b""
            cache[chart_path] = frozenset(
                m.decode("utf-8", "replace") for m in _VERSION_DIFF_LINE.findall(out)
            )
        return cache[chart_path]

    return versions


def is_shallow(repo: Path) -> bool:
    try:
        return _git(repo, "rev-parse", "--is-shallow-repository").strip() == b"true"
    except GitError:
        return False


def shallow_hint(repo: Path) -> str:
    """For a revision a clone cannot find: a shallow clone (`git clone --depth`,
    actions/checkout's default one-commit fetch) has only the newest commits, so
    `HEAD~1` or an older base is simply not there yet. Empty for a full clone."""
    if not is_shallow(repo):
        return ""
    return (
        ": the clone is shallow, so older commits are not in it; fetch more history with "
        "`git fetch --deepen=50` (or all of it: `git fetch --unshallow`), or give "
        "actions/checkout `fetch-depth: 0`"
    )


def index_path(repo: Path) -> Path:
    """The index `git write-tree` reads: `GIT_INDEX_FILE` when git set it for a hook,
    else the repository's own."""
    _ensure_repository(repo)
    raw = _git(repo, "rev-parse", "--git-path", "index").decode().strip()
    path = Path(raw)
    return path if path.is_absolute() else repo / path


def subdirectory(repo: Path) -> str:
    """`repo`'s path inside its repository ("apps/base/"), or "" at the top."""
    try:
        return _git(repo, "rev-parse", "--show-prefix").decode().strip()
    except GitError:  # a bare repository has no working tree to be inside of
        return ""


def index_tree(repo: Path) -> str:
    """The staged content as a tree object id: what `git commit` would record now.

    `git write-tree` stores the index as a tree in the object database, so it is read
    like any commit, never from the working tree. In a hook run by `git commit`, git points
    `GIT_INDEX_FILE` at the index being committed, which the environment passes on."""
    _ensure_repository(repo)
    try:
        return _git(repo, "write-tree").decode().strip()
    except GitError as exc:
        raise GitError(f"cannot read the staged changes of {repo}: {exc}") from None


def has_commits(repo: Path) -> bool:
    try:
        _git(repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    except GitError:
        return False
    return True


class GitTree:
    """Regular files of one commit (or tree). Symlinks and submodules are left out: Flux
    never puts them in an artifact."""

    def __init__(self, repo: Path, commit: str) -> None:
        self.repo = repo
        self.commit = commit
        self._blobs: dict[str, str] = {}
        out = _git(repo, "ls-tree", "-r", "-z", "--full-tree", commit)
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, path = record.partition(b"\t")
            mode, kind, sha = meta.decode().split(" ")
            if kind == "blob" and mode in _BLOB_MODES:
                self._blobs[_decode_path(path)] = sha
        self._data: dict[str, bytes | None] = {}
        self._prefetch([p for p in self._blobs if p.endswith(_PREFETCH_SUFFIXES)])

    def _prefetch(self, paths: list[str]) -> None:
        if not paths:
            return
        shas = [self._blobs[p] for p in paths]
        out = _git(self.repo, "cat-file", "--batch", input="\n".join(shas).encode() + b"\n")
        pos = 0
        contents: dict[str, bytes | None] = {}
        for sha in shas:
            end = out.index(b"\n", pos)
            header = out[pos:end].split(b" ")
            pos = end + 1
            if len(header) == 3 and header[1] == b"blob":
                size = int(header[2])
                contents[sha] = out[pos : pos + size]
                pos += size + 1
            else:  # "<sha> missing": a partial clone, a corrupt object
                contents[sha] = None
        for p in paths:
            self._data[p] = contents.get(self._blobs[p])

    def paths(self) -> Iterator[str]:
        return iter(self._blobs)

    def read(self, path: str) -> bytes | None:
        if path not in self._blobs:
            return None
        if path not in self._data:
            self._prefetch([path])
        return self._data.get(path)

    def blob_id(self, path: str) -> str | None:
        return self._blobs.get(path)


def changed_files(repo: Path, base: str, head: str) -> list[ChangedFile]:
    out = _git(repo, "diff", "--name-status", "-z", "-M", base, head, "--")
    fields = out.split(b"\0")
    changes: list[ChangedFile] = []
    i = 0
    while i < len(fields) and fields[i]:
        status = fields[i].decode()
        letter = status[0]
        if letter in "RC":
            old, new = _decode_path(fields[i + 1]), _decode_path(fields[i + 2])
            i += 3
            if letter == "R":
                changes.append(ChangedFile(new, ChangeStatus.RENAMED, previous_path=old))
            else:
                changes.append(ChangedFile(new, ChangeStatus.ADDED))
            continue
        path = _decode_path(fields[i + 1])
        i += 2
        if letter == "A":
            changes.append(ChangedFile(path, ChangeStatus.ADDED))
        elif letter == "D":
            changes.append(ChangedFile(path, ChangeStatus.REMOVED))
        else:
            changes.append(ChangedFile(path, ChangeStatus.MODIFIED))
    return changes


def branch_of(repo: Path, rev: str | None) -> str | None:
    """The branch a change is reviewed against: `rev` when it names one (`main`,
    `origin/main`, `refs/heads/main`), else the pull request's base branch that GitHub
    Actions sets (`GITHUB_BASE_REF`, the Action checks out a commit, not a branch); None
    when neither says."""
    if rev:
        try:
            full = _git(repo, "rev-parse", "--symbolic-full-name", rev).decode().strip()
        except GitError:
            full = ""
        if full.startswith("refs/heads/"):
            return full.removeprefix("refs/heads/")
        if full.startswith("refs/remotes/") and full.count("/") >= 3:
            return full.split("/", 3)[3]
    return os.environ.get("GITHUB_BASE_REF") or None


def remote_urls(repo: Path) -> list[str]:
    """The repository's remote URLs: a Flux GitRepository pointing at one is this repo.

    A remote that is a local path (a clone of a mirror on disk) names no repository a
    cluster can fetch; the mirror's own remotes do, so they are read in its place."""
    return _remote_urls(repo, {repo.resolve()}, 3)


def _remote_urls(repo: Path, seen: set[Path], depth: int) -> list[str]:
    try:
        out = _git(repo, "config", "--get-regexp", r"^remote\..*\.url$")
    except GitError:  # no remotes: git exits 1
        return []
    urls: list[str] = []
    for line in out.decode("utf-8", "replace").splitlines():
        if " " not in line:
            continue
        url = line.split(" ", 1)[1].strip()
        local = local_path(url)
        if local is None:
            urls.append(url)
            continue
        # git resolves a relative remote path against the repository's directory.
        target = (repo / local).resolve()
        if depth > 0 and target not in seen and target.is_dir():
            seen.add(target)
            urls.extend(u for u in _remote_urls(target, seen, depth - 1) if u not in urls)
    return urls


_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)


def local_path(url: str) -> str | None:
    """The path of a remote URL that names a repository on this machine, as git reads
    it: `file://` URLs, and anything that is neither `scheme://` nor scp-like
    `[user@]host:path` (a colon before the first slash)."""
    if url.startswith("file://"):
        return url.removeprefix("file://") or "/"
    if _SCHEME.match(url):
        return None
    colon, slash = url.find(":"), url.find("/")
    if colon > 0 and (slash < 0 or colon < slash):
        return None
    return url or None


_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^/:]+):(?!//)(?P<path>.+)$")


def https_repository_url(url: str) -> str | None:
    """A clone URL as `https://host/owner/repo`, the form code scanning and people open
    (`http://` stays `http://`).

    `git@host:owner/repo.git`, `ssh://git@host:22/owner/repo` and
    `https://user:token@host/owner/repo.git` all become `https://host/owner/repo`; the
    user part (which may hold a token) is always dropped. A local path or `file://` URL
    names no hosted repository: None.
    """
    url = url.strip()
    if not url:
        return None
    m = re.match(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$", url)
    if m:
        scheme = m["scheme"].lower()
        if scheme not in ("https", "http", "ssh", "git", "git+ssh", "ssh+git"):
            return None
        authority, _, path = m["rest"].partition("/")
        host = authority.rpartition("@")[2]
        if scheme not in ("https", "http"):
            # ssh and git ports say nothing about where the web front end listens.
            host = re.sub(r":\d*$", "", host)
    else:
        scp = _SCP_LIKE.match(url)
        # `C:/repo` is a Windows path, not the scp-like `host:path`.
        if scp is None or url.startswith(("/", ".")) or len(scp["host"]) == 1:
            return None
        scheme, host, path = "ssh", scp["host"], scp["path"]
    path = path.strip("/").removesuffix(".git").strip("/")
    if not host or not path or not re.fullmatch(r"[A-Za-z0-9.-]+(:\d+)?", host):
        return None
    # A plain-http server has no https front end to point at.
    return f"{'http' if scheme == 'http' else 'https'}://{host.lower()}/{path}"


def repository_uri(repo: Path) -> str | None:
    """Where the repository is hosted, from its `origin` remote (else its only remote).
    A remote that is a local path (a clone of a mirror on disk) is followed to the
    mirror's own, as `remote_urls` does."""
    return _repository_uri(repo, {repo.resolve()}, 3)


def _repository_uri(repo: Path, seen: set[Path], depth: int) -> str | None:
    remotes: dict[str, str] = {}
    try:
        out = _git(repo, "config", "--get-regexp", r"^remote\..*\.url$")
    except GitError:  # no remotes: git exits 1
        return None
    for line in out.decode("utf-8", "replace").splitlines():
        key, _, url = line.partition(" ")
        remotes[key.removeprefix("remote.").removesuffix(".url")] = url.strip()
    chosen = remotes.get("origin") or (next(iter(remotes.values())) if len(remotes) == 1 else None)
    if chosen is None:
        return None
    local = local_path(chosen)
    if local is None:
        return https_repository_url(chosen)
    target = (repo / local).resolve()
    if depth > 0 and target not in seen and target.is_dir():
        seen.add(target)
        return _repository_uri(target, seen, depth - 1)
    return None
