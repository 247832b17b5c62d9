"""Which Flux sources are this repository, and what they leave out of their artifact."""

from __future__ import annotations

import posixpath
from functools import cached_property

from bot.analysis import yamlscan as ys
from bot.analysis.ignorefiles import SourceIgnore
from bot.analysis.lines import split_lines
from bot.analysis.model import (
    _YAML_TRUE,
    BOOTSTRAP_NAME,
    FluxObject,
    _branch,
    gitmodules_paths,
    normalize_git_url,
    secure_join,
)
from bot.analysis.snapshot.files import FilesIndex
from bot.analysis.snapshot.flux import FluxIndex


class SourcesIndex:
    """Whether a Flux source is this repository at this revision; submodules and ignore
    files."""

    def __init__(self, files: FilesIndex, flux: FluxIndex) -> None:
        self.files = files
        self.flux = flux

    # --- which Flux sources are this repository ------------------------------------

    def is_self_source(self, obj: FluxObject) -> bool:
        """Whether a Kustomization's sourceRef is (very likely) this repository."""
        ref = ys.get(obj.node, "spec", "sourceRef")
        kind = ys.scalar(ys.get(ref, "kind")) or "GitRepository"
        name = ys.scalar(ys.get(ref, "name"))
        if kind != "GitRepository":
            return False
        if name == BOOTSTRAP_NAME:
            return True
        if not self.files.self_urls:
            return False
        namespace = ys.scalar(ys.get(ref, "namespace")) or obj.namespace
        for source in self.flux.objects_of("GitRepository"):
            if source.name == name and (
                not namespace or not source.namespace or source.namespace == namespace
            ):
                url = ys.scalar(ys.get(source.node, "spec", "url")) or ""
                if normalize_git_url(url) in self.files.self_urls and self.same_revision(source):
                    return True
        return False

    @cached_property
    def submodules(self) -> tuple[str, ...]:
        """Paths of the git submodules that `.gitmodules` declares."""
        paths = (secure_join(p) for p in gitmodules_paths(self.files.text(".gitmodules") or ""))
        return tuple(p for p in paths if p)

    def submodule_of(self, path: str) -> str | None:
        """The submodule that holds `path`, or that `path` holds (a directory of
        submodules exists only through them)."""
        for sub in self.submodules:
            if path == sub or path.startswith(sub + "/") or sub.startswith(path + "/"):
                return sub
        return None

    @cached_property
    def own_urls(self) -> frozenset[str]:
        """This repository's URLs, normalised: the clone URLs the caller knows and those
        of the `flux-system` GitRepositories."""
        return frozenset(self.files.self_urls) | {
            normalize_git_url(url)
            for s in self.flux.objects_of("GitRepository")
            if s.name == BOOTSTRAP_NAME and (url := ys.scalar(ys.get(s.node, "spec", "url")))
        }

    @cached_property
    def fetches_submodules(self) -> bool | None:
        """Whether source-controller checks out this repository's submodules: only with
        `spec.recurseSubmodules: true` on its GitRepository. None when no GitRepository
        here is known to be this repository."""
        own = [
            s
            for s in self.flux.objects_of("GitRepository")
            if s.name == BOOTSTRAP_NAME
            or (
                normalize_git_url(ys.scalar(ys.get(s.node, "spec", "url")) or "") in self.own_urls
                and self.same_revision(s)
            )
        ]
        if not own:
            return None
        return any(
            ys.scalar(ys.get(s.node, "spec", "recurseSubmodules")) in _YAML_TRUE for s in own
        )

    @cached_property
    def _bootstrap_branches(self) -> set[str]:
        """Branches that the `flux-system` GitRepositories of the repository follow."""
        branches = set()
        for source in self.flux.objects_of("GitRepository"):
            if source.name == BOOTSTRAP_NAME:
                branch = _branch(ys.get(source.node, "spec", "ref"))
                if branch:
                    branches.add(branch)
        return branches

    def same_revision(self, source: FluxObject) -> bool:
        """Whether a GitRepository with this repository's URL follows the revision being
        checked. Another branch (multi-tenancy repositories keep each tenant on its own
        branch of one repository), a tag, a semver range or a commit is other content."""
        ref = ys.get(source.node, "spec", "ref")
        if ref is None:
            return True
        name = ys.scalar(ys.get(ref, "name"))
        if any(ys.get(ref, key) is not None for key in ("tag", "semver", "commit")) or (
            name is not None and not name.startswith("refs/heads/")
        ):
            return False
        branch = _branch(ref)
        if branch is None:
            return True
        return branch in (self._bootstrap_branches or {"main", "master"})

    @cached_property
    def source_ignore(self) -> SourceIgnore:
        files = {}
        for path in self.files.paths:
            if path.endswith(".sourceignore") and posixpath.basename(path) == ".sourceignore":
                files[posixpath.dirname(path)] = self.files.text(path) or ""
        extra: list[str] = []
        own: set[str] = set()
        bootstrap = False
        for obj in self.flux.objects_of("GitRepository"):
            ignore = ys.scalar(ys.get(obj.node, "spec", "ignore"))
            if obj.name == BOOTSTRAP_NAME:
                bootstrap = True
                if ignore:
                    extra.extend(split_lines(ignore))
            elif self.files.self_urls and self.same_revision(obj):
                url = normalize_git_url(ys.scalar(ys.get(obj.node, "spec", "url")) or "")
                if url in self.files.self_urls:
                    own.add(ignore or "")
        # A flux-system source without `spec.ignore` ignores nothing more: another
        # GitRepository of the same URL (a narrowed view for one app) is not its rules.
        if not bootstrap and len(own) == 1:
            # No flux-system source: the one GitRepository that builds this repository
            # (`home-kubernetes`), when all that do agree on what they ignore.
            extra = split_lines(own.pop())
        return SourceIgnore(files, extra)

    @cached_property
    def git_ignore(self) -> SourceIgnore:
        """The repository's `.gitignore` files: what is kept out of git on purpose."""
        files = {
            posixpath.dirname(path): self.files.text(path) or ""
            for path in self.files.paths
            if path.endswith(".gitignore") and posixpath.basename(path) == ".gitignore"
        }
        return SourceIgnore(files)
