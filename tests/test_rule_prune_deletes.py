"""prune-deletes: what a change removes from a pruning Flux Kustomization."""

from __future__ import annotations

from bot.analysis import Finding, Severity, Side, analyze
from tests.analysis_helpers import (
    configmap,
    dedent,
    deployment,
    flux_kustomization,
    home_ops_root,
    kustomization,
    of_rule,
    repo,
    tree,
)

PVC = dedent(
    """
    apiVersion: v1
    kind: PersistentVolumeClaim
    metadata:
      name: data
      namespace: db
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 1Gi
    """
)


def platform(**extra: str) -> dict[str, str | bytes]:
    files: dict[str, str] = {
        "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
        "clusters/prod/db.yaml": flux_kustomization("db", "./db"),
        "apps/kustomization.yaml": kustomization(["web.yaml", "settings.yaml"]),
        "apps/web.yaml": deployment("web", "ghcr.io/example/web:1.0"),
        "apps/settings.yaml": configmap("settings"),
        "db/kustomization.yaml": kustomization(["pvc.yaml"]),
        "db/pvc.yaml": PVC,
    }
    files.update(extra)
    return repo(files)


def without(files: dict[str, str | bytes], *paths: str) -> dict[str, str | bytes]:
    return {p: c for p, c in files.items() if p not in paths}


def prune_findings(head: dict[str, str | bytes], base: dict[str, str | bytes]) -> list[Finding]:
    return of_rule(analyze(tree(head), tree(base)).findings, "prune-deletes")


def test_a_deleted_pvc_is_a_warning_on_its_deleted_line() -> None:
    base = platform()
    head = without(base, "db/pvc.yaml")
    head["db/kustomization.yaml"] = kustomization([])
    [finding] = prune_findings(head, base)
    assert (finding.path, finding.side, finding.severity) == (
        "db/pvc.yaml",
        Side.BASE,
        Severity.WARNING,
    )
    assert finding.line == 4  # metadata.name of the deleted PVC
    assert "PersistentVolumeClaim db/data" in finding.message
    assert "Flux Kustomization flux-system/db" in finding.message
    assert "clusters/prod" in finding.detail and "data" in finding.message
    assert finding.introduced


def test_an_unlisted_configmap_is_a_notice_pointing_at_the_removed_entry() -> None:
    base = platform()
    head = dict(base, **{"apps/kustomization.yaml": kustomization(["web.yaml"])})
    [finding] = prune_findings(head, base)
    assert finding.severity is Severity.NOTICE and finding.path == "apps/settings.yaml"
    assert [(r.path, r.side) for r in finding.related] == [("apps/kustomization.yaml", Side.BASE)]


def test_an_object_moved_to_another_kustomization_of_the_cluster_is_not_reported() -> None:
    base = platform()
    head = without(base, "db/pvc.yaml")
    head["db/kustomization.yaml"] = kustomization([])
    head["apps/pvc.yaml"] = PVC
    head["apps/kustomization.yaml"] = kustomization(["web.yaml", "settings.yaml", "pvc.yaml"])
    assert prune_findings(head, base) == []


def test_prune_disabled_and_no_prune_are_not_reported() -> None:
    guarded = PVC.replace(
        "  namespace: db\n",
        "  namespace: db\n  annotations:\n    kustomize.toolkit.fluxcd.io/prune: disabled\n",
    )
    base = platform(**{"db/pvc.yaml": guarded})
    head = dict(base, **{"db/kustomization.yaml": kustomization([])})
    assert prune_findings(head, base) == []
    no_prune = platform(
        **{
            "clusters/prod/db.yaml": flux_kustomization("db", "./db").replace(
                "prune: true", "prune: false"
            )
        }
    )
    head = dict(no_prune, **{"db/kustomization.yaml": kustomization([])})
    assert prune_findings(head, no_prune) == []


def test_deleting_the_flux_kustomization_prunes_all_it_applied() -> None:
    base = platform()
    head = without(base, "clusters/prod/db.yaml")
    ks, pvc = prune_findings(head, base)
    # The Kustomization leaves flux-system's build; its finalizer deletes what it applied.
    assert (ks.path, ks.severity) == ("clusters/prod/db.yaml", Severity.NOTICE)
    assert "Kustomization flux-system/db" in ks.message
    assert pvc.severity is Severity.WARNING and pvc.path == "db/pvc.yaml"
    assert [r.path for r in pvc.related] == ["clusters/prod/db.yaml"]


def test_a_whole_tree_check_reports_nothing() -> None:
    assert of_rule(analyze(tree(platform())).findings, "prune-deletes") == []


def _cluster_dir_moved(to: str | None) -> tuple[dict[str, str | bytes], dict[str, str | bytes]]:
    """The base, with a PVC the cluster's root applies itself, and a head where the
    cluster's directory is deleted (`to` None) or renamed."""
    base = platform(**{"clusters/prod/pvc.yaml": PVC.replace("name: data", "name: cluster-data")})
    head: dict[str, str | bytes] = {}
    for path, content in base.items():
        if not path.startswith("clusters/prod/"):
            head[path] = content
        elif to is not None:
            moved = (
                content.replace("./clusters/prod", f"./{to}")
                if isinstance(content, str)
                else content
            )
            head[to + path.removeprefix("clusters/prod")] = moved
    return head, base


def test_deleting_or_renaming_a_clusters_directory_prunes_nothing() -> None:
    # The Kustomization on the cluster still syncs the old path: kustomize-controller
    # stops at "kustomization path not found" before it prunes, and the cluster keeps
    # what it has (a real repository moved kubernetes/flux to kubernetes/hegira this way).
    for to in (None, "clusters/production"):
        head, base = _cluster_dir_moved(to)
        assert prune_findings(head, base) == [], to
        result = analyze(tree(head), tree(base))
        [prod] = [c for c in result.impact or [] if c.cluster == "clusters/prod"]
        [root] = prod.kustomizations
        assert root.label == "Flux Kustomization flux-system/flux-system"
        assert root.removed == [] and root.fails == [
            "spec.path `clusters/prod` of Flux Kustomization flux-system/flux-system does not exist"
        ]
    # The same objects, gone from a directory the cluster still syncs, are pruned.
    head, base = _cluster_dir_moved(None)
    kept = {p: c for p, c in base.items() if p.startswith("clusters/prod/flux-system/")}
    rules = {f.message.split(" from ")[0] for f in prune_findings({**head, **kept}, base)}
    assert "This change removes PersistentVolumeClaim db/data" in rules


def test_a_child_outside_a_removed_cluster_directory_still_prunes() -> None:
    # The child Kustomizations stay on the cluster with the spec they last had and keep
    # reconciling their own directories: what leaves those is pruned.
    for to in (None, "clusters/production"):
        head, base = _cluster_dir_moved(to)
        head = without(head, "db/pvc.yaml")
        head["db/kustomization.yaml"] = kustomization([])
        head["apps/web.yaml"] = str(head["apps/web.yaml"]) + "# reviewed\n"
        [finding] = prune_findings(head, base)
        assert (finding.path, finding.severity) == ("db/pvc.yaml", Severity.WARNING), to
        assert "Flux Kustomization flux-system/db" in finding.message
        result = analyze(tree(head), tree(base))
        [prod] = [c for c in result.impact or [] if c.cluster == "clusters/prod"]
        db = next(k for k in prod.kustomizations if k.label.endswith("flux-system/db"))
        assert db.removed == ["PersistentVolumeClaim db/data"] and db.fails == []
        assert not any(k.label.endswith("flux-system/apps") for k in prod.kustomizations)


def test_moving_a_clusters_root_file_renames_it_and_prunes_nothing() -> None:
    # A home-ops restructure: the root applied by hand at install moves to another
    # directory. On the cluster it is the same Kustomization, syncing the same path.
    base: dict[str, str | bytes] = {
        "kubernetes/flux/config/cluster.yaml": home_ops_root(),
        "kubernetes/apps/kustomization.yaml": kustomization(["pvc.yaml", "settings.yaml"]),
        "kubernetes/apps/pvc.yaml": PVC,
        "kubernetes/apps/settings.yaml": configmap("settings"),
    }
    head = without(base, "kubernetes/flux/config/cluster.yaml")
    head["kubernetes/flux/cluster/cluster.yaml"] = home_ops_root()
    assert prune_findings(head, base) == []
    result = analyze(tree(head), tree(base))
    assert [c.cluster for c in result.impact or []] == []
    # What the move also drops from the synced path is still pruned.
    head["kubernetes/apps/kustomization.yaml"] = kustomization(["pvc.yaml"])
    [finding] = prune_findings(head, base)
    assert "ConfigMap settings" in finding.message and finding.severity is Severity.NOTICE
    [cluster] = analyze(tree(head), tree(base)).impact or []
    assert cluster.cluster == "kubernetes/flux/cluster"
    assert [k.removed for k in cluster.kustomizations] == [["ConfigMap settings"]]
