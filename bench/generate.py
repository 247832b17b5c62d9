"""A synthetic platform monorepo: thousands of apps, charts and Flux objects.

    python bench/generate.py --apps 2000 DEST   # writes files and commits them with git

The shape follows real Flux monorepos: clusters/<env>/ Flux Kustomizations, one
kustomize directory per app (Deployment, Service, ConfigMap, HPA, ServiceAccount),
HelmReleases from a HelmRepository and from in-repo charts, PrometheusRules and
ExternalSecrets full of legitimate `{{ }}`.
"""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Callable
from pathlib import Path

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
  namespace: {team}
  labels:
    app.kubernetes.io/name: {app}
    app.kubernetes.io/part-of: {team}
spec:
  replicas: 2
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      app.kubernetes.io/name: {app}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {app}
      annotations:
        prometheus.io/scrape: "true"
    spec:
      serviceAccountName: {app}
      securityContext:
        runAsNonRoot: true
        fsGroup: 65534
      containers:
        - name: {app}
          image: ghcr.io/example/{app}:1.{n}.0
          imagePullPolicy: IfNotPresent
          ports:
            - name: http
              containerPort: 8080
          env:
            - name: LOG_LEVEL
              value: info
            - name: CLUSTER
              value: ${{cluster_name}}
          envFrom:
            - configMapRef:
                name: {app}-config
          resources:
            requests:
              cpu: 50m
              memory: 64Mi
            limits:
              memory: 256Mi
          readinessProbe:
            httpGet:
              path: /healthz
              port: http
"""
SERVICE = """apiVersion: v1
kind: Service
metadata:
  name: {app}
  namespace: {team}
spec:
  selector:
    app.kubernetes.io/name: {app}
  ports:
    - name: http
      port: 80
      targetPort: http
"""
CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {app}-config
  namespace: {team}
data:
  FEATURE_FLAGS: "a,b,c"
  template.tmpl: |
    Hello {{{{ .User }}}}, you have {{{{ len .Items }}}} items.
"""
HPA = """apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {app}
  namespace: {team}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {app}
  minReplicas: 2
  maxReplicas: 10
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 80
"""
SA = """apiVersion: v1
kind: ServiceAccount
metadata:
  name: {app}
  namespace: {team}
"""
RULE = """apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: {app}
  namespace: {team}
spec:
  groups:
    - name: {app}
      rules:
        - alert: {app}Down
          expr: up{{job="{app}"}} == 0
          for: 5m
          annotations:
            summary: "{{{{ $labels.instance }}}} of {app} is down"
            description: "{{{{ $value }}}} targets down for more than 5 minutes."
"""
EXTERNAL_SECRET = """apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: {app}
  namespace: {team}
spec:
  secretStoreRef:
    kind: ClusterSecretStore
    name: vault
  target:
    name: {app}-secret
    template:
      data:
        DATABASE_URL: "postgres://{{{{ .user }}}}:{{{{ .password }}}}@db/{app}"
  dataFrom:
    - extract:
        key: apps/{app}
"""
HELMRELEASE = """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: {app}
  namespace: {team}
spec:
  interval: 30m
  chart:
    spec:
      chart: {chart}
      version: "{version}"
      sourceRef:
        kind: HelmRepository
        name: internal-charts
        namespace: flux-system
  values:
    fullnameOverride: "{{{{ .Release.Name }}}}"
    replicaCount: 2
"""
KUSTOMIZATION = """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
{resources}
"""
FLUX_KS = """apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: {name}
  namespace: flux-system
spec:
  interval: 10m
  path: ./{path}
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
  postBuild:
    substitute:
      cluster_name: {env}
"""
CHART = """apiVersion: v2
name: {chart}
version: {version}
appVersion: "1.0.0"
"""
CHART_TEMPLATE = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{{{ include "{chart}.fullname" . }}}}
  labels:
    {{{{- include "{chart}.labels" . | nindent 4 }}}}
spec:
  replicas: {{{{ .Values.replicaCount }}}}
  template:
    spec:
      containers:
        - name: app
          image: "{{{{ .Values.image.repository }}}}:{{{{ .Values.image.tag }}}}"
"""


def generate(apps: int, charts: int = 50) -> dict[str, str]:
    files: dict[str, str] = {}
    teams = [f"team-{i:02d}" for i in range(max(1, apps // 100))]
    files["clusters/prod/flux-system/gotk-sync.yaml"] = (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n"
        "  name: flux-system\n  namespace: flux-system\nspec:\n  interval: 1m\n"
        "  url: ssh://git@example.com/platform\n  ref:\n    branch: main\n---\n"
        + FLUX_KS.format(name="flux-system", path="clusters/prod", env="prod")
    )
    files["clusters/prod/sources.yaml"] = (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n"
        "  name: internal-charts\n  namespace: flux-system\nspec:\n  interval: 1h\n"
        "  url: https://charts.example.com\n"
    )
    for c in range(charts):
        chart = f"chart-{c:03d}"
        files[f"charts/{chart}/Chart.yaml"] = CHART.format(chart=chart, version=f"1.{c}.0")
        files[f"charts/{chart}/values.yaml"] = "replicaCount: 1\nimage:\n  tag: latest\n"
        files[f"charts/{chart}/templates/deployment.yaml"] = CHART_TEMPLATE.format(chart=chart)
    for team in teams:
        files[f"clusters/prod/{team}.yaml"] = FLUX_KS.format(
            name=team, path=f"apps/{team}", env="prod"
        )
    per_team: dict[str, list[str]] = {t: [] for t in teams}
    for n in range(apps):
        team = teams[n % len(teams)]
        app = f"app-{n:05d}"
        base = f"apps/{team}/{app}"
        per_team[team].append(app)
        resources = [
            "deployment.yaml",
            "service.yaml",
            "configmap.yaml",
            "hpa.yaml",
            "serviceaccount.yaml",
        ]
        files[f"{base}/deployment.yaml"] = DEPLOYMENT.format(app=app, team=team, n=n % 50)
        files[f"{base}/service.yaml"] = SERVICE.format(app=app, team=team)
        files[f"{base}/configmap.yaml"] = CONFIGMAP.format(app=app, team=team)
        files[f"{base}/hpa.yaml"] = HPA.format(app=app, team=team)
        files[f"{base}/serviceaccount.yaml"] = SA.format(app=app, team=team)
        if n % 5 == 0:
            files[f"{base}/prometheusrule.yaml"] = RULE.format(app=app, team=team)
            resources.append("prometheusrule.yaml")
        if n % 7 == 0:
            files[f"{base}/externalsecret.yaml"] = EXTERNAL_SECRET.format(app=app, team=team)
            resources.append("externalsecret.yaml")
        if n % 10 == 0:
            c = n % charts
            files[f"{base}/helmrelease.yaml"] = HELMRELEASE.format(
                app=app, team=team, chart=f"chart-{c:03d}", version=f"1.{c}.x"
            )
            resources.append("helmrelease.yaml")
        files[f"{base}/kustomization.yaml"] = KUSTOMIZATION.format(
            resources="\n".join(f"  - {r}" for r in resources)
        )
    for team, team_apps in per_team.items():
        files[f"apps/{team}/kustomization.yaml"] = KUSTOMIZATION.format(
            resources="\n".join(f"  - {a}" for a in team_apps)
        )
    return files


def write_repo(dest: Path, files: dict[str, str], message: str = "synthetic") -> None:
    """Write `files` and commit them (a new commit on top when `dest` is a repository)."""
    for path, text in files.items():
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    env = [
        "-c",
        "gc.auto=0",
        "-c",
        "user.name=bench",
        "-c",
        "user.email=bench@example.com",
        "-c",
        "commit.gpgsign=false",
    ]
    if not (dest / ".git").exists():
        subprocess.run(["git", "init", "-q", "-b", "main", str(dest)], check=True)
    subprocess.run(["git", "-C", str(dest), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(dest), *env, "commit", "-q", "-m", message], check=True)
    # A clone is packed; loose objects would measure the disk, not the check.
    subprocess.run(["git", "-C", str(dest), "repack", "-adq"], check=True)


def cli(make: Callable[[int], dict[str, str]], apps: int, doc: str | None) -> None:
    """`python bench/X.py [--apps N] DEST`: a generator's repository written to DEST."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--apps", type=int, default=apps)
    args = parser.parse_args()
    files = make(args.apps)
    write_repo(args.dest, files)
    manifests = sum(1 for p in files if p.endswith(".yaml"))
    print(f"wrote {len(files)} files ({manifests} YAML) to {args.dest}")


def main() -> None:
    cli(generate, 1600, __doc__)


if __name__ == "__main__":
    main()
