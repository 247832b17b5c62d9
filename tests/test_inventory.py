"""The inventory: what each Flux Kustomization applies, its clusters, what is applied."""

from __future__ import annotations

from bot.analysis.inventory import Inventory, ObjectId, inventory_of
from bot.analysis.snapshot import Snapshot
from tests.analysis_helpers import (
    Files,
    config_from,
    configmap,
    dedent,
    deployment,
    flux_kustomization,
    kustomization,
    repo,
    tree,
)


def inventory(files: Files, config: str | None = None) -> Inventory:
    return inventory_of(Snapshot(tree(files), config_from(config) if config else None))


def ids(inv: Inventory, label: str) -> set[str]:
    [fb] = [fb for fb in inv.flux_builds if fb.label == label]
    return {str(o.id) for o in fb.build.objects}


APPS = repo(
    {
        "clusters/prod/apps.yaml": flux_kustomization(
            "apps", "./apps/prod", target_namespace="shop"
        ),
        "apps/prod/kustomization.yaml": kustomization(
            ["../base", "namespace.yaml"],
            extra="""
            namePrefix: prod-
            configMapGenerator:
              - name: settings
                literals: [A=b]
              - name: web-config
                behavior: merge
                literals: [B=c]
            """,
        ),
        "apps/prod/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n",
        "apps/base/kustomization.yaml": kustomization(
            ["deployment.yaml", "role.yaml"],
            extra="namespace: base\n"
            "configMapGenerator:\n  - name: web-config\n    literals: [A=1]\n",
        ),
        "apps/base/deployment.yaml": deployment("web", namespace="written"),
        "apps/base/role.yaml": dedent(
            """
            apiVersion: rbac.authorization.k8s.io/v1
            kind: ClusterRole
            metadata:
              name: reader
            rules: []
            """
        ),
    }
)


def test_namespace_prefix_generators_and_target_namespace() -> None:
    inv = inventory(APPS)
    assert ids(inv, "Flux Kustomization flux-system/apps") == {
        "Deployment shop/prod-web",  # base's namespace, then targetNamespace wins
        "ConfigMap shop/prod-web-config",  # generated; merge adds nothing
        "ConfigMap shop/prod-settings",
        "ClusterRole prod-reader",  # cluster-scoped: no namespace, but prefixed
        "Namespace shop",  # kustomize renames a Namespace to the namespace it sets
    }


def test_each_object_knows_its_file_and_line() -> None:
    inv = inventory(APPS)
    [fb] = [fb for fb in inv.flux_builds if fb.label.endswith("/apps")]
    by_name = {o.id.name: o for o in fb.build.objects}
    assert (by_name["prod-web"].path, by_name["prod-web"].line) == ("apps/base/deployment.yaml", 4)
    settings = by_name["prod-settings"]
    assert (settings.path, settings.generator) == (
        "apps/prod/kustomization.yaml",
        "configMapGenerator",
    )
    assert by_name["prod-web"].id == ObjectId("apps", "v1", "Deployment", "shop", "prod-web")


def test_directory_builds_are_shared_by_parents() -> None:
    inv = inventory(APPS)
    assert inv.build_dir("apps/base") is inv.build_dir("apps/base")
    assert {str(o.id) for o in inv.build_dir("apps/base").objects} == {
        "Deployment base/web",
        "ClusterRole reader",
        "ConfigMap base/web-config",
    }


def test_generated_index_and_flux_components() -> None:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps")
            + "  components:\n    - ../components/extra\n",
            "apps/one.yaml": configmap("one"),
            "apps/nested/two.yaml": configmap("two"),
            "apps/kustomized/kustomization.yaml": kustomization(["three.yaml"]),
            "apps/kustomized/three.yaml": configmap("three"),
            "apps/kustomized/ignored.yaml": configmap("not-listed"),
            "components/extra/kustomization.yaml": (
                "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
                "resources:\n  - cm.yaml\n"
            ),
            "components/extra/cm.yaml": configmap("extra"),
        }
    )
    assert ids(inventory(files), "Flux Kustomization flux-system/apps") == {
        "ConfigMap one",
        "ConfigMap two",
        "ConfigMap three",
        "ConfigMap extra",
    }


def test_what_cannot_be_known_is_said() -> None:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/kustomization.yaml": kustomization(
                ["https://github.com/org/repo//deploy?ref=v1", "cm.yaml"]
            ),
            "apps/cm.yaml": configmap("${APP}-settings"),
        }
    )
    inv = inventory(files)
    [fb] = [fb for fb in inv.flux_builds if fb.label.endswith("/apps")]
    assert not fb.known and "remote" in fb.build.unknown[0]
    [obj] = fb.build.objects
    assert obj.id.templated
    assert not inv.clusters[0].known


def test_clusters_and_what_no_cluster_applies() -> None:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/kustomization.yaml": kustomization(["web"]),
            "apps/web/kustomization.yaml": kustomization(["deployment.yaml"]),
            "apps/web/deployment.yaml": deployment("web"),
            "apps/old/kustomization.yaml": kustomization(["deployment.yaml"]),
            "apps/old/deployment.yaml": deployment("old"),
            ".archive/app/ks.yaml": flux_kustomization("archived", "./.archive/app"),
            ".archive/app/deployment.yaml": deployment("archived"),
        },
        cluster="prod",
    )
    files.update(repo({}, cluster="staging"))
    inv = inventory(files)
    assert sorted(c.name for c in inv.clusters) == ["clusters/prod", "clusters/staging"]
    [prod] = inv.clusters_of("apps/web/deployment.yaml")
    assert prod.name == "clusters/prod"
    assert inv.applied("apps/web/deployment.yaml")
    assert inv.applied("clusters/prod/apps.yaml")
    # unlisted by its parent, and an archived app that only its own ks.yaml names
    assert not inv.applied("apps/old/deployment.yaml")
    assert not inv.applied(".archive/app/deployment.yaml")
    assert not inv.applied(".archive/app/ks.yaml")


def test_without_flux_system_unapplied_kustomizations_are_roots() -> None:
    files = {
        "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
        "apps/web.yaml": deployment("web"),
    }
    inv = inventory(files)
    [cluster] = inv.clusters
    assert cluster.name == "apps"
    assert inv.applied("apps/web.yaml")


def test_raw_paths_form_their_own_cluster() -> None:
    files = {"deploy/web.yaml": deployment("web", namespace="shop"), "other/x.yaml": configmap("x")}
    inv = inventory(files, "raw_paths: [deploy]\n")
    [cluster] = inv.clusters
    assert cluster.name == "deploy"
    assert [str(o.id) for _, o in cluster.objects()] == ["Deployment shop/web"]
    assert inv.applied("deploy/web.yaml") and not inv.applied("other/x.yaml")


def test_a_repository_without_roots_applies_everything() -> None:
    inv = inventory({"apps/web.yaml": deployment("web")})
    assert not inv.has_roots and inv.applied("apps/web.yaml")


def test_crds_in_the_repository_declare_their_scope() -> None:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization(
                "apps", "./apps", target_namespace="shop"
            ),
            "apps/crd.yaml": dedent(
                """
                apiVersion: apiextensions.k8s.io/v1
                kind: CustomResourceDefinition
                metadata:
                  name: widgets.example.com
                spec:
                  group: example.com
                  scope: Cluster
                  names: {kind: Widget, plural: widgets}
                """
            ),
            "apps/widget.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n",
            "apps/gadget.yaml": "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g\n",
        }
    )
    found = ids(inventory(files), "Flux Kustomization flux-system/apps")
    assert "Widget w" in found and "Gadget shop/g" in found


def test_a_bootstrap_directory_without_its_sync_file_is_a_root() -> None:
    files = {
        "clusters/test/flux-system/gotk-components.yaml": "# generated by flux bootstrap\n",
        "clusters/test/apps.yaml": flux_kustomization("apps", "./apps"),
        "apps/web.yaml": deployment("web"),
        "old/web.yaml": deployment("old"),
    }
    inv = inventory(files)
    [cluster] = inv.clusters
    assert cluster.name == "clusters/test"
    assert inv.applied("apps/web.yaml") and not inv.applied("old/web.yaml")


def test_post_build_substitution_names_objects() -> None:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization(
                "apps", "./apps", substitute={"APP": "plex"}
            ),
            "apps/cm.yaml": configmap("${APP}-settings"),
            "apps/pvc.yaml": configmap("${CLAIM:-${APP}}"),
        }
    )
    assert ids(inventory(files), "Flux Kustomization flux-system/apps") == {
        "ConfigMap plex-settings",
        "ConfigMap plex",
    }


def test_another_source_makes_what_is_applied_unknown() -> None:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization(
                "apps", "./apps", source_kind="OCIRepository", source="apps"
            ),
            "apps/web.yaml": deployment("web"),
        }
    )
    inv = inventory(files)
    assert not inv.clusters[0].known and inv.applied("apps/web.yaml")
