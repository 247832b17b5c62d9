"""yaml-syntax-error: files a controller must parse that it cannot."""

from __future__ import annotations

from tests.analysis_helpers import (
    chart_yaml,
    configmap,
    dedent,
    deployment,
    flux_kustomization,
    kustomization,
    line_of,
    repo,
    run,
)

RULE = "yaml-syntax-error"
PATH = "apps/podinfo/configmap.yaml"
APPS = "Flux Kustomization flux-system/apps"
APPS_AT = "Flux Kustomization flux-system/apps (clusters/prod/apps.yaml)"


def applied(text: str | bytes, path: str = PATH) -> dict[str, str | bytes]:
    return repo({"clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"), path: text})


def only(files: dict[str, str | bytes]) -> tuple[str, int, str]:
    [finding] = run(files)
    assert finding.rule == RULE
    assert finding.severity == "error"
    return finding.path, finding.line, finding.message


def test_bad_indentation() -> None:
    text = dedent(
        """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: podinfo
           namespace: apps
        data:
          color: blue
        """
    )
    path, line, message = only(applied(text))
    assert (path, line) == (PATH, line_of(text, "namespace: apps"))
    assert f"{APPS} cannot read this file" in message


def test_tab_indentation() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: podinfo\n"
    assert only(applied(text))[:2] == (PATH, 4)


def test_duplicate_keys() -> None:
    text = configmap("podinfo", "color: blue\nsize: 3\ncolor: green\n")
    _, line, message = only(applied(text))
    assert line == line_of(text, "color: green")
    assert "mapping key 'color' is defined twice" in message


def test_document_without_kind_in_a_flux_applied_directory() -> None:
    text = deployment("podinfo") + "---\napiVersion: v1\nmetadata:\n  name: podinfo\n"
    _, line, message = only(applied(text))
    assert line == line_of(text, "apiVersion: v1")
    assert "this document has no kind" in message
    assert f"so {APPS} cannot decode it" in message
    [finding] = run(applied(text))
    assert f"Applied as a manifest by {APPS_AT}." == finding.detail


def test_values_file_in_a_flux_applied_directory_is_not_an_object() -> None:
    text = "replicaCount: 3\nimage:\n  tag: 6.5.4\n"
    path, line, message = only(applied(text, "apps/podinfo/values.yaml"))
    assert (path, line) == ("apps/podinfo/values.yaml", 1)
    assert "no apiVersion, kind, metadata.name" in message


def test_not_utf8() -> None:
    text = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: caf\xe9\n"
    _, line, message = only(applied(text))
    assert line == 4
    assert "not valid UTF-8" in message


def test_valid_manifests_lists_and_generate_name_are_silent() -> None:
    files = applied(
        dedent(
            """
            ---
            # leading comment document
            ---
            apiVersion: v1
            kind: List
            items:
              - apiVersion: v1
                kind: ConfigMap
                metadata:
                  name: a
            ---
            apiVersion: batch/v1
            kind: Job
            metadata:
              generateName: migrate-
            spec:
              template:
                spec:
                  restartPolicy: Never
                  containers:
                    - name: migrate
                      image: ghcr.io/example/migrate:1.0
            """
        )
    )
    assert run(files) == []


def test_patch_files_need_not_be_complete_objects() -> None:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps/podinfo"),
            "apps/podinfo/kustomization.yaml": kustomization(
                ["deployment.yaml"],
                extra="""
                patches:
                  - path: replicas.yaml
                    target:
                      kind: Deployment
                """,
            ),
            "apps/podinfo/deployment.yaml": deployment("podinfo"),
            "apps/podinfo/replicas.yaml": "- op: replace\n  path: /spec/replicas\n  value: 3\n",
        }
    )
    assert run(files) == []


def test_broken_kustomization_file() -> None:
    text = "apiVersion: kustomize.config.k8s.io/v1beta1\nresources:\n  - a.yaml\n - b.yaml\n"
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/kustomization.yaml": text,
        }
    )
    path, line, message = only(files)
    assert (path, line) == ("apps/kustomization.yaml", 4)
    assert "kustomize cannot read this file" in message


def test_broken_chart_yaml_and_values() -> None:
    files = {
        "charts/podinfo/Chart.yaml": chart_yaml("podinfo", "1.0.0") + "  extra: [\n",
        "charts/podinfo/values.yaml": "image:\n  tag: 1\n repository: x\n",
    }
    findings = run(files)
    assert [(f.rule, f.path) for f in findings] == [
        (RULE, "charts/podinfo/Chart.yaml"),
        (RULE, "charts/podinfo/values.yaml"),
    ]
    assert all("Helm cannot read this file" in f.message for f in findings)


def test_chart_templates_are_not_checked() -> None:
    files = {
        "charts/podinfo/Chart.yaml": chart_yaml("podinfo", "1.0.0"),
        "charts/podinfo/templates/deployment.yaml": "{{- if .Values.enabled }}\n"
        'metadata:\n  labels:\n    {{- include "podinfo.labels" . | nindent 4 }}\n'
        "{{- end }}\n",
    }
    assert run(files) == []


def test_unconsumed_files_are_not_checked() -> None:
    files = repo(
        {
            "docs/snippets/broken.yaml": "key: [unclosed\n",
            "hack/kind-config.yaml": "kind: Cluster\n\tnodes: 1\n",
        }
    )
    assert run(files) == []


def test_generator_input_is_not_checked() -> None:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps/grafana"),
            "apps/grafana/kustomization.yaml": kustomization(
                extra="""
                configMapGenerator:
                  - name: grafana-dashboards
                    files:
                      - dashboards/cluster.yaml
                """
            ),
            "apps/grafana/dashboards/cluster.yaml": "panels: [\n",
        }
    )
    assert run(files) == []


def test_error_caused_by_a_template_is_reported_once_by_the_template_rule() -> None:
    text = configmap("podinfo", "color: blue\n") + "{{- end }}\n"
    findings = run(applied(text))
    assert [f.rule for f in findings] == ["helm-template-in-raw-manifest"]


def test_chart_directory_applied_raw_by_flux() -> None:
    # spec.path at the chart, not its templates: Chart.yaml and values.yaml are
    # applied as manifests, which they are not.
    files = repo(
        {
            "clusters/prod/platform.yaml": flux_kustomization("platform", "./charts/platform"),
            "charts/platform/Chart.yaml": chart_yaml("platform", "1.0.0"),
            "charts/platform/values.yaml": "replicaCount: 1\n",
            "charts/platform/templates/api.yaml": deployment("api"),
        }
    )
    findings = run(files)
    assert [(f.rule, f.path, f.line) for f in findings] == [
        (RULE, "charts/platform/Chart.yaml", 1),
        (RULE, "charts/platform/values.yaml", 1),
    ]
    assert "this document has no kind, metadata.name" in findings[0].message
    assert "Flux Kustomization flux-system/platform" in findings[0].message
