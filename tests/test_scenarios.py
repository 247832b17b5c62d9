"""Scenarios: one change each to a realistic platform monorepo, through the command line.

Every scenario commits the same monorepo (`platform()`, below) as its base, applies one
change as its head, runs `flux-review check --base B --head H --format json` (in this
process, through the same entry point; one scenario runs it as a subprocess, as a user
does) and asserts the EXACT set of (rule, path, line, severity, introduced) of all
findings: what must be reported is, and nothing else is.

The monorepo is shaped like the ones the product is judged on:

- `flux bootstrap` files under `clusters/prod/flux-system` (`spec.path: ./clusters/prod`,
  no kustomization file there, so Flux's generator applies everything below it);
- a bootstrap kit, `clusters/prod/bootstrap-kit/`: HelmRepositories and HelmReleases for
  cert-manager, ingress-nginx, external-secrets and the in-house `platform` chart;
- an umbrella chart, `charts/platform`, with a `file://` dependency on
  `charts/metrics-agent`, published to the `platform-charts` HelmRepository and pinned by
  the bootstrap kit, whose `templates/` a Flux Kustomization (`platform-raw`) also
  applies raw (the trap of the incident);
- a chart from Git (`charts/portal`, `chart: ./charts/portal` from the flux-system
  GitRepository) whose templates a `kustomization.yaml` in `deploy/portal` also lists, and
  one deployed with `reconcileStrategy: Revision` (`charts/ops-tools`);
- charts from OCI (`charts/edge-gateway` by `ref.tag`, `charts/status-page` by
  `ref.semver`, both through a HelmRelease `chartRef`);
- `infrastructure/` (base + prod overlay) with a SealedSecret pull secret, an
  ExternalSecret with a template, a ClusterSecretStore, PrometheusRules, an
  AlertmanagerConfig and a Grafana dashboard ConfigMap;
- `apps/` (base + prod overlay) applied by a Flux Kustomization with `postBuild`
  `substitute` and `substituteFrom`, full of `${VAR}` and `${VAR:=default}`;
- the usual non-Kubernetes files: README, a GitHub workflow, `.sops.yaml`, a Renovate
  config, a Taskfile.
"""

# The YAML below keeps the line lengths of the real files it imitates.
# ruff: noqa: E501

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.__main__ import main as bot_main
from tests.analysis_helpers import assert_readable, dedent, line_of
from tests.fakegithub.gitrepo import GitRepo
from tests.helm_support import HELM

ROOT = Path(__file__).resolve().parent.parent

ERROR, WARNING, NOTICE = "error", "warning", "notice"
TEMPLATE = "helm-template-in-raw-manifest"
MISMATCH = "chart-version-mismatch"
NOT_BUMPED = "chart-not-bumped"
MISSING = "kustomize-missing-resource"
UNLISTED = "kustomize-unlisted-manifest"
DANGLING = "dangling-reference"
IMAGE = "invalid-image-reference"
SYNTAX = "yaml-syntax-error"
PRUNE = "prune-deletes"
RENDER = "helm-render-error"

# --------------------------------------------------------------------------------------
# The monorepo
# --------------------------------------------------------------------------------------


def _flux_ks(name: str, path: str, spec: str = "", after: str = "") -> str:
    """A Flux Kustomization of the flux-system source; `spec` adds fields to its spec
    (written unindented), `after` adds documents after it."""
    return (
        dedent(
            f"""
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata:
          name: {name}
          namespace: flux-system
        spec:
          interval: 10m
          path: {path}
          prune: true
          sourceRef:
            kind: GitRepository
            name: flux-system
        """
        )
        + textwrap.indent(dedent(spec), "  ")
        + dedent(after)
    )


def _upstream_release(name: str, chart: str, version: str, source: str, spec: str = "") -> str:
    return dedent(
        f"""
        apiVersion: helm.toolkit.fluxcd.io/v2
        kind: HelmRelease
        metadata:
          name: {name}
          namespace: flux-system
        spec:
          interval: 30m
          releaseName: {name}
          targetNamespace: {name}
          install:
            createNamespace: true
          chart:
            spec:
              chart: {chart}
              version: "{version}"
              sourceRef:
                kind: HelmRepository
                name: {source}
        """
    ) + textwrap.indent(dedent(spec), "  ")


def _raw_deployment(name: str, image: str, pull_secret: str | None = None) -> str:
    pull = f"      imagePullSecrets:\n        - name: {pull_secret}\n" if pull_secret else ""
    return (
        dedent(
            f"""
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {name}
          labels:
            app.kubernetes.io/name: {name}
            app.kubernetes.io/part-of: platform
        spec:
          replicas: 2
          selector:
            matchLabels:
              app.kubernetes.io/name: {name}
          template:
            metadata:
              labels:
                app.kubernetes.io/name: {name}
            spec:
              containers:
                - name: {name}
                  image: {image}
                  ports:
                    - name: http
                      containerPort: 8080
        """
        )
        + pull
    )


def _templated_deployment(name: str) -> str:
    return dedent(
        f"""
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {{{{ include "{name}.fullname" . }}}}
          labels:
            {{{{- include "{name}.labels" . | nindent 4 }}}}
        spec:
          replicas: {{{{ .Values.replicaCount }}}}
          selector:
            matchLabels:
              {{{{- include "{name}.selectorLabels" . | nindent 6 }}}}
          template:
            metadata:
              labels:
                {{{{- include "{name}.selectorLabels" . | nindent 8 }}}}
            spec:
              {{{{- with .Values.imagePullSecrets }}}}
              imagePullSecrets:
                {{{{- toYaml . | nindent 8 }}}}
              {{{{- end }}}}
              containers:
                - name: {name}
                  image: "{{{{ .Values.image.repository }}}}:{{{{ .Values.image.tag | default .Chart.AppVersion }}}}"
                  resources:
                    {{{{- toYaml .Values.resources | nindent 12 }}}}
        """
    )


def _helpers(name: str) -> str:
    return dedent(
        f"""
        {{{{- define "{name}.fullname" -}}}}
        {{{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}}}
        {{{{- end }}}}
        {{{{- define "{name}.selectorLabels" -}}}}
        app.kubernetes.io/name: {{{{ .Chart.Name }}}}
        app.kubernetes.io/instance: {{{{ .Release.Name }}}}
        {{{{- end }}}}
        {{{{- define "{name}.labels" -}}}}
        {{{{ include "{name}.selectorLabels" . }}}}
        helm.sh/chart: {{{{ .Chart.Name }}}}-{{{{ .Chart.Version }}}}
        {{{{- end }}}}
        """
    )


def _chart(name: str, version: str, deps: str = "") -> str:
    return dedent(
        f"""
        apiVersion: v2
        name: {name}
        description: The {name} chart of the platform team
        type: application
        version: {version}
        appVersion: "1.4.0"
        """
    ) + dedent(deps)


def _oci_release(name: str, ref: str) -> str:
    return dedent(
        f"""
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: OCIRepository
        metadata:
          name: {name}
          namespace: flux-system
        spec:
          interval: 10m
          url: oci://ghcr.io/example/charts/{name}
          layerSelector:
            mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip
            operation: copy
          ref:
            {ref}
        ---
        apiVersion: helm.toolkit.fluxcd.io/v2
        kind: HelmRelease
        metadata:
          name: {name}
          namespace: flux-system
        spec:
          interval: 30m
          targetNamespace: {name}
          chartRef:
            kind: OCIRepository
            name: {name}
          values:
            fullnameOverride: "{{{{ .Release.Name }}}}"
        """
    )


def _git_release(name: str, strategy: str = "") -> str:
    text = dedent(
        f"""
        apiVersion: helm.toolkit.fluxcd.io/v2
        kind: HelmRelease
        metadata:
          name: {name}
          namespace: flux-system
        spec:
          interval: 30m
          targetNamespace: {name}
          chart:
            spec:
              chart: ./charts/{name}
              sourceRef:
                kind: GitRepository
                name: flux-system
              valuesFiles:
                - ./charts/{name}/values.yaml
        """
    )
    if strategy:
        text = text.replace(
            f"chart: ./charts/{name}\n",
            f"chart: ./charts/{name}\n      reconcileStrategy: {strategy}\n",
        )
    return text


def platform() -> dict[str, str]:
    """The base commit of every scenario: a working platform monorepo."""
    files: dict[str, str] = {}
    # --- flux bootstrap ---------------------------------------------------------------
    files["clusters/prod/flux-system/gotk-components.yaml"] = dedent(
        """
        # Flux components (trimmed)
        ---
        apiVersion: v1
        kind: Namespace
        metadata:
          name: flux-system
          labels:
            app.kubernetes.io/instance: flux-system
        """
    )
    files["clusters/prod/flux-system/gotk-sync.yaml"] = dedent(
        """
        # This manifest was generated by flux. DO NOT EDIT.
        ---
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: GitRepository
        metadata:
          name: flux-system
          namespace: flux-system
        spec:
          interval: 1m0s
          ref:
            branch: main
          secretRef:
            name: flux-system
          url: ssh://git@github.com/example/platform-gitops
        ---
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata:
          name: flux-system
          namespace: flux-system
        spec:
          interval: 10m0s
          path: ./clusters/prod
          prune: true
          sourceRef:
            kind: GitRepository
            name: flux-system
        """
    )
    files["clusters/prod/flux-system/kustomization.yaml"] = dedent(
        """
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources:
          - gotk-components.yaml
          - gotk-sync.yaml
        """
    )
    files["clusters/prod/cluster-vars.yaml"] = dedent(
        """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: cluster-vars
          namespace: flux-system
        data:
          CLUSTER_NAME: prod
          CLUSTER_DOMAIN: prod.example.com
          REGISTRY: ghcr.io/example
          PODINFO_VERSION: 6.7.0
        """
    )
    # --- Flux Kustomizations ----------------------------------------------------------
    files["clusters/prod/infrastructure.yaml"] = _flux_ks(
        "infrastructure",
        "./infrastructure/prod",
        after="""
        ---
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata:
          name: infrastructure-monitoring
          namespace: flux-system
        spec:
          dependsOn:
            - name: infrastructure
          interval: 10m
          path: ./infrastructure/monitoring
          prune: true
          sourceRef:
            kind: GitRepository
            name: flux-system
        """,
    )
    files["clusters/prod/platform-raw.yaml"] = _flux_ks(
        "platform-raw",
        "./charts/platform/templates",
        """
          targetNamespace: platform
          dependsOn:
            - name: infrastructure
        """,
    )
    files["clusters/prod/portal-raw.yaml"] = _flux_ks("portal-raw", "./deploy/portal")
    files["clusters/prod/charts.yaml"] = _flux_ks(
        "charts",
        "./deploy/charts",
        """
          dependsOn:
            - name: infrastructure
        """,
    )
    files["clusters/prod/apps.yaml"] = _flux_ks(
        "apps",
        "./apps/prod",
        """
          dependsOn:
            - name: infrastructure
          postBuild:
            substitute:
              CLUSTER_NAME: prod
              APP_REPLICAS: "2"
            substituteFrom:
              - kind: ConfigMap
                name: cluster-vars
              - kind: Secret
                name: cluster-secrets
                optional: true
        """,
    )
    # --- bootstrap kit ----------------------------------------------------------------
    files["clusters/prod/bootstrap-kit/repositories.yaml"] = dedent(
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
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: HelmRepository
        metadata:
          name: ingress-nginx
          namespace: flux-system
        spec:
          interval: 1h
          url: https://kubernetes.github.io/ingress-nginx
        ---
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: HelmRepository
        metadata:
          name: external-secrets
          namespace: flux-system
        spec:
          interval: 1h
          url: https://charts.external-secrets.io
        ---
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: HelmRepository
        metadata:
          name: platform-charts
          namespace: flux-system
        spec:
          interval: 10m
          url: https://charts.platform.example.com
          secretRef:
            name: platform-charts-auth
        """
    )
    files["clusters/prod/bootstrap-kit/cert-manager.yaml"] = _upstream_release(
        "cert-manager",
        "cert-manager",
        "v1.15.3",
        "jetstack",
        """
          values:
            crds:
              enabled: true
            prometheus:
              servicemonitor:
                enabled: true
        """,
    )
    files["clusters/prod/bootstrap-kit/ingress-nginx.yaml"] = _upstream_release(
        "ingress-nginx",
        "ingress-nginx",
        "4.11.2",
        "ingress-nginx",
        """
          values:
            controller:
              replicaCount: 2
              config:
                log-format-upstream: '{"time": "$time_iso8601", "host": "$host"}'
        """,
    )
    files["clusters/prod/bootstrap-kit/external-secrets.yaml"] = _upstream_release(
        "external-secrets",
        "external-secrets",
        "0.10.4",
        "external-secrets",
        """
          dependsOn:
            - name: cert-manager
          values:
            installCRDs: true
        """,
    )
    files["clusters/prod/bootstrap-kit/platform.yaml"] = dedent(
        """
        apiVersion: helm.toolkit.fluxcd.io/v2
        kind: HelmRelease
        metadata:
          name: platform
          namespace: flux-system
        spec:
          interval: 10m
          targetNamespace: platform
          dependsOn:
            - name: ingress-nginx
            - name: external-secrets
          chart:
            spec:
              chart: platform
              version: "1.1.12"
              sourceRef:
                kind: HelmRepository
                name: platform-charts
          values:
            global:
              imageRegistry: ghcr.io/example
            ingress:
              host: "{{ .Release.Name }}.prod.example.com"
        """
    )
    # --- the umbrella chart, whose templates platform-raw also applies raw --------------
    files["charts/platform/Chart.yaml"] = _chart(
        "platform",
        "1.1.12",
        """
        dependencies:
          - name: metrics-agent
            version: "0.4.0"
            repository: "file://../metrics-agent"
        """,
    )
    files["charts/platform/values.yaml"] = dedent(
        """
        global:
          imageRegistry: ghcr.io/example
        metrics-agent:
          enabled: true
        """
    )
    files["charts/platform/templates/api-deployment.yaml"] = _raw_deployment(
        "api", "ghcr.io/example/api:1.4.0"
    )
    files["charts/platform/templates/worker-deployment.yaml"] = _raw_deployment(
        "worker", "ghcr.io/example/worker:1.4.0"
    )
    files["charts/platform/templates/api-service.yaml"] = dedent(
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: api
        spec:
          selector:
            app.kubernetes.io/name: api
          ports:
            - name: http
              port: 80
              targetPort: http
        """
    )
    files["charts/metrics-agent/Chart.yaml"] = _chart("metrics-agent", "0.4.0")
    files["charts/metrics-agent/values.yaml"] = dedent(
        """
        replicaCount: 1
        image:
          repository: ghcr.io/example/metrics-agent
          tag: ""
        imagePullSecrets: []
        resources: {}
        """
    )
    files["charts/metrics-agent/templates/_helpers.tpl"] = _helpers("metrics-agent")
    files["charts/metrics-agent/templates/deployment.yaml"] = _templated_deployment("metrics-agent")
    # --- a chart from Git whose templates deploy/portal also lists raw -----------------
    files["charts/portal/Chart.yaml"] = _chart("portal", "0.2.0")
    files["charts/portal/values.yaml"] = dedent(
        """
        replicaCount: 1
        image:
          repository: ghcr.io/example/portal
          tag: "2.1.0"
        imagePullSecrets: []
        resources: {}
        ingress:
          host: portal.example.com
        """
    )
    files["charts/portal/templates/_helpers.tpl"] = _helpers("portal")
    files["charts/portal/templates/deployment.yaml"] = _raw_deployment(
        "portal", "ghcr.io/example/portal:2.1.0"
    )
    files["charts/portal/templates/configmap.yaml"] = dedent(
        """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: portal-settings
        data:
          LOG_LEVEL: info
          FEATURE_FLAGS: search,export
        """
    )
    files["charts/portal/templates/ingress.yaml"] = dedent(
        """
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: {{ include "portal.fullname" . }}
        spec:
          rules:
            - host: {{ .Values.ingress.host | quote }}
              http:
                paths:
                  - path: /
                    pathType: Prefix
                    backend:
                      service:
                        name: {{ include "portal.fullname" . }}
                        port:
                          number: 80
        """
    )
    files["deploy/portal/kustomization.yaml"] = dedent(
        """
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        namespace: portal
        resources:
          - namespace.yaml
          - ../../charts/portal/templates/deployment.yaml
          - ../../charts/portal/templates/configmap.yaml
        """
    )
    files["deploy/portal/namespace.yaml"] = dedent(
        """
        apiVersion: v1
        kind: Namespace
        metadata:
          name: portal
        """
    )
    # --- a chart from Git deployed by revision, and charts from OCI ---------------------
    files["charts/ops-tools/Chart.yaml"] = _chart("ops-tools", "0.1.0")
    files["charts/ops-tools/values.yaml"] = "schedule: '*/30 * * * *'\n"
    files["charts/ops-tools/templates/cronjob.yaml"] = dedent(
        """
        apiVersion: batch/v1
        kind: CronJob
        metadata:
          name: {{ .Release.Name }}-cleanup
        spec:
          schedule: {{ .Values.schedule | quote }}
          jobTemplate:
            spec:
              template:
                spec:
                  restartPolicy: OnFailure
                  containers:
                    - name: cleanup
                      image: ghcr.io/example/ops-tools:0.1.0
        """
    )
    files["charts/edge-gateway/Chart.yaml"] = _chart("edge-gateway", "0.3.1")
    files["charts/edge-gateway/values.yaml"] = dedent(
        """
        replicaCount: 2
        image:
          repository: ghcr.io/example/edge-gateway
          tag: ""
        imagePullSecrets: []
        resources: {}
        """
    )
    files["charts/edge-gateway/templates/_helpers.tpl"] = _helpers("edge-gateway")
    files["charts/edge-gateway/templates/deployment.yaml"] = _templated_deployment("edge-gateway")
    files["charts/status-page/Chart.yaml"] = _chart("status-page", "2.0.4")
    files["charts/status-page/values.yaml"] = dedent(
        """
        replicaCount: 1
        image:
          repository: ghcr.io/example/status-page
          tag: ""
        imagePullSecrets: []
        resources: {}
        """
    )
    files["charts/status-page/templates/_helpers.tpl"] = _helpers("status-page")
    files["charts/status-page/templates/deployment.yaml"] = _templated_deployment("status-page")
    files["deploy/charts/kustomization.yaml"] = dedent(
        """
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources:
          - portal.yaml
          - ops-tools.yaml
          - edge-gateway.yaml
          - status-page.yaml
        """
    )
    files["deploy/charts/portal.yaml"] = _git_release("portal")
    files["deploy/charts/ops-tools.yaml"] = _git_release("ops-tools", "Revision")
    files["deploy/charts/edge-gateway.yaml"] = _oci_release("edge-gateway", 'tag: "0.3.1"')
    files["deploy/charts/status-page.yaml"] = _oci_release("status-page", 'semver: "~2.0.0"')
    # --- infrastructure ---------------------------------------------------------------
    files["infrastructure/base/kustomization.yaml"] = dedent(
        """
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources:
          - namespaces.yaml
          - registry-credentials.yaml
          - cluster-secret-store.yaml
          - ghcr-pull.yaml
        """
    )
    files["infrastructure/base/namespaces.yaml"] = dedent(
        """
        apiVersion: v1
        kind: Namespace
        metadata:
          name: platform
        ---
        apiVersion: v1
        kind: Namespace
        metadata:
          name: apps
        """
    )
    files["infrastructure/base/registry-credentials.yaml"] = dedent(
        """
        apiVersion: bitnami.com/v1alpha1
        kind: SealedSecret
        metadata:
          name: registry-credentials
          namespace: apps
        spec:
          encryptedData:
            .dockerconfigjson: AgBy8hCi8zcFS6QnTmB7K0n2kxUIXrfU0uwm2Ojl3b0mE0n2kAx==
          template:
            metadata:
              name: registry-credentials
              namespace: apps
            type: kubernetes.io/dockerconfigjson
        """
    )
    files["infrastructure/base/cluster-secret-store.yaml"] = dedent(
        """
        apiVersion: external-secrets.io/v1beta1
        kind: ClusterSecretStore
        metadata:
          name: vault
        spec:
          provider:
            vault:
              server: https://vault.example.com
              path: secret
              version: v2
              auth:
                kubernetes:
                  mountPath: kubernetes
                  role: external-secrets
        """
    )
    files["infrastructure/base/ghcr-pull.yaml"] = dedent(
        """
        apiVersion: external-secrets.io/v1beta1
        kind: ExternalSecret
        metadata:
          name: ghcr-pull
          namespace: apps
        spec:
          refreshInterval: 1h
          secretStoreRef:
            kind: ClusterSecretStore
            name: vault
          target:
            name: ghcr-pull
            template:
              type: kubernetes.io/dockerconfigjson
              data:
                .dockerconfigjson: '{"auths":{"ghcr.io":{"auth":"{{ printf "%s:%s" .user .token | b64enc }}"}}}'
          data:
            - secretKey: user
              remoteRef:
                key: ci/ghcr
                property: user
            - secretKey: token
              remoteRef:
                key: ci/ghcr
                property: token
        """
    )
    files["infrastructure/prod/kustomization.yaml"] = dedent(
        """
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources:
          - ../base
        patches:
          - path: patches/vault-server.yaml
            target:
              kind: ClusterSecretStore
              name: vault
        """
    )
    files["infrastructure/prod/patches/vault-server.yaml"] = dedent(
        """
        apiVersion: external-secrets.io/v1beta1
        kind: ClusterSecretStore
        metadata:
          name: vault
        spec:
          provider:
            vault:
              server: https://vault.prod.example.com
        """
    )
    files["infrastructure/monitoring/kustomization.yaml"] = dedent(
        """
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        namespace: monitoring
        resources:
          - alerts.yaml
          - alertmanager-config.yaml
        configMapGenerator:
          - name: platform-dashboard
            files:
              - dashboards/platform.json
            options:
              labels:
                grafana_dashboard: "1"
        """
    )
    files["infrastructure/monitoring/alerts.yaml"] = dedent(
        """
        apiVersion: monitoring.coreos.com/v1
        kind: PrometheusRule
        metadata:
          name: platform-alerts
        spec:
          groups:
            - name: platform
              rules:
                - alert: PlatformApiDown
                  expr: up{job="api"} == 0
                  for: 5m
                  labels:
                    severity: critical
                  annotations:
                    summary: "API {{ $labels.instance }} is down"
                    description: Pod {{ $labels.pod }} has been down for 5 minutes.
        """
    )
    files["infrastructure/monitoring/alertmanager-config.yaml"] = dedent(
        """
        apiVersion: monitoring.coreos.com/v1alpha1
        kind: AlertmanagerConfig
        metadata:
          name: platform-team
        spec:
          route:
            receiver: slack
            groupBy: [alertname]
          receivers:
            - name: slack
              slackConfigs:
                - channel: "#platform-alerts"
                  apiURL:
                    name: slack-webhook
                    key: url
                  title: '{{ template "slack.default.title" . }}'
                  text: >-
                    {{ range .Alerts }}{{ .Annotations.summary }}
                    {{ end }}
        """
    )
    files["infrastructure/monitoring/dashboards/platform.json"] = (
        '{"title": "Platform", "panels": [{"targets": [{"legendFormat": "{{pod}}"}]}]}\n'
    )
    # --- apps, with post-build substitution --------------------------------------------
    files["apps/prod/kustomization.yaml"] = dedent(
        """
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        namespace: apps
        resources:
          - ../base/api
          - ../base/podinfo
        images:
          - name: ghcr.io/example/api
            newTag: 1.4.0
        """
    )
    files["apps/base/api/kustomization.yaml"] = dedent(
        """
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources:
          - deployment.yaml
          - service.yaml
        """
    )
    files["apps/base/api/deployment.yaml"] = _raw_deployment(
        "api", "ghcr.io/example/api:1.4.0", pull_secret="registry-credentials"
    )
    files["apps/base/api/service.yaml"] = dedent(
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: api
        spec:
          selector:
            app.kubernetes.io/name: api
          ports:
            - name: http
              port: 80
              targetPort: http
        """
    )
    files["apps/base/podinfo/kustomization.yaml"] = dedent(
        """
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources:
          - deployment.yaml
          - hpa.yaml
        """
    )
    files["apps/base/podinfo/deployment.yaml"] = dedent(
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: podinfo-${CLUSTER_NAME}
        spec:
          replicas: ${APP_REPLICAS:=1}
          selector:
            matchLabels:
              app: podinfo
          template:
            metadata:
              labels:
                app: podinfo
            spec:
              imagePullSecrets:
                - name: ghcr-pull
              containers:
                - name: podinfo
                  image: ${REGISTRY:=ghcr.io/stefanprodan}/podinfo:${PODINFO_VERSION:=6.7.0}
                  env:
                    - name: PODINFO_UI_MESSAGE
                      value: "Hello from ${CLUSTER_NAME}"
        """
    )
    files["apps/base/podinfo/hpa.yaml"] = dedent(
        """
        apiVersion: autoscaling/v2
        kind: HorizontalPodAutoscaler
        metadata:
          name: podinfo-${CLUSTER_NAME}
        spec:
          scaleTargetRef:
            apiVersion: apps/v1
            kind: Deployment
            name: podinfo-${CLUSTER_NAME}
          minReplicas: 2
          maxReplicas: 4
        """
    )
    # --- not Kubernetes at all ---------------------------------------------------------
    files["README.md"] = "# platform-gitops\n\nFlux manages `clusters/prod`.\n"
    files[".sops.yaml"] = dedent(
        """
        creation_rules:
          - path_regex: .*\\.sops\\.ya?ml
            encrypted_regex: ^(data|stringData)$
            age: age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq
        """
    )
    files[".github/workflows/validate.yaml"] = dedent(
        """
        name: validate
        on:
          pull_request:
        jobs:
          flux-review:
            runs-on: ubuntu-latest
            steps:
              - uses: actions/checkout@v4
                with:
                  fetch-depth: 0
              - run: flux-review check --base "origin/${{ github.base_ref }}" --format sarif > out.sarif
              - if: ${{ always() }}
                uses: github/codeql-action/upload-sarif@v3
                with:
                  sarif_file: out.sarif
        """
    )
    files["renovate.json"] = (
        '{"extends": ["config:recommended"], "flux": {"fileMatch": ["\\\\.yaml$"]}}\n'
    )
    files["Taskfile.yaml"] = dedent(
        """
        version: "3"
        vars:
          CLUSTER: '{{.CLUSTER | default "prod"}}'
        tasks:
          reconcile:
            cmds:
              - flux reconcile kustomization flux-system --with-source --context {{.CLUSTER}}
        """
    )
    return files


# --------------------------------------------------------------------------------------
# Running a scenario
# --------------------------------------------------------------------------------------

Edit = str | None | Callable[[str], str]
Key = tuple[str, str, int, str, bool]  # (rule, path, line, severity, introduced)


def sub(old: str, new: str, count: int = 1) -> Callable[[str], str]:
    """An edit that replaces `old` by `new` (`count` times) in a file."""

    def edit(text: str) -> str:
        assert text.count(old) >= count, f"{old!r} not found {count} time(s)"
        return text.replace(old, new, count)

    return edit


@dataclass
class Result:
    repo: GitRepo
    base: str
    head: str
    returncode: int
    findings: list[dict[str, object]]
    files: dict[str, str] = field(default_factory=dict)  # the head's files

    def keys(self) -> set[Key]:
        return {
            (
                str(f["rule"]),
                str(f["path"]),
                int(str(f["line"])),
                str(f["severity"]),
                bool(f["introduced"]),
            )
            for f in self.findings
        }

    def line(self, path: str, needle: str, occurrence: int = 1) -> int:
        return line_of(self.files[path], needle, occurrence)

    def check(self, *args: str) -> list[dict[str, object]]:
        """Run the CLI again on the same commits (e.g. with --all)."""
        proc = _cli(self.repo.path, "--base", self.base, "--head", self.head, *args)
        return json.loads(proc.stdout)["findings"]  # type: ignore[no-any-return]

    def message(self, rule: str, path: str) -> str:
        return next(
            str(f["message"]) for f in self.findings if (f["rule"], f["path"]) == (rule, path)
        )

    def detail(self, rule: str, path: str) -> str:
        return next(
            str(f["detail"]) for f in self.findings if (f["rule"], f["path"]) == (rule, path)
        )


def _cli(repo: Path, *args: str, subprocess_run: bool = False) -> subprocess.CompletedProcess[str]:
    argv = ["check", "--repo", str(repo), "--format", "json", *args]
    if subprocess_run:
        proc = subprocess.run(
            [sys.executable, "-m", "bot", *argv],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
    else:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = bot_main(argv)
        proc = subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())
    assert proc.returncode in (0, 1), proc.stderr
    assert "warning:" not in proc.stderr, proc.stderr  # no rule crashed
    # Every message of every scenario reads as one sentence (see MESSAGE_LIMIT).
    assert_readable(json.loads(proc.stdout)["findings"])
    return proc


def _apply(files: dict[str, str], edits: Mapping[str, Edit]) -> dict[str, str | None]:
    written: dict[str, str | None] = {}
    for path, edit in edits.items():
        if callable(edit):
            files[path] = edit(files[path])
            written[path] = files[path]
        elif edit is None:
            del files[path]
            written[path] = None
        else:
            files[path] = edit
            written[path] = edit
    return written


def scenario(
    tmp_path: Path,
    change: Mapping[str, Edit] | None = None,
    *,
    renames: Sequence[tuple[str, str]] = (),
    before: Mapping[str, Edit] | None = None,
    extra_args: Sequence[str] = (),
    subprocess_run: bool = False,
) -> Result:
    """Commit the monorepo (with `before` applied) as base, then `renames` (git mv) and
    `change` as head, and run the check on the pair."""
    files = platform()
    _apply(files, before or {})
    repo = GitRepo(tmp_path / "platform-gitops")
    base = repo.commit("platform", dict(files))
    for old, new in renames:
        repo.rename(old, new)
        for path in [p for p in files if p == old or p.startswith(old + "/")]:
            files[new + path[len(old) :]] = files.pop(path)
    repo.write(_apply(files, change or {}))
    head = repo.commit("the change")
    proc = _cli(
        repo.path, "--base", base, "--head", head, *extra_args, subprocess_run=subprocess_run
    )
    doc = json.loads(proc.stdout)
    assert (doc["base"], doc["head"]) == (base, head)
    result = Result(repo, base, head, proc.returncode, doc["findings"], files)
    has_error = any(f["severity"] == ERROR for f in result.findings)
    assert proc.returncode == (1 if has_error else 0), proc.stdout
    return result


def pruned(path: str, line: int) -> Key:
    """The prune-deletes notice of an object the change renames or removes (on its line
    at the base): Flux deletes the old object from the cluster."""
    return (PRUNE, path, line, NOTICE, True)


def not_bumped(r: Result, chart: str) -> Key:
    """The chart-not-bumped warning on `charts/<chart>/Chart.yaml`."""
    path = f"charts/{chart}/Chart.yaml"
    return (NOT_BUMPED, path, r.line(path, "version:"), WARNING, True)


# --------------------------------------------------------------------------------------
# The base itself
# --------------------------------------------------------------------------------------


def test_the_monorepo_is_clean_as_a_whole_tree(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "platform-gitops")
    repo.commit("platform", platform())
    proc = _cli(repo.path)
    # With the helm extra, the traps show: the platform-raw and portal-raw Kustomizations
    # apply, raw, the very objects the HelmReleases of their charts install.
    expected = (
        [
            ("object-applied-twice", WARNING, f"charts/{path}", 4)
            for path in (
                "platform/templates/api-deployment.yaml",
                "platform/templates/api-service.yaml",
                "platform/templates/worker-deployment.yaml",
                "portal/templates/configmap.yaml",
                "portal/templates/deployment.yaml",
            )
        ]
        if HELM
        else []
    )
    found = [
        (f["rule"], f["severity"], f["path"], f["line"])
        for f in json.loads(proc.stdout)["findings"]
    ]
    assert found == expected
    assert proc.returncode == 0
    # Also once the CLI knows where the repository lives.
    repo.git("remote", "add", "origin", "git@github.com:example/platform-gitops.git")
    assert len(json.loads(_cli(repo.path).stdout)["findings"]) == len(expected)


# --------------------------------------------------------------------------------------
# The incident
# --------------------------------------------------------------------------------------

REGISTRY_IMAGE = "{{ .Values.global.imageRegistry }}/%s:1.4.0"


def test_incident_registry_template_in_templates_a_flux_kustomization_applies_raw(
    tmp_path: Path,
) -> None:
    api = "charts/platform/templates/api-deployment.yaml"
    worker = "charts/platform/templates/worker-deployment.yaml"
    r = scenario(
        tmp_path,
        {
            api: sub("ghcr.io/example/api:1.4.0", REGISTRY_IMAGE % "api"),
            worker: sub("ghcr.io/example/worker:1.4.0", REGISTRY_IMAGE % "worker"),
        },
        subprocess_run=True,  # the incident goes through the real command, as a user runs it
    )
    assert r.keys() == {
        (TEMPLATE, api, r.line(api, "imageRegistry"), ERROR, True),
        (TEMPLATE, worker, r.line(worker, "imageRegistry"), ERROR, True),
        # The chart changed without a new version, and it is deployed by version.
        not_bumped(r, "platform"),
    }
    message = r.message(TEMPLATE, api)
    assert "Flux Kustomization flux-system/platform-raw" in message
    assert "Helm" in message and "chart platform" in message


def test_incident_quoted_registry_template_is_reported_once(tmp_path: Path) -> None:
    api = "charts/platform/templates/api-deployment.yaml"
    r = scenario(
        tmp_path,
        {api: sub("ghcr.io/example/api:1.4.0", '"' + REGISTRY_IMAGE % "api" + '"')},
    )
    assert r.keys() == {
        (TEMPLATE, api, r.line(api, "imageRegistry"), ERROR, True),
        not_bumped(r, "platform"),
    }


def test_incident_through_a_kustomization_that_lists_the_template_files(
    tmp_path: Path,
) -> None:
    deployment = "charts/portal/templates/deployment.yaml"
    r = scenario(
        tmp_path,
        {
            deployment: sub(
                "ghcr.io/example/portal:2.1.0",
                "{{ .Values.global.imageRegistry }}/portal:{{ .Values.image.tag }}",
            )
        },
    )
    assert r.keys() == {
        (TEMPLATE, deployment, r.line(deployment, "imageRegistry"), ERROR, True),
        # portal is built from Git with reconcileStrategy ChartVersion: not bumped.
        not_bumped(r, "portal"),
        # Its values have no `global`: Helm fails on the same line.
        *([(RENDER, deployment, r.line(deployment, "imageRegistry"), ERROR, True)] if HELM else []),
    }
    message = r.message(TEMPLATE, deployment)
    assert "flux-system/portal-raw" in message and "chart portal" in message
    assert "deploy/portal/kustomization.yaml" in r.detail(TEMPLATE, deployment)


TEMPLATES_KUSTOMIZATION: dict[str, Edit] = {
    # The chart's templates made buildable by kustomize, the kustomization hidden from Helm.
    "charts/platform/templates/kustomization.yaml": dedent(
        """
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources:
          - api-deployment.yaml
          - worker-deployment.yaml
          - api-service.yaml
        """
    ),
    "charts/platform/.helmignore": ".git/\n*.tgz\ntemplates/kustomization.yaml\n",
}


def test_incident_through_a_kustomization_inside_the_templates_directory(
    tmp_path: Path,
) -> None:
    worker = "charts/platform/templates/worker-deployment.yaml"
    r = scenario(
        tmp_path,
        {worker: sub("ghcr.io/example/worker:1.4.0", REGISTRY_IMAGE % "worker")},
        before=TEMPLATES_KUSTOMIZATION,
    )
    assert r.keys() == {
        (TEMPLATE, worker, r.line(worker, "imageRegistry"), ERROR, True),
        not_bumped(r, "platform"),
    }
    assert "kustomize via charts/platform/templates/kustomization.yaml" in r.detail(
        TEMPLATE, worker
    )


def test_kustomization_added_to_chart_templates_without_helmignore(tmp_path: Path) -> None:
    kfile = "charts/platform/templates/kustomization.yaml"
    r = scenario(tmp_path, {kfile: TEMPLATES_KUSTOMIZATION[kfile]})
    assert r.keys() == {
        ("kustomization-in-chart-templates", kfile, r.line(kfile, "kind:"), ERROR, True),
        not_bumped(r, "platform"),
    }


def test_a_file_read_by_helm_and_kustomize_gains_a_helm_only_construct(tmp_path: Path) -> None:
    configmap = "charts/portal/templates/configmap.yaml"
    r = scenario(
        tmp_path,
        {
            configmap: sub(
                "  name: portal-settings\n",
                "  name: portal-settings\n  labels:\n"
                '    {{- include "portal.labels" . | nindent 4 }}\n',
            )
        },
    )
    assert r.keys() == {
        (TEMPLATE, configmap, r.line(configmap, "include"), ERROR, True),
        not_bumped(r, "portal"),
    }
    assert "and rendered by chart portal" in r.message(TEMPLATE, configmap)
    detail = r.detail(TEMPLATE, configmap)
    assert "kustomize via deploy/portal/kustomization.yaml" in detail
    assert "Helm, which renders it as a template of chart portal" in detail


def test_a_new_conditional_template_in_a_raw_applied_templates_directory(
    tmp_path: Path,
) -> None:
    hpa = "charts/platform/templates/api-hpa.yaml"
    r = scenario(
        tmp_path,
        {
            hpa: dedent(
                """
                {{- if .Values.autoscaling.enabled }}
                apiVersion: autoscaling/v2
                kind: HorizontalPodAutoscaler
                metadata:
                  name: api
                spec:
                  scaleTargetRef:
                    apiVersion: apps/v1
                    kind: Deployment
                    name: api
                  minReplicas: {{ .Values.autoscaling.minReplicas }}
                  maxReplicas: {{ .Values.autoscaling.maxReplicas }}
                {{- end }}
                """
            )
        },
    )
    assert r.keys() == {
        (TEMPLATE, hpa, 1, ERROR, True),
        (TEMPLATE, hpa, 11, ERROR, True),
        (TEMPLATE, hpa, 12, ERROR, True),
        (TEMPLATE, hpa, 13, ERROR, True),
        not_bumped(r, "platform"),
        # The values have no `autoscaling`: Helm fails on the `if`.
        *([(RENDER, hpa, 1, ERROR, True)] if HELM else []),
    }


# --------------------------------------------------------------------------------------
# Bootstrap kit
# --------------------------------------------------------------------------------------


def test_bootstrap_kit_chart_bumped_without_its_helmrelease(tmp_path: Path) -> None:
    release = "clusters/prod/bootstrap-kit/platform.yaml"
    r = scenario(
        tmp_path,
        {
            "charts/platform/Chart.yaml": sub("version: 1.1.12", "version: 1.1.13"),
            "charts/platform/templates/api-service.yaml": sub("port: 80", "port: 8080"),
        },
    )
    # 1.1.12 is the chart's version at the base, so it was published: the release still
    # installs, the old chart, and the pin lags.
    assert r.keys() == {(MISMATCH, release, r.line(release, 'version: "1.1.12"'), WARNING, True)}
    [finding] = r.findings
    assert finding["suggestion"] == '      version: "1.1.13"'
    assert "lags" in str(finding["message"]) and "1.1.13" in str(finding["message"])


def test_bootstrap_kit_chart_bump_inside_the_helmrelease_range_is_fine(tmp_path: Path) -> None:
    r = scenario(
        tmp_path,
        {
            "charts/platform/Chart.yaml": sub("version: 1.1.12", "version: 1.1.13"),
            "clusters/prod/bootstrap-kit/platform.yaml": sub('"1.1.12"', '"1.1.x"'),
        },
    )
    assert r.keys() == set()


def test_bootstrap_kit_helmrepository_renamed_under_its_helmrelease(tmp_path: Path) -> None:
    release = "clusters/prod/bootstrap-kit/cert-manager.yaml"
    r = scenario(
        tmp_path,
        {
            "clusters/prod/bootstrap-kit/repositories.yaml": sub(
                "name: jetstack", "name: jetstack-charts"
            )
        },
    )
    assert r.keys() == {(DANGLING, release, r.line(release, "name: jetstack"), ERROR, True)} | {
        pruned("clusters/prod/bootstrap-kit/repositories.yaml", 4)
    }
    assert "HelmRepository jetstack" in r.message(DANGLING, release)
    assert "jetstack-charts" in r.detail(DANGLING, release)


def test_bootstrap_kit_depends_on_a_removed_helmrelease(tmp_path: Path) -> None:
    release = "clusters/prod/bootstrap-kit/platform.yaml"
    r = scenario(tmp_path, {"clusters/prod/bootstrap-kit/ingress-nginx.yaml": None})
    assert r.keys() == {
        (DANGLING, release, r.line(release, "- name: ingress-nginx"), ERROR, True)
    } | {pruned("clusters/prod/bootstrap-kit/ingress-nginx.yaml", 4)}


def test_flux_kustomization_depends_on_a_renamed_kustomization(tmp_path: Path) -> None:
    path = "clusters/prod/infrastructure.yaml"
    r = scenario(tmp_path, {path: sub("name: infrastructure\n", "name: infra\n")})
    referrers = [path] + [
        f"clusters/prod/{name}.yaml" for name in ("platform-raw", "charts", "apps")
    ]
    assert r.keys() == {
        (DANGLING, p, r.line(p, "- name: infrastructure"), ERROR, True) for p in referrers
    } | {pruned("clusters/prod/infrastructure.yaml", 4)}


# --------------------------------------------------------------------------------------
# Umbrella chart with file:// dependencies
# --------------------------------------------------------------------------------------


def test_umbrella_file_dependency_not_bumped(tmp_path: Path) -> None:
    umbrella = "charts/platform/Chart.yaml"
    r = scenario(
        tmp_path,
        {
            "charts/metrics-agent/Chart.yaml": sub("version: 0.4.0", "version: 0.5.0"),
            "charts/metrics-agent/values.yaml": sub("replicaCount: 1", "replicaCount: 2"),
        },
    )
    assert r.keys() == {(MISMATCH, umbrella, r.line(umbrella, '"0.4.0"'), WARNING, True)}
    [finding] = r.findings
    assert finding["suggestion"] == '    version: "0.5.0"'


def test_umbrella_dependency_changed_without_its_own_bump(tmp_path: Path) -> None:
    r = scenario(
        tmp_path,
        {"charts/metrics-agent/values.yaml": sub("replicaCount: 1", "replicaCount: 2")},
    )
    assert r.keys() == {not_bumped(r, "metrics-agent")}


# --------------------------------------------------------------------------------------
# Charts from Git
# --------------------------------------------------------------------------------------


def test_git_chart_changed_without_a_version_bump(tmp_path: Path) -> None:
    r = scenario(
        tmp_path,
        {"charts/portal/templates/ingress.yaml": sub("pathType: Prefix", "pathType: Exact")},
    )
    assert r.keys() == {not_bumped(r, "portal")}
    [finding] = r.findings
    assert finding["suggestion"] == "version: 0.2.1"


def test_git_chart_changed_with_a_version_bump(tmp_path: Path) -> None:
    r = scenario(
        tmp_path,
        {
            "charts/portal/templates/ingress.yaml": sub("pathType: Prefix", "pathType: Exact"),
            "charts/portal/Chart.yaml": sub("version: 0.2.0", "version: 0.2.1"),
        },
    )
    assert r.keys() == set()


def test_git_chart_deployed_by_revision_needs_no_bump(tmp_path: Path) -> None:
    r = scenario(
        tmp_path,
        {"charts/ops-tools/templates/cronjob.yaml": sub("OnFailure", "Never")},
    )
    assert r.keys() == set()


# --------------------------------------------------------------------------------------
# Charts from OCI
# --------------------------------------------------------------------------------------


def test_oci_chart_bumped_but_the_tag_still_pins_the_old_version(tmp_path: Path) -> None:
    path = "deploy/charts/edge-gateway.yaml"
    r = scenario(
        tmp_path,
        {"charts/edge-gateway/Chart.yaml": sub("version: 0.3.1", "version: 0.3.2")},
    )
    assert r.keys() == {(MISMATCH, path, r.line(path, 'tag: "0.3.1"'), WARNING, True)}


def test_oci_tag_bumped_ahead_of_the_chart(tmp_path: Path) -> None:
    path = "deploy/charts/edge-gateway.yaml"
    r = scenario(tmp_path, {path: sub('tag: "0.3.1"', 'tag: "0.3.2"')})
    assert r.keys() == {(MISMATCH, path, r.line(path, 'tag: "0.3.2"'), ERROR, True)}
    [finding] = r.findings
    assert finding["suggestion"] == '    tag: "0.3.1"'


def test_helmrelease_pinned_to_a_version_the_chart_does_not_have(tmp_path: Path) -> None:
    release = "clusters/prod/bootstrap-kit/platform.yaml"
    r = scenario(tmp_path, {release: sub('"1.1.12"', '"1.2.0"')})
    assert r.keys() == {(MISMATCH, release, r.line(release, '"1.2.0"'), ERROR, True)}
    assert "no earlier version matches" in r.message(MISMATCH, release)


def test_oci_repository_removed_under_its_helmrelease_chart_ref(tmp_path: Path) -> None:
    path = "deploy/charts/edge-gateway.yaml"
    r = scenario(tmp_path, {path: lambda t: t[t.index("---\n") + 4 :]})
    assert r.keys() == {(DANGLING, path, r.line(path, "  name: edge-gateway", 2), ERROR, True)} | {
        pruned("deploy/charts/edge-gateway.yaml", 4)
    }
    assert "spec.chartRef" in r.message(DANGLING, path)


def test_oci_chart_bumped_out_of_the_semver_range(tmp_path: Path) -> None:
    path = "deploy/charts/status-page.yaml"
    r = scenario(
        tmp_path,
        {"charts/status-page/Chart.yaml": sub("version: 2.0.4", "version: 2.1.0")},
    )
    assert r.keys() == {(MISMATCH, path, r.line(path, 'semver: "~2.0.0"'), WARNING, True)}


def test_oci_chart_bumped_within_the_semver_range(tmp_path: Path) -> None:
    r = scenario(
        tmp_path,
        {
            "charts/status-page/Chart.yaml": sub("version: 2.0.4", "version: 2.0.5"),
            "charts/status-page/values.yaml": sub("replicaCount: 1", "replicaCount: 3"),
        },
    )
    assert r.keys() == set()


def test_oci_chart_changed_without_a_version_bump(tmp_path: Path) -> None:
    r = scenario(
        tmp_path,
        {"charts/edge-gateway/values.yaml": sub("replicaCount: 2", "replicaCount: 3")},
    )
    assert r.keys() == {not_bumped(r, "edge-gateway")}


# --------------------------------------------------------------------------------------
# Flux post-build substitution
# --------------------------------------------------------------------------------------


def test_post_build_variables_in_images_names_and_versions_are_silent(tmp_path: Path) -> None:
    r = scenario(
        tmp_path,
        {
            "apps/base/api/deployment.yaml": sub(
                "image: ghcr.io/example/api:1.4.0",
                "image: ${REGISTRY}/api:${API_VERSION:=1.4.0}@${API_DIGEST}",
            ),
            "apps/base/podinfo/helmrelease.yaml": dedent(
                """
                apiVersion: helm.toolkit.fluxcd.io/v2
                kind: HelmRelease
                metadata:
                  name: podinfo-${CLUSTER_NAME}
                  namespace: apps
                spec:
                  interval: 30m
                  dependsOn:
                    - name: ${DEPENDENCY:=redis}
                  chart:
                    spec:
                      chart: platform
                      version: ${PLATFORM_VERSION:=1.0.0}
                      sourceRef:
                        kind: HelmRepository
                        name: ${CHART_REPOSITORY}
                        namespace: flux-system
                  values:
                    image:
                      repository: ${REGISTRY:-ghcr.io/example}/podinfo
                      tag: ${PODINFO_VERSION}
                    ingress:
                      hosts:
                        - podinfo.${CLUSTER_DOMAIN}
                """
            ),
            "apps/base/podinfo/kustomization.yaml": sub(
                "  - hpa.yaml\n", "  - hpa.yaml\n  - helmrelease.yaml\n"
            ),
            "apps/base/podinfo/deployment.yaml": sub(
                "- name: podinfo\n",
                "- name: podinfo\n"
                '          args: ["--level=${LOG_LEVEL:=info}", "--port=${PORT/80/8080}"]\n',
            ),
            "clusters/prod/apps-extra.yaml": _flux_ks(
                "apps-extra",
                "./apps/${CLUSTER_NAME}",
                spec="""
                  dependsOn:
                    - name: ${PARENT:=apps}
                  postBuild:
                    substituteFrom:
                      - kind: ConfigMap
                        name: cluster-vars
                """,
            ),
        },
    )
    assert r.keys() == set()


def test_substitute_from_config_map_removed(tmp_path: Path) -> None:
    apps = "clusters/prod/apps.yaml"
    r = scenario(tmp_path, {"clusters/prod/cluster-vars.yaml": None})
    assert r.keys() == {(DANGLING, apps, r.line(apps, "name: cluster-vars"), ERROR, True)} | {
        pruned("clusters/prod/cluster-vars.yaml", 4)
    }


# --------------------------------------------------------------------------------------
# kustomization.yaml and Flux Kustomization paths
# --------------------------------------------------------------------------------------


def test_manifest_added_but_not_listed(tmp_path: Path) -> None:
    pdb = "apps/base/podinfo/pdb.yaml"
    r = scenario(
        tmp_path,
        {
            pdb: dedent(
                """
                apiVersion: policy/v1
                kind: PodDisruptionBudget
                metadata:
                  name: podinfo
                spec:
                  minAvailable: 1
                  selector:
                    matchLabels:
                      app: podinfo
                """
            )
        },
    )
    assert r.keys() == {(UNLISTED, pdb, 1, WARNING, True)}
    assert r.returncode == 0


def test_kustomization_entry_renamed_away(tmp_path: Path) -> None:
    kfile = "infrastructure/base/kustomization.yaml"
    r = scenario(
        tmp_path,
        renames=[
            ("infrastructure/base/namespaces.yaml", "infrastructure/base/namespace-list.yaml")
        ],
    )
    assert r.keys() == {
        (MISSING, kfile, r.line(kfile, "- namespaces.yaml"), ERROR, True),
        (UNLISTED, "infrastructure/base/namespace-list.yaml", 1, WARNING, True),
    }


def test_kustomization_entry_renamed_with_the_file(tmp_path: Path) -> None:
    r = scenario(
        tmp_path,
        {
            "infrastructure/base/kustomization.yaml": sub(
                "- namespaces.yaml", "- namespace-list.yaml"
            )
        },
        renames=[
            ("infrastructure/base/namespaces.yaml", "infrastructure/base/namespace-list.yaml")
        ],
    )
    assert r.keys() == set()


def test_kustomization_directory_entry_renamed_away(tmp_path: Path) -> None:
    kfile = "apps/prod/kustomization.yaml"
    r = scenario(tmp_path, renames=[("apps/base/podinfo", "apps/base/podinfo-app")])
    assert r.keys() == {(MISSING, kfile, r.line(kfile, "- ../base/podinfo"), ERROR, True)}


def test_flux_kustomization_path_typo(tmp_path: Path) -> None:
    path = "clusters/prod/apps.yaml"
    r = scenario(tmp_path, {path: sub("path: ./apps/prod", "path: ./app/prod")})
    assert r.keys() == {(MISSING, path, r.line(path, "path: ./app/prod"), ERROR, True)}


def test_patch_file_removed_but_still_listed(tmp_path: Path) -> None:
    kfile = "infrastructure/prod/kustomization.yaml"
    r = scenario(tmp_path, {"infrastructure/prod/patches/vault-server.yaml": None})
    assert r.keys() == {(MISSING, kfile, r.line(kfile, "path: patches/"), ERROR, True)}


# --------------------------------------------------------------------------------------
# Renamed pull secrets
# --------------------------------------------------------------------------------------


RENAME_SEALED_SECRET: dict[str, Edit] = {
    "infrastructure/base/registry-credentials.yaml": lambda t: t.replace(
        "name: registry-credentials", "name: ghcr-credentials"
    )
}


def api_pull_secret(r: Result) -> Key:
    """The dangling pull secret of apps/base/api, which uses registry-credentials."""
    path = "apps/base/api/deployment.yaml"
    return (DANGLING, path, r.line(path, "- name: registry-credentials"), ERROR, True)


def test_sealed_pull_secret_renamed_while_still_referenced(tmp_path: Path) -> None:
    r = scenario(tmp_path, RENAME_SEALED_SECRET)
    assert r.keys() == {api_pull_secret(r)} | {
        pruned("infrastructure/base/registry-credentials.yaml", 4)
    }


def test_external_secret_pull_secret_renamed_while_still_referenced(tmp_path: Path) -> None:
    deployment = "apps/base/podinfo/deployment.yaml"
    r = scenario(
        tmp_path,
        {
            "infrastructure/base/ghcr-pull.yaml": lambda t: t.replace(
                "name: ghcr-pull", "name: ghcr-pull-secret"
            )
        },
    )
    assert r.keys() == {
        (DANGLING, deployment, r.line(deployment, "- name: ghcr-pull"), ERROR, True)
    } | {pruned("infrastructure/base/ghcr-pull.yaml", 4)}


def test_renamed_pull_secret_still_in_a_bootstrap_kit_helmrelease_values(
    tmp_path: Path,
) -> None:
    release = "clusters/prod/bootstrap-kit/platform.yaml"
    r = scenario(
        tmp_path,
        RENAME_SEALED_SECRET,
        before={
            release: lambda t: t + "    imagePullSecrets:\n      - name: registry-credentials\n"
        },
    )
    assert r.keys() == {
        (DANGLING, release, r.line(release, "- name: registry-credentials"), ERROR, True),
        api_pull_secret(r),
    } | {pruned("infrastructure/base/registry-credentials.yaml", 4)}


def test_renamed_pull_secret_still_in_a_chart_values_file(tmp_path: Path) -> None:
    values = "charts/edge-gateway/values.yaml"
    r = scenario(
        tmp_path,
        RENAME_SEALED_SECRET,
        before={
            values: sub("imagePullSecrets: []", "imagePullSecrets:\n  - name: registry-credentials")
        },
    )
    assert r.keys() == {
        (DANGLING, values, r.line(values, "- name: registry-credentials"), ERROR, True),
        api_pull_secret(r),
    } | {pruned("infrastructure/base/registry-credentials.yaml", 4)}


def test_renamed_pull_secret_still_in_a_chart_template(tmp_path: Path) -> None:
    cronjob = "charts/ops-tools/templates/cronjob.yaml"
    r = scenario(
        tmp_path,
        RENAME_SEALED_SECRET,
        before={
            cronjob: sub(
                "          restartPolicy: OnFailure\n",
                "          restartPolicy: OnFailure\n"
                "          imagePullSecrets:\n"
                "            - name: registry-credentials\n",
            )
        },
    )
    assert r.keys() == {
        (DANGLING, cronjob, r.line(cronjob, "- name: registry-credentials"), ERROR, True),
        api_pull_secret(r),
    } | {pruned("infrastructure/base/registry-credentials.yaml", 4)}


def test_pull_secret_renamed_together_with_its_references(tmp_path: Path) -> None:
    r = scenario(
        tmp_path,
        {
            "infrastructure/base/ghcr-pull.yaml": lambda t: t.replace(
                "name: ghcr-pull", "name: ghcr-pull-secret"
            ),
            "apps/base/podinfo/deployment.yaml": sub(
                "- name: ghcr-pull", "- name: ghcr-pull-secret"
            ),
        },
    )
    assert r.keys() == {pruned("infrastructure/base/ghcr-pull.yaml", 4)}


# --------------------------------------------------------------------------------------
# Invalid YAML
# --------------------------------------------------------------------------------------


def test_bad_indentation_in_a_raw_manifest(tmp_path: Path) -> None:
    service = "apps/base/api/service.yaml"
    r = scenario(tmp_path, {service: sub("  ports:\n", "   ports:\n")})
    assert r.keys() == {(SYNTAX, service, r.line(service, "   ports:"), ERROR, True)}


def test_missing_colon_in_a_raw_manifest_points_at_that_line(tmp_path: Path) -> None:
    deployment = "apps/base/api/deployment.yaml"
    r = scenario(tmp_path, {deployment: sub("  replicas: 2", "  replicas 2")})
    # libyaml only stops at the next line's `:`; the mistake is the line before.
    assert r.keys() == {(SYNTAX, deployment, r.line(deployment, "replicas 2"), ERROR, True)}


def test_unclosed_quote_in_a_raw_manifest_points_at_the_quote(tmp_path: Path) -> None:
    deployment = "apps/base/api/deployment.yaml"
    r = scenario(
        tmp_path,
        {deployment: sub("image: ghcr.io/example/api:1.4.0", 'image: "ghcr.io/example/api:1.4.0')},
    )
    assert r.keys() == {(SYNTAX, deployment, r.line(deployment, 'image: "'), ERROR, True)}


def test_tab_indentation_in_a_bootstrap_kit_helmrelease(tmp_path: Path) -> None:
    release = "clusters/prod/bootstrap-kit/ingress-nginx.yaml"
    r = scenario(tmp_path, {release: sub("    replicaCount: 2", "\treplicaCount: 2")})
    assert r.keys() == {(SYNTAX, release, r.line(release, "\treplicaCount"), ERROR, True)}


def test_duplicate_key_in_a_kustomization_file(tmp_path: Path) -> None:
    kfile = "apps/prod/kustomization.yaml"
    r = scenario(tmp_path, {kfile: lambda t: t + "namespace: apps-prod\n"})
    assert r.keys() == {(SYNTAX, kfile, r.line(kfile, "namespace: apps-prod"), ERROR, True)}


# --------------------------------------------------------------------------------------
# Legitimate templates: nothing to report
# --------------------------------------------------------------------------------------


MORE_ALERTS = """\
        - alert: PlatformWorkerRestarting
          expr: increase(kube_pod_container_status_restarts_total[15m]) > 3
          labels:
            severity: warning
          annotations:
            summary: '{{ $labels.namespace }}/{{ $labels.pod }} restarts'
            description: |-
              {{ $value | humanize }} restarts in 15 minutes.
              {{- if gt $value 10.0 }} Page someone.{{ end }}
            runbook_url: https://runbooks.example.com/{{ $labels.alertname }}
"""


def test_legitimate_templates_for_other_programs_are_silent(tmp_path: Path) -> None:
    r = scenario(
        tmp_path,
        {
            # Prometheus alert templates, quoted and in plain scalars.
            "infrastructure/monitoring/alerts.yaml": lambda t: t + MORE_ALERTS,
            # An ExternalSecret template with Helm-looking functions.
            "infrastructure/base/app-config.yaml": dedent(
                """
                apiVersion: external-secrets.io/v1beta1
                kind: ExternalSecret
                metadata:
                  name: app-config
                  namespace: apps
                spec:
                  secretStoreRef:
                    kind: ClusterSecretStore
                    name: vault
                  target:
                    name: app-config
                    template:
                      engineVersion: v2
                      data:
                        DATABASE_URL: "postgres://{{ .user }}:{{ .password | urlquery }}@db:5432/app"
                        config.json: '{{ .config | toJson }}'
                        settings.yaml: |
                          {{- range $k, $v := . }}
                          {{ $k }}: {{ $v | quote }}
                          {{- end }}
                  dataFrom:
                    - extract:
                        key: apps/app-config
                """
            ),
            "infrastructure/base/kustomization.yaml": sub(
                "  - ghcr-pull.yaml\n", "  - ghcr-pull.yaml\n  - app-config.yaml\n"
            ),
            # HelmRelease values that the chart renders with `tpl`.
            "clusters/prod/bootstrap-kit/platform.yaml": lambda t: (
                t
                + "    podAnnotations:\n"
                + "      checksum/config: '{{ include (print $.Template.BasePath \"/cm.yaml\") . }}'\n"
                + '    extraEnv: "{{ toYaml .Values.env | nindent 4 }}"\n'
            ),
            # A ConfigMap payload in a block scalar, with template lines.
            "apps/base/api/configmap.yaml": dedent(
                """
                apiVersion: v1
                kind: ConfigMap
                metadata:
                  name: api-templates
                data:
                  email.tmpl: |
                    {{- define "email.subject" -}}
                    [{{ .Status | toUpper }}] {{ .Values.subject }}
                    {{- end }}
                  grafana-dashboard.json: |
                    {"panels": [{"targets": [{"expr": "rate(x[5m])", "legendFormat": "{{pod}}"}]}]}
                """
            ),
            "apps/base/api/kustomization.yaml": sub(
                "  - service.yaml\n", "  - service.yaml\n  - configmap.yaml\n"
            ),
            # Alertmanager configuration in a Secret.
            "infrastructure/monitoring/alertmanager-secret.yaml": dedent(
                """
                apiVersion: v1
                kind: Secret
                metadata:
                  name: alertmanager-main
                stringData:
                  alertmanager.yaml: |
                    receivers:
                      - name: slack
                        slack_configs:
                          - title: '{{ template "slack.title" . }}'
                            text: {{ .CommonAnnotations.summary }}
                  msteams.tmpl: '{{ define "teams.title" }}{{ .Status }}{{ end }}'
                """
            ),
            "infrastructure/monitoring/kustomization.yaml": sub(
                "  - alertmanager-config.yaml\n",
                "  - alertmanager-config.yaml\n  - alertmanager-secret.yaml\n",
            ),
            # A Grafana dashboard ConfigMap (JSON inline, templated legend formats).
            "infrastructure/monitoring/dashboards/platform.json": (
                '{"title": "Platform", "templating": {"list": [{"name": "pod", '
                '"query": "label_values(up, pod)"}]}, "panels": [{"targets": '
                '[{"legendFormat": "{{pod}} {{namespace}}"}]}]}\n'
            ),
        },
    )
    assert r.keys() == set()


def test_kyverno_policy_with_quoted_variables_and_image_patterns_is_silent(
    tmp_path: Path,
) -> None:
    r = scenario(
        tmp_path,
        {
            "infrastructure/base/policies.yaml": dedent(
                """
                apiVersion: kyverno.io/v1
                kind: ClusterPolicy
                metadata:
                  name: platform-policies
                  annotations:
                    policies.kyverno.io/title: Platform policies
                spec:
                  validationFailureAction: Audit
                  rules:
                    - name: add-owner-label
                      match:
                        any:
                          - resources:
                              kinds: [Deployment]
                      mutate:
                        patchStrategicMerge:
                          metadata:
                            labels:
                              owner: "{{ request.object.metadata.name }}"
                    - name: disallow-latest-tag
                      match:
                        any:
                          - resources:
                              kinds: [Pod]
                      validate:
                        message: "Image {{ element.image }} must not use latest."
                        pattern:
                          spec:
                            containers:
                              - image: "!*:latest"
                            =(initContainers):
                              - image: "*:*"
                    - name: restrict-registries
                      match:
                        any:
                          - resources:
                              kinds: [Pod]
                      validate:
                        pattern:
                          spec:
                            containers:
                              - image: "ghcr.io/example/* | registry.k8s.io/*"
                """
            ),
            "infrastructure/base/kustomization.yaml": sub(
                "  - ghcr-pull.yaml\n", "  - ghcr-pull.yaml\n  - policies.yaml\n"
            ),
        },
    )
    assert r.keys() == set()


def test_go_templates_in_workflows_taskfiles_and_helmfiles_are_silent(tmp_path: Path) -> None:
    r = scenario(
        tmp_path,
        {
            ".github/workflows/validate.yaml": lambda t: (
                t + "          - run: echo ${{ secrets.TOKEN }} {{ not-a-template }}\n"
            ),
            "Taskfile.yaml": lambda t: (
                t
                + "  bootstrap:\n    cmds:\n      - task: reconcile\n        vars: {CLUSTER: '{{.CLUSTER}}'}\n"
            ),
            "bootstrap/helmfile.yaml": dedent(
                """
                ---
                helmDefaults:
                  wait: true
                releases:
                  - name: cilium
                    namespace: kube-system
                    chart: oci://ghcr.io/home-operations/charts-mirror/cilium
                    version: 1.16.5
                    values: ['{{ requiredEnv "ROOT_DIR" }}/apps/kube-system/cilium/values.yaml']
                  - name: flux-operator
                    namespace: flux-system
                    chart: oci://ghcr.io/controlplaneio-fluxcd/charts/flux-operator
                    version: 0.14.0
                    needs: ['kube-system/cilium']
                {{- if eq .Environment.Name "prod" }}
                  - name: spegel
                    chart: oci://ghcr.io/spegel-org/helm-charts/spegel
                {{- end }}
                """
            ),
        },
    )
    assert r.keys() == set()


# --------------------------------------------------------------------------------------
# Introduced or not
# --------------------------------------------------------------------------------------

LEGACY_BEFORE: dict[str, Edit] = {
    # A pre-existing problem: an upper-case image in an app that nobody touches.
    "apps/base/legacy/kustomization.yaml": dedent(
        """
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources:
          - deployment.yaml
        """
    ),
    "apps/base/legacy/deployment.yaml": _raw_deployment("legacy", "ghcr.io/Example/legacy:0.9"),
    "apps/prod/kustomization.yaml": sub(
        "  - ../base/podinfo\n", "  - ../base/podinfo\n  - ../base/legacy\n"
    ),
}
LEGACY = "apps/base/legacy/deployment.yaml"
LEGACY_LINE = 20


def test_pre_existing_problems_elsewhere_are_not_reported_but_are_with_all(
    tmp_path: Path,
) -> None:
    r = scenario(
        tmp_path,
        {"apps/base/api/deployment.yaml": sub("replicas: 2", "replicas: 3")},
        before=LEGACY_BEFORE,
    )
    assert r.keys() == set()
    everything = {
        (f["rule"], f["path"], f["line"], f["severity"], f["introduced"]) for f in r.check("--all")
    }
    assert everything == {(IMAGE, LEGACY, LEGACY_LINE, ERROR, False)}


def test_a_new_problem_next_to_a_pre_existing_one(tmp_path: Path) -> None:
    service = "apps/base/api/service.yaml"
    r = scenario(
        tmp_path,
        {service: sub("targetPort: http", "targetPort: http\n  - port: 443")},
        before=LEGACY_BEFORE,
        extra_args=["--all"],
    )
    assert r.keys() == {
        (SYNTAX, service, r.line(service, "- port: 443"), ERROR, True),
        (IMAGE, LEGACY, LEGACY_LINE, ERROR, False),
    }


def test_readme_change_reports_nothing(tmp_path: Path) -> None:
    r = scenario(
        tmp_path,
        {"README.md": lambda t: t + "\n## Clusters\n\n- prod: `clusters/prod`\n"},
        before=LEGACY_BEFORE,
    )
    assert r.keys() == set()
    assert r.returncode == 0


def test_moving_a_file_keeps_its_pre_existing_findings_not_introduced(tmp_path: Path) -> None:
    moved = "apps/base/legacy/legacy-deployment.yaml"
    r = scenario(
        tmp_path,
        {
            "apps/base/legacy/kustomization.yaml": sub(
                "- deployment.yaml", "- legacy-deployment.yaml"
            )
        },
        renames=[(LEGACY, moved)],
        before=LEGACY_BEFORE,
    )
    assert r.keys() == set()
    everything = {
        (f["rule"], f["path"], f["line"], f["severity"], f["introduced"]) for f in r.check("--all")
    }
    assert everything == {(IMAGE, moved, LEGACY_LINE, ERROR, False)}


def test_moving_a_directory_keeps_its_pre_existing_findings_not_introduced(
    tmp_path: Path,
) -> None:
    r = scenario(
        tmp_path,
        {"apps/prod/kustomization.yaml": sub("../base/legacy", "../base/legacy-app")},
        renames=[("apps/base/legacy", "apps/base/legacy-app")],
        before=LEGACY_BEFORE,
        extra_args=["--all"],
    )
    assert r.keys() == {(IMAGE, "apps/base/legacy-app/deployment.yaml", LEGACY_LINE, ERROR, False)}


def test_fixing_a_pre_existing_problem_reports_nothing(tmp_path: Path) -> None:
    r = scenario(
        tmp_path,
        {LEGACY: sub("ghcr.io/Example/legacy:0.9", "ghcr.io/example/legacy:0.9")},
        before=LEGACY_BEFORE,
        extra_args=["--all"],
    )
    assert r.keys() == set()


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({".sops.yaml": lambda t: t.replace("age1", "age1x")}, id="sops-config"),
        pytest.param({"renovate.json": '{"extends": ["config:base"]}\n'}, id="renovate"),
        pytest.param(
            {"charts/platform/README.md": "# platform\n"}, id="chart-readme-added-helm-packages-it"
        ),
    ],
)
def test_unrelated_files(tmp_path: Path, change: dict[str, Edit]) -> None:
    r = scenario(tmp_path, change)
    if "charts/platform/README.md" in change:
        # Helm packages a README: the chart changed without a new version.
        assert r.keys() == {not_bumped(r, "platform")}
    else:
        assert r.keys() == set()
