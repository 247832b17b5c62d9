"""kubernetes-schema: objects as their cluster's Flux builds them, against the schema of
the cluster's Kubernetes minor; each mistake beside its correct twin."""

from __future__ import annotations

from typing import Any

import pytest

from bot.analysis import Finding, analyze
from bot.analysis.k8sschemas.validate import KindValidator, SchemaProblem, problems
from bot.analysis.rules import kubernetes_schema
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
    tree,
)
from tests.helm_support import requires_helm

RULE = "kubernetes-schema"
PATH = "apps/web/deployment.yaml"


def web(
    *,
    replicas: str = "replicas: 2",
    pull: str = "IfNotPresent",
    port: str = "8080",
    container: str = "- name: web\n          image: nginx:1.27",
    memory: str = "128Mi",
) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: web
spec:
  {replicas}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        {container}
          imagePullPolicy: {pull}
          ports:
            - containerPort: {port}
          resources:
            limits:
              memory: {memory}
"""


def applied(manifest: str, ks: str | None = None, **extra: str) -> dict[str, str | bytes]:
    return repo(
        {
            "clusters/prod/apps.yaml": ks or flux_kustomization("apps", "./apps/web"),
            "apps/web/kustomization.yaml": kustomization(["deployment.yaml"]),
            PATH: manifest,
            **extra,
        }
    )


def found(files: dict[str, str | bytes], config: str | None = None) -> list[tuple[str, int]]:
    return sorted((f.path, f.line) for f in of_rule(run(files, config=config), RULE))


def only(files: dict[str, str | bytes], config: str | None = None) -> Finding:
    findings = of_rule(run(files, config=config), RULE)
    assert len(findings) == 1, findings
    return findings[0]


@pytest.mark.parametrize(
    ("wrong", "right", "needle", "says"),
    [
        (
            web(replicas="replica: 2"),
            web(),
            "replica: 2",
            "`.spec.replica` is not a field of Deployment apps/v1 (did you mean `replicas`?)",
        ),
        (
            web(pull="Sometimes"),
            web(pull="Always"),
            "Sometimes",
            '`.spec.template.spec.containers[0].imagePullPolicy` is "Sometimes": Deployment '
            "apps/v1 accepts Always, IfNotPresent, Never",
        ),
        (
            web(port="0"),
            web(port="65535"),
            "containerPort: 0",
            "`.spec.template.spec.containers[0].ports[0].containerPort` is 0: must be between "
            "1 and 65535",
        ),
        (
            web(container="- image: nginx:1.27"),
            web(),
            "- image: nginx:1.27",
            "`.spec.template.spec.containers[0].name` is required by Deployment apps/v1 and "
            "missing",
        ),
        (
            web(replicas='replicas: "2"'),
            web(replicas="replicas: 2"),
            'replicas: "2"',
            '`.spec.replicas` must be an integer, not a string ("2")',
        ),
        (
            web(memory="lots"),
            web(memory="1Gi"),
            "memory: lots",
            '`.spec.template.spec.containers[0].resources.limits.memory` "lots" is not a quantity',
        ),
    ],
    ids=["unknown-field", "enum", "range", "required", "type", "quantity"],
)
def test_a_mistake_the_api_server_refuses_and_its_correct_twin(
    wrong: str, right: str, needle: str, says: str
) -> None:
    finding = only(applied(wrong))
    assert (finding.path, finding.line) == (PATH, line_of(wrong, needle))
    assert finding.message.startswith(says)
    # The consequence is in the message (shortened to fit a line), the whole sentence in
    # the detail.
    assert finding.message.endswith("Flux Kustomization flux-system/apps fails to apply it.")
    assert len(finding.message) <= 200
    assert (
        "The API server refuses Deployment web/web, and Flux Kustomization flux-system/apps "
        "fails to apply it." in finding.message + " " + (finding.detail or "")
    )
    assert found(applied(right)) == []


def test_a_service_external_traffic_policy_outside_its_enum() -> None:
    # validateServiceExternalTrafficPolicy accepts Cluster and Local only (and nothing
    # at all for a Service that is not externally accessible).
    def lb(policy: str) -> str:
        return (
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: web\n"
            f"spec:\n  type: LoadBalancer\n  externalTrafficPolicy: {policy}\n"
            "  selector:\n    app: web\n  ports:\n    - port: 80\n"
        )

    finding = only(applied(lb("Locale")))
    assert finding.line == line_of(lb("Locale"), "Locale")
    assert finding.message.startswith(
        '`.spec.externalTrafficPolicy` is "Locale": Service v1 accepts Cluster, Local'
    )
    assert found(applied(lb("Local"))) == []


def test_an_unknown_field_comes_with_the_line_that_fixes_it() -> None:
    finding = only(applied(web(replicas="replica: 2")))
    assert finding.suggestion == "  replicas: 2"
    # The missing `replicas` it stands for is not a second finding (it is not required).
    assert "required" not in finding.message


def test_the_flux_kustomization_patch_that_sets_a_bad_value_is_where_it_is_reported() -> None:
    def ks(value: str) -> str:
        return flux_kustomization("apps", "./apps/web") + (
            "  patches:\n"
            "    - target:\n"
            "        kind: Deployment\n"
            "      patch: |\n"
            "        - op: replace\n"
            "          path: /spec/template/spec/containers/0/imagePullPolicy\n"
            f"          value: {value}\n"
        )

    bad = ks("Sometimes")
    finding = only(applied(web(), bad))
    assert (finding.path, finding.line) == ("clusters/prod/apps.yaml", line_of(bad, "Sometimes"))
    assert found(applied(web(), ks("Never"))) == []


def test_a_kustomize_patch_file_that_sets_a_bad_value_is_where_it_is_reported() -> None:
    def patched(port: str) -> dict[str, str | bytes]:
        files = applied(web())
        files["apps/web/kustomization.yaml"] = kustomization(
            ["deployment.yaml"], extra="patches:\n  - path: port.yaml\n"
        )
        files["apps/web/port.yaml"] = dedent(
            f"""
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: web
              namespace: web
            spec:
              template:
                spec:
                  containers:
                    - name: web
                      ports:
                        - containerPort: {port}
            """
        )
        return files

    files = patched("70000")
    finding = only(files)
    patch = files["apps/web/port.yaml"]
    assert isinstance(patch, str)
    assert (finding.path, finding.line) == ("apps/web/port.yaml", line_of(patch, "70000"))
    assert found(patched("9090")) == []


def test_a_value_flux_substitutes_from_outside_is_not_judged_and_one_it_knows_is() -> None:
    manifest = web(pull="${PULL_POLICY}")

    def ks(source: str) -> str:
        return flux_kustomization("apps", "./apps/web") + "  postBuild:\n" + source

    # A ConfigMap the cluster has but the repository does not: the value is not known.
    outside = ks("    substituteFrom:\n      - kind: ConfigMap\n        name: cluster-vars\n")
    assert found(applied(manifest, outside)) == []
    # Still `${...}` after the build (an escaped variable would be the same): not judged.
    assert found(applied(web(replicas="replicas: ${REPLICAS}"), outside)) == []
    # A value the Flux Kustomization substitutes itself is judged, on the line that asks
    # for it; the detail says where the value comes from.
    inline = ks("    substitute:\n      PULL_POLICY: Sometimes\n")
    finding = only(applied(manifest, inline))
    assert (finding.path, finding.line) == (PATH, line_of(manifest, "${PULL_POLICY}"))
    assert "substituted by Flux Kustomization flux-system/apps" in finding.detail
    assert found(applied(manifest, ks("    substitute:\n      PULL_POLICY: Never\n"))) == []


CRD = dedent(
    """
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata:
      name: backups.example.com
    spec:
      group: example.com
      names:
        kind: Backup
        plural: backups
      scope: Namespaced
      versions:
        - name: v1
          served: true
          storage: true
          schema:
            openAPIV3Schema:
              type: object
              properties:
                spec:
                  type: object
                  required: [schedule]
                  properties:
                    schedule:
                      type: string
                    keep:
                      type: integer
                      minimum: 1
    """
)


def backup(spec: str) -> str:
    return dedent(
        """
        apiVersion: example.com/v1
        kind: Backup
        metadata:
          name: nightly
          namespace: web
        spec:
        """
    ) + "".join(f"  {line}\n" for line in spec.splitlines())


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ('schedule: "@daily"\nkepp: 3', "`.spec.kepp` is not a field of Backup example.com/v1"),
        ('schedule: "@daily"\nkeep: 0', "`.spec.keep` is 0: must be at least 1"),
        ("keep: 3", "`.spec.schedule` is required by Backup example.com/v1 and missing"),
    ],
)
def test_a_custom_resource_is_checked_against_the_crd_its_cluster_applies(
    spec: str, says: str
) -> None:
    files = applied(web(), **{"apps/web/backup.yaml": backup(spec)})
    files["apps/web/kustomization.yaml"] = kustomization(
        ["crd.yaml", "deployment.yaml", "backup.yaml"]
    )
    files["apps/web/crd.yaml"] = CRD
    finding = only(files)
    assert finding.path == "apps/web/backup.yaml"
    assert finding.message.startswith(says)
    files["apps/web/backup.yaml"] = backup('schedule: "@daily"\nkeep: 3')
    assert found(files) == []


def test_a_custom_resource_of_a_crd_from_elsewhere_is_not_judged() -> None:
    files = applied(web(), **{"apps/web/backup.yaml": backup("kepp: 0")})
    files["apps/web/kustomization.yaml"] = kustomization(["deployment.yaml", "backup.yaml"])
    assert found(files) == []


def test_flux_objects_are_left_to_flux_schema() -> None:
    ks = flux_kustomization("apps", "./apps/web").replace("  prune: true", "  prun: true")
    findings = run(applied(web(), ks))
    assert of_rule(findings, RULE) == []
    assert [f.rule for f in findings if "prun" in f.message] == ["flux-schema"]


def test_each_cluster_is_judged_by_its_own_kubernetes_version() -> None:
    # `resizePolicy` is a field of Container from Kubernetes 1.33 on; the cluster the
    # config says runs 1.33 has it, as does the newest.
    manifest = web(pull="IfNotPresent\n          resizePolicy: []")
    assert found(applied(manifest), config='kubernetes_version: "1.33"') == []


def test_the_assumed_kubernetes_version_is_said_once_when_a_finding_depends_on_it() -> None:
    result = analyze_files(applied(web(pull="Sometimes")))
    notes = [n for n in result.notes if "Kubernetes objects were checked against" in n]
    assert len(notes) == 1
    assert "the newest vendored" in notes[0] and "kubernetes_version" in notes[0]
    configured = analyze_files(applied(web(pull="Sometimes")), config='kubernetes_version: "1.34"')
    assert [
        (f.detail or "").split(" Built for")[0] for f in of_rule(configured.findings, RULE)
    ] == ["Checked against Kubernetes 1.34 (the config's kubernetes_version)."]
    assert not [n for n in configured.notes if "Kubernetes objects" in n]
    # Nothing wrong: the version does not matter, and nothing is said.
    clean = analyze_files(applied(web()))
    assert not [n for n in clean.notes if "Kubernetes objects" in n]


def test_the_repository_says_which_kubernetes_the_cluster_runs() -> None:
    files = applied(web(pull="Sometimes"))
    files["talos/talconfig.yaml"] = dedent(
        """
        clusterName: home
        talosVersion: v1.9.0
        kubernetesVersion: v1.34.2
        """
    )
    result = analyze_files(files)
    [finding] = of_rule(result.findings, RULE)
    assert finding.detail.startswith(
        "Checked against Kubernetes 1.34 (kubernetesVersion of the talhelper/topf config in "
        "talos/talconfig.yaml)."
    )
    assert not [n for n in result.notes if "Kubernetes objects" in n]


# --- pull requests ----------------------------------------------------------------------


def two_apps(web_manifest: str, api_manifest: str) -> dict[str, str | bytes]:
    files = applied(web_manifest)
    files["apps/web/kustomization.yaml"] = kustomization(["deployment.yaml", "api.yaml"])
    files["apps/web/api.yaml"] = api_manifest
    return files


def api(pull: str = "IfNotPresent") -> str:
    return web(pull=pull).replace("web", "api")


def test_a_pull_request_reports_what_it_introduces_as_a_full_analysis_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = two_apps(web(pull="Sometimes"), api())
    head = two_apps(web(pull="Sometimes"), api(pull="Often"))
    full = [f for f in run(head, base, report_all=True) if f.rule == RULE]
    assert sorted((f.path, f.line, f.introduced) for f in full) == [
        ("apps/web/api.yaml", line_of(api("Often"), "Often"), True),
        (PATH, line_of(web(pull="Sometimes"), "Sometimes"), False),
    ]

    judged: list[str] = []

    def spy(compiled: KindValidator, instance: Any, what: str) -> list[SchemaProblem]:
        judged.append(instance["metadata"]["name"])
        return problems(compiled, instance, what)

    monkeypatch.setattr(kubernetes_schema, "problems", spy)
    introduced = of_rule(run(head, base), RULE)
    assert [(f.path, f.line, f.message) for f in introduced] == [
        (f.path, f.line, f.message) for f in full if f.introduced
    ]
    # Only the Deployment the change changed was validated, at the head and the base.
    assert sorted(set(judged)) == ["api"]


def test_a_pull_request_that_fixes_nothing_and_breaks_nothing_reports_nothing() -> None:
    base = two_apps(web(pull="Sometimes"), api())
    head = two_apps(web(pull="Sometimes"), api().replace("replicas: 2", "replicas: 3"))
    assert of_rule(run(head, base), RULE) == []


def test_a_pull_request_that_moves_a_bad_value_into_a_patch_reports_it_there() -> None:
    base = applied(web(pull="Sometimes"))
    head = applied(web(pull="Sometimes"))
    head["apps/web/kustomization.yaml"] = kustomization(
        ["deployment.yaml"], extra="patches:\n  - path: port.yaml\n"
    )
    head["apps/web/port.yaml"] = dedent(
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
          namespace: web
        spec:
          template:
            spec:
              containers:
                - name: web
                  ports:
                    - containerPort: 0
        """
    )
    introduced = of_rule(run(head, base), RULE)
    assert [(f.path, f.introduced) for f in introduced] == [("apps/web/port.yaml", True)]


# --- what Helm renders ------------------------------------------------------------------

CHART_DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  selector:
    matchLabels:
      app: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app: {{ .Release.Name }}
    spec:
      containers:
        - name: app
          image: ghcr.io/example/app:1.0.0
          imagePullPolicy: {{ .Values.pullPolicy }}
"""


@requires_helm
@pytest.mark.parametrize(("policy", "expected"), [("Sometimes", 1), ("Always", 0)])
def test_what_a_helmrelease_of_an_in_repository_chart_renders_is_judged_on_the_template_line(
    policy: str, expected: int
) -> None:
    import bot.helm

    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/kustomization.yaml": kustomization(["release.yaml"]),
            "apps/release.yaml": helm_release(
                "demo", "./charts/demo", source_kind="GitRepository", source="flux-system"
            ),
            "charts/demo/Chart.yaml": chart_yaml("demo", "0.1.0"),
            "charts/demo/values.yaml": f"pullPolicy: {policy}\n",
            "charts/demo/templates/deployment.yaml": CHART_DEPLOYMENT,
        }
    )
    result = analyze(tree(files), renderer=bot.helm.renderer())
    findings = of_rule(result.findings, RULE)
    line = line_of(CHART_DEPLOYMENT, "imagePullPolicy")
    assert [(f.path, f.line) for f in findings] == [
        ("charts/demo/templates/deployment.yaml", line)
    ] * expected
    for finding in findings:
        # helm-controller applies it: the release fails, and it is named.
        assert finding.message.endswith("HelmRelease flux-system/demo fails to install or upgrade.")
        assert [(r.path, r.line) for r in finding.related] == [("apps/release.yaml", 4)]


def test_without_a_cluster_the_kustomize_builds_of_the_repository_are_judged() -> None:
    files: dict[str, str | bytes] = {
        "deploy/kustomization.yaml": kustomization(["deployment.yaml"]),
        "deploy/deployment.yaml": web(pull="Sometimes"),
    }
    assert [(f.path, f.severity.value) for f in of_rule(run(files), RULE)] == [
        ("deploy/deployment.yaml", "error")
    ]
    files["deploy/deployment.yaml"] = web()
    assert of_rule(run(files), RULE) == []


def test_sops_encrypted_objects_are_judged_as_kustomize_controller_decrypts_them() -> None:
    secret = dedent(
        """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: settings
          namespace: web
        data:
          token: ENC[AES256_GCM,data:Zm9v,iv:YmFy,tag:YmF6,type:str]
        sops:
          age:
            - recipient: age1example
          lastmodified: "2025-01-01T00:00:00Z"
          version: 3.9.0
        """
    )
    files = applied(web(), **{"apps/web/settings.yaml": secret})
    files["apps/web/kustomization.yaml"] = kustomization(["deployment.yaml", "settings.yaml"])
    assert found(files) == []
    typo = secret.replace("\ndata:\n", "\ndta:\n")
    files["apps/web/settings.yaml"] = typo
    assert [line for _, line in found(files)] == [line_of(typo, "dta:")]


def _edits() -> list[tuple[str, dict[str, str | None]]]:
    """Changes to `two_apps(web(pull="Sometimes"), api())`: path -> new text (None:
    removed). A full analysis finds 0, 1, 1, 1, 0, 0 and 2 introduced."""
    bad_web = web(pull="Sometimes")
    return [
        ("a comment line above the bad value", {PATH: "# web\n" + bad_web}),
        ("the bad line reformatted", {PATH: bad_web.replace("Sometimes", "Sometimes  # ?")}),
        ("the file renamed", {PATH: None, "apps/web/web.yaml": bad_web}),
        ("a second bad value", {"apps/web/api.yaml": api(pull="Often")}),
        ("the bad value fixed", {PATH: web()}),
        ("an unrelated object changed", {"apps/web/api.yaml": api().replace("2", "3", 1)}),
        (
            "a patch that breaks both",
            {
                "apps/web/kustomization.yaml": kustomization(
                    ["deployment.yaml", "api.yaml"],
                    extra=(
                        "patches:\n  - target:\n      kind: Deployment\n    patch: |\n"
                        "      - op: add\n        path: /spec/paused\n        value: maybe\n"
                    ),
                )
            },
        ),
    ]


@pytest.mark.parametrize(("what", "edit"), _edits(), ids=[w for w, _ in _edits()])
def test_a_pull_request_reports_exactly_what_a_full_analysis_finds_introduced(
    what: str, edit: dict[str, str | None]
) -> None:
    base = two_apps(web(pull="Sometimes"), api())
    head = dict(base)
    for path, text in edit.items():
        if text is None:
            del head[path]
        else:
            head[path] = text
    if "apps/web/web.yaml" in head:
        head["apps/web/kustomization.yaml"] = kustomization(["web.yaml", "api.yaml"])
    full = sorted(
        (f.path, f.line, f.message)
        for f in run(head, base, report_all=True)
        if f.rule == RULE and f.introduced
    )
    assert full == sorted((f.path, f.line, f.message) for f in of_rule(run(head, base), RULE))
    expected = {"the bad line reformatted": 1, "the file renamed": 1, "a second bad value": 1}
    assert len(full) == expected.get(what, 2 if "patch" in what else 0)
