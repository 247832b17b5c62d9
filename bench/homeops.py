"""A monorepo shaped like the home-ops repositories: N apps, each a Flux Kustomization
`ks.yaml` with an `app/` directory (a HelmRelease of an OCI chart, its OCIRepository, a
kustomization and a manifest or two), under a `cluster-apps` parent that gives every child
its source, interval, pruning and the `cluster-settings` variables; the cluster starts from
a FluxInstance.

    python bench/homeops.py --apps 2000 DEST   # about 10,000 YAML files, committed with git

`pull_request(files, n)` changes `n` files the way a PR on such a repository does: image
tags in HelmReleases, a chart version in an OCIRepository, a child's settings in `ks.yaml`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import cli

NAMESPACES = 25

FLUX_INSTANCE = """apiVersion: fluxcd.controlplane.io/v1
kind: FluxInstance
metadata:
  name: flux
  namespace: flux-system
spec:
  distribution:
    version: "2.6.x"
    registry: ghcr.io/fluxcd
  components:
    - source-controller
    - kustomize-controller
    - helm-controller
    - notification-controller
  cluster:
    type: kubernetes
    networkPolicy: true
  sync:
    kind: GitRepository
    url: https://github.com/example/home-ops
    ref: refs/heads/main
    path: kubernetes/flux/cluster
"""
CLUSTER_APPS = """apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: cluster-apps
  namespace: flux-system
spec:
  interval: 1h
  path: ./kubernetes/apps
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
  postBuild:
    substituteFrom:
      - kind: ConfigMap
        name: cluster-settings
  patches:
    - patch: |-
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata:
          name: _
        spec:
          interval: 1h
          prune: true
          retryInterval: 2m
          sourceRef:
            kind: GitRepository
            name: flux-system
            namespace: flux-system
          postBuild:
            substituteFrom:
              - kind: ConfigMap
                name: cluster-settings
          patches:
            - patch: |-
                apiVersion: helm.toolkit.fluxcd.io/v2
                kind: HelmRelease
                metadata:
                  name: _
                spec:
                  install:
                    crds: CreateReplace
                  upgrade:
                    cleanupOnFail: true
                    crds: CreateReplace
                    remediation:
                      retries: 2
              target:
                group: helm.toolkit.fluxcd.io
                kind: HelmRelease
      target:
        group: kustomize.toolkit.fluxcd.io
        kind: Kustomization
"""
CLUSTER_SETTINGS = """apiVersion: v1
kind: ConfigMap
metadata:
  name: cluster-settings
  namespace: flux-system
data:
  CLUSTER_NAME: home
  SECRET_DOMAIN: example.com
  TIMEZONE: Europe/Paris
"""
NAMESPACE = """apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
  labels:
    kustomize.toolkit.fluxcd.io/prune: disabled
"""
NS_KUSTOMIZATION = """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ./namespace.yaml
{apps}
"""
KS = """apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: &app {app}
  namespace: flux-system
spec:
  targetNamespace: {ns}
  commonMetadata:
    labels:
      app.kubernetes.io/name: *app
  path: ./kubernetes/apps/{ns}/{app}/app
  sourceRef:
    kind: GitRepository
    name: flux-system
  wait: false
  postBuild:
    substitute:
      APP: *app
      VOLSYNC_CAPACITY: {size}Gi
"""
APP_KUSTOMIZATION = """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
{resources}
"""
OCIREPOSITORY = """apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: {app}
spec:
  interval: 15m
  layerSelector:
    mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip
    operation: copy
  ref:
    tag: 4.{minor}.0
  url: oci://ghcr.io/bjw-s-labs/helm/app-template
"""
HELMRELEASE = """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: {app}
spec:
  chartRef:
    kind: OCIRepository
    name: {app}
  interval: 1h
  values:
    controllers:
      {app}:
        annotations:
          reloader.stakater.com/auto: "true"
        containers:
          app:
            image:
              repository: ghcr.io/example/{app}
              tag: 1.{minor}.0
            env:
              TZ: ${{TIMEZONE}}
              APP_URL: https://{app}.${{SECRET_DOMAIN}}
            probes:
              liveness:
                enabled: true
              readiness:
                enabled: true
            resources:
              requests:
                cpu: 10m
              limits:
                memory: 512Mi
    service:
      app:
        controller: {app}
        ports:
          http:
            port: 8080
    route:
      app:
        hostnames: ["{{{{ .Release.Name }}}}.${{SECRET_DOMAIN}}"]
        parentRefs:
          - name: internal
            namespace: network
    persistence:
      config:
        existingClaim: ${{APP}}
"""
EXTERNAL_SECRET = """apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: {app}
spec:
  secretStoreRef:
    kind: ClusterSecretStore
    name: onepassword
  target:
    name: {app}-secret
    template:
      data:
        DATABASE_URL: "postgres://{{{{ .user }}}}:{{{{ .password }}}}@postgres/{app}"
  dataFrom:
    - extract:
        key: {app}
"""
PVC = """apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: ${{APP}}
spec:
  accessModes: ["ReadWriteOnce"]
  resources:
    requests:
      storage: ${{VOLSYNC_CAPACITY}}
  storageClassName: ceph-block
"""


def app_files(ns: str, app: str, n: int) -> dict[str, str]:
    """One app: its `ks.yaml` and `app/` (about five YAML files)."""
    base = f"kubernetes/apps/{ns}/{app}"
    minor = n % 40
    files = {
        f"{base}/ks.yaml": KS.format(app=app, ns=ns, size=1 + n % 20),
        f"{base}/app/ocirepository.yaml": OCIREPOSITORY.format(app=app, minor=minor),
        f"{base}/app/helmrelease.yaml": HELMRELEASE.format(app=app, minor=minor),
    }
    extra = ["externalsecret.yaml", "pvc.yaml"] if n % 4 == 0 else ["pvc.yaml"]
    if n % 4 == 0:
        files[f"{base}/app/externalsecret.yaml"] = EXTERNAL_SECRET.format(app=app)
    files[f"{base}/app/pvc.yaml"] = PVC.format()
    resources = ["./ocirepository.yaml", "./helmrelease.yaml", *(f"./{e}" for e in extra)]
    files[f"{base}/app/kustomization.yaml"] = APP_KUSTOMIZATION.format(
        resources="\n".join(f"  - {r}" for r in resources)
    )
    return files


def generate(apps: int) -> dict[str, str]:
    files: dict[str, str] = {
        "kubernetes/bootstrap/flux-instance.yaml": FLUX_INSTANCE,
        "kubernetes/flux/cluster/ks.yaml": CLUSTER_APPS,
        "kubernetes/flux/cluster/cluster-settings.yaml": CLUSTER_SETTINGS,
    }
    namespaces = [f"ns-{i:02d}" for i in range(min(NAMESPACES, max(1, apps)))]
    per_ns: dict[str, list[str]] = {ns: [] for ns in namespaces}
    for n in range(apps):
        ns = namespaces[n % len(namespaces)]
        app = f"app-{n:05d}"
        per_ns[ns].append(app)
        files.update(app_files(ns, app, n))
    for ns, ns_apps in per_ns.items():
        files[f"kubernetes/apps/{ns}/namespace.yaml"] = NAMESPACE.format(ns=ns)
        files[f"kubernetes/apps/{ns}/kustomization.yaml"] = NS_KUSTOMIZATION.format(
            apps="\n".join(f"  - ./{a}/ks.yaml" for a in ns_apps)
        )
    return files


def pull_request(files: dict[str, bytes], n: int, start: int = 0) -> dict[str, bytes]:
    """The head of a PR changing `n` files: in turn an image tag in a HelmRelease, a chart
    version in an OCIRepository and a child's settings in its `ks.yaml`, over successive
    apps from the `start`th (what dependency-update PRs and app changes touch)."""
    head = dict(files)
    edits = (
        ("/app/helmrelease.yaml", b"              tag: 1.", b"              tag: 2."),
        ("/app/ocirepository.yaml", b"    tag: 4.", b"    tag: 5."),
        ("/ks.yaml", b"  wait: false\n", b"  wait: false\n  timeout: 5m\n"),
    )
    apps = sorted({p.rsplit("/app/", 1)[0] for p in files if "/app/" in p})
    changed = 0
    for app in apps[start:]:
        for suffix, old, new in edits:
            if changed == n:
                return head
            path = app + suffix
            if path in head and old in head[path]:
                head[path] = head[path].replace(old, new, 1)
                changed += 1
    return head


def main() -> None:
    cli(generate, 2000, __doc__)


if __name__ == "__main__":
    main()
