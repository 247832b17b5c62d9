"""Which files the analysis may read: the one list that a caller fetching a commit file
by file (the App's Git database fallback) downloads, and the analysis keeps to.

A path-only test, so it errs on the side of reading: every YAML and JSON file
(kustomize takes `.json` resources and patches; Helm's `crds/` may hold JSON), the
kustomization files, the ignore files that decide what Flux, Helm and git leave out
(`.sourceignore`, `.helmignore`, `.gitignore`), `.gitmodules` (a directory that exists
only as a submodule), every file under a chart's `templates/` or `crds/` (named
`.tpl`, `.txt`, anything), and the repository config. Whatever else a rule looks at
(a kustomization entry naming `deploy.txt`) goes unread on a sparse tree: such files
only matter when kustomize parses them as YAML, and an unusual name is rare enough to
be left out of what the App downloads.
"""

from __future__ import annotations

import posixpath

from bot.analysis.options import CONFIG_PATH

_NAMES = frozenset(
    {
        "Kustomization",
        ".helmignore",
        ".sourceignore",
        ".gitignore",
        ".gitmodules",
    }
)
_SUFFIXES = (".yaml", ".yml", ".json")
_CHART_DIRS = frozenset({"templates", "crds"})


def is_read(path: str) -> bool:
    """Whether the analysis may read the file at `path` (relative, `/`-separated)."""
    name = posixpath.basename(path)
    if name in _NAMES or name.lower().endswith(_SUFFIXES) or path == CONFIG_PATH:
        return True
    return any(part in _CHART_DIRS for part in path.split("/")[:-1])
