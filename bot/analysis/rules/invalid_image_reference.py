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
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from bot.analysis import yamlscan as ys
from bot.analysis.findings import Finding, Severity
from bot.analysis.model import ReadKind
from bot.analysis.rules.base import Context
from bot.analysis.snapshot import Snapshot
from bot.analysis.templating import PAYLOAD_KINDS

ID = "invalid-image-reference"
SEVERITY = Severity.ERROR

# distribution/reference grammar (reference.go).
_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|[-]+)"
_COMPONENT = rf"{_ALNUM}(?:{_SEP}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = (
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])"
    r"(?::[0-9]+)?"
)
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
REFERENCE = re.compile(
    rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?$"
)
_VAR = re.compile(r"\$\{[^}]*\}")
# API groups whose container lists are patterns matched against Pods, not Pods.
_POLICY_GROUPS = ("kyverno.io", "gatekeeper.sh", "kubewarden.io")


def _is_policy(api_version: str | None) -> bool:
    group = (api_version or "").partition("/")[0]
    return group.endswith(_POLICY_GROUPS)


# go-digest: the algorithms the kubelet can verify, and their lower-case hex lengths.
_DIGEST_HEX = {"sha256": 64, "sha384": 96, "sha512": 128}
_LOWER_HEX = re.compile(r"[a-f0-9]+")


def problem(image: str) -> str | None:
    """Why `image` is not a pullable reference, or None."""
    name, at, digest = image.rpartition("@")
    if at and "${" in digest:
        # Filled in by Flux's post-build substitution: any valid digest stands for it.
        image = f"{name}@sha256:{'0' * 64}"
    value = _VAR.sub("x", image)
    if not value:
        return "the image is empty"
    if REFERENCE.match(value):
        name = value.split("@")[0]
        if len(name.rsplit(":", 1)[0]) > 255:
            return "the repository name is longer than 255 characters"
        if "@" in value:
            return _digest_problem(value.rsplit("@", 1)[1])
        return None
    if value != value.strip():
        return "it has leading or trailing spaces"
    if REFERENCE.match(value.lower()) or REFERENCE.match(_lower_path(value)):
        return "repository names must be lower case"
    if "@" in value and not re.search(rf"@{_DIGEST}$", value):
        return "the digest is not `algorithm:hex` (for example `sha256:` and 64 hex digits)"
    if value.endswith(":"):
        return "the tag after `:` is empty"
    if "//" in value:
        return "it contains an empty path component (`//`)"
    if " " in value:
        return "it contains a space"
    return "it does not match the image reference grammar"


def _digest_problem(digest: str) -> str | None:
    algorithm, _, encoded = digest.partition(":")
    size = _DIGEST_HEX.get(algorithm)
    if size is None:
        return (
            f"the digest algorithm `{algorithm}` is not one the kubelet supports "
            "(sha256, sha384, sha512)"
        )
    if len(encoded) != size or not _LOWER_HEX.fullmatch(encoded):
        return (
            f"the digest is not `{algorithm}:` and {size} lower-case hex digits "
            f"(it has {len(encoded)})"
        )
    return None


def image_name(image: str) -> str:
    """The image without its tag and digest: what kustomize's `images` entries match."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


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


def _lower_path(value: str) -> str:
    head, sep, tail = value.partition("/")
    return head + sep + tail.lower() if sep else value.lower()


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
                    f"`{value}` is not a valid image reference ({reason}): Pods using it "
                    "fail with InvalidImageName.",
                )
