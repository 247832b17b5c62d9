"""One object applied by two Flux Kustomizations of the same cluster.

Both Kustomizations apply it with server-side apply and each takes it over on every
reconciliation, so the object flips between their versions (labels, patches, a
`targetNamespace`), and when one of them stops applying it (the file moves, the
Kustomization is deleted) the one with `prune: true` deletes it although the other
still wants it. The identity is what lands on the cluster: group, kind, namespace and
name after every kustomize and Flux transformation (`namespace`, `namePrefix`,
`targetNamespace`...); an object served in two API versions is one object.

A cluster is a root Flux Kustomization (`flux-system`) and every Flux Kustomization it
reaches through what it applies. Objects whose name or namespace holds a `${VAR}` are
left out: Flux's post-build substitution decides them. A Kustomization with
`spec.kubeConfig` applies to another cluster (a hub's spoke): its objects are compared
with those of the Kustomizations that apply to that same cluster only. A Kustomization
whose kustomize build fails applies nothing. The finding sits on the file that the later
Kustomization applies and names the other one.
"""

from __future__ import annotations

from collections.abc import Iterator

from bot.analysis.findings import Finding, Severity
from bot.analysis.rules.base import Context
from bot.analysis.snapshot.build.clusters import Applied

ID = "object-applied-twice"
SEVERITY = Severity.WARNING


def check(ctx: Context) -> Iterator[Finding]:
    reported: set[tuple[str, int, str]] = set()
    for cluster in ctx.repo.build.clusters:
        first: dict[tuple[str | None, tuple[str, str, str | None, str]], Applied] = {}
        for obj in cluster.objects():
            if obj.id.templated or obj.owner.problems:
                continue
            key = (obj.owner.remote, obj.id.key())
            other = first.get(key)
            if other is None:
                first[key] = obj
                continue
            fb, other_fb = obj.owner, other.owner
            if other_fb is fb:
                continue  # the same build twice is kustomize-duplicate-resource's
            where = (
                "from the same file"
                if (other.path, other.line) == (obj.path, obj.line)
                else f"from {other.path}:{other.line}"
            )
            target = f"cluster {cluster.name}" + (
                f" (on the cluster of {fb.remote})" if fb.remote else ""
            )
            message = (
                f"{obj.id} is applied by {fb.label} and by {other_fb.label} ({where}) in "
                f"{target}: they take it over from each other, and when one "
                "stops applying it, pruning deletes it."
            )
            mark = (obj.path, obj.line, message)
            if mark in reported:
                continue
            reported.add(mark)
            yield ctx.finding(ID, SEVERITY, obj.path, obj.line, message)
