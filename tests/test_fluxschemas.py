"""The vendored Flux CRD schemas: every one loads, and the index agrees with the files."""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources

import jsonschema

from bot.analysis import fluxschemas

KINDS = {
    "kustomize.toolkit.fluxcd.io": {"Kustomization"},
    "helm.toolkit.fluxcd.io": {"HelmRelease"},
    "source.toolkit.fluxcd.io": {
        "GitRepository",
        "OCIRepository",
        "HelmRepository",
        "HelmChart",
        "Bucket",
    },
    "notification.toolkit.fluxcd.io": {"Alert", "Provider", "Receiver"},
    "image.toolkit.fluxcd.io": {"ImageRepository", "ImagePolicy", "ImageUpdateAutomation"},
}


def test_every_flux_minor_from_2_0_is_vendored() -> None:
    minors = [r.minor for r in fluxschemas.releases()]
    assert minors[0] == (2, 0)
    assert minors == [(2, m) for m in range(len(minors))]
    assert len(minors) >= 9


def test_every_release_serves_every_flux_kind() -> None:
    for release in fluxschemas.releases():
        served: dict[str, set[str]] = {}
        for api, kinds in release.kinds.items():
            served.setdefault(api.split("/")[0], set()).update(kinds)
        for group, expected in KINDS.items():
            assert expected <= served.get(group, set()), (release.label, group)
        assert set(release.controllers) == {
            "source-controller",
            "kustomize-controller",
            "helm-controller",
            "notification-controller",
            "image-reflector-controller",
            "image-automation-controller",
        }


def test_every_schema_loads_and_is_stored_under_its_digest() -> None:
    folder = resources.files(fluxschemas).joinpath("schemas")
    stored = {p.name.removesuffix(".json.gz") for p in folder.iterdir()}
    referenced = {
        sid for r in fluxschemas.releases() for kinds in r.kinds.values() for sid in kinds.values()
    }
    assert referenced == stored  # no dangling id, no orphan file
    for sid in stored:
        raw = gzip.decompress(folder.joinpath(f"{sid}.json.gz").read_bytes())
        assert hashlib.sha256(raw).hexdigest()[:16] == sid
        schema = fluxschemas.load(sid)
        jsonschema.Draft7Validator.check_schema(schema)
        assert schema["type"] == "object" and "spec" in schema["properties"]


def test_identical_schemas_are_shared_between_releases() -> None:
    ids = [
        sid for r in fluxschemas.releases() for kinds in r.kinds.values() for sid in kinds.values()
    ]
    assert len(set(ids)) < len(ids) / 2


def test_removed_api_versions_and_controller_versions() -> None:
    v24 = fluxschemas.release_for((2, 4))
    assert v24.controllers["helm-controller"] == "v1.1.0"
    assert "HelmRelease" in v24.kinds["helm.toolkit.fluxcd.io/v2beta1"]
    v28 = fluxschemas.release_for((2, 8))
    assert "helm.toolkit.fluxcd.io/v2beta1" not in v28.kinds
    assert "helm.toolkit.fluxcd.io/v2beta2" not in v28.kinds
    assert fluxschemas.release_for((2, 99)) == fluxschemas.newest()
    assert fluxschemas.release_for((1, 0)) == fluxschemas.releases()[0]
