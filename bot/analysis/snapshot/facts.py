"""Facts about one commit that several rules share, computed once."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from bot.analysis import templating
from bot.analysis import yamlscan as ys
from bot.analysis.model import ReadKind

if TYPE_CHECKING:
    from bot.analysis.fluxversion import FluxVersion
    from bot.analysis.snapshot import Snapshot


class Facts:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snap = snapshot

    @cached_property
    def _raw_actions(self) -> dict[str, list[templating.Action]]:
        return {}

    @cached_property
    def flux_versions(self) -> dict[str, FluxVersion]:
        """`fluxversion.flux_version`'s answers, by path."""
        return {}

    def raw_template_actions(self, path: str) -> list[templating.Action]:
        """The template actions that break a file read raw (at most one per line): a
        `{{` where YAML expects structure in a file that does not parse, or a Helm
        expression in a value that reaches the API server as text. The root cause of
        whatever else goes wrong on those lines, so every rule reads it from here."""
        # Per snapshot, not per blob: whether a file is read raw depends on the tree.
        cached = self._raw_actions.get(path)
        if cached is not None:
            return cached
        snap = self.snap
        found: list[templating.Action] = []
        if any(c.how is ReadKind.RAW for c in snap.consumers.get(path, ())):
            # Read raw, what breaks is a matter of the content alone: shared by blob id.
            blob = snap.blob_id(path)
            key = ("raw-template-actions", blob) if blob else None
            known = snap.shared.get(key) if key is not None else None
            if isinstance(known, list):
                self._raw_actions[path] = known
                return known
            found = self._scan(path)
            if key is not None:
                snap.shared[key] = found
        self._raw_actions[path] = found
        return found

    def _scan(self, path: str) -> list[templating.Action]:
        snap = self.snap
        found: list[templating.Action] = []
        data = snap.data(path)
        text = snap.text(path) if data and templating.may_break(data) else None
        if text is None:
            return found
        problem = snap.problem(path)
        if problem is None and _all_payload(text):
            # What the loop below would conclude for each action, without reading the
            # file line by line: in a file that parses, every action of a document whose
            # strings are someone else's payload (a HelmRelease's values) is left alone.
            # Most files with `{{` in a home-ops repository are such HelmReleases.
            return found
        lines: set[int] = set()
        for action in templating.scan(text):
            if action.line in lines:
                continue
            # A `{{` where YAML expects structure breaks parsing, unless the YAML is valid
            # after all: then it is a quoted key or a multi-line string, and only its
            # content matters.
            if not (action.structural and problem is not None) and (
                not action.helm_specific
                or templating.is_payload(action.kind, action.api_version)
                or templating.PAYLOAD_KEYS.intersection(action.key_path)
            ):
                continue
            lines.add(action.line)
            found.append(action)
        return found


def _all_payload(text: str) -> bool:
    """Whether every document of the file, as `templating.scan` tells them apart, is a
    payload kind (the scan gives each action its document's kind)."""
    docs = ys.split_documents(text)
    return bool(docs) and all(templating.is_payload(d.kind, d.api_version) for d in docs)
