"""removed-api-version: apiVersions the cluster's Kubernetes no longer serves (error) or
the next minor removes (warning), in built objects and in-repository chart templates."""

from __future__ import annotations

from bot.analysis import Finding
from bot.analysis.findings import Severity
from tests.analysis_helpers import (
    analyze_files,
    chart_yaml,
    dedent,
    flux_kustomization,
    helm_release,
    kustomization,
    line_of,
    of_rule,
    repo,
    run,
)

RULE = "removed-api-version"


def hpa(name: str, api: str = "autoscaling/v2beta2") -> str:
    return dedent(
        f"""
        apiVersion: {api}
        kind: HorizontalPodAutoscaler
        metadata:
          name: {name}
          namespace: web
        spec:
          scaleTargetRef:
            apiVersion: apps/v1
            kind: Deployment
            name: {name}
          minReplicas: 1
          maxReplicas: 3
        """
    )


def flow_schema(api: str = "flowcontrol.apiserver.k8s.io/v1beta3") -> str:
    return dedent(
        f"""
        apiVersion: {api}
        kind: FlowSchema
        metadata:
          name: batch
        spec:
          priorityLevelConfiguration:
            name: workload-low
          matchingPrecedence: 1000
        """
    )


def applied(files: dict[str, str]) -> dict[str, str | bytes]:
    return repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/kustomization.yaml": kustomization(sorted(files)),
            **{f"apps/{name}": text for name, text in files.items()},
        }
    )


def findings(files: dict[str, str | bytes], version: str | None = "1.31") -> list[Finding]:
    config = f'kubernetes_version: "{version}"' if version else None
    return of_rule(run(files, config=config), RULE)


def test_an_apiversion_the_cluster_no_longer_serves_is_an_error_once_with_the_others_related() -> (
    None
):
    found = findings(applied({"a.yaml": hpa("a"), "b.yaml": hpa("b")}))
    assert len(found) == 1
    [finding] = found
    assert (finding.path, finding.line, finding.severity) == ("apps/a.yaml", 1, Severity.ERROR)
    assert finding.message.startswith(
        "HorizontalPodAutoscaler autoscaling/v2beta2 was removed in Kubernetes 1.26: this "
        "cluster (1.31) refuses it; use autoscaling/v2"
    )
    assert "(1 more use of it below)" in finding.message
    assert [(r.path, r.line) for r in finding.related] == [("apps/b.yaml", 1)]
    assert findings(applied({"a.yaml": hpa("a", "autoscaling/v2")})) == []


def test_an_apiversion_the_next_minor_removes_is_a_warning() -> None:
    found = findings(applied({"flow.yaml": flow_schema()}), version="1.31")
    assert [(f.path, f.line, f.severity) for f in found] == [
        ("apps/flow.yaml", 1, Severity.WARNING)
    ]
    assert "removed in Kubernetes 1.32, the next minor after this cluster's 1.31" in (
        found[0].message
    )
    # At 1.32 it is gone; at 1.30 it is two minors away; v1 is served by all.
    assert [f.severity for f in findings(applied({"flow.yaml": flow_schema()}), "1.32")] == [
        Severity.ERROR
    ]
    assert findings(applied({"flow.yaml": flow_schema()}), version="1.30") == []
    twin = flow_schema("flowcontrol.apiserver.k8s.io/v1")
    assert findings(applied({"flow.yaml": twin}), version="1.31") == []


def test_each_cluster_is_judged_by_its_own_version() -> None:
    files = applied({"flow.yaml": flow_schema()})
    files.update(
        {
            f"clusters/edge/{p.split('/', 2)[2]}": t.replace("clusters/prod", "clusters/edge")
            for p, t in repo({}, cluster="edge").items()
            if isinstance(t, str)
        }
    )
    files["clusters/edge/apps.yaml"] = flux_kustomization("apps", "./apps")
    config = 'kubernetes_version: {"clusters/edge": "1.32", "*": "1.30"}'
    found = of_rule(run(files, config=config), RULE)
    assert [(f.severity, "this cluster (1.32)" in f.message) for f in found] == [
        (Severity.ERROR, True)
    ]


def test_the_version_a_kustomize_patch_leaves_is_judged() -> None:
    files = applied({"a.yaml": hpa("a", "autoscaling/v2")})
    files["apps/kustomization.yaml"] = kustomization(
        ["a.yaml"],
        extra=dedent(
            """
            patches:
              - target:
                  kind: HorizontalPodAutoscaler
                patch: |
                  - op: replace
                    path: /apiVersion
                    value: autoscaling/v2beta2
            """
        ),
    )
    [finding] = findings(files)
    text = files["apps/kustomization.yaml"]
    assert isinstance(text, str)
    assert (finding.path, finding.line) == ("apps/kustomization.yaml", line_of(text, "value:"))


CHART = "charts/web"


def chart_files(template: str) -> dict[str, str | bytes]:
    return repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/release.yaml": helm_release(
                "web", "./charts/web", source_kind="GitRepository", source="flux-system"
            ),
            f"{CHART}/Chart.yaml": chart_yaml("web", "1.0.0"),
            f"{CHART}/values.yaml": "enabled: true\n",
            f"{CHART}/templates/hpa.yaml": template,
        }
    )


def test_a_chart_template_apiversion_line_is_judged_unless_a_condition_chooses_it() -> None:
    template = hpa("{{ .Release.Name }}")
    found = of_rule(
        analyze_files(chart_files(template), config='kubernetes_version: "1.31"').findings, RULE
    )
    assert [(f.path, f.line, f.severity) for f in found] == [
        (f"{CHART}/templates/hpa.yaml", 1, Severity.ERROR)
    ]
    chosen = (
        '{{- if .Capabilities.APIVersions.Has "autoscaling/v2" }}\n'
        "apiVersion: autoscaling/v2\n{{- else }}\napiVersion: autoscaling/v2beta2\n{{- end }}\n"
        + hpa("{{ .Release.Name }}").split("\n", 1)[1]
    )
    gated = "{{- if .Values.enabled }}\n" + template + "{{- end }}\n"
    for text in (chosen, gated, hpa("{{ .Release.Name }}", "autoscaling/v2")):
        files = chart_files(text)
        assert of_rule(run(files, config='kubernetes_version: "1.31"'), RULE) == [], text


def test_the_assumed_version_is_said_once() -> None:
    result = analyze_files(
        applied({"flow.yaml": flow_schema("flowcontrol.apiserver.k8s.io/v1beta2")})
    )
    # Assumed, not said: what an upgrade to it breaks, a warning.
    assert [f.severity for f in of_rule(result.findings, RULE)] == [Severity.WARNING]
    assert len([n for n in result.notes if "the newest vendored" in n]) == 1


def test_a_pull_request_adding_a_use_reports_it_and_one_leaving_it_does_not() -> None:
    base = applied({"a.yaml": hpa("a")})
    head = applied({"a.yaml": hpa("a"), "b.yaml": hpa("b")})
    config = 'kubernetes_version: "1.31"'
    [added] = of_rule(run(head, base, config=config), RULE)
    assert added.introduced
    unrelated = applied(
        {"a.yaml": hpa("a"), "c.yaml": flow_schema("flowcontrol.apiserver.k8s.io/v1")}
    )
    assert of_rule(run(unrelated, base, config=config), RULE) == []


def test_a_removal_against_an_assumed_kubernetes_is_a_warning_that_an_upgrade_breaks_it() -> None:
    """Nothing says which Kubernetes the cluster runs: the newest vendored is assumed, and
    a repository written for an older one (that still serves the apiVersion) is not
    broken by it."""
    [finding] = findings(applied({"a.yaml": hpa("a")}), version=None)
    assert finding.severity is Severity.WARNING
    assert finding.message.startswith(
        "HorizontalPodAutoscaler autoscaling/v2beta2 was removed in Kubernetes 1.26: a cluster "
        "on 1.26 or later refuses it"
    )
    assert "Upgrading the cluster breaks what applies it" in finding.message


def test_the_k3s_release_an_ansible_inventory_installs_is_the_clusters_kubernetes() -> None:
    files = applied({"a.yaml": hpa("a")})
    files["ansible/inventory/group_vars/all/k3s.yml"] = (
        'k3s_release_version: "v1.24.8+k3s1"\nk3s_install_hard_links: true\n'
    )
    # 1.24 serves autoscaling/v2beta2, and 1.25 still does.
    assert findings(files, version=None) == []
    files["ansible/inventory/group_vars/all/k3s.yml"] = 'k3s_release_version: "v1.26.0+k3s1"\n'
    [finding] = findings(files, version=None)
    assert finding.severity is Severity.ERROR
    assert "this cluster (1.26) refuses it" in finding.message
    assert "Ansible variable k3s_release_version in ansible/inventory" in (finding.detail or "")
