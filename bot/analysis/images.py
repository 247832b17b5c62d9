"""Container image references, as the kubelet parses them (the distribution reference
grammar, go-digest's algorithms)."""

from __future__ import annotations

import re

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


def _lower_path(value: str) -> str:
    head, sep, tail = value.partition("/")
    return head + sep + tail.lower() if sep else value.lower()
