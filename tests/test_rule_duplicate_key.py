"""duplicate-key: a key twice where Helm reads it (the last value wins), and a key twice
where kustomize or Flux read it (the build fails: yaml-syntax-error)."""

from __future__ import annotations

from tests.analysis_helpers import (
    chart_yaml,
    configmap,
    dedent,
    flux_kustomization,
    helm_release,
    helm_repository,
    kustomization,
    line_of,
    repo,
    run,
)

RULE = "duplicate-key"

VALUES = dedent(
    """
    replicaCount: 2
    image:
      repository: ghcr.io/example/podinfo
      tag: 6.5.4
    resources:
      limits:
        memory: 256Mi
    image:
      tag: 6.6.0
    env:
      - name: LOG_LEVEL
        value: info
        value: debug
    """
)


def chart(values: str = VALUES, chart: str | None = None) -> dict[str, str | bytes]:
    return repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/sources.yaml": helm_repository("own", "oci://ghcr.io/example/charts"),
            "apps/podinfo.yaml": helm_release("podinfo", version="1.0.0", source="own"),
            "charts/podinfo/Chart.yaml": chart or chart_yaml("podinfo", "1.0.0"),
            "charts/podinfo/values.yaml": values,
            "charts/podinfo/templates/cm.yaml": configmap("podinfo"),
        }
    )


def summary(files: dict[str, str | bytes]) -> list[tuple[str, str, str, int]]:
    return [(f.rule, f.severity.value, f.path, f.line) for f in run(files)]


def test_duplicate_values_keys_are_warnings_on_the_kept_line() -> None:
    findings = run(chart())
    assert [(f.rule, f.severity.value, f.path, f.line) for f in findings] == [
        (RULE, "warning", "charts/podinfo/values.yaml", line_of(VALUES, "image:", 2)),
        (RULE, "warning", "charts/podinfo/values.yaml", line_of(VALUES, "value: debug")),
    ]
    assert "`image` is defined twice in this values.yaml" in (findings[0].message)
    assert "drops the one on line 2" in findings[0].message
    assert "`env[0].value` is defined twice in this values.yaml" in findings[1].message
    assert f"drops the one on line {line_of(VALUES, 'value: info')}" in findings[1].message


def test_values_without_duplicates_and_merge_keys_are_silent() -> None:
    values = "base: &base\n  a: 1\nfirst:\n  <<: *base\n  <<: *base\n  b: 2\nimage:\n  tag: 1\n"
    assert summary(chart(values)) == []


def test_a_chart_yaml_with_two_versions_is_read_as_helm_reads_it() -> None:
    text = chart_yaml("podinfo", "1.0.0").replace(
        "version: 1.0.0", "version: 0.9.0\nversion: 1.0.0"
    )
    files = chart("replicaCount: 1\n", chart=text)
    # Helm publishes 1.0.0 (the last value): the release pinning 1.0.0 is right.
    assert summary(files) == [
        (RULE, "warning", "charts/podinfo/Chart.yaml", line_of(text, "version: 1.0.0"))
    ]
    files["apps/podinfo.yaml"] = helm_release("podinfo", version="0.9.0", source="own")
    assert sorted(f.rule for f in run(files)) == ["chart-version-mismatch", RULE]


def test_a_file_that_fails_for_another_reason_is_one_syntax_error() -> None:
    values = "image:\n  tag: 1\nimage:\n  tag: 2\nresources: [\n"
    assert [(r, p) for r, _, p, _ in summary(chart(values))] == [
        ("yaml-syntax-error", "charts/podinfo/values.yaml")
    ]


def test_values_applied_raw_by_flux_fail_the_build() -> None:
    # spec.path at the chart directory: kustomize-controller decodes values.yaml as a
    # manifest, and go-yaml v3 rejects the key twice.
    files = chart()
    files["clusters/prod/podinfo.yaml"] = flux_kustomization("podinfo", "./charts/podinfo")
    findings = [f for f in run(files) if f.path == "charts/podinfo/values.yaml"]
    assert [(f.rule, f.severity.value, f.line) for f in findings] == [
        ("yaml-syntax-error", "error", line_of(VALUES, "image:", 2))
    ]
    assert "mapping key 'image' is defined twice (first on line 2)" in findings[0].message


def test_duplicate_keys_in_a_kustomization_are_an_error_naming_the_first_line() -> None:
    text = kustomization(["configmap.yaml"]) + "namespace: apps\nnamespace: web\n"
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/kustomization.yaml": text,
            "apps/configmap.yaml": configmap("web"),
        }
    )
    # One finding for one cause: what the kustomization lists is unknown, so the
    # manifest beside it is not called unlisted.
    [finding] = run(files)
    assert (finding.rule, finding.severity.value, finding.line) == (
        "yaml-syntax-error",
        "error",
        line_of(text, "namespace: web"),
    )
    assert f"(first on line {line_of(text, 'namespace: apps')})" in finding.message
    assert "kustomize" in finding.message


def test_the_first_definition_is_the_related_location() -> None:
    [first, _] = run(chart())
    assert [(r.path, r.line) for r in first.related] == [("charts/podinfo/values.yaml", 2)]
