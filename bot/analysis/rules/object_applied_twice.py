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

With the `helm` extra, what a HelmRelease of an in-repository chart installs counts too:
an object it renders that a Flux Kustomization also applies raw (or another HelmRelease
renders) is one object with two owners. Helm refuses to take over an object another
manager created (`invalid ownership metadata`), and when it did create it first, the two
still overwrite each other. That finding sits on the template line.
"""

from __future__ import annotations

from collections.abc import Iterator

from bot.analysis.findings import Finding, Location, Severity
from bot.analysis.rules.base import Context
from bot.analysis.snapshot.build import nodes as yn
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
            key = (_target(obj), obj.id.key())
            other = first.get(key)
            if other is None:
                first[key] = obj
                continue
            fb, other_fb = obj.owner, other.owner
            if other_fb is fb and obj.rendered_by is other.rendered_by:
                continue  # the same build twice is kustomize-duplicate-resource's
            related: list[Location] = []
            detail = ""
            if obj.rendered_by is not None or other.rendered_by is not None:
                if obj.rendered_by is None:
                    obj, other = other, obj
                message = (
                    f"{obj.id} is rendered by {_applier(obj)} and also applied by "
                    f"{_applier(other)}: Helm refuses to adopt it, or the two overwrite each other."
                )
                detail = (
                    f"Both apply it in cluster {cluster.name}; the other definition is at "
                    f"{other.path}:{other.line}. Helm installs an "
                    "object only when it does not exist yet or carries the release's "
                    "ownership labels and annotations; otherwise the install or upgrade "
                    "fails with `invalid ownership metadata`. When Helm made it first, each "
                    "reconciliation of the other owner overwrites Helm's version."
                )
                related.append(
                    Location(other.path, other.line, message=f"{_applier(other)} applies it here")
                )
            else:
                target = f"cluster {cluster.name}" + (
                    f", on the cluster of {fb.remote}" if fb.remote else ""
                )
                both = _both(fb.label, other_fb.label)
                message = (
                    f"{obj.id} is applied by {both}, which overwrite each other; pruning may "
                    "delete it."
                )
                detail = (
                    f"Both apply it in {target}; the other definition is at "
                    f"{other.path}:{other.line}. Each takes it over with server-side apply on "
                    "every reconciliation, and when one stops applying it, a `prune: true` "
                    "deletes it although the other still wants it."
                )
                if (other.path, other.line) != (obj.path, obj.line):
                    related.append(
                        Location(
                            other.path, other.line, message=f"{other_fb.label} applies it here"
                        )
                    )
            mark = (obj.path, obj.line, message)
            if mark in reported:
                continue
            reported.add(mark)
            yield ctx.finding(
                ID, SEVERITY, obj.path, obj.line, message, related=related, detail=detail
            )


def _both(one: str, other: str) -> str:
    """Two appliers in a message, their kind said once when they share it."""
    kind = "Flux Kustomization "
    if one.startswith(kind) and other.startswith(kind):
        return f"Flux Kustomizations {one[len(kind) :]} and {other[len(kind) :]}"
    return f"{one} and by {other}"


def _target(obj: Applied) -> str | None:
    """The other cluster an object goes to: a HelmRelease's own `spec.kubeConfig` for
    what it renders (helm-controller installs there), else its Kustomization's."""
    hr = obj.rendered_by
    if hr is not None:
        ref = yn.get(hr.node, "spec", "kubeConfig")
        if ref is not None:
            # Named as FluxKustomization.remote names it: the same kubeconfig, one cluster.
            for field_name, what in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                name = yn.text(yn.get(ref, field_name, "name"))
                if name:
                    return f"{what} {hr.id.namespace}/{name}"
            return "a kubeconfig"
    return obj.owner.remote


def _applier(obj: Applied) -> str:
    """Who applies an object: the HelmRelease whose render it is, or its Flux
    Kustomization."""
    hr = obj.rendered_by
    if hr is None:
        return obj.owner.label
    where = f"{hr.id.namespace}/" if hr.id.namespace else ""
    return f"HelmRelease {where}{hr.id.name}"
