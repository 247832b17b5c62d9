"""`flux-review diff`: what a change does to each cluster, object by object.

Each kind of change below runs on a small repository (one cluster, two Flux
Kustomizations), and its text output is compared with a golden file under
`tests/golden/diff/` (`FLUX_REVIEW_UPDATE_GOLDEN=1` rewrites them; review the change).
Where kustomize builds the change, every object the diff shows is compared, field by
field, with what `kubectl kustomize` (kustomize v5.5) builds at the base and at the head;
skipped, with the reason printed, where `kubectl` is not on the PATH, unless
`FLUX_REVIEW_REQUIRE_KUBECTL` is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.analysis import Config
from bot.analysis.diff import (
    ClusterDiff,
    KustomizationDiff,
    ObjectDiff,
    Redactor,
    entries,
    field_changes,
)
from bot.analysis.engine import diff_trees
from bot.analysis.snapshot.build import nodes as yn
from bot.report import diff as report
from tests.analysis_helpers import (
    bootstrap,
    configmap,
    dedent,
    deployment,
    flux_kustomization,
    helm_release,
    kustomization,
    service,
    tree,
)

GOLDEN = Path(__file__).parent / "golden" / "diff"
UPDATE = bool(os.environ.get("FLUX_REVIEW_UPDATE_GOLDEN"))
KUBECTL = shutil.which("kubectl")
REQUIRED = bool(os.environ.get("FLUX_REVIEW_REQUIRE_KUBECTL"))
SALT = b"golden"
if KUBECTL is None:
    print(
        "test_diff: kubectl is not on the PATH"
        + (
            ", which FLUX_REVIEW_REQUIRE_KUBECTL requires"
            if REQUIRED
            else ": the comparisons with kubectl kustomize are skipped"
        )
    )
Files = dict[str, str | bytes]


def base_files() -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = dict(bootstrap("prod"))
    files["clusters/prod/apps.yaml"] = flux_kustomization("apps", "./apps")
    files["clusters/prod/infra.yaml"] = flux_kustomization("infra", "./infra")
    files["apps/kustomization.yaml"] = kustomization(
        ["web.yaml", "service.yaml", "settings.yaml", "secret.yaml", "podinfo.yaml"],
        extra="namespace: web\n",
    )
    files["apps/web.yaml"] = deployment("web", "ghcr.io/example/web:1.0.0")
    files["apps/service.yaml"] = service("web")
    files["apps/settings.yaml"] = configmap("settings", "mode: blue\nlevel: info")
    files["apps/secret.yaml"] = dedent(
        """
        apiVersion: v1
        kind: Secret
        metadata:
          name: web-credentials
        stringData:
          password: correct-horse-battery-staple
        """
    )
    files["apps/podinfo.yaml"] = helm_release(
        "podinfo",
        version="6.5.0",
        namespace="web",
        values="""
        replicaCount: 1
        ingress:
          enabled: false
        """,
    )
    files["infra/kustomization.yaml"] = kustomization(["monitoring.yaml"])
    files["infra/monitoring.yaml"] = configmap("monitoring", "scrape: 30s").replace(
        "name: monitoring", "name: monitoring\n  namespace: infra"
    )
    return files


def _text(f: Files, path: str) -> str:
    content = f[path]
    assert isinstance(content, str)
    return content


def _image_bump(f: Files) -> None:
    f["apps/web.yaml"] = deployment("web", "ghcr.io/example/web:1.1.0")


def _helm_version(f: Files) -> None:
    f["apps/podinfo.yaml"] = _text(f, "apps/podinfo.yaml").replace('"6.5.0"', '"6.6.2"')


def _helm_values(f: Files) -> None:
    f["apps/podinfo.yaml"] = _text(f, "apps/podinfo.yaml").replace(
        "    replicaCount: 1\n",
        "    replicaCount: 3\n    resources:\n      limits:\n        memory: 256Mi\n",
    )


def _patch_added(f: Files) -> None:
    f["apps/kustomization.yaml"] = _text(f, "apps/kustomization.yaml") + dedent(
        """
        patches:
          - path: replicas.yaml
        """
    )
    f["apps/replicas.yaml"] = dedent(
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec:
          replicas: 5
        """
    )


def _component_added(f: Files) -> None:
    f["apps/kustomization.yaml"] = (
        _text(f, "apps/kustomization.yaml") + "components:\n  - ../components/team\n"
    )
    f["components/team/kustomization.yaml"] = dedent(
        """
        apiVersion: kustomize.config.k8s.io/v1alpha1
        kind: Component
        resources:
          - budget.yaml
        commonAnnotations:
          example.com/team: core
        """
    )
    f["components/team/budget.yaml"] = dedent(
        """
        apiVersion: policy/v1
        kind: PodDisruptionBudget
        metadata:
          name: web
        spec:
          minAvailable: 1
          selector:
            matchLabels:
              app.kubernetes.io/name: web
        """
    )


def _namespace_change(f: Files) -> None:
    f["infra/kustomization.yaml"] = kustomization(
        ["monitoring.yaml"], extra="namespace: observability\n"
    )


def _secret_change(f: Files) -> None:
    f["apps/secret.yaml"] = _text(f, "apps/secret.yaml").replace(
        "correct-horse-battery-staple", "tr0ub4dor-and-3"
    )


def _moved_between_kustomizations(f: Files) -> None:
    # The same ConfigMap web/settings, now applied by infra (written with the namespace
    # the apps build gave it).
    f["apps/kustomization.yaml"] = _text(f, "apps/kustomization.yaml").replace(
        "  - settings.yaml\n", ""
    )
    f["infra/settings.yaml"] = _text(f, "apps/settings.yaml").replace(
        "name: settings", "name: settings\n  namespace: web"
    )
    del f["apps/settings.yaml"]
    f["infra/kustomization.yaml"] = kustomization(["monitoring.yaml", "settings.yaml"])


def _file_renamed(f: Files) -> None:
    f["apps/kustomization.yaml"] = _text(f, "apps/kustomization.yaml").replace(
        "- web.yaml", "- web-deployment.yaml"
    )
    f["apps/web-deployment.yaml"] = f.pop("apps/web.yaml")


def _workers(f: Files) -> None:
    f["apps/workers.yaml"] = "---\n".join(
        deployment(name, "ghcr.io/example/worker:2.0") for name in ("a", "b", "c", "d")
    )
    f["apps/kustomization.yaml"] = _text(f, "apps/kustomization.yaml").replace(
        "- web.yaml", "- web.yaml\n  - workers.yaml"
    )


def _label_everywhere(f: Files) -> None:
    f["apps/kustomization.yaml"] = _text(f, "apps/kustomization.yaml") + dedent(
        """
        labels:
          - pairs:
              example.com/owner: platform
        """
    )


def _remote_base(f: Files) -> None:
    f["apps/kustomization.yaml"] = _text(f, "apps/kustomization.yaml").replace(
        "- web.yaml", "- web.yaml\n  - https://github.com/example/addons//redis?ref=v1.0.0"
    )
    f["apps/web.yaml"] = deployment("web", "ghcr.io/example/web:1.0.1")


def _build_fails(f: Files) -> None:
    # kustomize fails on the missing file, so kustomize-controller applies nothing: the
    # image bump beside it reaches no cluster, and the diff says so instead of showing it.
    f["apps/kustomization.yaml"] = _text(f, "apps/kustomization.yaml").replace(
        "- web.yaml", "- web.yaml\n  - redis.yaml"
    )
    f["apps/web.yaml"] = deployment("web", "ghcr.io/example/web:1.0.1")


def _readme(f: Files) -> None:
    f["README.md"] = "# platform\n"


# name -> (what the base adds to base_files(), the change)
CHANGES: dict[str, tuple[Callable[[Files], None] | None, Callable[[Files], None]]] = {
    "image-bump": (None, _image_bump),
    "helmrelease-version": (None, _helm_version),
    "helmrelease-values": (None, _helm_values),
    "patch-added": (None, _patch_added),
    "component-added": (None, _component_added),
    "namespace-change": (None, _namespace_change),
    "secret-change": (None, _secret_change),
    "moved-between-kustomizations": (None, _moved_between_kustomizations),
    "file-renamed": (None, _file_renamed),
    "label-everywhere": (_workers, _label_everywhere),
    "remote-base": (None, _remote_base),
    "build-fails": (None, _build_fails),
    "no-applied-change": (None, _readme),
}


def _case(name: str) -> tuple[Files, Files]:
    before, change = CHANGES[name]
    base = base_files()
    if before is not None:
        before(base)
    head = dict(base)
    change(head)
    return base, head


def _diff(base: Files, head: Files) -> tuple[list[ClusterDiff], Redactor]:
    # A fixed salt: the golden files hold the markers.
    redactor = Redactor(SALT)
    result = diff_trees(tree(head), tree(base), config=Config(), redactor=redactor)
    assert not result.errors, result.errors
    return result.clusters, redactor


def _golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if UPDATE or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if not UPDATE:
            pytest.fail(f"{path} was missing and is now written: review it")
    assert text == path.read_text(), f"{name}: the diff differs from {path}"


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_golden_text(name: str) -> None:
    clusters, redactor = _diff(*_case(name))
    _golden(name, report.to_text(clusters, redactor))


# --- against kubectl kustomize --------------------------------------------------------

DIRECTORIES = {"flux-system/apps": "apps", "flux-system/infra": "infra"}


def _write(files: Files, root: Path) -> None:
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)


def _kubectl(files: Files, directory: str, root: Path) -> dict[tuple[Any, ...], Any]:
    assert KUBECTL is not None, "kubectl is not on the PATH"
    _write(files, root)
    done = subprocess.run(
        [KUBECTL, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(root / directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = {}
    # Composed, not loaded: scalars typed as the build types them (go-yaml's rules).
    for node in yaml.compose_all(done.stdout, Loader=yaml.SafeLoader):
        value = yn.to_value(node)
        meta = value["metadata"]
        out[(value["apiVersion"], value["kind"], meta.get("namespace"), meta["name"])] = value
    return out


def _secret_values(value: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """kubectl's Secret with its values replaced as the diff replaces them (the same
    salt gives the same marker: the diff shows a value change exactly when kustomize
    builds one)."""
    if value["kind"] != "Secret":
        return value
    out = dict(value)
    for field in ("data", "stringData"):
        if isinstance(out.get(field), dict):
            out[field] = {k: redactor.marker(v) for k, v in out[field].items()}
    return out


ORACLE_CASES = [n for n in sorted(CHANGES) if n not in ("remote-base", "no-applied-change")]


@pytest.mark.skipif(KUBECTL is None and not REQUIRED, reason="kubectl is not on the PATH")
@pytest.mark.parametrize("name", ORACLE_CASES)
def test_each_changed_object_is_what_kubectl_kustomize_builds(name: str, tmp_path: Path) -> None:
    base, head = _case(name)
    clusters, redactor = _diff(base, head)
    compared = 0
    for k in (k for c in clusters for k in c.kustomizations):
        directory = DIRECTORIES[k.kustomization]
        at_base = _kubectl(base, directory, tmp_path / "base")
        if k.fails:
            # Said to fail: kustomize fails it, and no object is shown as changing.
            with pytest.raises(subprocess.CalledProcessError):
                _kubectl(head, directory, tmp_path / "head")
            assert k.objects == []
            compared += 1
            continue
        at_head = _kubectl(head, directory, tmp_path / "head")
        for o in k.objects:
            key = (o.api_version, o.kind, o.namespace, o.name)
            if o.after is not None:
                assert o.after == _secret_values(at_head[key], redactor), (name, key)
                compared += 1
            if o.before is not None and o.moved_from is None:
                assert o.before == _secret_values(at_base[key], redactor), (name, key)
                compared += 1
            if o.moved_from is not None:
                old = DIRECTORIES[o.moved_from]
                moved_base = _kubectl(base, old, tmp_path / "moved")
                assert o.before == _secret_values(moved_base[key], redactor), (name, key)
                compared += 1
    assert compared > 0, f"{name}: no object to compare"


# --- within GitHub's limits -----------------------------------------------------------


def _object(i: int, kind: str = "Deployment", change: str = "changed") -> ObjectDiff:
    before = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": f"app-{i}"}}
    after = {**before, "spec": {"replicas": i}}
    return ObjectDiff(
        "apps/v1",
        kind,
        "web",
        f"app-{i}",
        change,
        before if change != "added" else None,
        after,
        f"apps/app-{i}.yaml",
        4,
        "head",
    )


def _cluster(name: str, kustomizations: int, objects: int) -> ClusterDiff:
    return ClusterDiff(
        name,
        [
            KustomizationDiff(
                f"flux-system/ks-{k}",
                f"Flux Kustomization flux-system/ks-{k}",
                objects=[_object(k * 1000 + i) for i in range(objects)],
            )
            for k in range(kustomizations)
        ],
    )


def _blocks_whole(text: str) -> None:
    assert text.count("<details>") == text.count("</details>")
    for block in text.split("<details>")[1:]:
        body = block.split("</details>")[0]
        fences = [line for line in body.splitlines() if line.startswith("```")]
        assert len(fences) in (0, 2), body[:200]


def test_a_large_change_fits_githubs_limit_largest_clusters_first() -> None:
    clusters = [_cluster("clusters/small", 1, 3), _cluster("clusters/large", 20, 100)]
    text = report.section(clusters, Redactor(), base="a" * 40, head="b" * 40, limit=65535)
    assert len(text) <= 65535
    _blocks_whole(text)
    assert text.index("<code>clusters/large</code>") == text.index("<code>")
    shown = text.count("# changed: ")
    total = 3 + 20 * 100
    last = text.rstrip().splitlines()[-1]
    hidden = total - shown
    # Whole Kustomizations and single objects are left out, never part of a block.
    blocks = text.count("<details>")
    assert 0 < shown < total and blocks >= 2
    assert last.startswith(f"{hidden} more objects in ")
    assert last.endswith(
        f"are not shown (of {total}); run `flux-review diff --base {'a' * 12} --head {'b' * 12}`"
        " to see every change."
    )


def test_everything_shown_when_it_fits_largest_cluster_first() -> None:
    clusters = [_cluster("clusters/prod", 2, 5), _cluster("clusters/staging", 3, 5)]
    text = report.section(clusters, Redactor(), base="a", head="b", limit=65535)
    assert text.count("# changed: ") == 25 and "not shown" not in text
    assert text.index("clusters/staging") < text.index("clusters/prod")
    _blocks_whole(text)


def test_identical_changes_are_shown_once() -> None:
    objects = []
    for i in range(480):
        before = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"d{i}"}}
        after = {**before, "metadata": {"name": f"d{i}", "labels": {"team": "core"}}}
        objects.append(
            ObjectDiff(
                "apps/v1",
                "Deployment",
                "web",
                f"d{i}",
                "changed",
                before,
                after,
                "a.yaml",
                i,
                "head",
            )
        )
    [entry] = entries(objects)
    assert entry.count == 480
    assert entry.lines[0].startswith("# the same change in 480 Deployments: web/d0, web/d1")
    assert entry.lines[1] == '#   + metadata.labels.team: "core"'
    assert field_changes(objects[0]) == ['+ metadata.labels.team: "core"']


def test_a_value_holding_backticks_does_not_end_the_block() -> None:
    o = _object(1)
    assert o.after is not None
    o.after["data"] = {"script": "echo ```done```"}
    text = report.section(
        [ClusterDiff("c", [KustomizationDiff("n/k", "Flux Kustomization n/k", objects=[o])])],
        Redactor(),
        base="a",
        head="b",
        limit=65535,
    )
    assert "````diff" in text and "\n````\n" in text
