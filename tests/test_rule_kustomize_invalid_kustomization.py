"""kustomize-invalid-kustomization: what kustomize refuses in a kustomization file."""

from __future__ import annotations

import pytest

from tests.analysis_helpers import (
    configmap,
    dedent,
    deployment,
    flux_kustomization,
    kustomization,
    line_of,
    of_rule,
    repo,
    run,
)

RULE = "kustomize-invalid-kustomization"


def applied(files: dict[str, str], path: str = "./apps") -> dict[str, str | bytes]:
    return repo({"clusters/prod/apps.yaml": flux_kustomization("apps", path), **files})


def nested(text: str) -> dict[str, str | bytes]:
    """`text` as the kustomization of apps/web, which apps/kustomization.yaml lists."""
    return applied(
        {
            "apps/kustomization.yaml": kustomization(["web"]),
            "apps/web/kustomization.yaml": text,
            "apps/web/deployment.yaml": deployment("web"),
            "apps/web/cm.yaml": configmap("web"),
        }
    )


def test_unknown_field() -> None:
    text = "resources:\n  - deployment.yaml\nnamePrefx: prod-\n"
    [finding] = of_rule(run(nested(text)), RULE)
    assert (finding.path, finding.line, finding.severity) == (
        "apps/web/kustomization.yaml",
        line_of(text, "namePrefx"),
        "error",
    )
    assert "unknown field `namePrefx`" in finding.message


def test_unknown_field_inside_a_patch() -> None:
    text = (
        "resources:\n  - deployment.yaml\n  - cm.yaml\npatches:\n  - path: cm.yaml\n"
        "    targets: {}\n"
    )
    [finding] = of_rule(run(nested(text)), RULE)
    assert "unknown field `patches[0].targets`" in finding.message


def test_field_names_match_ignoring_case_like_go() -> None:
    assert of_rule(run(nested("Resources:\n  - deployment.yaml\nNAMEPREFIX: x-\n")), RULE) == []


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("resources: deployment.yaml\n", "`resources` must be a list of strings"),
        (
            "resources:\n  - deployment.yaml\ncommonLabels:\n  enabled: true\n",
            "`commonLabels.enabled` must be a string, not bool (quote it",
        ),
        (
            "resources:\n  - deployment.yaml\nimages:\n  - name: app\n    newTag: 1.10\n",
            "`images[0].newTag` must be a string, not number",
        ),
        ("resources:\n  - deployment.yaml\nnamespace: yes\n", "`namespace` must be a string"),
        ("resources:\n  - deployment.yaml\npatches: cm.yaml\n", "`patches` must be a list"),
    ],
)
def test_wrong_types(text: str, needle: str) -> None:
    [finding] = of_rule(run(nested(text)), RULE)
    assert needle in finding.message


def test_quoted_values_are_strings() -> None:
    text = (
        'resources:\n  - deployment.yaml\ncommonLabels:\n  enabled: "true"\nimages:\n'
        '  - name: app\n    newTag: "1.10"\n'
    )
    assert of_rule(run(nested(text)), RULE) == []


def test_a_nested_kustomization_with_no_entries() -> None:
    [finding] = of_rule(run(nested(kustomization())), RULE)
    assert finding.path == "apps/web/kustomization.yaml"
    assert "kustomization.yaml is empty" in finding.message


def test_an_empty_entry_point_prunes_everything() -> None:
    files = applied({"apps/kustomization.yaml": "# resources:\n#   - web\n"})
    [finding] = of_rule(run(files), RULE)
    assert "prunes everything it applied" in finding.message


def test_an_empty_resources_list_is_an_entry() -> None:
    assert of_rule(run(nested("resources: []\n")), RULE) == []


def test_a_cycle() -> None:
    files = applied(
        {
            "apps/kustomization.yaml": kustomization(["../shared"]),
            "shared/kustomization.yaml": kustomization(["../apps", "cm.yaml"]),
            "shared/cm.yaml": configmap("x"),
        }
    )
    [finding] = of_rule(run(files), RULE)
    assert finding.path == "shared/kustomization.yaml"
    assert "cycle detected" in finding.message


def test_a_patch_whose_target_left_the_build() -> None:
    patch = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  replicas: 3\n"
    text = "resources:\n  - deployment.yaml\npatches:\n  - path: patch.yaml\n"
    files = nested(text)
    files["apps/web/patch.yaml"] = patch
    [finding] = of_rule(run(files), RULE)
    assert (finding.path, finding.line) == (
        "apps/web/kustomization.yaml",
        line_of(text, "path: patch.yaml"),
    )
    assert "is for Deployment api, which is not in this build" in finding.message


def test_patches_that_find_their_target_or_use_a_selector_are_fine() -> None:
    patch = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n"
    text = dedent(
        """
        namePrefix: prod-
        resources:
          - deployment.yaml
        patches:
          - path: patch.yaml
          - target: {kind: Deployment, name: gone}
            patch: |
              - op: replace
                path: /spec/replicas
                value: 1
        patchesStrategicMerge:
          - |-
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: web
            spec:
              replicas: 2
        """
    )
    files = nested(text)
    files["apps/web/patch.yaml"] = patch
    assert of_rule(run(files), RULE) == []


def test_a_patch_is_not_checked_when_part_of_the_build_is_unknown() -> None:
    patch = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  replicas: 3\n"
    text = (
        "resources:\n  - https://github.com/org/repo//deploy?ref=v1\n"
        "patches:\n  - path: patch.yaml\n"
    )
    files = nested(text)
    files["apps/web/patch.yaml"] = patch
    assert of_rule(run(files), RULE) == []


def test_wrong_kind_or_api_version() -> None:
    text = "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Kustomization\nresources: []\n"
    [finding] = of_rule(run(nested(text)), RULE)
    assert "should be kustomize.config.k8s.io/v1beta1" in finding.message


def test_a_kustomization_nothing_applies_is_not_checked() -> None:
    files = applied(
        {
            "apps/web.yaml": deployment("web"),
            "old/kustomization.yaml": "resourcez: [a.yaml]\n",
        }
    )
    assert of_rule(run(files), RULE) == []


def test_a_valid_full_kustomization_is_silent() -> None:
    text = dedent(
        """
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        metadata:
          name: web
        namespace: web
        namePrefix: a-
        labels:
          - pairs: {team: web}
            includeSelectors: true
        commonAnnotations: {owner: me}
        resources: [deployment.yaml]
        images:
          - name: app
            newName: ghcr.io/org/app
            newTag: v1.2.3
        replicas:
          - name: web
            count: 2
        configMapGenerator:
          - name: settings
            literals: [A=b]
            options:
              disableNameSuffixHash: true
        generatorOptions:
          labels: {a: b}
        """
    )
    assert of_rule(run(nested(text)), RULE) == []
