"""helm-render-error: a HelmRelease of an in-repository chart whose render fails, on the
line of the failure, for each HelmRelease and cluster that hits it; the change that makes
a render fail; the hostile charts whose render never ends."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from bot.analysis import Finding, Severity, analyze
from bot.analysis.rendering import CachingRenderer, Renderer, RendererUnavailable
from tests.analysis_helpers import (
    chart_yaml,
    configmap,
    dedent,
    flux_kustomization,
    helm_release,
    kustomization,
    line_of,
    of_rule,
    repo,
    tree,
)
from tests.helm_support import requires_helm

pytestmark = requires_helm

ID = "helm-render-error"

DEPLOYMENT = dedent(
    """
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: {{ include "demo.name" . }}
    spec:
      template:
        spec:
          containers:
            - name: app
              image: {{ .Values.image }}
    """
)
HELPERS = dedent(
    """
    {{- define "demo.name" -}}
    {{ .Release.Name }}
    {{- end }}
    """
)


def renderer() -> Renderer | RendererUnavailable:
    """The process's renderer (what the command line and the App render with)."""
    import bot.helm

    return bot.helm.renderer()


def release(name: str = "demo", values: str = "image: nginx:1.27\n", spec: str = "") -> str:
    text = helm_release(
        name, "./charts/demo", source_kind="GitRepository", source="flux-system", values=values
    )
    return text + "".join(f"  {line}\n" for line in dedent(spec).splitlines())


def platform(**overrides: str) -> dict[str, Any]:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/kustomization.yaml": kustomization(["release.yaml"]),
            "apps/release.yaml": release(),
            "charts/demo/Chart.yaml": chart_yaml("demo", "0.1.0"),
            "charts/demo/values.yaml": "image: nginx:1.25\n",
            "charts/demo/templates/_helpers.tpl": HELPERS,
            "charts/demo/templates/deployment.yaml": DEPLOYMENT,
        }
    )
    files.update(overrides)
    return files


def run(using: Any, head: dict[str, Any], base: dict[str, Any] | None = None) -> list[Finding]:
    result = analyze(tree(head), tree(base) if base is not None else None, renderer=using)
    assert not result.errors, result.errors
    return of_rule(result.findings, ID)


def where(findings: list[Finding]) -> list[tuple[str, int, Severity]]:
    return [(f.path, f.line, f.severity) for f in findings]


def test_a_required_value_nobody_sets_fails_at_the_templates_line():
    template = DEPLOYMENT.replace(
        "{{ .Values.image }}", '{{ required "image is required" .Values.image }}'
    )
    head = platform(
        **{
            "charts/demo/values.yaml": "",
            "charts/demo/templates/deployment.yaml": template,
            "apps/release.yaml": release(values=""),
        }
    )
    (f,) = run(renderer(), head)
    assert where([f]) == [
        ("charts/demo/templates/deployment.yaml", line_of(template, "image:"), Severity.ERROR)
    ]
    assert f.message == (
        "HelmRelease flux-system/demo fails to render on cluster clusters/prod: image is required."
    )
    assert "values from apps/release.yaml" in f.detail
    assert [(r.path, r.line) for r in f.related] == [("apps/release.yaml", 4)]


def test_the_change_that_removes_a_required_value_is_what_breaks_the_render():
    template = DEPLOYMENT.replace(
        "{{ .Values.image }}", '{{ required "image is required" .Values.image }}'
    )
    base = platform(
        **{"charts/demo/values.yaml": "", "charts/demo/templates/deployment.yaml": template}
    )
    head = dict(base)
    head["apps/release.yaml"] = release(values="")
    (f,) = run(renderer(), head, base)
    assert f.introduced and f.message == (
        "This change makes HelmRelease flux-system/demo fail to render on cluster "
        "clusters/prod: image is required."
    )
    assert f.path == "charts/demo/templates/deployment.yaml"
    # The template line is not part of the change: the render at the base tells.
    assert f.line == line_of(template, "image:")


def test_a_typo_in_an_include_fails_at_the_include():
    template = DEPLOYMENT.replace('include "demo.name"', 'include "demo.nmae"')
    head = platform(**{"charts/demo/templates/deployment.yaml": template})
    (f,) = run(renderer(), head)
    assert (f.path, f.line) == ("charts/demo/templates/deployment.yaml", 4)
    assert 'no template "demo.nmae"' in f.message
    # Without a base every failure is reported; a pull request that does not touch the
    # release does not render it and says nothing of it.
    other = dict(head)
    other["README.md"] = "docs\n"
    assert run(renderer(), other, head) == []


def test_a_failing_helper_is_reported_in_the_helper():
    helpers = HELPERS.replace("{{ .Release.Name }}", "{{ .Values.missing.name }}")
    head = platform(**{"charts/demo/templates/_helpers.tpl": helpers})
    (f,) = run(renderer(), head)
    assert (f.path, f.line) == ("charts/demo/templates/_helpers.tpl", 2)
    assert "nil pointer" in f.message


def test_an_umbrella_chart_whose_dependency_was_renamed_fails_at_the_dependency():
    umbrella = chart_yaml("platform", "1.0.0", dependencies=[("demo", "0.1.x", "file://../demo")])
    head = platform(
        **{
            "charts/platform/Chart.yaml": umbrella,
            "charts/platform/templates/cm.yaml": configmap("p"),
            "apps/release.yaml": release().replace("./charts/demo", "./charts/platform"),
        }
    )
    assert run(renderer(), head) == []
    moved = {
        ("charts/web" + p[len("charts/demo") :] if p.startswith("charts/demo/") else p): t
        for p, t in head.items()
    }
    (f,) = run(renderer(), moved, head)
    assert (f.path, f.line) == ("charts/platform/Chart.yaml", line_of(umbrella, "- name: demo"))
    assert f.message.startswith(
        "This change makes HelmRelease flux-system/demo fail to render on cluster "
        "clusters/prod: failed to add local dependency 'demo': no chart found"
    )


def test_values_flux_cannot_compose_fail_at_the_values_from_entry():
    head = platform(
        **{
            "apps/kustomization.yaml": kustomization(["release.yaml", "values.yaml"]),
            "apps/values.yaml": configmap("demo-values", "other.yaml: 'image: x'").replace(
                "name: demo-values", "name: demo-values\n  namespace: flux-system"
            ),
            "apps/release.yaml": release(
                spec="valuesFrom:\n  - kind: ConfigMap\n    name: demo-values\n"
            ),
        }
    )
    (f,) = run(renderer(), head)
    assert (f.path, f.line) == (
        "apps/release.yaml",
        line_of(head["apps/release.yaml"], "- kind: ConfigMap"),
    )
    assert f.message.endswith(
        "could not resolve ConfigMap chart values reference 'flux-system/demo-values' with "
        "key 'values.yaml': key not found."
    )


def test_values_the_schema_refuses():
    schema = '{"type": "object", "properties": {"image": {"type": "string", "pattern": "^[a-z]"}}}'
    head = platform(
        **{
            "charts/demo/values.schema.json": schema,
            "apps/release.yaml": release(values="image: 42\n"),
        }
    )
    (f,) = run(renderer(), head)
    assert f.path == "apps/release.yaml" and "image" in f.message


def test_output_that_is_not_yaml_fails_as_helm_controller_fails_it():
    head = platform(**{"charts/demo/templates/bad.yaml": "a: {{ .Values.image }}\n  b: c\n"})
    (f,) = run(renderer(), head)
    assert (f.path, f.line) == ("charts/demo/templates/bad.yaml", 2)
    assert f.message.startswith(
        "HelmRelease flux-system/demo fails to render on cluster clusters/prod: YAML parse "
        "error on demo/templates/bad.yaml"
    )


def test_one_finding_names_every_release_and_cluster_that_hits_the_failure():
    template = DEPLOYMENT.replace("{{ .Values.image }}", "{{ .Values.image.name }}")
    head = platform(**{"charts/demo/templates/deployment.yaml": template})
    head.update(repo({}, cluster="staging"))
    head["clusters/staging/apps.yaml"] = flux_kustomization("apps", "./apps")
    head["apps/kustomization.yaml"] = kustomization(["release.yaml", "other.yaml"])
    head["apps/other.yaml"] = release("other")
    (f,) = run(renderer(), head)
    assert f.message.startswith(
        "HelmRelease flux-system/demo and 1 more fail to render on clusters clusters/prod "
        "and 1 more:"
    )
    assert f.detail.count("on cluster clusters/staging") == 2
    assert f.detail.count("on cluster clusters/prod") == 2


def test_the_seed_shared_templates_show_both_outcomes():
    """The incident's chart: Helm renders its templates for one cluster, a Flux
    Kustomization applies the same files raw on another. A template change breaks both,
    each in its own way."""
    template = DEPLOYMENT.replace(
        "{{ .Values.image }}",
        '{{ required "global.imageRegistry is required" .Values.global.imageRegistry }}/app:1',
    )
    base = platform(
        **{"charts/demo/values.yaml": "image: nginx:1\nglobal: {}\n"},
    )
    base.update(repo({}, cluster="edge"))
    base["clusters/edge/raw.yaml"] = flux_kustomization("raw", "./charts/demo/templates")
    base["charts/demo/templates/_helpers.tpl"] = "{{/* no helpers */}}\n"
    base["charts/demo/templates/deployment.yaml"] = DEPLOYMENT.replace(
        '{{ include "demo.name" . }}', "demo"
    ).replace("{{ .Values.image }}", "nginx:1")
    head = dict(base)
    head["charts/demo/templates/deployment.yaml"] = template.replace(
        '{{ include "demo.name" . }}', "demo"
    )
    result = analyze(tree(head), tree(base), renderer=renderer())
    line = line_of(template, "image:")
    found = sorted((f.rule, f.path, f.line) for f in result.findings if f.line == line)
    assert found == [
        (ID, "charts/demo/templates/deployment.yaml", line),
        ("helm-template-in-raw-manifest", "charts/demo/templates/deployment.yaml", line),
    ]


# --- hostile charts: the review completes, with a finding -------------------------------


@pytest.fixture(scope="module")
def limited() -> Iterator[Renderer]:
    from bot.helm.pool import ChildRenderer

    pool = CachingRenderer(ChildRenderer(time_limit=3.0, memory_limit=512 * 1024 * 1024))
    yield pool
    pool.close()


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ range 100000000000 }}{{ end }}\n", r"the render exceeded its time limit \(3 s\)"),
        # Go's collector slows the child down as the string grows: on a busy machine the
        # clock may run out before the memory does.
        ('{{ repeat 1000000000 "x" }}\n', "the render exceeded its (memory|time) limit"),
    ],
)
def test_a_template_without_end_is_a_warning_and_the_review_completes(limited, template, message):
    head = platform(**{"charts/demo/templates/hostile.yaml": template})
    head["apps/other.yaml"] = release("other")
    head["apps/kustomization.yaml"] = kustomization(["release.yaml", "other.yaml"])
    findings = run(limited, head)
    # Which template never ends is not known: the chart is, and one finding names both
    # releases (the second is not rendered again: a hostile chart costs one limit).
    assert where(findings) == [("charts/demo/Chart.yaml", 1, Severity.WARNING)]
    assert re.fullmatch(
        "HelmRelease flux-system/demo and 1 more do not render on cluster clusters/prod "
        f"within flux-review's limits: {message}.*; helm-controller would hang or run out of "
        "memory on it too.",
        findings[0].message,
    ), findings[0].message


def test_a_recursive_include_fails_as_helm_fails_it(limited):
    template = '{{- define "r" }}{{ include "r" . }}{{ end }}{{ include "r" . }}\n'
    head = platform(**{"charts/demo/templates/hostile.yaml": template})
    (f,) = run(limited, head)
    assert f.severity is Severity.ERROR and f.path == "charts/demo/templates/hostile.yaml"
    assert f.message == (
        "HelmRelease flux-system/demo fails to render on cluster clusters/prod: error "
        "calling include: rendering template has a nested reference name: r: unable to "
        "execute template."
    )


def test_a_chart_path_that_is_not_there_fails_at_the_helmreleases_chart_line():
    head = platform(**{"apps/release.yaml": release().replace("./charts/demo", "./charts/dmeo")})
    (f,) = run(renderer(), head)
    assert (f.path, f.line) == (
        "apps/release.yaml",
        line_of(head["apps/release.yaml"], "chart: ./"),
    )
    assert f.message == (
        "HelmRelease flux-system/demo fails to render on cluster clusters/prod: "
        "no Chart.yaml in 'charts/dmeo'."
    )


def test_a_suspended_helmrelease_is_not_rendered():
    template = DEPLOYMENT.replace('include "demo.name"', 'include "demo.nmae"')
    head = platform(
        **{
            "charts/demo/templates/deployment.yaml": template,
            "apps/release.yaml": release(spec="suspend: true"),
        }
    )
    result = analyze(tree(head), renderer=renderer())
    assert of_rule(result.findings, ID) == []
    assert result.notes == ["HelmRelease flux-system/demo is not rendered: it is suspended."]
