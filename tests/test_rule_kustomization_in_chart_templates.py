"""kustomization-in-chart-templates: Helm would install a kustomize file as a resource."""

from __future__ import annotations

from tests.analysis_helpers import (
    chart_yaml,
    dedent,
    deployment,
    flux_kustomization,
    kustomization,
    line_of,
    run,
)

RULE = "kustomization-in-chart-templates"
KFILE = "charts/platform/templates/kustomization.yaml"


def chart(**files: str) -> dict[str, str | bytes]:
    return {
        "charts/platform/Chart.yaml": chart_yaml("platform", "1.1.13"),
        "charts/platform/templates/api.yaml": deployment("api"),
        **files,
    }


def test_kustomize_file_in_templates_is_reported_with_the_fix() -> None:
    text = kustomization(["api.yaml"])
    [finding] = run(chart(**{KFILE: text}))
    assert (finding.rule, finding.path, finding.severity) == (RULE, KFILE, "error")
    assert finding.line == line_of(text, "kind: Kustomization")
    assert "add `templates/kustomization.yaml` to `charts/platform/.helmignore`" in (
        finding.message
    )


def test_kustomization_without_api_version_is_reported() -> None:
    [finding] = run(chart(**{KFILE: "resources:\n  - api.yaml\n"}))
    assert finding.rule == RULE


def test_helmignored_kustomization_is_silent() -> None:
    files = chart(
        **{
            KFILE: kustomization(["api.yaml"]),
            "charts/platform/.helmignore": "templates/kustomization.yaml\n",
        }
    )
    assert run(files) == []


def test_kustomization_beside_the_chart_is_silent() -> None:
    files = chart(**{"charts/platform/kustomization.yaml": kustomization(["templates/api.yaml"])})
    assert run(files) == []


def test_flux_kustomization_resource_in_templates_is_silent() -> None:
    # A chart that creates Flux Kustomizations: real cluster resources.
    files = chart(**{KFILE: flux_kustomization("tenant", "./tenants/a")})
    assert run(files) == []


def test_templated_flux_kustomization_resource_in_templates_is_silent() -> None:
    text = dedent(
        """
        {{- range .Values.tenants }}
        ---
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata:
          name: {{ .name }}
          namespace: flux-system
        spec:
          path: ./tenants/{{ .name }}
          sourceRef:
            kind: GitRepository
            name: flux-system
        {{- end }}
        """
    )
    assert run(chart(**{KFILE: text})) == []
