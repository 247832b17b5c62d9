"""Precision on what working public GitOps repositories contain.

Each test is one pattern found in real repositories (home-ops repositories and their
cluster templates, Flux's example repositories, platform monorepos) that a careless rule
would flag. The analysis must not report an `error` for any of them: these repositories
work. Each test asserts more than that: nothing at all is reported, not even a warning.
"""

# The YAML below keeps the line lengths of the real files it imitates.
# ruff: noqa: E501

from __future__ import annotations

from pathlib import Path

import pytest

from bot.analysis import Finding, analyze
from bot.analysis.snapshot import Snapshot
from bot.gitrepo import GitTree, remote_urls
from tests.analysis_helpers import (
    Files,
    chart_yaml,
    dedent,
    flux_kustomization,
    gotk_sync,
    home_ops_root,
    kustomization,
    repo,
    run,
    tenant_sync,
    tree,
)
from tests.fakegithub.gitrepo import GitRepo


def applied(files: Files, path: str = "./kubernetes/apps") -> dict[str, str | bytes]:
    """`files` in a repository whose Flux Kustomization `apps` applies `path` raw."""
    return repo({"clusters/prod/apps.yaml": flux_kustomization("apps", path), **files})


def describe(findings: list[Finding]) -> list[tuple[str, str, int, str]]:
    return [(f.rule, f.path, f.line, f.message) for f in findings]


# --- policy engines ------------------------------------------------------------------------

KYVERNO_DISALLOW_LATEST = """
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: disallow-latest-tag
  annotations:
    policies.kyverno.io/title: Disallow Latest Tag
    policies.kyverno.io/description: >-
      The ':latest' tag is mutable. This policy validates that the image
      specifies a tag and that it is not called `latest`.
spec:
  validationFailureAction: Audit
  background: true
  rules:
    - name: require-image-tag
      match:
        any:
          - resources:
              kinds:
                - Pod
      validate:
        message: "An image tag is required."
        pattern:
          spec:
            containers:
              - image: "*:*"
    - name: validate-image-tag
      match:
        any:
          - resources:
              kinds:
                - Pod
      validate:
        message: "Using a mutable image tag e.g. 'latest' is not allowed."
        pattern:
          spec:
            containers:
              - image: "!*:latest"
            =(initContainers):
              - image: "!*:latest"
"""


def test_kyverno_image_patterns_are_not_images() -> None:
    files = applied(
        {"kubernetes/apps/kyverno/policies/disallow-latest.yaml": KYVERNO_DISALLOW_LATEST}
    )
    assert describe(run(files)) == []


def test_kyverno_variables_and_functions_are_not_helm() -> None:
    policy = """
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: sync-labels
spec:
  rules:
    - name: add-labels
      match:
        any:
          - resources:
              kinds: [Deployment]
      context:
        - name: team
          apiCall:
            urlPath: "/api/v1/namespaces/{{ request.namespace }}"
            jmesPath: "metadata.labels.team || 'none'"
      mutate:
        patchStrategicMerge:
          metadata:
            labels:
              team: "{{ team }}"
              app: "{{ lookup(request.object.metadata.labels, 'app') || request.object.metadata.name }}"
          spec:
            template:
              spec:
                containers:
                  - (name): "*"
                    image: "{{ images.containers.\\"{{element.name}}\\".registry }}/mirror"
"""
    files = applied({"kubernetes/apps/kyverno/policies/labels.yaml": policy})
    assert describe(run(files)) == []


def test_gatekeeper_constraint_templates_are_silent() -> None:
    template = """
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8sallowedrepos
spec:
  crd:
    spec:
      names:
        kind: K8sAllowedRepos
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8sallowedrepos
        violation[{"msg": msg}] {
          container := input.review.object.spec.containers[_]
          msg := sprintf("container <%v> has an invalid image repo <%v>", [container.name, container.image])
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sAllowedRepos
metadata:
  name: repo-is-ghcr
spec:
  parameters:
    repos:
      - "ghcr.io/example/"
"""
    files = applied({"kubernetes/apps/gatekeeper/constraints.yaml": template})
    assert describe(run(files)) == []


# --- other programs' templates in raw manifests ---------------------------------------------


def test_argo_workflow_templates_are_silent() -> None:
    workflow = """
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: build
spec:
  entrypoint: main
  arguments:
    parameters:
      - name: image
        value: ghcr.io/example/app
  templates:
    - name: main
      inputs:
        parameters:
          - name: image
          - name: config
      container:
        image: "{{inputs.parameters.image}}:{{workflow.parameters.tag}}"
        args: ["--config", "{{=toJson(inputs.parameters.config)}}"]
    - name: steps
      steps:
        - - name: build
            template: main
            arguments:
              parameters:
                - name: image
                  value: "{{workflow.parameters.image}}"
"""
    files = applied({"kubernetes/apps/ci/workflow.yaml": workflow})
    assert describe(run(files)) == []


def test_image_update_automation_message_template_is_silent() -> None:
    automation = """
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 30m
  sourceRef:
    kind: GitRepository
    name: flux-system
  git:
    checkout:
      ref:
        branch: main
    commit:
      author:
        email: fluxcdbot@users.noreply.github.com
        name: fluxcdbot
      messageTemplate: '{{range .Changed.Changes}}{{print .OldValue}} -> {{println .NewValue}}{{end}}'
    push:
      branch: main
  update:
    path: ./kubernetes
    strategy: Setters
"""
    files = applied({"kubernetes/apps/flux-system/image-automation.yaml": automation})
    assert describe(run(files)) == []


def test_grafana_operator_resources_are_silent() -> None:
    resources = """
apiVersion: grafana.integreatly.org/v1beta1
kind: GrafanaContactPoint
metadata:
  name: slack
spec:
  instanceSelector:
    matchLabels:
      dashboards: grafana
  type: slack
  settings:
    title: '{{ template "slack.title" . }}'
    text: "{{ range .Alerts }}{{ .Annotations.summary }} ({{ .Values.B }}){{ end }}"
---
apiVersion: grafana.integreatly.org/v1beta1
kind: GrafanaNotificationTemplate
metadata:
  name: slack-title
spec:
  instanceSelector:
    matchLabels:
      dashboards: grafana
  name: slack.title
  template: '{{ define "slack.title" }}[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}{{ end }}'
---
apiVersion: grafana.integreatly.org/v1beta1
kind: GrafanaDashboard
metadata:
  name: node
spec:
  instanceSelector:
    matchLabels:
      dashboards: grafana
  json: >
    {"panels": [{"targets": [{"legendFormat": "{{instance}}"}]}]}
"""
    files = applied({"kubernetes/apps/observability/grafana/resources.yaml": resources})
    assert describe(run(files)) == []


def test_kustomize_helm_charts_inline_values_are_silent() -> None:
    files = applied(
        {
            "kubernetes/apps/kube-system/cilium/kustomization.yaml": dedent(
                """
                apiVersion: kustomize.config.k8s.io/v1beta1
                kind: Kustomization
                helmCharts:
                  - name: cilium
                    repo: https://helm.cilium.io
                    version: 1.16.5
                    releaseName: cilium
                    namespace: kube-system
                    valuesFile: values.yaml
                    valuesInline:
                      ipam:
                        operator:
                          clusterPoolIPv4PodCIDRList: ["10.42.0.0/16"]
                      hubble:
                        ui:
                          ingress:
                            hosts: ["hubble.{{ .Release.Namespace }}.example.com"]
                """
            ),
            "kubernetes/apps/kube-system/cilium/values.yaml": dedent(
                """
                operator:
                  replicas: 1
                  podAnnotations:
                    checksum: "{{ include (print $.Template.BasePath \\"/cm.yaml\\") . | sha256sum }}"
                """
            ),
        }
    )
    assert describe(run(files)) == []


def test_vault_agent_and_nginx_annotations_are_silent() -> None:
    deployment = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  annotations:
    nginx.ingress.kubernetes.io/configuration-snippet: |
      more_set_headers "X-Release: {{ .Release.Name }}";
spec:
  selector:
    matchLabels:
      app: app
  template:
    metadata:
      labels:
        app: app
      annotations:
        vault.hashicorp.com/agent-inject-template-db: |
          {{- with secret "database/creds/app" -}}
          postgres://{{ .Data.username }}:{{ .Data.password }}@db:5432/app
          {{- end }}
        checksum/config: '{{ include "app.config" . | sha256sum }}'
    spec:
      containers:
        - name: app
          image: ghcr.io/example/app:1.0.0
          env:
            - name: GREETING
              value: "hello {{ .name }}"
"""
    files = applied({"kubernetes/apps/default/app/deployment.yaml": deployment})
    assert describe(run(files)) == []


def test_configmap_payloads_of_every_shape_are_silent() -> None:
    configmaps = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: gatus
data:
  config.yaml: |
    endpoints:
      - name: "{{ .Name }}"
        url: https://example.com
  template.tmpl: '{{ define "x" }}{{ .Values.foo | toYaml | nindent 2 }}{{ end }}'
  inline: "{{ include \\"x\\" . }}"
  values.yaml: |-
    {{- if .Values.enabled }}
    enabled: true
    {{- end }}
---
apiVersion: v1
kind: Secret
metadata:
  name: alertmanager
type: Opaque
stringData:
  alertmanager.yaml: |
    templates: ['/etc/alertmanager/*.tmpl']
    receivers:
      - name: pushover
        pushover_configs:
          - title: '{{ template "pushover.title" . }}'
            message: {{ .CommonAnnotations.summary }}
"""
    files = applied({"kubernetes/apps/observability/configmaps.yaml": configmaps})
    assert describe(run(files)) == []


def test_tekton_parameters_are_not_image_references() -> None:
    task = """
apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: build
spec:
  params:
    - name: builder-image
      default: gcr.io/kaniko-project/executor:v1.23.0
  steps:
    - name: build
      image: $(params.builder-image)
      args: ["--destination=$(params.image)"]
  sidecars:
    - name: registry
      image: $(params.registry-image)
"""
    files = applied({"kubernetes/apps/ci/task.yaml": task})
    assert describe(run(files)) == []


# --- Flux's own templating and generators ---------------------------------------------------

RESOURCE_SET = """
apiVersion: fluxcd.controlplane.io/v1
kind: ResourceSet
metadata:
  name: apps
  namespace: flux-system
spec:
  inputs:
    - name: podinfo
      image: ghcr.io/stefanprodan/podinfo
      version: "6.7.1"
    - name: redis
      image: docker.io/library/redis
      version: "7.4"
  resources:
    - apiVersion: source.toolkit.fluxcd.io/v1
      kind: OCIRepository
      metadata:
        name: << inputs.name >>
        namespace: flux-system
      spec:
        interval: 10m
        url: oci://ghcr.io/example/charts/<< inputs.name >>
        ref:
          semver: << inputs.version | quote >>
    - apiVersion: helm.toolkit.fluxcd.io/v2
      kind: HelmRelease
      metadata:
        name: << inputs.name >>
        namespace: flux-system
      spec:
        interval: 1h
        chartRef:
          kind: OCIRepository
          name: << inputs.name >>
        values:
          image:
            repository: << inputs.image >>
    - apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: << inputs.name >>-probe
      spec:
        selector:
          matchLabels:
            app: probe
        template:
          metadata:
            labels:
              app: probe
          spec:
            containers:
              - name: probe
                image: "<< inputs.image >>:<< inputs.version >>"
  resourcesTemplate: |
    <<- range $env := inputs.envs >>
    ---
    apiVersion: v1
    kind: Namespace
    metadata:
      name: << $env >>
    <<- end >>
"""


def test_resource_set_templates_and_what_they_generate() -> None:
    consumer = """
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: frontend
  namespace: flux-system
spec:
  interval: 1h
  dependsOn:
    - name: redis
  chartRef:
    kind: OCIRepository
    name: podinfo
"""
    files = applied(
        {
            "kubernetes/apps/flux-system/resourceset.yaml": RESOURCE_SET,
            "kubernetes/apps/default/frontend.yaml": consumer,
            # The kinds exist in the repository, under other names.
            "kubernetes/apps/default/other.yaml": dedent(
                """
                apiVersion: source.toolkit.fluxcd.io/v1
                kind: OCIRepository
                metadata:
                  name: other
                  namespace: flux-system
                spec:
                  interval: 1h
                  url: oci://ghcr.io/example/charts/other
                ---
                apiVersion: helm.toolkit.fluxcd.io/v2
                kind: HelmRelease
                metadata:
                  name: other
                  namespace: flux-system
                spec:
                  interval: 1h
                  chartRef:
                    kind: OCIRepository
                    name: other
                """
            ),
        }
    )
    assert describe(run(files)) == []


def test_flux_instance_and_artifact_generator() -> None:
    files = repo(
        {
            "clusters/prod/flux-instance.yaml": dedent(
                """
                apiVersion: fluxcd.controlplane.io/v1
                kind: FluxInstance
                metadata:
                  name: flux
                  namespace: flux-system
                spec:
                  distribution:
                    version: "2.x"
                    registry: ghcr.io/fluxcd
                  sync:
                    kind: GitRepository
                    url: https://github.com/example/platform-gitops
                    ref: refs/heads/main
                    path: clusters/prod
                  kustomize:
                    patches:
                      - target:
                          kind: Deployment
                        patch: |
                          - op: add
                            path: /spec/template/spec/containers/0/args/-
                            value: --concurrent=10
                """
            ),
            "clusters/prod/artifacts.yaml": dedent(
                """
                apiVersion: source.extensions.fluxcd.io/v1beta1
                kind: ArtifactGenerator
                metadata:
                  name: monorepo
                  namespace: flux-system
                spec:
                  sources:
                    - alias: monorepo
                      kind: GitRepository
                      name: flux-system
                  artifacts:
                    - name: apps
                      copy:
                        - from: "@monorepo/apps/**"
                          to: "@artifact/"
                ---
                apiVersion: kustomize.toolkit.fluxcd.io/v1
                kind: Kustomization
                metadata:
                  name: apps
                  namespace: flux-system
                spec:
                  interval: 1h
                  sourceRef:
                    kind: ExternalArtifact
                    name: apps
                  path: ./production
                  prune: true
                ---
                apiVersion: helm.toolkit.fluxcd.io/v2
                kind: HelmRelease
                metadata:
                  name: podinfo
                  namespace: flux-system
                spec:
                  interval: 1h
                  chartRef:
                    kind: ExternalArtifact
                    name: podinfo-chart
                """
            ),
        }
    )
    assert describe(run(files)) == []


def test_flux_operator_sources_named_flux_system() -> None:
    """`FluxInstance` creates the `flux-system` source (an OCIRepository or a
    GitRepository) in the cluster: it is not in the repository."""
    files = {
        "kubernetes/flux/cluster/ks.yaml": dedent(
            """
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata:
              name: cluster-apps
              namespace: flux-system
            spec:
              interval: 1h
              path: ./kubernetes/apps
              prune: true
              sourceRef:
                kind: OCIRepository
                name: flux-system
                namespace: flux-system
            """
        ),
        "kubernetes/apps/default/ks.yaml": dedent(
            """
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata:
              name: echo
              namespace: flux-system
            spec:
              dependsOn:
                - name: cluster-apps
              interval: 1h
              path: ./kubernetes/apps/default/echo/app
              prune: true
              sourceRef:
                kind: OCIRepository
                name: flux-system
            """
        ),
    }
    assert describe(run(files)) == []


def test_post_build_substitution_everywhere() -> None:
    files = applied(
        {
            "kubernetes/apps/default/echo.yaml": dedent(
                """
                apiVersion: apps/v1
                kind: Deployment
                metadata:
                  name: echo-${CLUSTER:=main}
                  namespace: ${NAMESPACE}
                spec:
                  replicas: ${REPLICAS:-1}
                  selector:
                    matchLabels:
                      app: echo
                  template:
                    metadata:
                      labels:
                        app: echo
                    spec:
                      containers:
                        - name: echo
                          image: ${REGISTRY:=ghcr.io}/mendhak/http-https-echo:${ECHO_TAG:=35}@${ECHO_DIGEST:=sha256:0000000000000000000000000000000000000000000000000000000000000000}
                          env:
                            - name: HOST
                              value: echo.${SECRET_DOMAIN}
                            - name: LITERAL
                              value: $${NOT_SUBSTITUTED}
                ---
                apiVersion: source.toolkit.fluxcd.io/v1
                kind: OCIRepository
                metadata:
                  name: echo
                  namespace: flux-system
                spec:
                  interval: 1h
                  url: oci://ghcr.io/example/charts/echo
                  ref:
                    tag: ${ECHO_CHART_VERSION}
                ---
                apiVersion: kustomize.toolkit.fluxcd.io/v1
                kind: Kustomization
                metadata:
                  name: echo-${CLUSTER}
                  namespace: flux-system
                spec:
                  interval: 1h
                  prune: true
                  path: ./kubernetes/clusters/${CLUSTER}/echo
                  dependsOn:
                    - name: ${PARENT}
                  sourceRef:
                    kind: GitRepository
                    name: flux-system
                """
            ),
        }
    )
    files["clusters/prod/apps.yaml"] = flux_kustomization(
        "apps",
        "./kubernetes/apps",
        substitute={
            "SECRET_DOMAIN": "example.com",
            "NAMESPACE": "default",
            "CLUSTER": "main",
            "PARENT": "apps",
            "ECHO_CHART_VERSION": "1.0.0",
        },
    )
    assert describe(run(files)) == []


# --- non-Kubernetes YAML beside the manifests ------------------------------------------------


def test_bootstrap_helmfiles_with_go_templates() -> None:
    files = repo(
        {
            "bootstrap/helmfile.yaml": dedent(
                """
                ---
                helmDefaults:
                  cleanupOnFail: true
                  wait: true
                releases:
                  - name: cilium
                    namespace: kube-system
                    chart: oci://ghcr.io/home-operations/charts-mirror/cilium
                    version: 1.16.5
                    values: ['{{ requiredEnv "ROOT_DIR" }}/kubernetes/apps/kube-system/cilium/app/helm/values.yaml']
                    hooks:
                      - events: [postsync]
                        command: kubectl
                        args:
                          - apply
                          - --namespace=kube-system
                          - --filename={{ requiredEnv "ROOT_DIR" }}/kubernetes/apps/kube-system/cilium/config
                {{ if eq .Environment.Name "default" }}
                  - name: spegel
                    namespace: kube-system
                    chart: oci://ghcr.io/spegel-org/helm-charts/spegel
                {{ end }}
                """
            ),
            "bootstrap/helmfile.d/00-crds.yaml": dedent(
                """
                ---
                helmDefaults:
                  args: ['--include-crds', '--no-hooks']
                  postRenderer: bash
                  postRendererArgs: [-c, "yq ea --exit-status 'select(.kind == \\"CustomResourceDefinition\\")'"]
                releases:
                  - name: prometheus-operator-crds
                    namespace: observability
                    chart: oci://ghcr.io/prometheus-community/charts/prometheus-operator-crds
                    version: 17.0.2
                """
            ),
            "bootstrap/templates/values.yaml.gotmpl": '{{ (fromYaml (readFile "x")).spec.values | toYaml }}\n',
            "bootstrap/resources.yaml.j2": "{% for n in namespaces %}\n---\nkind: Namespace\n{% endfor %}\n",
        }
    )
    assert describe(run(files)) == []


def test_taskfiles_workflows_and_tool_configs() -> None:
    files = repo(
        {
            "Taskfile.yaml": dedent(
                """
                ---
                version: '3'
                set: [pipefail]
                vars:
                  KUBERNETES_DIR: '{{.ROOT_DIR}}/kubernetes'
                includes:
                  bootstrap: .taskfiles/bootstrap
                tasks:
                  default: task --list
                """
            ),
            ".taskfiles/bootstrap/Taskfile.yaml": dedent(
                """
                ---
                version: '3'
                tasks:
                  talos:
                    desc: Bootstrap Talos
                    cmds:
                      - until talosctl --nodes {{.RANDOM_CONTROLLER}} bootstrap; do sleep 5; done
                      - talosctl kubeconfig --nodes {{.RANDOM_CONTROLLER}} --force {{.KUBERNETES_DIR}}
                    vars:
                      RANDOM_CONTROLLER:
                        sh: talosctl config info --output json | jq --raw-output '.endpoints[]' | shuf -n 1
                    preconditions:
                      - test -f {{.TALOSCONFIG}}
                """
            ),
            ".github/workflows/flux-diff.yaml": dedent(
                """
                name: Flux Diff
                on:
                  pull_request:
                    paths: ["kubernetes/**"]
                jobs:
                  diff:
                    runs-on: ubuntu-latest
                    strategy:
                      matrix:
                        resources: ["helmrelease", "kustomization"]
                    steps:
                      - uses: actions/checkout@v4
                      - uses: allenporter/flux-local/action/diff@v7
                        with:
                          resource: ${{ matrix.resources }}
                      - if: ${{ steps.diff.outputs.diff != '' }}
                        run: echo "${{ steps.diff.outputs.diff }}"
                """
            ),
            ".github/renovate.json5": '{ extends: ["github>example/renovate-config"] }\n',
            ".renovate/customManagers.json5": "{ customManagers: [] }\n",
            ".sops.yaml": dedent(
                """
                ---
                creation_rules:
                  - path_regex: talos/.*\\.sops\\.ya?ml
                    mac_only_encrypted: true
                    age: age1234
                  - path_regex: kubernetes/.*\\.sops\\.ya?ml
                    encrypted_regex: ^(data|stringData)$
                    mac_only_encrypted: true
                    age: age1234
                stores:
                  yaml:
                    indent: 2
                """
            ),
            ".yamllint.yaml": "extends: default\nrules:\n  line-length: disable\n",
            ".pre-commit-config.yaml": dedent(
                """
                repos:
                  - repo: https://github.com/adrienverge/yamllint
                    rev: v1.35.1
                    hooks:
                      - id: yamllint
                        args: [-c, .yamllint.yaml]
                """
            ),
            "mkdocs.yml": "site_name: Home\nmarkdown_extensions:\n  - pymdownx.emoji:\n      emoji_index: !!python/name:material.extensions.emoji.twemoji\n",
        }
    )
    assert describe(run(files)) == []


def test_talos_configuration_beside_kubernetes() -> None:
    files = repo(
        {
            "kubernetes/bootstrap/talos/talconfig.yaml": dedent(
                """
                # yaml-language-server: $schema=https://raw.githubusercontent.com/budimanjojo/talhelper/master/pkg/config/schemas/talconfig.json
                ---
                clusterName: ${clusterName}
                talosVersion: "${talosVersion}"
                kubernetesVersion: "${kubernetesVersion}"
                endpoint: https://10.0.0.10:6443
                nodes:
                  - hostname: "k8s-0"
                    ipAddress: "10.0.0.11"
                    controlPlane: true
                    installDiskSelector:
                      serial: "S6PNNS0W000000"
                patches:
                  - "@./patches/global/cluster-discovery.yaml"
                controlPlane:
                  patches:
                    - |-
                      cluster:
                        apiServer:
                          extraArgs:
                            enable-aggregator-routing: true
                """
            ),
            "kubernetes/bootstrap/talos/talenv.yaml": "talosVersion: v1.8.3\nkubernetesVersion: v1.31.3\n",
            "kubernetes/bootstrap/talos/patches/global/cluster-discovery.yaml": dedent(
                """
                cluster:
                  discovery:
                    registries:
                      kubernetes:
                        disabled: false
                """
            ),
            "talos/machineconfig.yaml.j2": "machine:\n  type: {{ machine_type }}\n{% if x %}\n",
        }
    )
    assert describe(run(files)) == []


def test_makejinja_and_cookiecutter_templates() -> None:
    """Template repositories (onedr0p/cluster-template and the like) keep the manifests to
    be rendered under `templates/`, as `.j2` files, with makejinja's `#{ }#` / `#% %#` or
    Jinja's `{{ }}` / `{% %}`, sometimes in directories named after template variables."""
    files = repo(
        {
            "makejinja.toml": '[makejinja]\ninputs = ["./templates/overrides", "./templates/config"]\n',
            "cluster.sample.yaml": '---\nnode_cidr: "192.168.1.0/24"\ncluster_api_addr: ""\n',
            "templates/config/kubernetes/apps/kube-system/cilium/app/helmrelease.yaml.j2": dedent(
                """
                    ---
                    apiVersion: helm.toolkit.fluxcd.io/v2
                    kind: HelmRelease
                    metadata:
                      name: cilium
                    spec:
                      chartRef:
                        kind: OCIRepository
                        name: cilium
                      values:
                        #% if cilium_bgp_enabled %#
                        bgpControlPlane:
                          enabled: true
                        #% endif %#
                        k8sServiceHost: "#{ cluster_api_addr }#"
                    """
            ),
            "templates/config/kubernetes/apps/kube-system/cilium/app/kustomization.yaml.j2": "resources:\n  - ./helmrelease.yaml\n",
            "scaffold/{{cookiecutter.app_name}}/kustomization.yaml": dedent(
                """
                apiVersion: kustomize.config.k8s.io/v1beta1
                kind: Kustomization
                namespace: {{ cookiecutter.namespace }}
                resources:
                  - ./{{ cookiecutter.app_name }}.yaml
                {% if cookiecutter.ingress == "yes" %}
                  - ./ingress.yaml
                {% endif %}
                """
            ),
            "scaffold/{{cookiecutter.app_name}}/{{cookiecutter.app_name}}.yaml": dedent(
                """
                apiVersion: apps/v1
                kind: Deployment
                metadata:
                  name: {{ cookiecutter.app_name }}
                spec:
                  template:
                    spec:
                      containers:
                        - name: app
                          image: {{ cookiecutter.image }}
                """
            ),
            "scaffold/cookiecutter.json": '{"app_name": "app", "namespace": "default"}\n',
            "copier/template/kustomization.yaml.jinja": "resources:\n  - {{ app }}.yaml\n",
        }
    )
    assert describe(run(files)) == []


# --- names and namespaces that kustomize or Flux rewrite -------------------------------------


def test_name_prefix_and_suffix_rename_flux_objects() -> None:
    files = repo(
        {
            "clusters/prod/platform.yaml": flux_kustomization("platform", "./platform/prod"),
            "platform/prod/kustomization.yaml": kustomization(
                ["../base"], extra="namePrefix: prod-\nnameSuffix: -v2\n"
            ),
            "platform/base/kustomization.yaml": kustomization(["releases.yaml"]),
            "platform/base/releases.yaml": dedent(
                """
                apiVersion: helm.toolkit.fluxcd.io/v2
                kind: HelmRelease
                metadata:
                  name: database
                  namespace: flux-system
                spec:
                  interval: 1h
                  chart:
                    spec:
                      chart: postgresql
                      sourceRef:
                        kind: HelmRepository
                        name: bitnami
                ---
                apiVersion: helm.toolkit.fluxcd.io/v2
                kind: HelmRelease
                metadata:
                  name: api
                  namespace: flux-system
                spec:
                  interval: 1h
                  dependsOn:
                    - name: prod-database-v2
                  chart:
                    spec:
                      chart: api
                      sourceRef:
                        kind: HelmRepository
                        name: bitnami
                ---
                apiVersion: source.toolkit.fluxcd.io/v1
                kind: HelmRepository
                metadata:
                  name: bitnami
                  namespace: flux-system
                spec:
                  interval: 1h
                  type: oci
                  url: oci://registry-1.docker.io/bitnamicharts
                """
            ),
        }
    )
    # The dependency names the renamed object and is found. kustomize renames the
    # HelmRepository too, but it does not update a HelmRelease's `sourceRef` (Flux's kinds
    # are not in its name reference table): those references dangle.
    found = [(f.rule, f.path, f.line) for f in run(files)]
    assert found == [
        ("dangling-reference", "platform/base/releases.yaml", 13),
        ("dangling-reference", "platform/base/releases.yaml", 29),
    ]
    assert all("kustomize renames to prod-bitnami-v2" in f.message for f in run(files))


def test_namespaces_set_by_kustomize_and_flux() -> None:
    files = repo(
        {
            "clusters/prod/repositories.yaml": flux_kustomization(
                "repositories", "./kubernetes/flux/repositories"
            ),
            "clusters/prod/apps.yaml": flux_kustomization(
                "apps", "./kubernetes/apps", target_namespace="default"
            ),
            "kubernetes/flux/repositories/kustomization.yaml": kustomization(
                ["bjw-s.yaml"], extra="namespace: flux-system\n"
            ),
            "kubernetes/flux/repositories/bjw-s.yaml": dedent(
                """
                apiVersion: source.toolkit.fluxcd.io/v1
                kind: HelmRepository
                metadata:
                  name: bjw-s
                spec:
                  interval: 1h
                  type: oci
                  url: oci://ghcr.io/bjw-s/helm
                """
            ),
            "kubernetes/apps/echo.yaml": dedent(
                """
                apiVersion: helm.toolkit.fluxcd.io/v2
                kind: HelmRelease
                metadata:
                  name: echo
                spec:
                  interval: 1h
                  chart:
                    spec:
                      chart: app-template
                      version: 3.7.1
                      sourceRef:
                        kind: HelmRepository
                        name: bjw-s
                        namespace: flux-system
                """
            ),
        }
    )
    assert describe(run(files)) == []


# --- charts -------------------------------------------------------------------------------


def test_chart_values_with_tpl_strings_ci_values_and_vendored_crds() -> None:
    files = repo(
        {
            "charts/app/Chart.yaml": chart_yaml(
                "app",
                "1.2.0",
                dependencies=[("common", "2.x.x", "oci://registry-1.docker.io/bitnamicharts")],
            ),
            "charts/app/values.yaml": dedent(
                """
                # Strings that the chart renders with `tpl`.
                fullnameOverride: ""
                ingress:
                  host: "{{ .Release.Name }}.example.com"
                  annotations:
                    cert-manager.io/cluster-issuer: "{{ .Values.global.issuer }}"
                extraDeploy: |
                  - apiVersion: v1
                    kind: ConfigMap
                    metadata:
                      name: {{ include "app.fullname" . }}-extra
                podLabels:
                  checksum: '{{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}'
                """
            ),
            "charts/app/ci/ct-values.yaml": "ingress:\n  host: ci.example.com\n",
            "charts/app/ci/broken-on-purpose-values.yaml": "image: {{ not yaml }}\n",
            "charts/app/crds/widgets.yaml": dedent(
                """
                apiVersion: apiextensions.k8s.io/v1
                kind: CustomResourceDefinition
                metadata:
                  name: widgets.example.com
                spec:
                  group: example.com
                  names:
                    kind: Widget
                    plural: widgets
                  scope: Namespaced
                  versions:
                    - name: v1
                      served: true
                      storage: true
                      schema:
                        openAPIV3Schema:
                          type: object
                          properties:
                            template:
                              description: A Go template, for example {{ .Values.name }} or "{{ include "x" . }}".
                              type: string
                """
            ),
            "charts/app/templates/_helpers.tpl": '{{- define "app.fullname" -}}app{{- end }}\n',
            "charts/app/templates/configmap.yaml": dedent(
                """
                apiVersion: v1
                kind: ConfigMap
                metadata:
                  name: {{ include "app.fullname" . }}
                  {{- with .Values.annotations }}
                  annotations:
                    {{- toYaml . | nindent 4 }}
                  {{- end }}
                data:
                  host: {{ tpl .Values.ingress.host . | quote }}
                """
            ),
            "charts/app/templates/tests/test-connection.yaml": dedent(
                """
                apiVersion: v1
                kind: Pod
                metadata:
                  name: "{{ include "app.fullname" . }}-test"
                  annotations:
                    "helm.sh/hook": test
                spec:
                  containers:
                    - name: wget
                      image: busybox
                      command: ['wget', '{{ include "app.fullname" . }}:80']
                """
            ),
            "charts/app/templates/NOTES.txt": "Visit {{ .Values.ingress.host }}\n",
            "charts/app/.helmignore": ".git/\n*.tmp\nci/\n",
        }
    )
    assert describe(run(files)) == []


def test_wrapper_chart_named_like_its_upstream_chart() -> None:
    files = repo(
        {
            "clusters/prod/infrastructure.yaml": flux_kustomization(
                "infrastructure", "./infrastructure"
            ),
            "infrastructure/cert-manager.yaml": dedent(
                """
                apiVersion: source.toolkit.fluxcd.io/v1
                kind: HelmRepository
                metadata:
                  name: jetstack
                  namespace: flux-system
                spec:
                  interval: 1h
                  url: https://charts.jetstack.io
                ---
                apiVersion: helm.toolkit.fluxcd.io/v2
                kind: HelmRelease
                metadata:
                  name: cert-manager
                  namespace: flux-system
                spec:
                  interval: 1h
                  chart:
                    spec:
                      chart: cert-manager
                      version: v1.15.3
                      sourceRef:
                        kind: HelmRepository
                        name: jetstack
                """
            ),
            # A local wrapper around the upstream chart, for the platform's issuers.
            "charts/cert-manager/Chart.yaml": chart_yaml(
                "cert-manager",
                "0.3.0",
                dependencies=[("cert-manager", "v1.15.3", "https://charts.jetstack.io")],
            ),
            "charts/cert-manager/templates/issuer.yaml": dedent(
                """
                apiVersion: cert-manager.io/v1
                kind: ClusterIssuer
                metadata:
                  name: {{ .Values.issuer.name }}
                spec:
                  acme:
                    server: https://acme-v02.api.letsencrypt.org/directory
                """
            ),
        }
    )
    assert describe(run(files)) == []


def test_onedr0p_style_values_from_a_config_map_generator() -> None:
    files = applied(
        {
            "kubernetes/apps/kube-system/kustomization.yaml": kustomization(
                ["./namespace.yaml", "./cilium/ks.yaml"],
                extra="components:\n  - ../../components/common\n",
            ),
            "kubernetes/apps/kube-system/namespace.yaml": dedent(
                """
                apiVersion: v1
                kind: Namespace
                metadata:
                  name: kube-system
                """
            ),
            "kubernetes/components/common/kustomization.yaml": dedent(
                """
                apiVersion: kustomize.config.k8s.io/v1alpha1
                kind: Component
                resources:
                  - ./alerts
                """
            ),
            "kubernetes/components/common/alerts/kustomization.yaml": kustomization(
                ["./alert.yaml"]
            ),
            "kubernetes/components/common/alerts/alert.yaml": dedent(
                """
                apiVersion: notification.toolkit.fluxcd.io/v1beta3
                kind: Alert
                metadata:
                  name: alertmanager
                spec:
                  providerRef:
                    name: alertmanager
                  eventSeverity: error
                  eventSources:
                    - kind: HelmRelease
                      name: "*"
                  exclusionList: ["error.*lookup github\\\\.com"]
                """
            ),
            "kubernetes/apps/kube-system/cilium/ks.yaml": dedent(
                """
                apiVersion: kustomize.toolkit.fluxcd.io/v1
                kind: Kustomization
                metadata:
                  name: &app cilium
                  namespace: &namespace kube-system
                spec:
                  commonMetadata:
                    labels:
                      app.kubernetes.io/name: *app
                  interval: 1h
                  path: ./kubernetes/apps/kube-system/cilium/app
                  prune: false
                  sourceRef:
                    kind: GitRepository
                    name: flux-system
                    namespace: flux-system
                  targetNamespace: *namespace
                  wait: false
                """
            ),
            "kubernetes/apps/kube-system/cilium/app/kustomization.yaml": dedent(
                """
                apiVersion: kustomize.config.k8s.io/v1beta1
                kind: Kustomization
                resources:
                  - ./helmrelease.yaml
                  - ./ocirepository.yaml
                configMapGenerator:
                  - name: cilium-values
                    files:
                      - values.yaml=./helm/values.yaml
                configurations:
                  - ./helm/kustomizeconfig.yaml
                """
            ),
            "kubernetes/apps/kube-system/cilium/app/helm/values.yaml": dedent(
                """
                autoDirectNodeRoutes: true
                hubble:
                  ui:
                    ingress:
                      hosts: ["hubble.${SECRET_DOMAIN}"]
                """
            ),
            "kubernetes/apps/kube-system/cilium/app/helm/kustomizeconfig.yaml": dedent(
                """
                nameReference:
                  - kind: ConfigMap
                    version: v1
                    fieldSpecs:
                      - path: spec/valuesFrom/name
                        kind: HelmRelease
                """
            ),
            "kubernetes/apps/kube-system/cilium/app/ocirepository.yaml": dedent(
                """
                apiVersion: source.toolkit.fluxcd.io/v1
                kind: OCIRepository
                metadata:
                  name: cilium
                spec:
                  interval: 5m
                  layerSelector:
                    mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip
                    operation: copy
                  ref:
                    tag: 1.16.5
                  url: oci://ghcr.io/home-operations/charts-mirror/cilium
                """
            ),
            "kubernetes/apps/kube-system/cilium/app/helmrelease.yaml": dedent(
                """
                apiVersion: helm.toolkit.fluxcd.io/v2
                kind: HelmRelease
                metadata:
                  name: cilium
                spec:
                  interval: 1h
                  chartRef:
                    kind: OCIRepository
                    name: cilium
                  valuesFrom:
                    - kind: ConfigMap
                      name: cilium-values
                """
            ),
        }
    )
    assert describe(run(files)) == []


def test_git_repository_ignore_rules() -> None:
    """onedr0p-style: the flux-system GitRepository ignores everything but `kubernetes/`."""
    sync = gotk_sync("./kubernetes/flux").replace(
        "  url: ssh://git@github.com/example/platform-gitops\n",
        "  url: ssh://git@github.com/example/platform-gitops\n"
        "  ignore: |\n    # exclude all\n    /*\n    # include kubernetes directory\n"
        "    !/kubernetes\n",
    )
    files = {
        "kubernetes/flux/flux-system/gotk-sync.yaml": sync,
        "kubernetes/flux/apps.yaml": flux_kustomization("apps", "./kubernetes/apps"),
        "kubernetes/apps/echo.yaml": dedent(
            """
            apiVersion: v1
            kind: Namespace
            metadata:
              name: echo
            """
        ),
        "docs/index.yaml": "not: [valid\n",
        "scripts/kustomization.yaml": kustomization(["../kubernetes/apps/echo.yaml"]),
    }
    assert describe(run(files)) == []


def test_source_ignore_files() -> None:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            ".sourceignore": "# keep the artifact small\n*.md\n/docs/\n",
            "apps/.sourceignore": "notes/\n*.example.yaml\n",
            "apps/echo.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: echo\n",
            "apps/notes/todo.yaml": "- upgrade cilium\n- {{ remember }}\n",
            "apps/secret.example.yaml": "stringData:\n  token: <fill me>\n",
        }
    )
    assert describe(run(files)) == []


def test_sops_encrypted_manifests() -> None:
    secret = """
apiVersion: v1
kind: Secret
metadata:
    name: cluster-secrets
    namespace: flux-system
stringData:
    SECRET_DOMAIN: ENC[AES256_GCM,data:Zm9vYmFy,iv:aXY=,tag:dGFn,type:str]
sops:
    age:
        - recipient: age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq
          enc: |
            -----BEGIN AGE ENCRYPTED FILE-----
            YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSB
            -----END AGE ENCRYPTED FILE-----
    lastmodified: "2024-11-30T12:00:00Z"
    mac: ENC[AES256_GCM,data:bWFj,iv:aXY=,tag:dGFn,type:str]
    encrypted_regex: ^(data|stringData)$
    version: 3.9.1
"""
    files = applied({"kubernetes/apps/flux-system/cluster-secrets.sops.yaml": secret})
    assert describe(run(files)) == []


def test_images_that_real_repositories_use() -> None:
    digest = "sha256:" + "a" * 64
    images = [
        f"ghcr.io/home-operations/radarr:5.20.1.9773@{digest}",
        "10.0.0.5:5000/tools/debug:1",
        "localhost/app",
        f"alpine@{digest}",
        "mcr.microsoft.com/dotnet/aspnet:8.0-jammy-chiseled",
        "docker.io/library/postgres:16.4-alpine3.20",
        "quay.io/prometheus/node-exporter:v1.8.2",
        "registry.k8s.io/ingress-nginx/controller:v1.11.2",
        "ghcr.io/onedr0p/exportarr:V2.0.1",
        "public.ecr.aws/docker/library/redis:7.4.1",
        "ghcr.io/example/app__worker:1.0",
        "[fd00::1]:5000/app:1.0",
        "APP_IMAGE",  # replaced by `images:` below
    ]
    containers = "\n".join(
        f"        - name: c{i}\n          image: '{image}'" for i, image in enumerate(images)
    )
    deployment = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: many\nspec:\n"
        "  selector:\n    matchLabels:\n      app: many\n"
        "  template:\n    metadata:\n      labels:\n        app: many\n"
        "    spec:\n      containers:\n" + containers + "\n"
    )
    files = applied(
        {
            "kubernetes/apps/default/kustomization.yaml": kustomization(
                ["deployment.yaml"],
                extra="images:\n  - name: APP_IMAGE\n    newName: ghcr.io/example/app\n"
                "    newTag: 1.0.0\n",
            ),
            "kubernetes/apps/default/deployment.yaml": deployment,
        }
    )
    assert describe(run(files)) == []


def test_monitoring_crs_with_container_patches() -> None:
    prometheus = """
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata:
  name: k8s
spec:
  containers:
    - name: config-reloader
      resources:
        limits:
          memory: 64Mi
  ruleSelector: {}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: app
spec:
  endpoints:
    - port: http
      relabelings:
        - sourceLabels: [__meta_kubernetes_pod_node_name]
          targetLabel: node
          replacement: ${1}
"""
    files = applied({"kubernetes/apps/observability/prometheus.yaml": prometheus})
    assert describe(run(files)) == []


def test_kustomizations_used_outside_flux_with_gitignored_inputs() -> None:
    """A kustomization that only people run by hand (bootstrap), whose secret input is
    created locally and kept out of git."""
    files = repo(
        {
            ".gitignore": "*.agekey\n/kubernetes/bootstrap/**/*.env\n",
            "kubernetes/bootstrap/flux/kustomization.yaml": dedent(
                """
                apiVersion: kustomize.config.k8s.io/v1beta1
                kind: Kustomization
                resources:
                  - github.com/fluxcd/flux2/manifests/install?ref=v2.4.0
                  - https://raw.githubusercontent.com/example/crds/main/crds.yaml
                secretGenerator:
                  - name: sops-age
                    namespace: flux-system
                    files:
                      - age.agekey
                  - name: github-token
                    namespace: flux-system
                    envs:
                      - github.env
                patches:
                  - patch: |-
                      $patch: delete
                      apiVersion: networking.k8s.io/v1
                      kind: NetworkPolicy
                      metadata:
                        name: not-used
                    target:
                      group: networking.k8s.io
                      kind: NetworkPolicy
                """
            ),
            "kubernetes/bootstrap/flux/notes.env.example": "GITHUB_TOKEN=\n",
            # `.env` files exist in git elsewhere: the missing one is not an export artefact.
            "apps/settings.env": "X=1\n",
        }
    )
    assert describe(run(files)) == []


def test_multi_cluster_fleet_with_per_cluster_sources() -> None:
    staging = gotk_sync("./clusters/staging", branch="staging")
    files = {
        "clusters/production/flux-system/gotk-sync.yaml": gotk_sync("./clusters/production"),
        "clusters/production/apps.yaml": flux_kustomization("apps", "./apps/production"),
        "clusters/staging/flux-system/gotk-sync.yaml": staging,
        "clusters/staging/apps.yaml": flux_kustomization(
            "apps", "./apps/staging", depends_on=["infra-controllers"]
        ),
        "clusters/staging/infra.yaml": flux_kustomization(
            "infra-controllers", "./infrastructure/controllers"
        ),
        "apps/production/kustomization.yaml": kustomization(["../base"]),
        "apps/staging/kustomization.yaml": kustomization(["../base"]),
        "apps/base/kustomization.yaml": kustomization(["namespace.yaml"]),
        "apps/base/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n",
        "infrastructure/controllers/kustomization.yaml": kustomization(
            ["https://github.com/kubernetes-sigs/external-dns//kustomize?ref=v0.15.0"]
        ),
    }
    assert describe(run(files)) == []


def test_shared_components_named_with_flux_variables() -> None:
    """bjw-s style: a kustomize component that every app includes, its objects named after
    the app by post-build substitution, and an app that depends on one of them."""
    files = applied(
        {
            "kubernetes/components/dragonfly/kustomization.yaml": dedent(
                """
                apiVersion: kustomize.config.k8s.io/v1alpha1
                kind: Component
                resources:
                  - ./helmrelease.yaml
                  - ./ocirepository.yaml
                """
            ),
            "kubernetes/components/dragonfly/helmrelease.yaml": dedent(
                """
                apiVersion: helm.toolkit.fluxcd.io/v2
                kind: HelmRelease
                metadata:
                  name: ${APP}-dragonfly
                  namespace: ${NAMESPACE:=default}
                spec:
                  interval: 1h
                  chartRef:
                    kind: OCIRepository
                    name: ${APP}-dragonfly
                """
            ),
            "kubernetes/components/dragonfly/ocirepository.yaml": dedent(
                """
                apiVersion: source.toolkit.fluxcd.io/v1
                kind: OCIRepository
                metadata:
                  name: ${APP}-dragonfly
                spec:
                  interval: 1h
                  url: oci://ghcr.io/dragonflydb/dragonfly/helm/dragonfly
                  ref:
                    tag: v1.25.2
                """
            ),
            "kubernetes/apps/default/immich/ks.yaml": dedent(
                """
                apiVersion: kustomize.toolkit.fluxcd.io/v1
                kind: Kustomization
                metadata:
                  name: immich
                  namespace: flux-system
                spec:
                  interval: 1h
                  path: ./kubernetes/immich/app
                  prune: true
                  targetNamespace: default
                  components:
                    - ../../components/dragonfly
                  sourceRef:
                    kind: GitRepository
                    name: flux-system
                  postBuild:
                    substitute:
                      APP: immich
                """
            ),
            "kubernetes/immich/app/kustomization.yaml": kustomization(["helmrelease.yaml"]),
            "kubernetes/immich/app/helmrelease.yaml": dedent(
                """
                apiVersion: helm.toolkit.fluxcd.io/v2
                kind: HelmRelease
                metadata:
                  name: immich
                  namespace: default
                spec:
                  interval: 1h
                  dependsOn:
                    - name: immich-dragonfly
                  chartRef:
                    kind: OCIRepository
                    name: immich-dragonfly
                """
            ),
        }
    )
    assert describe(run(files)) == []


def test_generator_literals_with_templates_are_data() -> None:
    files = applied(
        {
            "kubernetes/apps/default/kustomization.yaml": dedent(
                """
                apiVersion: kustomize.config.k8s.io/v1beta1
                kind: Kustomization
                configMapGenerator:
                  - name: notifier
                    literals:
                      - TITLE={{ .Values.title | default "alert" }}
                      - "BODY={{ include \\"body\\" . }}"
                    options:
                      disableNameSuffixHash: true
                """
            ),
        }
    )
    assert describe(run(files)) == []


def test_tenant_on_another_branch_of_the_same_repository(tmp_path: Path) -> None:
    """flux2-multi-tenancy: the tenant's GitRepository has this repository's URL but
    follows the tenant's own branch; its `spec.path` (the root) is not this branch's."""
    repo_ = GitRepo(tmp_path / "flux2-multi-tenancy")
    repo_.commit(
        "fleet",
        {
            "clusters/staging/flux-system/gotk-sync.yaml": gotk_sync("./clusters/staging"),
            "clusters/staging/tenants.yaml": flux_kustomization("tenants", "./tenants/staging"),
            "tenants/staging/kustomization.yaml": kustomization(["../base/dev-team"]),
            "tenants/base/dev-team/kustomization.yaml": kustomization(["sync.yaml"]),
            "tenants/base/dev-team/sync.yaml": tenant_sync(
                "branch: dev-team",
                url="https://github.com/example/platform-gitops",
                path="./deploy/staging",
            ),
            ".github/workflows/test.yaml": "on: push\njobs: {}\n",
        },
    )
    repo_.git("remote", "add", "origin", "git@github.com:example/platform-gitops.git")
    result = analyze(GitTree(repo_.path, repo_.head()), self_urls=remote_urls(repo_.path))
    assert describe(result.findings) == []


def test_own_git_repository_with_a_custom_name_and_ignore_rules(tmp_path: Path) -> None:
    """onedr0p-style, without `flux bootstrap`: the cluster's GitRepository is named
    `home-kubernetes`, has this repository's URL and its own `spec.ignore`."""
    repo_ = GitRepo(tmp_path / "home-ops")
    repo_.commit(
        "cluster",
        {
            "kubernetes/main/flux/config/cluster.yaml": home_ops_root(
                "./kubernetes/main/apps",
                url="https://github.com/example/home-ops.git",
                ignore=(
                    "# exclude all\n/*\n# include kubernetes directory\n!/kubernetes\n"
                    "# but not the samples\n/kubernetes/**/*.sample.yaml\n"
                ),
            ),
            "kubernetes/main/flux/config/kustomization.yaml": kustomization(["cluster.yaml"]),
            "kubernetes/main/apps/namespace.yaml": dedent(
                """
                apiVersion: v1
                kind: Namespace
                metadata:
                  name: default
                """
            ),
            "kubernetes/main/apps/cluster-settings.sample.yaml": "TIMEZONE: Europe/Paris\n",
        },
    )
    repo_.git("remote", "add", "origin", "https://github.com/example/home-ops")
    result = analyze(GitTree(repo_.path, repo_.head()), self_urls=remote_urls(repo_.path))
    assert describe(result.findings) == []


def test_local_library_chart_named_like_a_public_dependency() -> None:
    files = repo(
        {
            "charts/common/Chart.yaml": "apiVersion: v2\nname: common\ntype: library\nversion: 0.1.0\n",
            "charts/common/templates/_labels.tpl": '{{- define "common.labels" -}}a: b{{- end }}\n',
            "charts/api/Chart.yaml": chart_yaml(
                "api",
                "1.0.0",
                dependencies=[
                    ("common", "2.x.x", "oci://registry-1.docker.io/bitnamicharts"),
                    ("redis", "20.x.x", "https://charts.bitnami.com/bitnami"),
                ],
            ),
        }
    )
    assert describe(run(files)) == []


def test_helmfile_with_values_and_environments() -> None:
    files = repo(
        {
            "helmfile.yaml": dedent(
                """
                environments:
                  default:
                    values:
                      - env/default.yaml
                ---
                repositories:
                  - name: bitnami
                    url: https://charts.bitnami.com/bitnami
                releases:
                  - name: redis
                    chart: bitnami/redis
                    version: {{ .Values.redisVersion | quote }}
                    values:
                      - fullnameOverride: {{ .Release.Name }}
                {{- range .Values.extraReleases }}
                  - name: {{ .name }}
                    chart: {{ .chart }}
                {{- end }}
                """
            ),
            "env/default.yaml": "redisVersion: 20.6.0\nextraReleases: []\n",
        }
    )
    assert describe(run(files)) == []


def test_k3s_helm_chart_manifests() -> None:
    files = applied(
        {
            "kubernetes/apps/kube-system/traefik-config.yaml": dedent(
                """
                apiVersion: helm.cattle.io/v1
                kind: HelmChartConfig
                metadata:
                  name: traefik
                  namespace: kube-system
                spec:
                  valuesContent: |-
                    additionalArguments:
                      - "--log.level={{ .Values.logLevel | default \\"INFO\\" }}"
                ---
                apiVersion: helm.cattle.io/v1
                kind: HelmChart
                metadata:
                  name: cert-manager
                  namespace: kube-system
                spec:
                  repo: https://charts.jetstack.io
                  chart: cert-manager
                  version: v1.15.3
                  targetNamespace: cert-manager
                  set:
                    crds.enabled: "true"
                    podLabels.release: "{{ .Release.Name }}"
                """
            ),
        }
    )
    assert describe(run(files)) == []


def test_vendored_crds_applied_raw() -> None:
    crd = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: policies.kyverno.io
  annotations:
    controller-gen.kubebuilder.io/version: v0.16.5
spec:
  group: kyverno.io
  names:
    kind: Policy
    plural: policies
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          description: |-
            Policy declares validation, mutation, and generation behaviors for matching resources.
            Variables such as {{ request.object.metadata.name }} are substituted.
          type: object
          properties:
            message:
              description: Message template, for example "{{ .Values.name }} is {{ include "x" . }}"
                or {{ toYaml .spec }} on a continuation line.
              type: string
            image:
              default: '{{ .Values.image }}'
              type: string
"""
    files = applied({"kubernetes/apps/kyverno/crds/policies.yaml": crd})
    assert describe(run(files)) == []


@pytest.mark.parametrize(
    ("ref", "is_this_repository"),
    [
        ("", True),
        ("  ref:\n    branch: main\n", True),
        ("  ref:\n    name: refs/heads/main\n", True),
        ("  ref:\n    branch: dev-team\n", False),
        ("  ref:\n    tag: v1.2.0\n", False),
        ("  ref:\n    semver: '>=1.0.0'\n", False),
        ("  ref:\n    commit: 0123456789abcdef0123456789abcdef01234567\n", False),
        ("  ref:\n    name: refs/tags/v1.2.0\n", False),
    ],
)
def test_which_git_repositories_are_this_repository(ref: str, is_this_repository: bool) -> None:
    source = (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n"
        "  name: platform\n  namespace: flux-system\nspec:\n"
        "  url: https://github.com/example/platform-gitops\n" + ref
    )
    files = {
        "clusters/prod/flux-system/gotk-sync.yaml": gotk_sync(),
        "clusters/prod/platform.yaml": source
        + "---\n"
        + flux_kustomization("platform", "./platform", source="platform"),
    }
    repository = Snapshot(tree(files), self_urls=["git@github.com:example/platform-gitops"])
    [kustomization_] = [o for o in repository.objects_of("Kustomization") if o.name == "platform"]
    assert repository.is_self_source(kustomization_) is is_this_repository
