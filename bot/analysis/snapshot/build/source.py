"""The files of one Flux source, as the controller that builds from it sees them.

kustomize-controller builds from the artifact source-controller made, not from the
repository: a file that the source's ignore rules (`.sourceignore`, `spec.ignore`, the
defaults) leave out is not there for any build, whether a kustomization lists it or
Flux's generated index would take it. An `ExternalArtifact` of an `ArtifactGenerator`
holds this repository's files at other paths. A `View` answers in the artifact's paths
and maps each file back to the repository's, where its content and its lines are.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Protocol

from bot.analysis.ignorefiles import SourceIgnore
from bot.analysis.model import KUSTOMIZATION_FILES


class RepoFiles(Protocol):
    """What a view needs of a snapshot's files."""

    @property
    def path_set(self) -> set[str]: ...

    @property
    def dirs(self) -> set[str]: ...

    @property
    def children(self) -> Mapping[str, list[str]]: ...


class View:
    """One source's files. `label` names the source in messages."""

    label: str

    def real(self, path: str) -> str | None:
        """The repository path of a file of the artifact, or None when it has none."""
        raise NotImplementedError

    def is_dir(self, path: str) -> bool:
        raise NotImplementedError

    def files_in(self, directory: str) -> list[str]:
        """The artifact's files directly in `directory`, sorted."""
        raise NotImplementedError

    def subdirs(self, directory: str) -> list[str]:
        raise NotImplementedError

    def is_file(self, path: str) -> bool:
        return self.real(path) is not None

    def kustomization_files(self, directory: str) -> list[str]:
        """Every kustomization file in `directory` (kustomize fails on more than one)."""
        return [
            p
            for name in KUSTOMIZATION_FILES
            if self.is_file(p := f"{directory}/{name}" if directory else name)
        ]

    def kustomization_in(self, directory: str) -> str | None:
        found = self.kustomization_files(directory)
        return found[0] if found else None


class RepoView(View):
    """This repository at the revision checked, through a source's ignore rules."""

    def __init__(
        self,
        files: RepoFiles,
        ignore: SourceIgnore | None,
        label: str,
        ignored: dict[str, bool] | None = None,
    ) -> None:
        """`ignored`: what `ignore` answered for each path, when other views share it."""
        self.files = files
        self.ignore = ignore
        self.label = label
        self._ignored: dict[str, bool] = ignored if ignored is not None else {}
        self._shipped: dict[str, bool] = {}
        self._subdirs: dict[str, list[str]] | None = None
        # A snapshot's files are fixed: the view asks its sets directly, since a
        # kept build is checked against the view question by question.
        self._path_set = files.path_set
        self._dirs = files.dirs

    def _hidden(self, path: str) -> bool:
        """Whether the ignore rules leave `path` out. source-controller's archive walk
        goes on into an ignored directory and judges every file on its own path (go-git's
        matcher: the last matching pattern wins), so `/*` then `!/kubernetes/main` ships
        kubernetes/main although git would keep a file below an excluded directory out."""
        if self.ignore is None:
            return False
        found = self._ignored.get(path)
        if found is None:
            found = self.ignore.ignored(path)
            self._ignored[path] = found
        return found

    def _shipped_dir(self, directory: str) -> bool:
        """A directory is in the artifact when it is not ignored or when a file below it
        is re-included (the archive then holds it as that file's parent)."""
        if not directory or not self._hidden(directory + "/"):
            return True
        found = self._shipped.get(directory)
        if found is None:
            found = any(not self._hidden(p) for p in self.files.children.get(directory, ())) or any(
                self._shipped_dir(d) for d in self._subdirs_of(directory)
            )
            self._shipped[directory] = found
        return found

    def _subdirs_of(self, directory: str) -> list[str]:
        if self._subdirs is None:
            index: dict[str, list[str]] = defaultdict(list)
            for d in self.files.dirs:
                if d:
                    index[posixpath.dirname(d)].append(d)
            self._subdirs = {k: sorted(v) for k, v in index.items()}
        return self._subdirs.get(directory, [])

    def real(self, path: str) -> str | None:
        if path in self._path_set and (self.ignore is None or not self._hidden(path)):
            return path
        return None

    def is_dir(self, path: str) -> bool:
        return path in self._dirs and self._shipped_dir(path)

    def files_in(self, directory: str) -> list[str]:
        return sorted(p for p in self.files.children.get(directory, ()) if not self._hidden(p))

    def subdirs(self, directory: str) -> list[str]:
        return [d for d in self._subdirs_of(directory) if self._shipped_dir(d)]


class MappedView(View):
    """An artifact whose files are this repository's at other paths (an ExternalArtifact
    that an ArtifactGenerator assembles)."""

    def __init__(self, mapping: Mapping[str, str], label: str) -> None:
        self.mapping = dict(mapping)
        self.label = label
        self.children: dict[str, list[str]] = defaultdict(list)
        self.dirs: set[str] = {""}
        self.sub: dict[str, set[str]] = defaultdict(set)
        for path in self.mapping:
            d = posixpath.dirname(path)
            self.children[d].append(path)
            while d and d not in self.dirs:
                self.dirs.add(d)
                self.sub[posixpath.dirname(d)].add(d)
                d = posixpath.dirname(d)

    def real(self, path: str) -> str | None:
        return self.mapping.get(path)

    def is_dir(self, path: str) -> bool:
        return path in self.dirs

    def files_in(self, directory: str) -> list[str]:
        return sorted(self.children.get(directory, ()))

    def subdirs(self, directory: str) -> list[str]:
        return sorted(self.sub.get(directory, ()))

    def repo_paths(self) -> Iterable[str]:
        return self.mapping.values()
