"""The settings a repository's config gives the analysis, as data.

Kept apart from `config` (which parses the file and checks rule ids against the
registry) so that the snapshot, which needs `raw_paths`, sits below the rules.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.analysis.findings import Finding, Severity

CONFIG_PATH = ".github/flux-review.yml"

# `fail_on` in the config, `--fail-on` of the command line, `fail-on` of the Action: the
# least severity that fails the check, or `never`.
FAIL_ON_CHOICES = ("error", "warning", "notice", "never")


class ConfigError(ValueError):
    """An invalid repository config; the message names the key and the line."""


@dataclass(frozen=True)
class ExternalObject:
    """An object that exists on the cluster but not in the repository (created by hand,
    by another repository's Flux, by an operator). `namespace` is None for a cluster-scoped
    entry (`Kind/name`) and for `*`: either matches a reference from any namespace."""

    kind: str
    namespace: str | None
    name: str

    def matches(self, kind: str, namespace: str | None, name: str) -> bool:
        return (
            # Kinds are matched as kubectl matches them, whatever their case.
            self.kind.lower() == kind.lower()
            and (self.name == "*" or self.name == name)
            and (self.namespace is None or namespace is None or self.namespace == namespace)
        )


@dataclass(frozen=True)
class ClusterConfig:
    """A cluster whose Flux is pointed at this repository from outside it (cloud-init,
    Terraform, a bootstrap in another repository): what its entry Kustomizations apply."""

    name: str
    paths: tuple[str, ...]
    # postBuild.substitute of the entry Kustomizations, as the outside bootstrap sets it
    substitute: tuple[tuple[str, str], ...] = ()
    kubernetes_version: tuple[int, int] | None = None
    line: int = 1  # of the item in the config file


@dataclass(frozen=True)
class Config:
    # rule id -> severity, or None when the rule is off
    rules: dict[str, Severity | None] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()
    raw_paths: tuple[str, ...] = ()
    fail_on: Severity | None = Severity.ERROR  # None: `never`
    review_drafts: bool = True
    flux_version: tuple[int, int] | None = None  # (major, minor) the clusters run
    external_objects: tuple[ExternalObject, ...] = ()
    clusters: tuple[ClusterConfig, ...] = ()
    # cluster name -> Kubernetes (major, minor); "*" for every cluster not named
    kubernetes_versions: tuple[tuple[str, tuple[int, int]], ...] = ()
    # The branch the change goes to (a pull request's base branch), when the caller knows
    # it; never read from the config file. A cluster found without an entry point follows
    # its own GitRepository: on another branch, it does not sync what is reviewed.
    branch: str | None = None

    def kubernetes_version(self, cluster: str | None = None) -> tuple[int, int] | None:
        """The Kubernetes minor the config gives for `cluster` (a `clusters` item's own,
        then the `kubernetes_version` entry of that name, then its `"*"` or plain value);
        None when the config does not say."""
        for item in self.clusters:
            if item.name == cluster and item.kubernetes_version is not None:
                return item.kubernetes_version
        by_name = dict(self.kubernetes_versions)
        if cluster is not None and cluster in by_name:
            return by_name[cluster]
        return by_name.get("*")

    def has_external(self, kind: str, namespace: str | None, name: str) -> bool:
        """Whether the config lists this object as existing outside the repository;
        `namespace` None when the reference does not say which (any entry matches)."""
        return any(e.matches(kind, namespace, name) for e in self.external_objects)

    def severity_for(self, rule: str, default: Severity) -> Severity | None:
        if rule in self.rules:
            return self.rules[rule]
        return default

    def is_ignored(self, path: str) -> bool:
        return any(_glob_match(path, pattern) for pattern in self.ignore)


def parse_fail_on(value: str) -> Severity | None:
    """A `fail_on` value as a threshold: None for `never`. ValueError for anything else."""
    if value not in FAIL_ON_CHOICES:
        raise ValueError(f"must be one of {', '.join(FAIL_ON_CHOICES)} (got {value!r})")
    return None if value == "never" else Severity(value)


def fails(
    findings: Iterable[Finding], fail_on: Severity | None, introduced_only: bool = True
) -> bool:
    """Whether a check fails: the App's check run, the Action's step, the pre-commit hook
    and `flux-review check` all decide with this. Only what the change introduces counts
    (without a base every finding is introduced); the command line's exit status counts
    every finding it reports (`introduced_only=False`), which differs only with `--all`."""
    if fail_on is None:
        return False
    return any(
        (f.introduced or not introduced_only) and f.severity.rank >= fail_on.rank for f in findings
    )


def _glob_match(path: str, pattern: str) -> bool:
    pattern = pattern.lstrip("/")
    if pattern.endswith("/"):
        pattern += "**"
    if fnmatch.fnmatchcase(path, pattern):
        return True
    # `dir/**` also matches everything below dir; a bare name matches at any depth.
    if pattern.endswith("/**") and path.startswith(pattern[:-2]):
        return True
    return "/" not in pattern and fnmatch.fnmatchcase(posixpath.basename(path), pattern)
