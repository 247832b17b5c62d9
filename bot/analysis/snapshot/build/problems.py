"""What goes wrong in a build: problems kustomize or Flux fail on, and the reasons a
build's result is not fully known."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ProblemKind(enum.StrEnum):
    """Why kustomize (or Flux around it) fails a build. The rules decide how to report
    each kind; the build only finds them."""

    # The same object id twice in one build (`may not add resource with an already
    # registered id`).
    DUPLICATE_ID = "duplicate-id"
    # A directory that includes itself on the way (`cycle detected`).
    CYCLE = "cycle"
    # A patch whose target is not in the build (`failed to find unique target for patch`).
    PATCH_TARGET = "patch-target"
    # A patch kustomize cannot apply to its target: a mapping where the target has a
    # scalar, a JSON patch operation on a path that does not exist.
    PATCH_FAILS = "patch-fails"
    # Several kustomization files in one directory (`Found multiple kustomization files`).
    MULTIPLE_FILES = "multiple-kustomization-files"
    # A generator that merges into or replaces an object the build does not have, or
    # creates one that is already there.
    GENERATOR = "generator"
    # A component listed as a resource, a resource that is a component, and other
    # misuse of one kind of entry for another.
    ENTRY_KIND = "entry-kind"
    # A replacement kustomize cannot carry out: a source that selects no object or
    # several, a field missing at the source or (without `create`) at a target.
    REPLACEMENT = "replacement"


@dataclass(frozen=True, slots=True)
class Related:
    path: str
    line: int
    message: str = ""


@dataclass(frozen=True, slots=True)
class BuildProblem:
    kind: ProblemKind
    path: str
    line: int
    # What fails and why, in a sentence that ends with what kustomize prints.
    message: str
    related: tuple[Related, ...] = ()


@dataclass(frozen=True, slots=True)
class Unknown:
    """Why (part of) a build is not fully known: `subject` and what is true of it, and the
    files whose content makes it so (the change summary says "not fully known" only where
    a change touched one of them)."""

    subject: str
    why: str
    paths: tuple[str, ...] = ()
    # What is not known is the result, not whether there is one: kustomize fails the
    # build (a resource that does not exist, a file that does not parse), and Flux
    # applies nothing of it.
    fails: bool = False

    def __str__(self) -> str:
        return f"{self.subject} {self.why}"
