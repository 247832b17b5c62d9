"""A real git repository in a temporary directory, driven with the ``git`` command line.

The fake GitHub reads everything (diffs, blobs, tarballs) from it, so what a test commits is
exactly what the App sees, byte for byte, including git's own diff quirks.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

# Fixed identity and dates make commit SHAs reproducible between runs of the same test, which
# keeps failure messages comparable; every commit advances the clock by a minute because git
# orders history by date in places (e.g. `git log`), and equal dates make that ambiguous.
_EPOCH = 1_700_000_000
AUTHOR_NAME = "Test Author"
AUTHOR_EMAIL = "author@example.com"


class GitError(RuntimeError):
    pass


class GitRepo:
    """A non-bare repository with a work tree at ``path``.

    ``write`` + ``commit`` change the checked-out branch; ``branch``/``checkout`` move between
    branches. All SHAs are full 40-character hex strings.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, default_branch: str = "main", init: bool = True
    ) -> None:
        self.path = Path(path)
        self.default_branch = default_branch
        self._tick = 0
        self._resolved: dict[str, str] | None = None
        if init:
            self.path.mkdir(parents=True, exist_ok=True)
            self.git("init", "--quiet", f"--initial-branch={default_branch}")
            for key, value in (
                ("user.name", AUTHOR_NAME),
                ("user.email", AUTHOR_EMAIL),
                ("commit.gpgsign", "false"),
                ("tag.gpgsign", "false"),
                ("core.autocrlf", "false"),
                # Keep non-ASCII paths literal in porcelain output instead of "\303\251".
                ("core.quotepath", "false"),
            ):
                self.git("config", "--local", key, value)

    # -- plumbing ---------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        date = f"@{_EPOCH + 60 * self._tick} +0000"
        env = dict(os.environ)
        # A developer's global hooks, templates or signing config must not leak into tests.
        env.update(
            {
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": os.devnull,
                "GIT_AUTHOR_NAME": AUTHOR_NAME,
                "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
                "GIT_COMMITTER_NAME": AUTHOR_NAME,
                "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL,
                "GIT_AUTHOR_DATE": date,
                "GIT_COMMITTER_DATE": date,
                "LC_ALL": "C",
            }
        )
        return env

    def git_bytes(self, *args: str, input: bytes | None = None) -> bytes:
        proc = subprocess.run(
            ["git", *args],
            cwd=self.path,
            input=input,
            capture_output=True,
            env=self._env(),
            check=False,
        )
        if proc.returncode != 0:
            raise GitError(
                f"git {' '.join(args)} failed ({proc.returncode}): "
                f"{proc.stderr.decode(errors='replace').strip()}"
            )
        return proc.stdout

    def git(self, *args: str) -> str:
        return self.git_bytes(*args).decode("utf-8", errors="surrogateescape").strip()

    # -- work tree ----------------------------------------------------------------------------

    def write(self, files: Mapping[str, str | bytes | None]) -> None:
        """Create/overwrite files (str is written as UTF-8) or delete them (None)."""
        for name, content in files.items():
            target = self.path / name
            if not target.resolve().is_relative_to(self.path.resolve()):
                raise ValueError(f"{name!r} escapes the repository")
            if content is None:
                if target.is_symlink() or target.exists():
                    target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink():
                target.unlink()
            data = content.encode("utf-8") if isinstance(content, str) else content
            target.write_bytes(data)

    def symlink(self, name: str, target: str) -> None:
        link = self.path / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)

    def rename(self, old: str, new: str) -> None:
        (self.path / new).parent.mkdir(parents=True, exist_ok=True)
        self.git("mv", old, new)

    def read(self, name: str, ref: str = "HEAD") -> bytes:
        return self.git_bytes("show", f"{ref}:{name}")

    # -- history ------------------------------------------------------------------------------

    def commit(
        self,
        message: str = "change",
        files: Mapping[str, str | bytes | None] | None = None,
        *,
        allow_empty: bool = False,
    ) -> str:
        """Stage everything (optionally after ``write(files)``) and commit; returns the SHA."""
        if files:
            self.write(files)
        self.git("add", "--all")
        self._tick += 1
        args = ["commit", "--quiet", "--no-verify", "-m", message]
        if allow_empty:
            args.append("--allow-empty")
        self.git(*args)
        return self.head()

    def head(self) -> str:
        return self.rev_parse("HEAD")

    def rev_parse(self, ref: str) -> str:
        if self._resolved is not None:
            if ref not in self._resolved:
                self._resolved[ref] = self.git(
                    "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"
                )
            return self._resolved[ref]
        return self.git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")

    @contextlib.contextmanager
    def resolving_once(self) -> Iterator[None]:
        """Within the block (code that does not await, so no ref moves), each ref is
        resolved once: a check run on a branch with hundreds of open PRs names every one
        of them, with its head and base."""
        if self._resolved is not None:
            yield
            return
        self._resolved = {}
        try:
            yield
        finally:
            self._resolved = None

    def resolve(self, ref: str) -> str | None:
        """Full SHA of a branch, tag, ``refs/...`` name or (abbreviated) SHA, else None."""
        if not ref or ref.startswith("-"):
            return None
        try:
            return self.rev_parse(ref)
        except GitError:
            return None

    def branch(self, name: str, start: str | None = None, *, checkout: bool = True) -> str:
        """Create branch ``name`` at ``start`` (default HEAD); returns its SHA."""
        args = ["branch", name] + ([start] if start else [])
        self.git(*args)
        if checkout:
            self.checkout(name)
        return self.rev_parse(name)

    def checkout(self, ref: str) -> None:
        self.git("checkout", "--quiet", ref)

    def current_branch(self) -> str:
        return self.git("rev-parse", "--abbrev-ref", "HEAD")

    def tag(self, name: str, ref: str = "HEAD") -> str:
        self.git("tag", name, ref)
        return self.rev_parse(name)

    def merge_base(self, a: str, b: str) -> str:
        return self.git("merge-base", a, b)

    def is_commit(self, sha: str) -> bool:
        return self.resolve(sha) is not None

    def ls_tree(self, ref: str, path: str = "") -> list[tuple[str, str, str, int, str]]:
        """Entries of the tree at ``path``: (mode, type, sha, size, name); size -1 for trees."""
        spec = f"{ref}:{path}" if path else f"{ref}^{{tree}}"
        out = self.git_bytes("ls-tree", "-z", "--long", spec)
        entries = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, name = record.split(b"\t", 1)
            mode, kind, sha, size = meta.decode().split()
            entries.append(
                (mode, kind, sha, -1 if size == "-" else int(size), name.decode("utf-8"))
            )
        return entries

    def object_info(self, ref: str, path: str) -> tuple[str, str, str] | None:
        """(mode, type, sha) of ``path`` at ``ref``; None if it does not exist."""
        path = path.strip("/")
        if not path:
            tree = self.git("rev-parse", f"{ref}^{{tree}}")
            return ("040000", "tree", tree)
        out = self.git_bytes("ls-tree", "-z", ref, "--", path)
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, name = record.split(b"\t", 1)
            if name.decode("utf-8") == path:
                mode, kind, sha = meta.decode().split()
                return mode, kind, sha
        return None

    def archive(self, sha: str, prefix: str, fmt: str = "tar.gz") -> bytes:
        return self.git_bytes("archive", f"--format={fmt}", f"--prefix={prefix}", sha)

    def diff(self, base: str, head: str, *extra: str) -> bytes:
        return self.git_bytes("diff", "--no-color", "--no-ext-diff", *extra, base, head)

    def log(self, ref: str = "HEAD", *, max_count: int | None = None) -> Sequence[str]:
        args = ["rev-list", ref] + ([f"--max-count={max_count}"] if max_count else [])
        return self.git(*args).split()
