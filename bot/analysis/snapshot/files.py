"""The files of one commit: paths, directories, contents and their parses, cached by blob id."""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import TypeVar

import yaml

from bot.analysis import yamlscan as ys
from bot.analysis.model import (
    _SCAFFOLD,
    KUSTOMIZATION_FILES,
    AnalysisCancelled,
    StopSignal,
    normalize_git_url,
)
from bot.analysis.options import Config
from bot.analysis.tree import Tree

T = TypeVar("T")
_UNSEEN = object()


class FilesIndex:
    """Paths and file contents. Every parse is cached by blob id in a cache that the
    snapshots of one analysis share: a blob unchanged between base and head is parsed
    once."""

    def __init__(
        self,
        tree: Tree,
        config: Config | None = None,
        cache: dict[object, object] | None = None,
        self_urls: Iterable[str] = (),
        cancel: StopSignal | None = None,
    ) -> None:
        self.tree = tree
        self.cancel = cancel
        self.config = config or Config()
        self.self_urls = {normalize_git_url(u) for u in self_urls if u}
        self._cache: dict[object, object] = cache if cache is not None else {}
        # Names this snapshot's entries for files without a blob id: an object, not id(),
        # whose number a later snapshot could be given while the cache still holds them.
        self._token = object()
        # Files under a directory named after a template variable (cookiecutter's
        # `{{cookiecutter.app}}/`) are the input of a scaffolding tool, never applied.
        self.paths: list[str] = sorted(
            p for p in tree.paths() if "{" not in p or not _SCAFFOLD.search(p)
        )
        self.path_set = set(self.paths)
        self.dirs: set[str] = {""}
        self.children: dict[str, list[str]] = defaultdict(list)
        for p in self.paths:
            d = posixpath.dirname(p)
            self.children[d].append(p)
            while d and d not in self.dirs:
                self.dirs.add(d)
                d = posixpath.dirname(d)

    @cached_property
    def extensions(self) -> set[str]:
        return {posixpath.splitext(p)[1] for p in self.paths}

    # --- file access -------------------------------------------------------------

    def data(self, path: str) -> bytes | None:
        self.checkpoint()
        return self.tree.read(path)

    def _key(self, what: str, path: str) -> tuple[object, ...]:
        """Where `what` of a file's content is cached: by blob id, shared with every
        snapshot of the repository; by path, for this snapshot alone, in a tree that has
        no blob ids."""
        blob = self.tree.blob_id(path)
        return (what, blob) if blob else (what + "-path", path, self._token)

    def _of_content(self, what: str, path: str, make: Callable[[bytes | None], T]) -> T:
        """`make(data)`, a function of the file's content alone, once per content."""
        key = self._key(what, path)
        found = self._cache.get(key, _UNSEEN)
        if found is _UNSEEN:
            found = self._cache[key] = make(self.data(path))
        return found  # type: ignore[return-value]

    def text(self, path: str) -> str | None:
        return self._of_content("text", path, lambda d: ys.decode(d) if d is not None else None)

    def yaml_info(self, path: str) -> ys.YamlInfo:
        """The YAML check and document summary of a file, cached by content."""
        return self._of_content(
            "yaml", path, lambda d: ys.scan(d) if d is not None else ys.YamlInfo(None, [])
        )

    def of_file(self, what: str, path: str, make: Callable[[str], T]) -> T:
        """`make(path)`, a function of the file's path and content alone, once per path
        and blob in the cache every snapshot of a repository shares: an index over every
        file then costs each later snapshot a lookup per file it did not change."""
        blob = self.tree.blob_id(path)
        if not blob:
            return make(path)
        key = (what, path, blob)
        found = self._cache.get(key, _UNSEEN)
        if found is _UNSEEN:
            found = self._cache[key] = make(path)
        return found  # type: ignore[return-value]

    def checkpoint(self) -> None:
        """Stop here if the caller has given up: Python cannot kill the thread that runs
        the analysis, so the analysis looks at the signal between files and rules."""
        if self.cancel is not None and self.cancel.is_set():
            raise AnalysisCancelled("the analysis was stopped")

    def warm_yaml(self, workers: int) -> None:
        """Check every YAML file up front, on several processes (see parallel.py)."""
        from bot.analysis.parallel import scan_all

        todo = [
            p
            for p in self.paths
            if p.endswith((".yaml", ".yml")) and self._key("yaml", p) not in self._cache
        ]
        for path, info in scan_all(self.tree, todo, workers).items():
            self._cache[self._key("yaml", path)] = info

    def problem(self, path: str) -> ys.YamlProblem | None:
        """Why a Kubernetes YAML decoder refuses this file."""
        return self.yaml_info(path).problem

    def documents(self, path: str) -> list[ys.Node]:
        """Parsed documents of a valid YAML file; [] when it does not parse."""

        def parse(data: bytes | None) -> list[ys.Node]:
            if data is None or self.problem(path) is not None:
                return []
            return _composed(data)

        return self._of_content("docs", path, parse)

    def helm_documents(self, path: str) -> list[ys.Node]:
        """Documents as Helm reads a `Chart.yaml` or `values.yaml` (non-strict
        sigs.k8s.io/yaml): a key defined twice keeps its last value, which `ys.get`
        picks. [] when the file does not parse for another reason."""
        docs = self.documents(path)
        problem = self.problem(path)
        if docs or problem is None or problem.duplicate_of is None:
            return docs

        def parse(data: bytes | None) -> list[ys.Node]:
            if data is None or ys.scan(data, duplicate_keys_allowed=True).problem is not None:
                return []
            return _composed(data)

        return self._of_content("helm-docs", path, parse)

    def is_dir(self, path: str) -> bool:
        return path in self.dirs

    def kustomization_in(self, directory: str) -> str | None:
        for name in KUSTOMIZATION_FILES:
            candidate = f"{directory}/{name}" if directory else name
            if candidate in self.path_set:
                return candidate
        return None


def _composed(data: bytes) -> list[ys.Node]:
    """The documents of a file the YAML check let through; [] when libyaml refuses it
    after all."""
    try:
        return ys.compose_all(data)
    except (yaml.YAMLError, RecursionError):
        return []
