"""The build against the real kustomize: every Flux Kustomization of the test
repositories below is built with `kubectl kustomize` (kustomize v5.5, what
kustomize-controller runs) the way kustomize-controller would, and the objects kubectl
prints are compared with the build's, content included, before post-build substitution
(`FluxKustomization.built.resources`: kustomize's output): the same objects, each with the
same JSON value (`yn.to_value` on both sides, so that scalars are typed alike). The
verdict is compared too: kustomize fails a build exactly when the build has a problem or
the analysis reports an `error` on one of the files it reads.

The entry kustomization is written as fluxcd/pkg's generator (`kustomize_generator.go`)
writes it, independently of the build: the kustomization file decoded into kustomize's
`Kustomization` type (fields it does not know are dropped) or, without one, an index of
the path's manifests; `buildMetadata: [originAnnotations]` when that kustomization lists
no resources; `targetNamespace`, `namePrefix`, `nameSuffix` set from the Flux
Kustomization's spec (as its parent built it); its `patches` and `components` appended;
its `images` merged into the entries of the same name.

Skipped, with the reason printed, where `kubectl` is not on the PATH, unless
`FLUX_REVIEW_REQUIRE_KUBECTL` is set (`.ci/run` sets it): then it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.analysis.model import KUSTOMIZATION_FILES
from bot.analysis.snapshot import Snapshot
from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.snapshot.build.clusters import FluxKustomization
from tests.analysis_helpers import (
    Files,
    configmap,
    dedent,
    deployment,
    flux_kustomization,
    helm_repository,
    kustomization,
    repo,
    run,
    service,
    tree,
)

KUBECTL = shutil.which("kubectl")
REQUIRED = bool(os.environ.get("FLUX_REVIEW_REQUIRE_KUBECTL"))
if KUBECTL is None:
    print(
        "test_kustomize_oracle: kubectl is not on the PATH"
        + (", which FLUX_REVIEW_REQUIRE_KUBECTL requires" if REQUIRED else ": skipped")
    )
pytestmark = pytest.mark.skipif(
    KUBECTL is None and not REQUIRED, reason="kubectl is not on the PATH"
)


def _ks(name: str, path: str, spec: str = "") -> str:
    """A Flux Kustomization; `spec` holds more of its spec's fields."""
    more = "".join(f"  {line}" if line.strip() else line for line in dedent(spec).splitlines(True))
    return flux_kustomization(name, path) + more


def secret(name: str, namespace: str | None = None) -> str:
    ns = f"\n  namespace: {namespace}" if namespace else ""
    return f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}{ns}\nstringData:\n  k: v\n"


NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"
RBAC = dedent(
    """
    apiVersion: v1
    kind: ServiceAccount
    metadata:
      name: web
    ---
    apiVersion: rbac.authorization.k8s.io/v1
    kind: ClusterRole
    metadata:
      name: web-reader
    rules: []
    ---
    apiVersion: rbac.authorization.k8s.io/v1
    kind: ClusterRoleBinding
    metadata:
      name: web-reader
    roleRef:
      apiGroup: rbac.authorization.k8s.io
      kind: ClusterRole
      name: web-reader
    subjects:
      - kind: ServiceAccount
        name: web
        namespace: default
    """
)
CRD = dedent(
    """
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata:
      name: widgets.example.com
    spec:
      group: example.com
      scope: Cluster
      names:
        kind: Widget
        plural: widgets
      versions:
        - name: v1
          served: true
          storage: true
          schema:
            openAPIV3Schema:
              type: object
    """
)
REPLICAS_PATCH = (
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-v1\nspec:\n  replicas: 3\n"
)

LAYERS: Files = repo(
    {
        "clusters/prod/apps.yaml": _ks("apps", "./apps/prod"),
        "clusters/prod/infra.yaml": _ks("infra", "./infra", "  targetNamespace: infra-system\n"),
        "clusters/prod/extras.yaml": _ks(
            "extras",
            "./extras",
            "  namePrefix: x-\n  components:\n    - ../apps/components/team\n",
        ),
        "apps/base/kustomization.yaml": kustomization(
            ["deployment.yaml", "service.yaml", "rbac.yaml"],
            extra="""
            nameSuffix: -v1
            configMapGenerator:
              - name: base-config
                literals: [LOG=info]
            """,
        ),
        "apps/base/deployment.yaml": deployment("web"),
        "apps/base/service.yaml": service("web"),
        "apps/base/rbac.yaml": RBAC,
        "apps/prod/kustomization.yaml": kustomization(
            ["../base", "ns.yaml", "settings.yaml"],
            extra="""
            namespace: shop
            namePrefix: prod-
            components:
              - ../components/monitoring
            configMapGenerator:
              - name: settings-extra
                literals: [A=b]
            secretGenerator:
              - name: creds
                namespace: elsewhere
                literals: [token=x]
            patches:
              - path: replicas.yaml
              - target:
                  kind: Deployment
                  name: not-there
                patch: |
                  - op: add
                    path: /metadata/labels/x
                    value: y
            """,
        ),
        "apps/prod/ns.yaml": NAMESPACE.format(name="shop"),
        "apps/prod/settings.yaml": configmap("settings", "a: b"),
        "apps/prod/replicas.yaml": REPLICAS_PATCH,
        "apps/components/monitoring/kustomization.yaml": dedent(
            """
            apiVersion: kustomize.config.k8s.io/v1alpha1
            kind: Component
            resources:
              - monitor.yaml
            configMapGenerator:
              - name: base-config-v1
                behavior: merge
                literals: [EXTRA=1]
            """
        ),
        "apps/components/monitoring/monitor.yaml": dedent(
            """
            apiVersion: monitoring.coreos.com/v1
            kind: ServiceMonitor
            metadata:
              name: web
            spec:
              selector: {}
              endpoints: []
            """
        ),
        "apps/components/team/kustomization.yaml": dedent(
            """
            apiVersion: kustomize.config.k8s.io/v1alpha1
            kind: Component
            resources:
              - team.yaml
            """
        ),
        "apps/components/team/team.yaml": configmap("team"),
        "extras/kustomization.yaml": kustomization(["cm.yaml"]),
        "extras/cm.yaml": configmap("extra"),
        "infra/sources.yaml": helm_repository("podinfo"),
        "infra/controllers/cm.yaml": configmap("controller") + "---\n" + secret("ctl"),
        "infra/crds/kustomization.yaml": kustomization(["crd.yaml", "widget.yaml"]),
        "infra/crds/crd.yaml": CRD,
        "infra/crds/widget.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n"
        "  name: one\n",
        "infra/list.yaml": dedent(
            """
            apiVersion: v1
            kind: List
            items:
              - apiVersion: v1
                kind: ConfigMap
                metadata:
                  name: listed
            """
        ),
    }
)

A_CM = configmap("settings")
BROKEN: Files = repo(
    {
        "clusters/prod/dup.yaml": _ks("dup", "./broken/dup"),
        "broken/dup/kustomization.yaml": kustomization(["a.yaml", "b.yaml"]),
        "broken/dup/a.yaml": A_CM,
        "broken/dup/b.yaml": A_CM,
        "clusters/prod/dup-default.yaml": _ks("dup-default", "./broken/dupdefault"),
        "broken/dupdefault/kustomization.yaml": kustomization(["a.yaml", "b.yaml"]),
        "broken/dupdefault/a.yaml": secret("token", "default"),
        "broken/dupdefault/b.yaml": secret("token"),
        "clusters/prod/not-dup.yaml": _ks("not-dup", "./broken/notdup"),
        "broken/notdup/kustomization.yaml": kustomization(["a.yaml", "b.yaml"]),
        "broken/notdup/a.yaml": secret("token", "one"),
        "broken/notdup/b.yaml": secret("token", "two"),
        "clusters/prod/dup-index.yaml": _ks("dup-index", "./broken/dupindex"),
        "broken/dupindex/one.yaml": helm_repository("charts"),
        "broken/dupindex/sub/two.yaml": helm_repository("charts"),
        "clusters/prod/dup-ns.yaml": _ks("dup-ns", "./broken/dupns"),
        "broken/dupns/kustomization.yaml": kustomization(["ns.yaml"], extra="namespace: one\n"),
        "broken/dupns/ns.yaml": NAMESPACE.format(name="a") + "---\n" + NAMESPACE.format(name="b"),
        "clusters/prod/nested-empty.yaml": _ks("nested-empty", "./broken/parent"),
        "broken/parent/kustomization.yaml": kustomization(["child"]),
        "broken/parent/child/kustomization.yaml": kustomization(),
        "clusters/prod/empty.yaml": _ks("empty", "./broken/empty"),
        "broken/empty/kustomization.yaml": "# nothing here yet\n",
        "clusters/prod/empty-list.yaml": _ks("empty-list", "./broken/emptylist"),
        "broken/emptylist/kustomization.yaml": "resources: []\n",
        "clusters/prod/patch.yaml": _ks("patch", "./broken/patch"),
        "broken/patch/kustomization.yaml": kustomization(
            ["deployment.yaml"], extra="patches:\n  - path: old.yaml\n"
        ),
        "broken/patch/deployment.yaml": deployment("web"),
        "broken/patch/old.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"
        "  name: old\nspec:\n  replicas: 1\n",
        "clusters/prod/unknown.yaml": _ks("unknown", "./broken/unknown"),
        "broken/unknown/kustomization.yaml": "resources:\n  - cm.yaml\nnamePrefx: a-\n",
        "broken/unknown/cm.yaml": A_CM,
        "clusters/prod/types.yaml": _ks("types", "./broken/types"),
        "broken/types/kustomization.yaml": "resources:\n  - cm.yaml\ncommonLabels:\n"
        "  enabled: true\n",
        "broken/types/cm.yaml": A_CM,
        "clusters/prod/cycle.yaml": _ks("cycle", "./broken/cycle/a"),
        "broken/cycle/a/kustomization.yaml": kustomization(["../b"]),
        "broken/cycle/b/kustomization.yaml": kustomization(["../a", "cm.yaml"]),
        "broken/cycle/b/cm.yaml": A_CM,
        "clusters/prod/two-files.yaml": _ks("two-files", "./broken/twofiles"),
        "broken/twofiles/kustomization.yaml": kustomization(["cm.yaml"]),
        "broken/twofiles/kustomization.yml": kustomization(["cm.yaml"]),
        "broken/twofiles/cm.yaml": A_CM,
        "clusters/prod/not-an-object.yaml": _ks("not-an-object", "./broken/notobject"),
        "broken/notobject/cm.yaml": A_CM,
        "broken/notobject/values.yaml": "replicaCount: 2\nimage:\n  tag: 1.0.0\n",
        "clusters/prod/plain-dir.yaml": _ks("plain-dir", "./broken/plaindir"),
        "broken/plaindir/kustomization.yaml": kustomization(["app"]),
        "broken/plaindir/app/cm.yaml": A_CM,
        "clusters/prod/replacement.yaml": _ks("replacement", "./broken/replacement"),
        "broken/replacement/kustomization.yaml": kustomization(
            ["deployment.yaml"],
            extra="""
            replacements:
              - source: {kind: ConfigMap, name: settings, fieldPath: data.replicas}
                targets:
                  - select: {kind: Deployment}
                    fieldPaths: [spec.replicas]
            """,
        ),
        "broken/replacement/deployment.yaml": deployment("web"),
        "clusters/prod/missing.yaml": _ks("missing", "./broken/missing"),
        "broken/missing/kustomization.yaml": kustomization(["cm.yaml", "gone.yaml"]),
        "broken/missing/cm.yaml": A_CM,
    }
)


# --- content: what each transformer and generator writes ---------------------------------

WORKLOAD = dedent(
    """
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      labels:
        app: web
      annotations:
        example.com/owner: team-a
    spec:
      replicas: 1
      selector:
        matchLabels:
          app: web
      template:
        metadata:
          labels:
            app: web
        spec:
          serviceAccountName: web
          initContainers:
            - name: init
              image: busybox:1.36
          containers:
            - name: app
              image: ghcr.io/example/web:1.0.0
              env:
                - name: LOG
                  value: info
                - name: PORT
                  value: "8080"
              envFrom:
                - configMapRef:
                    name: web-env
              volumeMounts:
                - name: config
                  mountPath: /etc/web
            - name: sidecar
              image: docker.io/library/nginx:1.25
          volumes:
            - name: config
              configMap:
                name: web-files
            - name: data
              persistentVolumeClaim:
                claimName: web-data
            - name: creds
              secret:
                secretName: web-creds
    """
)
SMP_PATCH = dedent(
    """
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
    spec:
      template:
        spec:
          containers:
            - name: app
              env:
                - name: LOG
                  value: debug
                - name: NEW
                  value: "1"
              volumeMounts:
                - name: cache
                  mountPath: /cache
              resources:
                limits:
                  memory: 256Mi
            - name: sidecar
              $patch: delete
          volumes:
            - name: cache
              emptyDir: {}
            - name: data
              $patch: delete
    """
)
JSON_PATCH = dedent(
    """
    - op: replace
      path: /spec/replicas
      value: 4
    - op: add
      path: /spec/template/spec/containers/0/args
      value: ["--verbose", "--port=8080"]
    - op: add
      path: /spec/template/spec/containers/0/env/-
      value: {name: ADDED, value: "true"}
    - op: remove
      path: /spec/template/spec/containers/1
    - op: copy
      from: /metadata/labels/app
      path: /metadata/labels/copied
    - op: move
      from: /metadata/annotations/example.com~1owner
      path: /metadata/annotations/example.com~1team
    - op: test
      path: /spec/template/spec/containers/0/name
      value: app
    """
)
RBAC_TEAM = dedent(
    """
    apiVersion: v1
    kind: ServiceAccount
    metadata:
      name: web
    ---
    apiVersion: v1
    kind: ServiceAccount
    metadata:
      name: default
    ---
    apiVersion: rbac.authorization.k8s.io/v1
    kind: Role
    metadata:
      name: reader
    rules:
      - apiGroups: [""]
        resources: [configmaps]
        verbs: [get]
    ---
    apiVersion: rbac.authorization.k8s.io/v1
    kind: RoleBinding
    metadata:
      name: reader
    roleRef:
      apiGroup: rbac.authorization.k8s.io
      kind: Role
      name: reader
    subjects:
      - kind: ServiceAccount
        name: default
        namespace: default
      - kind: ServiceAccount
        name: web
        namespace: default
      - kind: ServiceAccount
        name: default
        namespace: elsewhere
      - kind: ServiceAccount
        name: outside
      - kind: User
        name: jane
        apiGroup: rbac.authorization.k8s.io
    ---
    apiVersion: rbac.authorization.k8s.io/v1
    kind: ClusterRoleBinding
    metadata:
      name: web-view
    roleRef:
      apiGroup: rbac.authorization.k8s.io
      kind: ClusterRole
      name: view
    subjects:
      - kind: ServiceAccount
        name: default
        namespace: default
      - kind: ServiceAccount
        name: web
        namespace: default
    """
)
NAMED = dedent(
    """
    apiVersion: v1
    kind: Service
    metadata:
      name: web
    spec:
      selector:
        app: web
      ports:
        - port: 80
          targetPort: 8080
    ---
    apiVersion: networking.k8s.io/v1
    kind: Ingress
    metadata:
      name: web
    spec:
      tls:
        - hosts: [web.example.com]
          secretName: web-creds
      rules:
        - host: web.example.com
          http:
            paths:
              - path: /
                pathType: Prefix
                backend:
                  service:
                    name: web
                    port:
                      number: 80
    ---
    apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    metadata:
      name: web
    spec:
      scaleTargetRef:
        apiVersion: apps/v1
        kind: Deployment
        name: web
      minReplicas: 1
      maxReplicas: 3
    ---
    apiVersion: v1
    kind: PersistentVolumeClaim
    metadata:
      name: web-data
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 1Gi
    """
)
LABELED = dedent(
    """
    apiVersion: apps/v1
    kind: StatefulSet
    metadata:
      name: db
    spec:
      serviceName: db
      replicas: 1
      selector:
        matchLabels:
          app: db
      template:
        metadata:
          labels:
            app: db
        spec:
          containers:
            - name: db
              image: postgres:16
      volumeClaimTemplates:
        - metadata:
            name: data
          spec:
            accessModes: [ReadWriteOnce]
            resources:
              requests:
                storage: 1Gi
    ---
    apiVersion: batch/v1
    kind: CronJob
    metadata:
      name: backup
    spec:
      schedule: "0 3 * * *"
      jobTemplate:
        spec:
          template:
            spec:
              restartPolicy: OnFailure
              containers:
                - name: backup
                  image: ghcr.io/example/backup:2.0
    ---
    apiVersion: policy/v1
    kind: PodDisruptionBudget
    metadata:
      name: db
    spec:
      minAvailable: 1
      selector:
        matchLabels:
          app: db
    """
)
COMPONENT_PATCHES = dedent(
    """
    apiVersion: kustomize.config.k8s.io/v1alpha1
    kind: Component
    resources:
      - monitor.yaml
    patches:
      - target:
          kind: Deployment
        patch: |
          apiVersion: apps/v1
          kind: Deployment
          metadata:
            name: any
            annotations:
              prometheus.io/scrape: "true"
          spec:
            template:
              spec:
                containers:
                  - name: app
                    ports:
                      - containerPort: 9090
                        name: metrics
      - target:
          kind: Service
          name: web
        patch: |
          - op: add
            path: /spec/ports/-
            value: {name: metrics, port: 9090}
    configMapGenerator:
      - name: web-env
        behavior: merge
        literals: [METRICS=on]
    images:
      - name: ghcr.io/example/web
        newTag: 1.1.0
    """
)
HELMRELEASE_VALUES_FROM = dedent(
    """
    apiVersion: helm.toolkit.fluxcd.io/v2
    kind: HelmRelease
    metadata:
      name: podinfo
    spec:
      interval: 30m
      chart:
        spec:
          chart: podinfo
          sourceRef:
            kind: HelmRepository
            name: podinfo
      valuesFrom:
        - kind: ConfigMap
          name: podinfo-values
        - kind: Secret
          name: podinfo-secret
          valuesKey: token
    """
)

CONTENT: Files = repo(
    {
        # strategic-merge patches: containers, env, volumes by their merge keys, deletions
        "clusters/prod/smp.yaml": _ks("smp", "./content/smp"),
        "content/smp/kustomization.yaml": kustomization(
            ["deployment.yaml"],
            extra="""
            patches:
              - path: patch.yaml
              - target:
                  kind: Deployment
                  labelSelector: app=web
                patch: |
                  apiVersion: apps/v1
                  kind: Deployment
                  metadata:
                    name: ignored
                  spec:
                    template:
                      spec:
                        containers:
                          - name: app
                            imagePullPolicy: Always
            patchesStrategicMerge:
              - |
                apiVersion: apps/v1
                kind: Deployment
                metadata:
                  name: web
                spec:
                  strategy:
                    type: Recreate
            """,
        ),
        "content/smp/deployment.yaml": WORKLOAD,
        "content/smp/patch.yaml": SMP_PATCH,
        # JSON 6902 patches, in `patches` (YAML and JSON) and in `patchesJson6902`
        "clusters/prod/json6902.yaml": _ks("json6902", "./content/json6902"),
        "content/json6902/kustomization.yaml": kustomization(
            ["deployment.yaml"],
            extra="""
            patches:
              - path: ops.yaml
                target:
                  group: apps
                  version: v1
                  kind: Deployment
                  name: web
            patchesJson6902:
              - target:
                  group: apps
                  version: v1
                  kind: Deployment
                  name: web
                patch: '[{"op": "add", "path": "/metadata/labels/tier", "value": "front"}]'
            """,
        ),
        "content/json6902/deployment.yaml": WORKLOAD,
        "content/json6902/ops.yaml": JSON_PATCH,
        # the namespace transformer and RoleBinding subjects
        "clusters/prod/rbac.yaml": _ks("rbac", "./content/rbac"),
        "content/rbac/kustomization.yaml": kustomization(["rbac.yaml"], extra="namespace: team\n"),
        "content/rbac/rbac.yaml": RBAC_TEAM,
        # a prefix, a suffix and generated names: every reference follows
        "clusters/prod/names.yaml": _ks("names", "./content/names"),
        "content/names/kustomization.yaml": kustomization(
            ["deployment.yaml", "named.yaml", "rbac.yaml"],
            extra="""
            namePrefix: shop-
            nameSuffix: -v2
            configMapGenerator:
              - name: web-env
                literals: [MODE=prod]
              - name: web-files
                files: [app.conf, custom-name.ini=settings.ini]
            secretGenerator:
              - name: web-creds
                type: kubernetes.io/tls
                files: [tls.crt, tls.key]
            """,
        ),
        "content/names/deployment.yaml": WORKLOAD,
        "content/names/named.yaml": NAMED,
        "content/names/rbac.yaml": RBAC_TEAM,
        "content/names/app.conf": "listen 8080;\nworkers 4;\n",
        "content/names/settings.ini": "[main]\nkey = value\n",
        "content/names/tls.crt": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "content/names/tls.key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n",
        # labels with and without selectors, annotations
        "clusters/prod/labels.yaml": _ks("labels", "./content/labels"),
        "content/labels/kustomization.yaml": kustomization(
            ["deployment.yaml", "named.yaml", "labeled.yaml"],
            extra="""
            commonLabels:
              team: shop
            labels:
              - pairs:
                  cost-center: "42"
              - pairs:
                  tier: web
                includeTemplates: true
              - pairs:
                  release: stable
                includeSelectors: true
            commonAnnotations:
              example.com/managed: "true"
              example.com/note: |
                two
                lines
            """,
        ),
        "content/labels/deployment.yaml": WORKLOAD,
        "content/labels/named.yaml": NAMED,
        "content/labels/labeled.yaml": LABELED,
        # images and replicas, and Flux's images merged into the kustomization's
        "clusters/prod/images.yaml": _ks(
            "images",
            "./content/images",
            """
              images:
                - name: ghcr.io/example/web
                  newTag: 1.2.0
                - name: postgres
                  digest: sha256:0000000000000000000000000000000000000000000000000000000000000001
            """,
        ),
        "content/images/kustomization.yaml": kustomization(
            ["deployment.yaml", "labeled.yaml"],
            extra="""
            images:
              - name: ghcr.io/example/web
                newName: registry.example.com/web
                newTag: 1.0.1
              - name: busybox
                newTag: "1.37"
              - name: docker.io/library/nginx
                newName: nginx
                digest: sha256:1111111111111111111111111111111111111111111111111111111111111111
              - name: ghcr.io/example/backup
                newName: ghcr.io/example/backup-tool
            replicas:
              - name: web
                count: 3
              - name: db
                count: 2
            """,
        ),
        "content/images/deployment.yaml": WORKLOAD,
        "content/images/labeled.yaml": LABELED,
        # generators: literals, files, envs, merge and replace over a base, options
        "clusters/prod/generators.yaml": _ks("generators", "./content/generators/overlay"),
        "content/generators/base/kustomization.yaml": kustomization(
            extra="""
            configMapGenerator:
              - name: settings
                literals: [A=1, B=two]
              - name: replaced
                literals: [OLD=1]
              - name: plain
                literals: [X=y]
                options:
                  disableNameSuffixHash: true
                  immutable: true
            secretGenerator:
              - name: token
                literals: [token=abc]
            """,
        ),
        "content/generators/overlay/kustomization.yaml": kustomization(
            ["../base"],
            extra="""
            generatorOptions:
              labels:
                generated: "yes"
              annotations:
                example.com/generated: "true"
            configMapGenerator:
              - name: settings
                behavior: merge
                literals: [B=three, C="quoted value"]
                envs: [extra.env]
              - name: replaced
                behavior: replace
                literals: [NEW=2]
              - name: from-env
                envs: [app.env]
              - name: numbers
                literals: ["PORT=8080", "ENABLED=true", "RATIO=1.5", "EMPTY="]
            secretGenerator:
              - name: token
                behavior: merge
                literals: [user=admin]
              - name: typed
                type: Opaque
                envs: [secret.env]
            """,
        ),
        "content/generators/overlay/extra.env": "D=4\n# a comment\nE=five\n",
        "content/generators/overlay/app.env": 'LEVEL=debug\nEMPTY=\nQUOTED="x y"\n',
        "content/generators/overlay/secret.env": "PASSWORD=hunter2\n",
        # a List, its items one by one
        "clusters/prod/list.yaml": _ks("list", "./content/list"),
        "content/list/kustomization.yaml": kustomization(
            ["list.yaml", "cm.yaml"], extra="namespace: listed\n"
        ),
        "content/list/cm.yaml": configmap("after"),
        "content/list/list.yaml": dedent(
            """
            apiVersion: v1
            kind: List
            items:
              - apiVersion: v1
                kind: ConfigMap
                metadata:
                  name: first
                data:
                  a: "1"
              - apiVersion: v1
                kind: Secret
                metadata:
                  name: second
                stringData:
                  b: two
            """
        ),
        # components patch what the kustomization that includes them accumulated
        "clusters/prod/components.yaml": _ks(
            "components",
            "./content/components/app",
            """
              components:
                - ../flux-extra
            """,
        ),
        "content/components/base/kustomization.yaml": kustomization(
            ["deployment.yaml", "service.yaml"],
            extra="configMapGenerator:\n  - name: web-env\n    literals: [MODE=base]\n",
        ),
        "content/components/base/deployment.yaml": WORKLOAD,
        "content/components/base/service.yaml": service("web"),
        "content/components/app/kustomization.yaml": kustomization(
            ["../base"],
            extra="namespace: app\ncomponents:\n  - ../monitoring\n",
        ),
        "content/components/monitoring/kustomization.yaml": COMPONENT_PATCHES,
        "content/components/monitoring/monitor.yaml": dedent(
            """
            apiVersion: monitoring.coreos.com/v1
            kind: ServiceMonitor
            metadata:
              name: web
            spec:
              selector:
                matchLabels:
                  app.kubernetes.io/name: web
              endpoints:
                - port: metrics
            """
        ),
        "content/components/flux-extra/kustomization.yaml": dedent(
            """
            apiVersion: kustomize.config.k8s.io/v1alpha1
            kind: Component
            commonLabels:
              added-by: flux
            """
        ),
        # `configurations:` teaches kustomize a HelmRelease's valuesFrom references
        "clusters/prod/configurations.yaml": _ks("configurations", "./content/configurations"),
        "content/configurations/kustomization.yaml": kustomization(
            ["release.yaml", "repository.yaml"],
            extra="""
            namespace: podinfo
            configurations:
              - kustomizeconfig.yaml
            configMapGenerator:
              - name: podinfo-values
                files: [values.yaml]
            secretGenerator:
              - name: podinfo-secret
                literals: [token=abc]
            """,
        ),
        "content/configurations/release.yaml": HELMRELEASE_VALUES_FROM,
        "content/configurations/repository.yaml": helm_repository("podinfo").replace(
            "  namespace: flux-system\n", ""
        ),
        "content/configurations/values.yaml": "replicaCount: 2\nui:\n  color: '#34577c'\n",
        "content/configurations/kustomizeconfig.yaml": dedent(
            """
            nameReference:
              - kind: ConfigMap
                version: v1
                fieldSpecs:
                  - path: spec/valuesFrom/name
                    kind: HelmRelease
              - kind: Secret
                version: v1
                fieldSpecs:
                  - path: spec/valuesFrom/name
                    kind: HelmRelease
            """
        ),
        # Flux's own: targetNamespace, a prefix and a suffix, patches, on a generated index
        "clusters/prod/flux-spec.yaml": _ks(
            "flux-spec",
            "./content/flux-spec",
            """
              targetNamespace: spec-ns
              namePrefix: f-
              nameSuffix: -x
              patches:
                - target:
                    kind: Deployment
                    name: web
                  patch: |
                    - op: replace
                      path: /spec/replicas
                      value: 5
                - patch: |
                    apiVersion: v1
                    kind: ConfigMap
                    metadata:
                      name: web-env
                    data:
                      PATCHED: "yes"
            """,
        ),
        "content/flux-spec/deployment.yaml": WORKLOAD,
        "content/flux-spec/env.yaml": configmap("web-env", "MODE: flux"),
        "content/flux-spec/files.yaml": configmap("web-files"),
        "content/flux-spec/nested/service.yaml": service("web"),
        "content/flux-spec/nested/rbac.yaml": RBAC_TEAM,
        # a parent's spec.patches write into the Flux Kustomizations it applies
        "clusters/prod/children.yaml": _ks(
            "children",
            "./content/children",
            """
              patches:
                - target:
                    kind: Kustomization
                    group: kustomize.toolkit.fluxcd.io
                  patch: |
                    apiVersion: kustomize.toolkit.fluxcd.io/v1
                    kind: Kustomization
                    metadata:
                      name: all
                    spec:
                      interval: 1h
                      timeout: 5m
                      postBuild:
                        substituteFrom:
                          - kind: ConfigMap
                            name: cluster-settings
            """,
        ),
        "content/children/one.yaml": flux_kustomization("one", "./content/children/one"),
        "content/children/two.yaml": flux_kustomization(
            "two", "./content/children/two", target_namespace="two"
        ),
        "content/children/one/cm.yaml": configmap("one"),
        "content/children/two/cm.yaml": configmap("two"),
        # scalars as each step of kustomize types them: YAML 1.1 in a JSON patch's values,
        # strings in a generator's literals, the written node everywhere else
        "clusters/prod/typing.yaml": _ks("typing", "./content/typing"),
        "content/typing/kustomization.yaml": kustomization(
            ["cm.yaml"],
            extra="""
            commonLabels:
              typed: "yes"
            patches:
              - target:
                  kind: ConfigMap
                  name: typed
                patch: |
                  - op: add
                    path: /data/yes
                    value: yes
                  - op: add
                    path: /data/octal
                    value: 0755
                  - op: add
                    path: /data/float
                    value: 1e3
                  - op: add
                    path: /data/null
                    value: ~
                  - op: add
                    path: /data/quoted
                    value: "on"
                  - op: add
                    path: /metadata/annotations
                    value: {enabled: "on", mode: "012"}
            configMapGenerator:
              - name: literals
                literals: [OCTAL=0755, YES=yes, TILDE=~, DATE=2024-01-01, EXP=1e3, HEX=0x1F]
            """,
        ),
        "content/typing/cm.yaml": configmap(
            "typed", "plain: yes\noctal: 0755\nexp: 1e3\nhex: 0x1F\nsexagesimal: 1:30"
        ),
        # the namespace Flux sets renames a Namespace; a missing component is skipped
        "clusters/prod/edge.yaml": _ks(
            "edge",
            "./content/edge",
            """
              targetNamespace: edge
              namePrefix: e-
              ignoreMissingComponents: true
              components:
                - ../components/flux-extra
                - ../components/not-there
            """,
        ),
        "content/edge/kustomization.yml": kustomization(["ns.yaml", "cm.yaml"]),
        "content/edge/ns.yaml": NAMESPACE.format(name="written"),
        "content/edge/cm.yaml": configmap("edge"),
        # patches that delete an object, several in one entry, targets by name pattern;
        # replicas and images after a rename; labels on selectors of other kinds
        "clusters/prod/more.yaml": _ks(
            "more",
            "./content/more",
            """
              patches:
                - target:
                    kind: ConfigMap
                    annotationSelector: example.com/flux-patch=yes
                  patch: |
                    - op: add
                      path: /data/flux
                      value: patched
            """,
        ),
        "content/more/kustomization.yaml": kustomization(
            ["deployment.yaml", "extra.yaml"],
            extra="""
            namePrefix: more-
            commonLabels:
              app.kubernetes.io/part-of: more
            replicas:
              - name: web
                count: 6
            images:
              - name: localhost:5000/tools
                newTag: "2"
              - name: ghcr.io/example/web
                digest: sha256:2222222222222222222222222222222222222222222222222222222222222222
            patches:
              - target:
                  kind: ConfigMap
                  name: "obsolete-.*"
                patch: |
                  $patch: delete
                  apiVersion: v1
                  kind: ConfigMap
                  metadata:
                    name: any
              - patch: |
                  apiVersion: apps/v1
                  kind: Deployment
                  metadata:
                    name: web
                  spec:
                    template:
                      spec:
                        containers:
                          - name: tools
                            image: localhost:5000/tools:1
                  ---
                  apiVersion: v1
                  kind: ConfigMap
                  metadata:
                    name: kept
                  data:
                    second: patch
            """,
        ),
        "content/more/deployment.yaml": WORKLOAD,
        "content/more/extra.yaml": configmap("obsolete-one")
        + "---\n"
        + configmap("obsolete-two")
        + "---\n"
        + configmap("kept").replace(
            "metadata:\n", "metadata:\n  annotations:\n    example.com/flux-patch: 'yes'\n"
        )
        + "---\n"
        + dedent(
            """
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata:
              name: web
            spec:
              podSelector:
                matchLabels:
                  app: web
              ingress:
                - from:
                    - podSelector:
                        matchLabels:
                          app: gateway
            ---
            apiVersion: batch/v1
            kind: Job
            metadata:
              name: migrate
            spec:
              template:
                spec:
                  restartPolicy: Never
                  containers:
                    - name: migrate
                      image: ghcr.io/example/web:1.0.0
            """
        ),
        # annotations as kustomize writes them: every value a string, none when empty
        "clusters/prod/annotations.yaml": _ks("annotations", "./content/annotations"),
        "content/annotations/kustomization.yaml": kustomization(["objects.yaml"]),
        "content/annotations/objects.yaml": dedent(
            """
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: numbers
              annotations: {count: 1, ratio: 0.5, enabled: true, nothing: ~, list: [a]}
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: empty
              annotations: {}
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: null-annotations
              annotations:
              labels:
            """
        ),
        # replacements: in a base, in the entry (inline and from a file) after the Flux
        # spec's namespace, prefix and images, and in a component
        "clusters/prod/replacements.yaml": _ks(
            "replacements",
            "./content/replacements/overlay",
            """
            targetNamespace: shop
            namePrefix: eu-
            images:
              - name: ghcr.io/example/app
                newTag: 2.1.0
            components:
              - ../component
            """,
        ),
        "content/replacements/base/kustomization.yaml": kustomization(
            ["deployment.yaml", "service.yaml"],
            extra="""
            replacements:
              - source: {kind: Service, name: web, fieldPath: spec.ports.0.port}
                targets:
                  - select: {kind: Deployment}
                    fieldPaths:
                      - spec.template.spec.containers.[name=web].ports.0.containerPort
                      - spec.template.metadata.annotations.[example.com/port]
                    options: {create: true}
            """,
        ),
        "content/replacements/base/deployment.yaml": deployment("web"),
        "content/replacements/base/service.yaml": service("web"),
        "content/replacements/overlay/kustomization.yaml": kustomization(
            ["../base", "settings.yaml"],
            extra="""
            configMapGenerator:
              - name: web-env
                literals: [MODE=production]
            replacements:
              - path: replacements.yaml
              - source:
                  kind: Deployment
                  name: web
                  fieldPath: spec.template.spec.containers.0.image
                  options: {delimiter: ":", index: 1}
                targets:
                  - select: {kind: Deployment}
                    fieldPaths: [metadata.labels.version]
                    options: {create: true}
                  - select: {kind: Service}
                    fieldPaths: [metadata.annotations.version]
                    options: {create: true}
            """,
        ),
        "content/replacements/overlay/settings.yaml": dedent(
            """
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: settings
              annotations:
                config.kubernetes.io/local-config: "true"
            data:
              replicas: "4"
              domain: shop.example.com
            """
        ),
        "content/replacements/overlay/replacements.yaml": dedent(
            """
            - source: {kind: ConfigMap, name: settings, fieldPath: data.replicas}
              targets:
                - select: {kind: Deployment}
                  fieldPaths: [spec.replicas]
            - source: {kind: ConfigMap, name: web-env}
              targets:
                - select: {kind: Deployment}
                  fieldPaths:
                    - spec.template.spec.containers.[name=web].envFrom.0.configMapRef.name
                  options: {create: true}
            """
        ),
        "content/replacements/component/kustomization.yaml": dedent(
            """
            apiVersion: kustomize.config.k8s.io/v1alpha1
            kind: Component
            replacements:
              - source: {kind: ConfigMap, name: settings, fieldPath: data.domain}
                targets:
                  - select: {kind: Service}
                    fieldPaths: [metadata.annotations.domain]
                    options: {create: true}
            """
        ),
        # an entry kustomization without resources: Flux adds origin annotations
        "clusters/prod/generated-only.yaml": _ks("generated-only", "./content/generated-only"),
        "content/generated-only/kustomization.yaml": kustomization(
            extra="configMapGenerator:\n  - name: alone\n    literals: [A=1]\n"
        ),
    }
)

REPOSITORIES = {"layers": LAYERS, "broken": BROKEN, "content": CONTENT}

# Where the build and kustomize-controller disagree (each a defect of the build or of a
# rule, kept here until it is fixed: the case fails once they agree).
KNOWN: dict[tuple[str, str], str] = {
    ("content", "generated-only"): "an entry kustomization without `resources` gets "
    "`buildMetadata: [originAnnotations]` from Flux's generator (fluxcd/pkg kustomize v1.9, "
    "Flux 2.3): kustomize then writes a `config.kubernetes.io/origin` annotation on every "
    "object, which the build does not",
}


# --- the entry kustomization, as fluxcd/pkg's generator writes it -------------------------

# The fields of kustomize's `types.Kustomization` (api v0.18, kustomize v5.5): the
# generator decodes the entry kustomization into it (without `DisallowUnknownFields`)
# and writes it back, so any other top-level field is gone before kustomize reads it.
# (Entries inside a field keep what they hold here: the fixtures misspell none.)
KUSTOMIZATION_FIELDS = [
    *("apiVersion", "kind", "metadata", "openapi", "namePrefix", "nameSuffix", "namespace"),
    *("commonLabels", "labels", "commonAnnotations", "patchesStrategicMerge"),
    *("patchesJson6902", "patches", "images", "imageTags", "replacements", "replicas"),
    *("vars", "sortOptions", "resources", "components", "crds", "bases"),
    *("configMapGenerator", "secretGenerator", "helmGlobals", "helmCharts"),
    *("helmChartInflationGenerator", "generatorOptions", "configurations", "generators"),
    *("transformers", "validators", "buildMetadata"),
]
_CANONICAL = {name.lower(): name for name in KUSTOMIZATION_FIELDS}
# kustomize's `Selector`, as `adaptSelector` copies a Flux patch's target into it
SELECTOR_FIELDS = (
    *("group", "version", "kind", "name", "namespace"),
    *("labelSelector", "annotationSelector"),
)


def _write(files: Files, root: Path) -> None:
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)


def _kustomization_file(directory: Path) -> Path | None:
    return next((directory / n for n in KUSTOMIZATION_FILES if (directory / n).is_file()), None)


def _flux_index(directory: Path) -> list[str]:
    """`scanManifests`: Go's `filepath.Walk` (entries in lexical order), `.yaml`/`.yml`
    files, and a directory with a kustomization file as one entry, not entered."""
    found: list[str] = []

    def walk(current: Path) -> None:
        for entry in sorted(current.iterdir(), key=lambda p: p.name):
            rel = "./" + entry.relative_to(directory).as_posix()
            if entry.is_dir():
                if _kustomization_file(entry) is not None:
                    found.append(rel)
                else:
                    walk(entry)
            elif entry.suffix in (".yaml", ".yml"):
                found.append(rel)

    walk(directory)
    return found


def _decoded(text: str) -> dict[str, Any]:
    """A kustomization as Go's JSON decoder fills kustomize's type: keys matched without
    case, the last of a name winning, unknown ones dropped."""
    data = yaml.safe_load(text) or {}
    assert isinstance(data, dict), text
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = _CANONICAL.get(str(key).lower())
        if name is not None:
            out[name] = value
    return out


def _entry_kustomization(directory: Path, spec: dict[str, Any]) -> None:
    """Writes the kustomization kustomize-controller builds `directory` with."""
    existing = _kustomization_file(directory)
    if existing is not None:
        kus = _decoded(existing.read_text())
        kus.setdefault("apiVersion", "kustomize.config.k8s.io/v1beta1")
        kus.setdefault("kind", "Kustomization")
        if not kus.get("resources"):
            # "to avoid `kustomization.yaml is empty` build error"
            kus["buildMetadata"] = ["originAnnotations"]
        target = existing
    else:
        kus = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
        index = _flux_index(directory)
        if index:
            kus["resources"] = index
        else:
            kus["namespace"] = "_placeholder"
        target = directory / "kustomization.yaml"
    for field, key in (
        ("targetNamespace", "namespace"),
        ("namePrefix", "namePrefix"),
        ("nameSuffix", "nameSuffix"),
    ):
        if isinstance(spec.get(field), str):
            kus[key] = spec[field]
    for patch in spec.get("patches") or []:
        entry: dict[str, Any] = {"patch": patch.get("patch", "")}
        selector = {
            k: patch["target"][k] for k in SELECTOR_FIELDS if patch.get("target", {}).get(k)
        }
        if "target" in patch:
            entry["target"] = selector
        kus.setdefault("patches", []).append(entry)
    for component in spec.get("components") or []:
        if spec.get("ignoreMissingComponents") and not (directory / component).exists():
            continue
        kus.setdefault("components", []).append(component)
    for image in spec.get("images") or []:
        images = kus.setdefault("images", [])
        same = [i for i in images if i.get("name") == image.get("name")]
        if not same:
            images.append({k: v for k, v in image.items() if v})
            continue
        if image.get("newName"):
            same[0]["newName"] = image["newName"]
        if image.get("newTag") or image.get("digest"):
            # newTag and digest select the version together: one clears the other
            for key in ("newTag", "digest"):
                if image.get(key):
                    same[0][key] = image[key]
                else:
                    same[0].pop(key, None)
    target.write_text(yaml.safe_dump(kus, sort_keys=False))


@dataclass(frozen=True)
class Kubectl:
    objects: dict[tuple[str, str, str | None, str], Any] | None  # None: the build failed
    stderr: str


def _kubectl(directory: Path) -> Kubectl:
    assert KUBECTL is not None, "kubectl is not on the PATH"
    done = subprocess.run(
        [KUBECTL, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        return Kubectl(None, done.stderr)
    objects = {}
    # Composed, not loaded: the same `to_value` as the build's, so that scalars are typed
    # as go-yaml types them on both sides.
    for node in yaml.compose_all(done.stdout, Loader=yaml.SafeLoader):
        if node is None:
            continue
        value = yn.to_value(node)
        meta = value.get("metadata") or {}
        key = (value["apiVersion"], value["kind"], meta.get("namespace"), meta["name"])
        assert key not in objects, key
        objects[key] = value
    return Kubectl(objects, done.stderr)


# --- the cases: every Flux Kustomization that has a build ---------------------------------


BUILD_RULES = {
    "kustomize-duplicate-resource",
    "kustomize-invalid-kustomization",
    "kustomize-missing-resource",
    "yaml-syntax-error",
}


@cache
def _model(name: str) -> list[FluxKustomization]:
    return Snapshot(tree(REPOSITORIES[name])).build.kustomizations


def _built(name: str) -> dict[str, FluxKustomization]:
    return {
        ks.name: ks
        for ks in _model(name)
        if ks.kind == "Kustomization" and ks.directory is not None and ks.built is not None
    }


CASES = [
    pytest.param(
        repository,
        ks,
        id=f"{repository}-{ks}",
        marks=[pytest.mark.xfail(strict=True, reason=KNOWN[(repository, ks)])]
        if (repository, ks) in KNOWN
        else [],
    )
    for repository in REPOSITORIES
    for ks in sorted(_built(repository))
]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _diff(ours: Any, theirs: Any, path: str = "") -> list[str]:
    """Where two JSON values differ, as `path: ours != theirs` lines."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        out = []
        for key in sorted(set(ours) | set(theirs), key=str):
            out += _diff(ours.get(key, "<absent>"), theirs.get(key, "<absent>"), f"{path}/{key}")
        return out
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        return [
            line
            for i, (a, b) in enumerate(zip(ours, theirs, strict=True))
            for line in _diff(a, b, f"{path}/{i}")
        ]
    if _number(ours) and _number(theirs) and ours == theirs:
        # One JSON number: kustomize writes an object that went through JSON (a JSON
        # patch) back from it, and Go encodes the float 1000 as `1000`.
        return []
    if json.dumps(ours) == json.dumps(theirs):  # a string is not a number, 1 is not true
        return []
    return [f"{path or '/'}: build {json.dumps(ours)} != kubectl {json.dumps(theirs)}"]


@dataclass(frozen=True)
class Outcome:
    equal: bool
    report: str


_OUTCOMES: dict[tuple[str, str], Outcome] = {}


def _compare(repository: str, name: str, root: Path) -> Outcome:
    files = REPOSITORIES[repository]
    ks = _built(repository)[name]
    assert ks.built is not None and ks.directory is not None
    _write(files, root)
    directory = root / ks.directory
    _entry_kustomization(directory, yn.to_value(ks.spec) or {})
    done = _kubectl(directory)
    read = ks.built.files
    errors = [
        f"{f.rule} {f.path}:{f.line}"
        for f in _findings(repository)
        if f.severity == "error" and f.rule in BUILD_RULES and f.path in read
    ]
    problems = [f"{p.kind} {p.path}:{p.line}" for p in ks.built.problems]
    fails = bool(errors or problems)
    if (done.objects is None) != fails:
        return Outcome(
            False,
            f"{ks.label}: kubectl kustomize "
            + (f"fails: {done.stderr.strip()}" if done.objects is None else "builds")
            + f"; the build has {problems or 'no problem'}, the analysis {errors or 'no error'}",
        )
    if done.objects is None or not ks.known:
        # What the build cannot know (a resource that is not there) it does not guess.
        return Outcome(True, "")
    ours = {
        (r.api_version, r.kind, r.namespace, r.name): yn.to_value(r.node)
        for r in ks.built.resources
    }
    lines = [f"only kubectl: {k}" for k in sorted(done.objects.keys() - ours.keys(), key=str)]
    lines += [f"only the build: {k}" for k in sorted(ours.keys() - done.objects.keys(), key=str)]
    for key in sorted(ours.keys() & done.objects.keys(), key=str):
        lines += [f"{key} {line}" for line in _diff(ours[key], done.objects[key])]
    return Outcome(not lines, "\n".join([f"{ks.label} ({ks.directory}):", *lines]))


@cache
def _findings(repository: str) -> list[Any]:
    return run(REPOSITORIES[repository])


@pytest.mark.parametrize(("repository", "name"), CASES)
def test_the_build_agrees_with_kubectl_kustomize(
    repository: str, name: str, tmp_path: Path
) -> None:
    outcome = _compare(repository, name, tmp_path)
    _OUTCOMES[(repository, name)] = outcome
    assert outcome.equal, outcome.report


def test_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """How many builds agree, in one line (the cases above ran first: pytest keeps the
    file's order; those a selection left out are compared here)."""
    for i, case in enumerate(CASES):
        repository, name = case.values
        assert isinstance(repository, str) and isinstance(name, str)
        if (repository, name) not in _OUTCOMES:
            _OUTCOMES[(repository, name)] = _compare(repository, name, tmp_path / str(i))
    equal = sum(o.equal for o in _OUTCOMES.values())
    with capsys.disabled():
        print(f"\ntest_kustomize_oracle: {len(_OUTCOMES)} Flux builds, {equal} equal")
    assert len(_OUTCOMES) >= 30
    assert len(_OUTCOMES) - equal == len(KNOWN)


def test_the_broken_repository_fails_where_kustomize_does() -> None:
    """Each broken build is found by the rule that explains it, on the file kustomize
    names."""
    found = {(f.rule, f.path) for f in run(BROKEN) if f.severity == "error"}
    assert ("kustomize-duplicate-resource", "broken/dup/b.yaml") in found
    assert ("kustomize-duplicate-resource", "broken/dupdefault/b.yaml") in found
    assert ("kustomize-duplicate-resource", "broken/dupns/ns.yaml") in found
    assert ("kustomize-invalid-kustomization", "broken/parent/child/kustomization.yaml") in found
    assert ("kustomize-invalid-kustomization", "broken/patch/kustomization.yaml") in found
    assert ("kustomize-invalid-kustomization", "broken/types/kustomization.yaml") in found
    assert ("kustomize-invalid-kustomization", "broken/replacement/kustomization.yaml") in found
    # Flux drops a field kustomize does not know when it rewrites its entry point
    [unknown] = [f for f in run(BROKEN) if f.path == "broken/unknown/kustomization.yaml"]
    assert (unknown.rule, unknown.severity) == ("kustomize-invalid-kustomization", "warning")
    assert not any(path.startswith("broken/notdup/") for _, path in found)
    assert not any(path.startswith("broken/emptylist/") for _, path in found)
