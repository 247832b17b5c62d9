"""The inventory against the real kustomize: every Flux Kustomization path of the test
repositories below is built with `kubectl kustomize` (kustomize v5.5 is what
kustomize-controller runs), the way kustomize-controller would (Flux's generated index
for a path without a kustomization file; `targetNamespace`, `namePrefix`, `nameSuffix`
and `components` written into the entry point), and compared with the inventory: the
same object ids, and an `error` finding for the build exactly when kustomize fails it.

Skipped, with the reason printed, where `kubectl` is not on the PATH, unless
`FLUX_REVIEW_REQUIRE_KUBECTL` is set (`.ci/run` sets it): then it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from bot.analysis.inventory import FluxBuild, inventory_of
from bot.analysis.model import KUSTOMIZATION_FILES
from bot.analysis.snapshot import Snapshot
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

BUILD_RULES = {
    "kustomize-duplicate-resource",
    "kustomize-invalid-kustomization",
    "kustomize-missing-resource",
    "yaml-syntax-error",
}


def _ks(name: str, path: str, extra: str = "") -> str:
    return flux_kustomization(name, path) + dedent(extra)


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
        "clusters/prod/missing.yaml": _ks("missing", "./broken/missing"),
        "broken/missing/kustomization.yaml": kustomization(["cm.yaml", "gone.yaml"]),
        "broken/missing/cm.yaml": A_CM,
    }
)

REPOSITORIES = {"layers": LAYERS, "broken": BROKEN}


def _write(files: Files, root: Path) -> None:
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)


def _has_kustomization(directory: Path) -> bool:
    return any((directory / name).is_file() for name in KUSTOMIZATION_FILES)


def _flux_index(directory: Path) -> list[str]:
    """What Flux's generator lists for a path without a kustomization file, walked here
    independently of the analysis: `.yaml`/`.yml` files, and directories with their own
    kustomization as one entry."""
    found: list[str] = []
    for current, dirs, names in os.walk(directory):
        here = Path(current)
        for d in sorted(dirs):
            if _has_kustomization(here / d):
                found.append(str((here / d).relative_to(directory)))
        dirs[:] = sorted(d for d in dirs if not _has_kustomization(here / d))
        found += [
            str((here / n).relative_to(directory))
            for n in sorted(names)
            if n.endswith((".yaml", ".yml"))
        ]
    return found


def _prepare(files: Files, fb: FluxBuild, root: Path) -> Path:
    """The repository written out, with the entry point as kustomize-controller makes it."""
    _write(files, root)
    assert fb.directory is not None and fb.owner is not None
    directory = root / fb.directory
    spec = yaml.safe_load(Path(root / fb.owner.path).read_text().split("---")[-1])["spec"]
    overlay = {
        "namespace": spec.get("targetNamespace"),
        "namePrefix": spec.get("namePrefix"),
        "nameSuffix": spec.get("nameSuffix"),
    }
    if _has_kustomization(directory):
        if not any(overlay.values()) and not spec.get("components"):
            return directory
        kfile = next(directory / n for n in KUSTOMIZATION_FILES if (directory / n).is_file())
        content = yaml.safe_load(kfile.read_text()) or {}
    else:
        content = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": _flux_index(directory),
        }
        kfile = directory / "kustomization.yaml"
    content.update({k: v for k, v in overlay.items() if v})
    if spec.get("components"):
        content["components"] = list(content.get("components") or []) + spec["components"]
    kfile.write_text(yaml.safe_dump(content))
    return directory


_HASH = re.compile(r"^(.*)-[a-z0-9]{10}$")


def _kubectl(directory: Path) -> tuple[bool, set[tuple[str, str, str | None, str]], str]:
    assert KUBECTL is not None, "kubectl is not on the PATH"
    done = subprocess.run(
        [KUBECTL, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    ids = set()
    if done.returncode == 0:
        for doc in yaml.safe_load_all(done.stdout):
            if not doc:
                continue
            meta = doc.get("metadata") or {}
            ids.add((doc["apiVersion"], doc["kind"], meta.get("namespace"), meta["name"]))
    return done.returncode == 0, ids, done.stderr


@pytest.mark.parametrize("name", sorted(REPOSITORIES))
def test_inventory_and_verdict_agree_with_kubectl_kustomize(name: str, tmp_path: Path) -> None:
    files = REPOSITORIES[name]
    findings = run(files)
    repository = Snapshot(tree(files))
    inventory = inventory_of(repository)
    checked = 0
    for fb in inventory.flux_builds:
        if fb.owner is None or fb.directory is None:
            continue
        root = tmp_path / f"{checked}"
        builds, ids, stderr = _kubectl(_prepare(files, fb, root))
        checked += 1
        errors = [
            f
            for f in findings
            if f.severity == "error" and f.rule in BUILD_RULES and f.path in fb.build.files
        ]
        assert builds == (not errors), (fb.label, stderr, errors)
        if builds and fb.build.known:
            # Generated names are compared without kustomize's hash suffix.
            generated = {o.id.name for o in fb.build.objects if o.generator}
            kubectl_ids = {
                (
                    api,
                    kind,
                    ns,
                    m.group(1) if (m := _HASH.match(n)) and m.group(1) in generated else n,
                )
                for api, kind, ns, n in ids
            }
            ours = {
                (o.id.api_version, o.id.kind, o.build_namespace, o.id.name)
                for o in fb.build.objects
            }
            assert ours == kubectl_ids, fb.label
    assert checked >= 3


def test_the_broken_repository_fails_where_kustomize_does() -> None:
    """Each broken build is found by the rule that explains it, on the file kustomize
    names."""
    found = {(f.rule, f.path) for f in run(BROKEN) if f.severity == "error"}
    assert ("kustomize-duplicate-resource", "broken/dup/b.yaml") in found
    assert ("kustomize-duplicate-resource", "broken/dupdefault/b.yaml") in found
    assert ("kustomize-duplicate-resource", "broken/dupns/ns.yaml") in found
    assert ("kustomize-invalid-kustomization", "broken/parent/child/kustomization.yaml") in found
    assert ("kustomize-invalid-kustomization", "broken/patch/kustomization.yaml") in found
    assert ("kustomize-invalid-kustomization", "broken/unknown/kustomization.yaml") in found
    assert ("kustomize-invalid-kustomization", "broken/types/kustomization.yaml") in found
    assert not any(path.startswith("broken/notdup/") for _, path in found)
    assert not any(path.startswith("broken/emptylist/") for _, path in found)
