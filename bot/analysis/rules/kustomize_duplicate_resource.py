"""The same object twice in one kustomize build.

kustomize refuses to add an object whose id is already in the build and fails with
`may not add resource with an already registered id`; kustomize-controller then applies
nothing of that Flux Kustomization. The id is the group, version, kind, namespace and
name after the namespace and name transformers of every kustomization on the way
(`namespace`, `namePrefix`, `nameSuffix`, Flux's `targetNamespace`); a namespaced object
without a namespace and one in `default` are the same, as kustomize counts them. Typical
causes: a HelmRepository or Secret copied into a second file, a new app's `ks.yaml` still
named after the app it was copied from, two directories listing the same file, two
Namespace objects renamed to one `namespace`.

Objects from generators (`configMapGenerator`, `secretGenerator`) count by the name
written, before the hash suffix. Both definitions get a finding, each naming the other,
so that the one a change adds is marked as introduced whatever the build order. Only
builds that something applies are checked (a Flux Kustomization of this
repository, a `raw_paths` entry, and, in a repository without any, every kustomization
directory).
"""

from __future__ import annotations

from collections.abc import Iterator

from bot.analysis.findings import Finding, Severity
from bot.analysis.rules.base import Context
from bot.analysis.snapshot.build.problems import ProblemKind

ID = "kustomize-duplicate-resource"
SEVERITY = Severity.ERROR


def check(ctx: Context) -> Iterator[Finding]:
    for problem in ctx.repo.build.problems(ProblemKind.DUPLICATE_ID):
        yield ctx.finding(ID, SEVERITY, problem.path, problem.line, problem.message)
