"""A container image that is not a valid reference once Flux has done its work.

The kubelet parses `image` with the distribution reference grammar; anything else
leaves the Pod in `InvalidImageName`. Typical causes: upper-case letters in the
repository, a stray space, `:` with an empty tag, a digest that is not
`sha256:<64 hex>`, a doubled `//`.

A digest must be one the kubelet can verify: `sha256:` and 64 lower-case hex digits
(or sha384/96, sha512/128).

Flux's post-build substitution runs before the image reaches the cluster, so `${VAR}`
(and `${VAR:=default}`) parts are read as valid placeholders. So are names that a
kustomize `images` entry or a Flux Kustomization's `spec.images` replaces
(`image: PODINFO_IMAGE` with `images: [{name: PODINFO_IMAGE, newName: ...}]`).

Images written with Helm template syntax are reported once, by
`helm-template-in-raw-manifest`. Checked in every container list (`containers`,
`initContainers`, `ephemeralContainers`) of the manifests that kustomize or Flux apply
raw. Policy engines (Kyverno, Gatekeeper, Kubewarden) write container lists that are
patterns, not Pods (`image: "!*:latest"`, `image: "ghcr.io/org/*"`): their documents, and
any image with a `*` or `?` wildcard, are not checked.

With the `helm` extra, the images of what a HelmRelease of an in-repository chart
renders are checked too (a values change that renders `registry//app`, an empty tag):
the finding sits on the template line that writes the image and names the HelmRelease.
"""

from __future__ import annotations

from collections.abc import Iterator

import yaml

from bot.analysis import yamlscan as ys
from bot.analysis.findings import Finding, Location, Severity
from bot.analysis.images import image_name, problem
from bot.analysis.model import ReadKind
from bot.analysis.rules.base import Context
from bot.analysis.snapshot import Snapshot
from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.snapshot.build.helm import Status
from bot.analysis.templating import PAYLOAD_KINDS

ID = "invalid-image-reference"
SEVERITY = Severity.ERROR

# API groups whose container lists are patterns matched against Pods, not Pods.
_POLICY_GROUPS = ("kyverno.io", "gatekeeper.sh", "kubewarden.io")


def _is_policy(api_version: str | None) -> bool:
    group = (api_version or "").partition("/")[0]
    return group.endswith(_POLICY_GROUPS)


def overridden_names(repo: Snapshot) -> set[str]:
    """Image names that a kustomize `images` entry or a Flux Kustomization's
    `spec.images` rewrites before anything is applied (`image: APP_IMAGE` placeholders)."""
    names: set[str] = set()
    roots: list[ys.Node] = []
    for kfile in repo.kustomizations.values():
        data = repo.data(kfile.path)
        if data and b"images" in data:
            roots.extend(repo.documents(kfile.path)[:1])
    for obj in repo.objects_of("Kustomization"):
        if obj.group == "kustomize.toolkit.fluxcd.io":
            spec = ys.get(obj.node, "spec")
            if spec is not None:
                roots.append(spec)
    for root in roots:
        for entry in ys.items(ys.get(root, "images")):
            name = ys.scalar(ys.get(entry, "name"))
            if name:
                names.add(name)
    return names


def check(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    overridden: set[str] | None = None
    for path in repo.paths:
        consumers = repo.consumers.get(path)
        if not consumers or not any(c.how is ReadKind.RAW for c in consumers):
            continue
        data = repo.data(path)
        if not data or b"image" not in data:
            continue
        skip = repo.raw_template_lines(path)
        info = repo.yaml_info(path)
        if info.problem is not None:  # reported as yaml-syntax-error, the real cause
            continue
        for doc in info.docs:
            if not doc.images or doc.kind in PAYLOAD_KINDS or _is_policy(doc.api_version):
                continue
            for line, value in doc.images:
                if line in skip or "{{" in value or "*" in value or "?" in value:
                    continue
                reason = problem(value)
                if reason is None:
                    continue
                if overridden is None:
                    overridden = overridden_names(repo)
                if image_name(value) in overridden:
                    continue
                yield ctx.finding(
                    ID,
                    SEVERITY,
                    path,
                    line,
                    f"`{_short(value)}` is not a valid image reference: {reason}, so Pods "
                    "using it fail with InvalidImageName.",
                )
    yield from _rendered(ctx)


def _rendered(ctx: Context) -> Iterator[Finding]:
    """The images of what HelmReleases of in-repository charts render."""
    seen: set[tuple[str, int, str]] = set()
    for release in ctx.repo.build.helm.releases:
        if release.status is not Status.RENDERED:
            continue
        for obj in release.objects:
            if obj.id.kind in PAYLOAD_KINDS or _is_policy(obj.res.api_version):
                continue
            for path, node in yn.walk(obj.node):
                if (
                    len(path) < 3
                    or path[-1] != "image"
                    or path[-3] not in ys.CONTAINER_LISTS
                    or not isinstance(node, yaml.ScalarNode)
                ):
                    continue
                value = node.value
                reason = problem(value) if "*" not in value and "?" not in value else None
                if reason is None:
                    continue
                file, line, _ = yn.origin_of(node, obj.path)
                if (file, line, value) in seen:
                    continue
                seen.add((file, line, value))
                hr = release.release
                yield ctx.finding(
                    ID,
                    SEVERITY,
                    file,
                    line,
                    f"{release.label} renders `{_short(value)}` here, an invalid image "
                    f"reference: {reason}, so its Pods fail with InvalidImageName.",
                    related=[Location(hr.path, hr.line, message=f"{release.label} is here")],
                    key=(file, value, release.label),
                    detail=(
                        f"Rendered for cluster {release.cluster.name} with values from "
                        f"{', '.join(release.values_origin)}."
                    ),
                )


def _short(value: str, limit: int = 60) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"
