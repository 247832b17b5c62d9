"""postbuild-substitution: `${VAR}` that no postBuild source of its Kustomization defines."""

from __future__ import annotations

import pytest

from tests.analysis_helpers import (
    configmap,
    dedent,
    deployment,
    flux_kustomization,
    line_of,
    of_rule,
    repo,
    run,
)

RULE = "postbuild-substitution"
PATH = "apps/podinfo/deployment.yaml"


def components(version: str) -> str:
    return f"# Flux Version: {version}\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n"


def applied(
    manifest: str,
    *,
    substitute: dict[str, str] | None = None,
    post_build: str = "",
    version: str | None = "v2.9.0",
) -> dict[str, str | bytes]:
    ks = flux_kustomization("apps", "./apps", substitute=substitute)
    if post_build:
        ks += post_build
    files = repo({"clusters/prod/apps.yaml": ks, PATH: manifest})
    if version is not None:
        files["clusters/prod/flux-system/gotk-components.yaml"] = components(version)
    return files


def findings(files: dict[str, str | bytes]) -> list:  # type: ignore[type-arg]
    return of_rule(run(files), RULE)


IMAGE = "ghcr.io/stefanprodan/podinfo:${PODINFO_TAG}"


def test_an_undefined_variable_fails_a_strict_kustomize_controller() -> None:
    manifest = deployment("podinfo", IMAGE)
    files = applied(manifest, substitute={"CLUSTER": "prod"})
    [finding] = findings(files)
    assert (finding.path, finding.severity) == (PATH, "error")
    assert finding.line == line_of(manifest, "image:")
    assert "`${PODINFO_TAG}` has no default" in finding.message
    assert "Flux Kustomization flux-system/apps does not define it" in finding.message
    assert "fails the whole Kustomization" in finding.message
    assert "Flux Kustomization flux-system/apps (clusters/prod/apps.yaml)" in finding.detail
    assert "v1.9.0 and later substitute strictly" in finding.detail
    # Reported once: invalid-image-reference reads it as a placeholder.
    assert [f.rule for f in run(files)] == [RULE]


def test_before_strict_substitution_an_image_left_invalid_is_reported() -> None:
    files = applied(deployment("podinfo", IMAGE), substitute={"CLUSTER": "prod"}, version="v2.4.0")
    [finding] = findings(files)
    assert "the image `ghcr.io/stefanprodan/podinfo:` is invalid" in finding.message
    assert "InvalidImageName" in finding.message


def test_before_strict_substitution_an_empty_value_elsewhere_is_a_warning() -> None:
    manifest = configmap("settings", "greeting: hello ${NAME}")
    [warning] = findings(applied(manifest, substitute={"CLUSTER": "prod"}, version="v2.4.0"))
    assert warning.severity == "warning"
    assert warning.line == line_of(manifest, "greeting")
    assert "Flux substitutes an empty string, so the value becomes `hello `" in warning.message
    [error] = findings(applied(manifest, substitute={"CLUSTER": "prod"}))
    assert (error.severity, error.line) == ("error", line_of(manifest, "greeting"))


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/stefanprodan/podinfo:${PODINFO_TAG:=6.5.4}",
        "ghcr.io/stefanprodan/podinfo:${PODINFO_TAG:-6.5.4}",
        "ghcr.io/stefanprodan/podinfo:${PODINFO_TAG=6.5.4}",
        "ghcr.io/stefanprodan/podinfo:${CLUSTER}",
    ],
)
def test_defaults_and_defined_variables_pass(image: str) -> None:
    assert findings(applied(deployment("podinfo", image), substitute={"CLUSTER": "prod"})) == []


def test_escaped_variables_and_comments_are_not_substituted() -> None:
    manifest = configmap("settings", 'script: "echo $${HOME}"\n# uses ${NOT_A_VALUE}')
    assert findings(applied(manifest, substitute={"CLUSTER": "prod"})) == []


def test_variables_from_in_repository_sources() -> None:
    post_build = (
        "    substituteFrom:\n"
        "      - kind: ConfigMap\n        name: cluster-settings\n"
        "      - kind: Secret\n        name: cluster-secrets\n"
    )
    files = applied(
        deployment("podinfo", IMAGE), substitute={"CLUSTER": "prod"}, post_build=post_build
    )
    files["clusters/prod/settings.yaml"] = configmap("cluster-settings", "PODINFO_TAG: 6.5.4")
    files["clusters/prod/secrets.yaml"] = dedent(
        """
        apiVersion: v1
        kind: Secret
        metadata:
          name: cluster-secrets
          namespace: flux-system
        stringData:
          TOKEN: abc
        """
    )
    assert findings(files) == []
    # Without the ConfigMap, a source is missing from the repository: it may be defined
    # on the cluster, so nothing is reported.
    del files["clusters/prod/settings.yaml"]
    assert findings(files) == []
    # With the ConfigMap but not the variable, it is undefined.
    files["clusters/prod/settings.yaml"] = configmap("cluster-settings", "OTHER: x")
    [finding] = findings(files)
    assert "`${PODINFO_TAG}`" in finding.message


def test_the_opt_out_annotation_is_honoured() -> None:
    manifest = deployment("podinfo", IMAGE).replace(
        "  labels:\n",
        "  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\n  labels:\n",
        1,
    )
    assert findings(applied(manifest, substitute={"CLUSTER": "prod"})) == []


def test_without_post_build_a_variable_stays_in_the_image() -> None:
    manifest = deployment("podinfo", IMAGE)
    [finding] = findings(applied(manifest))
    assert finding.line == line_of(manifest, "image:")
    assert "stays as written because Flux Kustomization flux-system/apps has no postBuild" in (
        finding.message
    )
    assert "InvalidImageName" in finding.message
    # Elsewhere in the object a literal `${X}` is a legitimate string.
    assert findings(applied(configmap("settings", "greeting: ${NAME}"))) == []


def test_an_unknown_flux_version_is_an_error_only_where_every_version_breaks() -> None:
    manifest = configmap("settings", "greeting: hello ${NAME}")
    [warning] = findings(applied(manifest, substitute={"CLUSTER": "prod"}, version=None))
    assert warning.severity == "warning"
    assert "On Flux v2.9 and later (kustomize-controller v1.9.0) the Kustomization fails" in (
        warning.detail
    )
    files = applied(deployment("podinfo", IMAGE), substitute={"CLUSTER": "prod"}, version=None)
    [finding] = findings(files)
    assert finding.severity == "error"
    assert "the image `ghcr.io/stefanprodan/podinfo:` is invalid" in finding.message


def test_a_parent_that_patches_in_post_build_is_trusted() -> None:
    files = applied(deployment("podinfo", IMAGE))
    files["clusters/prod/kustomization.yaml"] = dedent(
        """
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources:
          - flux-system
          - apps.yaml
        patches:
          - target:
              kind: Kustomization
            patch: |
              - op: add
                path: /spec/postBuild
                value:
                  substituteFrom:
                    - kind: Secret
                      name: cluster-secrets
        """
    )
    assert findings(files) == []
