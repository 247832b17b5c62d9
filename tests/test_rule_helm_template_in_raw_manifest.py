"""helm-template-in-raw-manifest: Helm syntax where nothing renders it."""

from __future__ import annotations

import pytest

from tests.analysis_helpers import (
    chart_yaml,
    configmap,
    dedent,
    deployment,
    flux_kustomization,
    helm_release,
    kustomization,
    line_of,
    of_rule,
    repo,
    rules_of,
    run,
)

RULE = "helm-template-in-raw-manifest"
APPS = "Flux Kustomization flux-system/apps (clusters/prod/apps.yaml)"


def applied(text: str, path: str = "apps/manifest.yaml") -> dict[str, str | bytes]:
    """`text` in a directory that a Flux Kustomization applies raw."""
    return repo({"clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"), path: text})


# --- legitimate {{ }} that must stay silent -------------------------------------------------

EXTERNAL_SECRET = """
apiVersion: external-secrets.io/v1beta1
kind: ExternalSecret
metadata:
  name: postgres
spec:
  refreshInterval: 1h
  secretStoreRef:
    kind: ClusterSecretStore
    name: vault
  target:
    name: postgres-credentials
    template:
      engineVersion: v2
      data:
        DATABASE_URL: "postgres://{{ .username }}:{{ .password }}@postgres:5432/app"
        pgpass: '{{ .username }}:{{ .password }}'
        config.yaml: |
          user: {{ .username }}
          {{- if .password }}
          password: {{ .password | toString }}
          {{- end }}
  dataFrom:
    - extract:
        key: apps/postgres
"""

PROMETHEUS_RULE = """
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: podinfo
  labels:
    release: kube-prometheus-stack
spec:
  groups:
    - name: podinfo.rules
      rules:
        - alert: PodinfoHighErrorRate
          expr: sum(rate(http_requests_total{status=~"5.."}[5m])) by (pod) > 1
          for: 10m
          labels:
            severity: critical
          annotations:
            summary: "High error rate on {{ $labels.pod }}"
            description: Error rate is {{ $value | humanize }} on {{ $labels.instance }}
            runbook_url: 'https://runbooks.example.com/{{ $labels.alertname }}'
"""

ALERTMANAGER_CONFIG = """
apiVersion: monitoring.coreos.com/v1alpha1
kind: AlertmanagerConfig
metadata:
  name: slack
spec:
  route:
    receiver: slack
    groupBy: [alertname]
  receivers:
    - name: slack
      slackConfigs:
        - channel: '#alerts'
          sendResolved: true
          title: '{{ template "slack.default.title" . }}'
          text: >-
            {{ range .Alerts }}*{{ .Annotations.summary }}*
            {{ .Annotations.description }}{{ end }}
"""

ALERTMANAGER_SECRET = """
apiVersion: v1
kind: Secret
metadata:
  name: alertmanager-main
stringData:
  alertmanager.yaml: |
    route:
      receiver: default
    receivers:
      - name: default
        slack_configs:
          - text: '{{ range .Alerts }}{{ .Annotations.description }}{{ end }}'
"""

HELMRELEASE_VALUES = helm_release(
    "podinfo",
    version="6.5.x",
    values="""
    ingress:
      enabled: true
      hosts:
        - host: "{{ .Release.Name }}.example.com"
    podAnnotations:
      checksum: '{{ include "podinfo.config" . | sha256sum }}'
    extraEnvVars:
      - name: RELEASE
        value: "{{ .Release.Name }}-{{ .Values.env }}"
    """,
)

CONFIGMAP_PAYLOAD = configmap(
    "grafana-dashboards",
    """
    dashboard.json: |
      {"title": "{{ .Values.cluster }}", "panels": [{"legendFormat": "{{pod}}"}]}
    values.tmpl: |
      {{- if .Values.enabled }}
      name: {{ .Release.Name }}
      {{- end }}
    motd: "Welcome to {{ .Values.cluster }}"
    """,
)

GITHUB_WORKFLOW = """
name: validate
on:
  pull_request:
jobs:
  kubeconform:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{ github.event.pull_request.head.sha }}
      - run: ./scripts/validate.sh ${{ matrix.cluster }}
      - run: echo '${{ toJson(github.event) }}' > event.json
        env:
          GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}
"""

ANNOTATED_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  annotations:
    kubernetes.io/change-cause: "deployed {{ .Release.Revision }}"
spec:
  selector:
    matchLabels:
      app: podinfo
  template:
    metadata:
      labels:
        app: podinfo
      annotations:
        checksum/config: '{{ include (print $.Template.BasePath "/cm.yaml") . | sha256sum }}'
    spec:
      containers:
        - name: podinfo
          image: ghcr.io/stefanprodan/podinfo:6.5.4
          # image: {{ .Values.image.repository }}:{{ .Values.image.tag }}
"""

NON_HELM_TEMPLATES = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: log-shipper
spec:
  selector:
    matchLabels:
      app: log-shipper
  template:
    metadata:
      labels:
        app: log-shipper
    spec:
      containers:
        - name: shipper
          image: fluent/fluent-bit:3.0
          args:
            - "--format={{ .Time }} {{ .Level }} {{ .Message }}"
            - --label='{{ index .Labels "app" }}'
          env:
            - name: DOCKER_FORMAT
              value: '{{ json .Config }}'
"""

KYVERNO_POLICY = """
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: add-team-label
spec:
  rules:
    - name: add-team
      match:
        any:
          - resources:
              kinds: [Deployment]
      mutate:
        patchStrategicMerge:
          metadata:
            labels:
              team: "{{ request.object.metadata.namespace }}"
"""


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(EXTERNAL_SECRET, id="externalsecret-target-template"),
        pytest.param(PROMETHEUS_RULE, id="prometheusrule-labels"),
        pytest.param(ALERTMANAGER_CONFIG, id="alertmanagerconfig"),
        pytest.param(ALERTMANAGER_SECRET, id="alertmanager-secret"),
        pytest.param(HELMRELEASE_VALUES, id="helmrelease-values"),
        pytest.param(CONFIGMAP_PAYLOAD, id="configmap-block"),
        pytest.param(GITHUB_WORKFLOW, id="github-workflow"),
        pytest.param(ANNOTATED_DEPLOYMENT, id="annotations-and-comments"),
        pytest.param(NON_HELM_TEMPLATES, id="quoted-non-helm-templates"),
        pytest.param(KYVERNO_POLICY, id="kyverno-variables"),
    ],
)
def test_legitimate_templates_are_silent(text: str) -> None:
    files = applied(dedent(text))
    assert of_rule(run(files), RULE) == []


def test_github_workflow_under_flux_root_is_left_out_by_default_ignores() -> None:
    files = repo(
        {
            "clusters/prod/root.yaml": flux_kustomization("root", "./"),
            ".github/workflows/validate.yaml": dedent(GITHUB_WORKFLOW),
            "clusters/prod/app.yaml": deployment("app"),
        }
    )
    # root and flux-system both apply clusters/prod (object-applied-twice says so).
    assert [f for f in run(files) if f.rule != "object-applied-twice"] == []


# --- what breaks ------------------------------------------------------------------------


def test_if_and_end_lines_are_reported_each() -> None:
    text = "{{- if .Values.podinfo.enabled }}\n" + deployment("podinfo") + "{{- end }}\n"
    findings = run(applied(text))
    assert [(f.rule, f.line) for f in findings] == [
        (RULE, 1),
        (RULE, line_of(text, "{{- end }}")),
    ]
    first = findings[0]
    assert first.path == "apps/manifest.yaml"
    assert first.severity == "error"
    assert "`{{- if .Values.podinfo.enabled }}`" in first.message
    assert "applied raw by Flux Kustomization flux-system/apps" in first.message
    assert APPS in first.detail
    assert "the build fails" in first.message


def test_include_nindent_line_is_reported() -> None:
    text = dedent(
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: podinfo
          labels:
            {{- include "podinfo.labels" . | nindent 4 }}
        spec:
          ports:
            - port: 80
        """
    )
    findings = run(applied(text))
    assert [(f.rule, f.line) for f in findings] == [(RULE, 6)]


def test_template_as_key_is_reported() -> None:
    text = dedent(
        """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: settings
          labels:
            {{ .Values.labelKey }}: enabled
        data:
          mode: fast
        """
    )
    assert [(f.rule, f.line) for f in run(applied(text))] == [(RULE, 6)]


def test_quoted_template_key_is_reported() -> None:
    # Valid YAML, but the API server gets a label key that is a Helm expression.
    text = dedent(
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: api
          labels:
            "{{ .Values.labelKey }}": enabled
        spec:
          replicas: 1
        """
    )
    assert [(f.rule, f.line) for f in run(applied(text))] == [(RULE, 6)]


def test_unquoted_image_template_is_one_finding() -> None:
    """The incident: valid-looking image refs turned into Helm expressions."""
    text = deployment("api", "{{ .Values.global.imageRegistry }}/platform-api:1.4.0")
    findings = run(applied(text))
    # Not also yaml-syntax-error or invalid-image-reference for the same line.
    assert rules_of(findings) == [RULE]
    [finding] = findings
    assert finding.line == line_of(text, "image:")
    assert "`{{ .Values.global.imageRegistry }}`" in finding.message


@pytest.mark.parametrize(
    ("field", "line_text"),
    [
        ("image", 'image: "{{ .Values.global.imageRegistry }}/platform-api:1.4.0"'),
        ("image", "image: registry.example.com/{{ .Values.image.name }}:1.4.0"),
        ("name", 'name: "{{ .Release.Name }}-api"'),
        ("replicas", "replicas: '{{ .Values.replicaCount }}'"),
    ],
)
def test_quoted_helm_objects_in_literal_fields_are_reported(field: str, line_text: str) -> None:
    text = dedent(
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: api
        spec:
          replicas: 2
          template:
            spec:
              containers:
                - name: api
                  image: ghcr.io/example/platform-api:1.4.0
        """
    )
    old = {
        "image": "image: ghcr.io/example/platform-api:1.4.0",
        "name": "name: api",
        "replicas": "replicas: 2",
    }[field]
    text = text.replace(old, line_text, 1)
    findings = run(applied(text))
    assert rules_of(findings) == [RULE]
    assert findings[0].line == line_of(text, line_text)
    assert f"literal text in `{field}`" in findings[0].message


def test_sequence_item_template_is_reported() -> None:
    # `- {{ .Values.arg }}` parses as a mapping used as a key: no decoder accepts it.
    text = deployment("api").replace(
        "          ports:",
        "          args:\n            - {{ .Values.extraArg }}\n          ports:",
    )
    findings = run(applied(text))
    assert [(f.rule, f.line) for f in findings] == [(RULE, line_of(text, "{{ .Values.extraArg"))]


def test_file_both_chart_template_and_applied_raw_names_both_consumers() -> None:
    files = repo(
        {
            "clusters/prod/platform.yaml": flux_kustomization(
                "platform-services", "./charts/platform/templates"
            ),
            "charts/platform/Chart.yaml": chart_yaml("platform", "1.1.13"),
            "charts/platform/templates/api.yaml": deployment(
                "api", "{{ .Values.global.imageRegistry }}/platform-api:1.4.0"
            ),
            "charts/platform/templates/worker.yaml": deployment(
                "worker", "ghcr.io/example/platform-worker:1.4.0"
            ),
        }
    )
    [finding] = run(files)
    assert (finding.rule, finding.path) == (RULE, "charts/platform/templates/api.yaml")
    assert "applied raw by Flux Kustomization flux-system/platform-services" in finding.message
    assert (
        "Flux Kustomization flux-system/platform-services (clusters/prod/platform.yaml)"
        in finding.detail
    )
    assert "Helm, which renders it as a template of chart platform" in finding.detail


def test_chart_template_alone_is_not_reported() -> None:
    files = {
        "charts/platform/Chart.yaml": chart_yaml("platform", "1.1.13"),
        "charts/platform/templates/api.yaml": "{{- if .Values.api.enabled }}\n"
        + deployment("api", "{{ .Values.global.imageRegistry }}/platform-api:1.4.0")
        + "{{- end }}\n",
    }
    assert run(files) == []


def test_template_in_chart_crds_is_reported_as_a_helm_crd_problem() -> None:
    crd = dedent(
        """
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata:
          name: {{ .Values.crdName }}
        """
    )
    files = {
        "charts/operator/Chart.yaml": chart_yaml("operator", "0.4.0"),
        "charts/operator/crds/widgets.yaml": crd,
    }
    [finding] = run(files)
    assert (finding.rule, finding.line) == (RULE, 4)
    assert "crds/ of chart operator" in finding.detail
    # Helm, not kustomize, is the one that fails here.
    assert "kustomize" not in finding.message


def test_independent_yaml_error_in_the_same_file_is_still_reported() -> None:
    text = deployment("api", "{{ .Values.image }}").replace(
        "            - containerPort: 8080",
        "            - containerPort: 8080\n             name: http",
    )
    findings = run(applied(text))
    assert [(f.rule, f.line) for f in findings] == [
        (RULE, line_of(text, "{{ .Values.image }}")),
        ("yaml-syntax-error", line_of(text, "name: http")),
    ]


def test_template_reached_through_kustomization_names_the_flux_kustomization() -> None:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps/prod"),
            "apps/prod/kustomization.yaml": kustomization(["../base/api"]),
            "apps/base/api/kustomization.yaml": kustomization(["deployment.yaml"]),
            "apps/base/api/deployment.yaml": deployment("api", "{{ .Values.image }}"),
        }
    )
    [finding] = run(files)
    assert finding.path == "apps/base/api/deployment.yaml"
    assert "applied raw by Flux Kustomization flux-system/apps" in finding.message
    assert "kustomize via apps/base/api/kustomization.yaml" in finding.detail
    assert "built by Flux Kustomization flux-system/apps" in finding.detail


def test_unconsumed_file_with_templates_is_silent() -> None:
    files = repo({"docs/example-deployment.yaml": deployment("x", "{{ .Values.image }}")})
    assert run(files) == []


def test_unquoted_non_helm_template_breaks_yaml_and_says_to_quote() -> None:
    text = dedent(PROMETHEUS_RULE).replace(
        '"High error rate on {{ $labels.pod }}"', "{{ $labels.pod }} has a high error rate"
    )
    findings = run(applied(text))
    assert rules_of(findings) == [RULE]
    [finding] = findings
    assert finding.line == line_of(text, "{{ $labels.pod }} has")
    assert "Helm template" not in finding.message
    assert "quote" in finding.detail
    assert finding.suggestion == '            summary: "{{ $labels.pod }} has a high error rate"'


def test_helm_syntax_beside_a_payload_document_is_still_reported() -> None:
    """A HelmRelease's values are Helm's to render; a Deployment in the same file is not."""
    image = 'image: "{{ .Values.global.imageRegistry }}/platform-api:1.4.0"'
    text = HELMRELEASE_VALUES.rstrip("\n") + "\n---\n" + deployment("api", "placeholder")
    text = text.replace("image: placeholder", image)
    assert image in text
    [finding] = of_rule(run(applied(text)), RULE)
    assert finding.line == line_of(text, image)


def test_a_payload_document_that_helm_syntax_breaks_is_reported() -> None:
    """In a HelmRelease too, an unquoted `{{` where YAML expects structure breaks the file
    before anything renders it."""
    text = HELMRELEASE_VALUES.replace(
        "    podAnnotations:", "    {{- if .Values.annotated }}\n    podAnnotations:"
    )
    assert "{{- if" in text
    findings = of_rule(run(applied(text)), RULE)
    assert [f.line for f in findings] == [line_of(text, "{{- if .Values.annotated }}")]
