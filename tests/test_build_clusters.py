"""The build: which clusters a repository has, what each of their Flux Kustomizations
applies, object by object, with the content Flux sends and where each value was
written (`Snapshot.build`)."""

from __future__ import annotations

import re
from typing import Any

from bot.analysis import Config, Severity
from bot.analysis.snapshot import Snapshot
from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.snapshot.build.clusters import Applied, FluxKustomization
from bot.analysis.snapshot.build.ids import ObjectId
from bot.analysis.snapshot.build.model import BuildModel
from tests.analysis_helpers import (
    Files,
    config_from,
    configmap,
    dedent,
    deployment,
    flux_kustomization,
    gotk_sync,
    helm_release,
    kustomization,
    line_of,
    oci_repository,
    repo,
    run,
    service,
    tenant_sync,
    tree,
)

# kustomize's content hash on a generated name: ten characters of its alphabet without
# vowels (`encodeHash`).
HASHED = re.compile(r"^(?P<name>.+)-[2456789bcdfghkmt]{10}$")


def build(files: Files, config: str | None = None) -> BuildModel:
    return Snapshot(tree(files), config_from(config) if config else None).build


def flux_ks(model: BuildModel, name: str) -> FluxKustomization:
    [found] = [k for k in model.kustomizations if k.kind == "Kustomization" and k.name == name]
    return found


def ids(model: BuildModel, name: str) -> set[str]:
    return {str(o.id) for o in flux_ks(model, name).objects}


def unhashed(model: BuildModel, name: str) -> set[str]:
    """The ids, generated names without their hash (each must have one)."""
    out = set()
    for o in flux_ks(model, name).objects:
        if o.generator is not None:
            m = HASHED.match(o.id.name)
            assert m is not None, f"{o.id} has no content hash"
            out.add(str(o.id._replace(name=m.group("name"))))
        else:
            out.add(str(o.id))
    return out


def _named(applied: Applied, name: str) -> bool:
    """Whether the object is called `name`, a generated one without its hash."""
    if applied.generator is None:
        return applied.id.name == name
    m = HASHED.match(applied.id.name)
    return m is not None and m.group("name") == name


def obj(model: BuildModel, name: str, kind: str, object_name: str) -> Applied:
    """The object of a kind whose name (without a generated hash) is `object_name`."""
    found = [
        o for o in flux_ks(model, name).objects if o.id.kind == kind and _named(o, object_name)
    ]
    assert len(found) == 1, [str(o.id) for o in flux_ks(model, name).objects]
    return found[0]


def value(applied: Applied, *path: str | int) -> Any:
    return yn.to_value(yn.at(applied.node, path))


def origin(applied: Applied, *path: str | int) -> tuple[str, int, str | None]:
    node = yn.at(applied.node, path)
    assert node is not None, path
    return yn.origin_of(node, applied.path)


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
    assert unhashed(build(APPS), "apps") == {
        "Deployment shop/prod-web",  # base's namespace, then targetNamespace wins
        "ConfigMap shop/prod-web-config",  # generated in the base, merged into here
        "ConfigMap shop/prod-settings",
        "ClusterRole prod-reader",  # cluster-scoped: no namespace, but prefixed
        "Namespace shop",  # kustomize renames a Namespace to the namespace it sets
    }


def test_a_merged_generator_holds_both_literals() -> None:
    web_config = obj(build(APPS), "apps", "ConfigMap", "prod-web-config")
    assert value(web_config, "data") == {"A": "1", "B": "c"}


def test_each_object_knows_its_file_and_line() -> None:
    model = build(APPS)
    web = obj(model, "apps", "Deployment", "prod-web")
    assert (web.path, web.line) == ("apps/base/deployment.yaml", 4)
    assert web.id == ObjectId("apps", "v1", "Deployment", "shop", "prod-web")
    settings = obj(model, "apps", "ConfigMap", "prod-settings")
    assert (settings.path, settings.line, settings.generator) == (
        "apps/prod/kustomization.yaml",
        line_of(str(APPS["apps/prod/kustomization.yaml"]), "name: settings"),
        "configMapGenerator",
    )
    # The namespace kustomize wrote names the Flux Kustomization's line that sets it.
    namespace = origin(web, "metadata", "namespace")
    assert namespace[:2] == (
        "clusters/prod/apps.yaml",
        line_of(str(APPS["clusters/prod/apps.yaml"]), "targetNamespace"),
    )
    assert model.objects_from("apps/base/deployment.yaml") == [web]


def test_a_reference_follows_a_generated_name_and_its_hash() -> None:
    web = deployment("web").replace(
        "          ports:\n",
        "          envFrom:\n            - configMapRef:\n                name: env\n"
        "          ports:\n",
    )
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/kustomization.yaml": kustomization(
                ["web.yaml"],
                extra="nameSuffix: -v2\nconfigMapGenerator:\n  - name: env\n    literals: [A=1]\n",
            ),
            "apps/web.yaml": web,
        }
    )
    model = build(files)
    env = obj(model, "apps", "ConfigMap", "env-v2")
    ref = value(
        obj(model, "apps", "Deployment", "web-v2"),
        *("spec", "template", "spec", "containers", 0, "envFrom", 0, "configMapRef", "name"),
    )
    assert ref == env.id.name != "env-v2"


def test_a_base_two_overlays_include_is_transformed_for_each() -> None:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("prod", "./apps/prod"),
            "clusters/prod/staging.yaml": flux_kustomization("staging", "./apps/staging"),
            "apps/base/kustomization.yaml": kustomization(["deployment.yaml"]),
            "apps/base/deployment.yaml": deployment("web"),
            "apps/prod/kustomization.yaml": kustomization(
                ["../base"], extra="namespace: prod\nreplicas:\n  - name: web\n    count: 5\n"
            ),
            "apps/staging/kustomization.yaml": kustomization(
                ["../base"], extra="namespace: staging\n"
            ),
        }
    )
    model = build(files)
    prod = obj(model, "prod", "Deployment", "web")
    staging = obj(model, "staging", "Deployment", "web")
    assert (prod.id.namespace, value(prod, "spec", "replicas")) == ("prod", 5)
    assert (staging.id.namespace, value(staging, "spec", "replicas")) == ("staging", 2)
    assert {str(a.owner.label) for a in model.objects_from("apps/base/deployment.yaml")} == {
        "Flux Kustomization flux-system/prod",
        "Flux Kustomization flux-system/staging",
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
            "apps/notes.txt": "not a manifest\n",
            "components/extra/kustomization.yaml": (
                "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
                "resources:\n  - cm.yaml\n"
            ),
            "components/extra/cm.yaml": configmap("extra"),
        }
    )
    model = build(files)
    assert ids(model, "apps") == {
        "ConfigMap one",
        "ConfigMap two",
        "ConfigMap three",
        "ConfigMap extra",
    }
    apps = flux_ks(model, "apps")
    assert apps.built is not None and apps.built.kfile is None  # Flux's generated index
    assert not model.applied("apps/kustomized/ignored.yaml")
    assert model.applied("components/extra/cm.yaml")


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
    model = build(files)
    apps = flux_ks(model, "apps")
    assert apps.built is not None
    [reason] = apps.built.unknown
    assert str(reason) == (
        "`https://github.com/org/repo//deploy?ref=v1` in apps/kustomization.yaml is remote"
    )
    assert not apps.known
    [cm] = apps.objects
    assert cm.id.templated  # no postBuild: the variable stays in the name
    [cluster] = model.clusters
    assert not cluster.known


def test_clusters_and_what_no_cluster_applies() -> None:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/kustomization.yaml": kustomization(["web"]),
            "apps/web/kustomization.yaml": kustomization(["deployment.yaml"]),
            "apps/web/deployment.yaml": deployment("web"),
            "apps/old/kustomization.yaml": kustomization(["deployment.yaml"]),
            "apps/old/deployment.yaml": deployment("old"),
        },
        cluster="prod",
    )
    files.update(repo({}, cluster="staging"))
    model = build(files)
    assert sorted(c.name for c in model.clusters) == ["clusters/prod", "clusters/staging"]
    assert [c.name for c in model.clusters_of("apps/web/deployment.yaml")] == ["clusters/prod"]
    assert [k.label for k in model.appliers("apps/web/deployment.yaml")] == [
        "Flux Kustomization flux-system/apps"
    ]
    assert model.applied("clusters/prod/apps.yaml")
    # unlisted by its parent: no cluster applies it, but its build is still made
    assert not model.applied("apps/old/deployment.yaml")
    assert [b.directory for b in model.standalone] == ["apps/old"]
    [old] = model.standalone[0].resources
    assert (old.kind, old.name) == ("Deployment", "old")


def test_an_archive_directory_is_applied_by_no_cluster() -> None:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/web.yaml": deployment("web"),
            ".archive/app/ks.yaml": flux_kustomization("archived", "./.archive/app"),
            ".archive/app/kustomization.yaml": kustomization(["deployment.yaml"]),
            ".archive/app/deployment.yaml": deployment("archived", "ghcr.io/Example/Old:1"),
        }
    )
    model = build(files)
    assert [c.name for c in model.clusters] == ["clusters/prod"]
    assert not model.applied(".archive/app/deployment.yaml")
    assert not model.applied(".archive/app/ks.yaml")
    assert "archived" not in {k.name for k in model.kustomizations}
    # built on its own, so that what is wrong in it is still said, as a notice
    assert [b.directory for b in model.standalone] == [".archive/app"]
    [image] = [f for f in run(files) if f.rule == "invalid-image-reference"]
    assert (image.path, image.severity) == (".archive/app/deployment.yaml", Severity.NOTICE)


def test_an_archived_copy_of_a_cluster_starts_nothing() -> None:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/web.yaml": deployment("web"),
            ".archive/clusters/old/flux-system/gotk-sync.yaml": gotk_sync("./clusters/old"),
            ".archive/clusters/old/flux-system/gotk-components.yaml": (
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n"
            ),
            ".archive/clusters/old/flux-system/kustomization.yaml": kustomization(
                ["gotk-components.yaml", "gotk-sync.yaml"]
            ),
            ".archive/clusters/old/apps.yaml": flux_kustomization("apps", "./.archive/apps"),
            ".archive/apps/web.yaml": deployment("archived"),
        }
    )
    model = build(files)
    assert [c.name for c in model.clusters] == ["clusters/prod"]
    assert not model.applied(".archive/apps/web.yaml")
    assert not [f for f in run(files) if f.severity is Severity.ERROR]


def test_without_flux_system_unapplied_kustomizations_are_roots() -> None:
    files = {
        "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
        "clusters/prod/infra.yaml": flux_kustomization("infra", "./infra"),
        "apps/web.yaml": deployment("web"),
        "infra/cm.yaml": configmap("infra"),
        "old/web.yaml": deployment("old"),
    }
    model = build(files)
    [cluster] = model.clusters
    # one cluster per directory holding roots, named after it
    assert (cluster.name, cluster.entry.kind) == ("clusters/prod", "root")
    assert {k.name for k in cluster.kustomizations} == {"apps", "infra"}
    assert model.applied("apps/web.yaml") and model.applied("infra/cm.yaml")
    assert not model.applied("old/web.yaml")


def test_raw_paths_form_their_own_cluster() -> None:
    files = {"deploy/web.yaml": deployment("web", namespace="shop"), "other/x.yaml": configmap("x")}
    model = build(files, "raw_paths: [deploy]\n")
    [cluster] = model.clusters
    assert (cluster.name, cluster.entry.kind) == ("deploy", "raw_paths")
    assert [str(o.id) for o in cluster.objects()] == ["Deployment shop/web"]
    assert model.applied("deploy/web.yaml") and not model.applied("other/x.yaml")


def test_a_repository_without_clusters_applies_everything() -> None:
    model = build(
        {
            "apps/kustomization.yaml": kustomization(["web.yaml"]),
            "apps/web.yaml": deployment("web"),
            "loose/cm.yaml": configmap("loose"),
        }
    )
    assert not model.has_clusters and not model.clusters
    assert model.applied("apps/web.yaml") and model.applied("loose/cm.yaml")
    [standalone] = model.standalone
    assert [r.name for r in standalone.resources] == ["web"]


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
    model = build(files)
    found = ids(model, "apps")
    assert "Widget w" in found and "Gadget shop/g" in found
    # kustomize does not know the CRD: it writes the namespace, the cluster ignores it
    assert value(obj(model, "apps", "Widget", "w"), "metadata", "namespace") == "shop"


def test_a_bootstrap_directory_without_its_sync_file_is_a_cluster() -> None:
    files = {
        "clusters/test/flux-system/gotk-components.yaml": "# generated by flux bootstrap\n",
        "clusters/test/apps.yaml": flux_kustomization("apps", "./apps"),
        "apps/web.yaml": deployment("web"),
        "old/web.yaml": deployment("old"),
    }
    model = build(files)
    [cluster] = model.clusters
    assert (cluster.name, cluster.entry.kind) == ("clusters/test", "bootstrap")
    assert model.applied("apps/web.yaml") and not model.applied("old/web.yaml")


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
    model = build(files)
    assert ids(model, "apps") == {"ConfigMap plex-settings", "ConfigMap plex"}
    name = origin(obj(model, "apps", "ConfigMap", "plex-settings"), "metadata", "name")
    assert name[:2] == ("apps/cm.yaml", 4)
    assert name[2] is not None and "from its postBuild.substitute" in name[2]


OCI_APPS = repo(
    {
        "clusters/prod/apps.yaml": flux_kustomization(
            "apps", "./apps", source_kind="OCIRepository", source="apps"
        ),
        "apps/web.yaml": deployment("web").replace("  replicas: 2\n", "  replicas: 2\n" * 2),
    }
)


def test_another_source_leaves_a_kustomization_unfollowed() -> None:
    model = build(OCI_APPS)
    [cluster] = model.clusters
    apps = flux_ks(model, "apps")
    assert not apps.followed and not apps.objects
    assert apps.unfollowed == "its source is OCIRepository flux-system/apps"
    assert cluster.unfollowed == [
        "Flux Kustomization flux-system/apps (its source is OCIRepository flux-system/apps)"
    ]
    assert not cluster.known


def test_a_file_an_unfollowed_kustomization_may_apply_keeps_its_errors() -> None:
    # An OCI artifact may well be pushed from this path: its files are judged as applied,
    # but what they build is not counted as the cluster's.
    found = {(f.rule, f.path, f.severity) for f in run(OCI_APPS)}
    assert ("yaml-syntax-error", "apps/web.yaml", Severity.ERROR) in found
    model = build(OCI_APPS)
    assert model.applied("apps/web.yaml")
    assert not [o for o in model.clusters[0].objects() if o.id.kind == "Deployment"]


def test_the_root_of_another_artifact_is_not_this_repositorys() -> None:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization(
                "apps", "./", source_kind="OCIRepository", source="podinfo"
            ),
            "notes/web.yaml": deployment("web").replace("  replicas: 2\n", "  replicas: 2\n" * 2),
        }
    )
    assert not build(files).applied("notes/web.yaml")


# --- content ----------------------------------------------------------------------------

PARENT_PATCH = dedent(
    """
    apiVersion: kustomize.toolkit.fluxcd.io/v1
    kind: Kustomization
    metadata:
      name: apps
      namespace: flux-system
    spec:
      interval: 10m
      path: ./apps
      prune: true
      sourceRef:
        kind: GitRepository
        name: flux-system
      patches:
        - target:
            kind: Kustomization
          patch: |
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata:
              name: all
            spec:
              interval: 1h
              postBuild:
                substituteFrom:
                  - kind: ConfigMap
                    name: cluster-settings
    """
)
SETTINGS = dedent(
    """
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: cluster-settings
      namespace: flux-system
    data:
      N: "3"
      DOMAIN: example.com
    """
)
WEB_CM = dedent(
    """
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: web
    data:
      host: web.${DOMAIN}
      price: $${PRICE}
    """
)
RAW_CM = dedent(
    """
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: raw
      annotations:
        kustomize.toolkit.fluxcd.io/substitute: disabled
    data:
      host: ${DOMAIN}
    """
)


def patched_platform() -> dict[str, str | bytes]:
    return repo(
        {
            "clusters/prod/apps.yaml": PARENT_PATCH,
            "clusters/prod/settings.yaml": SETTINGS,
            "apps/web.yaml": flux_kustomization("web", "./web"),
            "web/deployment.yaml": deployment("web").replace("replicas: 2", "replicas: ${N}"),
            "web/cm.yaml": WEB_CM,
            "web/raw.yaml": RAW_CM,
        }
    )


def test_a_child_kustomization_gets_its_parents_patch() -> None:
    model = build(patched_platform())
    [child] = [o for o in flux_ks(model, "apps").objects if o.id.name == "web"]
    assert value(child, "spec", "interval") == "1h"
    assert value(child, "spec", "postBuild") == {
        "substituteFrom": [{"kind": "ConfigMap", "name": "cluster-settings"}]
    }
    # what the child wrote itself is kept
    assert (value(child, "spec", "path"), value(child, "spec", "prune")) == ("./web", True)
    assert origin(child, "spec", "interval")[:2] == (
        "clusters/prod/apps.yaml",
        line_of(PARENT_PATCH, "interval: 1h"),
    )
    assert origin(child, "spec", "path")[:2] == ("apps/web.yaml", 8)
    # and the cluster follows the child as patched
    web = flux_ks(model, "web")
    assert yn.to_value(yn.get(web.spec, "interval")) == "1h"


def test_substitution_from_a_configmap_the_cluster_applies() -> None:
    model = build(patched_platform())
    deploy = obj(model, "web", "Deployment", "web")
    assert value(deploy, "spec", "replicas") == 3  # a number, as Flux reads it back
    file, line, via = origin(deploy, "spec", "replicas")
    assert (file, line) == ("web/deployment.yaml", 8)
    assert via == (
        "substituted by Flux Kustomization flux-system/web from ConfigMap "
        f"flux-system/cluster-settings (clusters/prod/settings.yaml:{line_of(SETTINGS, 'N:')})"
    )
    cm = obj(model, "web", "ConfigMap", "web")
    assert value(cm, "data", "host") == "web.example.com"
    assert value(cm, "data", "price") == "${PRICE}"  # `$$` is an escaped `$`
    raw = obj(model, "web", "ConfigMap", "raw")
    assert value(raw, "data", "host") == "${DOMAIN}"  # opted out


def test_substitution_does_not_read_another_clusters_configmap() -> None:
    files = patched_platform()
    del files["clusters/prod/settings.yaml"]
    files.update(repo({"clusters/staging/settings.yaml": SETTINGS}, cluster="staging"))
    model = build(files)
    web = flux_ks(model, "web")
    deploy = obj(model, "web", "Deployment", "web")
    # The ConfigMap may exist on the prod cluster: the value is not known, not guessed.
    assert value(deploy, "spec", "replicas") == "${N}"
    assert ("web/deployment.yaml", 8, "${N}") in web.opaque
    assert not web.undefined


def test_a_fluxinstance_is_an_entry_point() -> None:
    files = {
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
            """
        ),
        "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
        "apps/web.yaml": deployment("web"),
        "old/web.yaml": deployment("old"),
    }
    model = build(files)
    [cluster] = model.clusters
    assert (cluster.name, cluster.entry.kind) == ("clusters/prod", "FluxInstance")
    assert (cluster.entry.path, cluster.entry.line) == ("clusters/prod/flux-instance.yaml", 14)
    assert ids(model, "apps") == {"Deployment web"}
    assert model.applied("clusters/prod/flux-instance.yaml")
    assert not model.applied("old/web.yaml")


def flux_instance_platform(oci_name: str) -> dict[str, str | bytes]:
    return {
        "kubernetes/flux/instance.yaml": helm_release(
            "flux-instance",
            chart_ref=("OCIRepository", "flux-instance"),
            values="""
            instance:
              distribution:
                version: 2.x
              sync:
                kind: GitRepository
                url: https://github.com/example/home-ops
                ref: refs/heads/main
                path: kubernetes/flux/cluster
            """,
        ),
        "kubernetes/flux/cluster/apps.yaml": flux_kustomization("apps", "./kubernetes/apps"),
        "kubernetes/apps/podinfo/oci.yaml": oci_repository(
            oci_name, "oci://ghcr.io/stefanprodan/charts/podinfo", tag="6.7.0"
        ),
        "kubernetes/apps/podinfo/release.yaml": helm_release(
            "podinfo", chart_ref=("OCIRepository", "podinfo")
        ),
    }


def test_the_flux_instance_chart_names_a_cluster_by_its_sync_path() -> None:
    files = flux_instance_platform("podinfo")
    model = build(files)
    [cluster] = model.clusters
    assert (cluster.name, cluster.entry.kind) == (
        "kubernetes/flux/cluster",
        "flux-instance HelmRelease",
    )
    applied = {str(o.id) for o in cluster.objects()}
    assert {"HelmRelease flux-system/podinfo", "OCIRepository flux-system/podinfo"} <= applied
    assert not [f for f in run(files) if f.rule == "dangling-reference"]


def test_the_flux_instance_chart_cluster_misses_a_renamed_oci_repository() -> None:
    [dangling] = [
        f for f in run(flux_instance_platform("podinfo-chart")) if f.rule == "dangling-reference"
    ]
    assert dangling.path == "kubernetes/apps/podinfo/release.yaml"
    assert dangling.severity is Severity.ERROR


ARTIFACT_GENERATOR = dedent(
    """
    apiVersion: source.extensions.fluxcd.io/v1beta1
    kind: ArtifactGenerator
    metadata:
      name: podinfo
      namespace: flux-system
    spec:
      sources:
        - alias: repo
          kind: GitRepository
          name: flux-system
      artifacts:
        - name: podinfo-manifests
          copy:
            - from: "@repo/deploy/podinfo/**"
              to: "@artifact/"
            - from: "@repo/deploy/common/settings.yaml"
              to: "@artifact/extra/"
    """
)


def test_an_external_artifact_maps_back_to_the_repository() -> None:
    files = repo(
        {
            "clusters/prod/generator.yaml": ARTIFACT_GENERATOR,
            "clusters/prod/podinfo.yaml": flux_kustomization(
                "podinfo", "./", source_kind="ExternalArtifact", source="podinfo-manifests"
            ),
            "deploy/podinfo/deployment.yaml": deployment("podinfo"),
            "deploy/podinfo/sub/service.yaml": service("podinfo"),
            "deploy/common/settings.yaml": configmap("settings"),
            "deploy/common/other.yaml": configmap("other"),
        }
    )
    model = build(files)
    podinfo = flux_ks(model, "podinfo")
    assert podinfo.known
    by_id = {str(o.id): o.path for o in podinfo.objects}
    assert by_id == {
        "Deployment podinfo": "deploy/podinfo/deployment.yaml",
        "Service podinfo": "deploy/podinfo/sub/service.yaml",
        "ConfigMap settings": "deploy/common/settings.yaml",
    }
    assert [k.label for k in model.appliers("deploy/common/settings.yaml")] == [
        "Flux Kustomization flux-system/podinfo"
    ]
    assert not model.applied("deploy/common/other.yaml")


RESOURCE_SET = dedent(
    """
    apiVersion: fluxcd.controlplane.io/v1
    kind: ResourceSet
    metadata:
      name: tenants
      namespace: flux-system
    spec:
      inputs:
        - tenant: team1
          replicas: 2
        - tenant: team2
          replicas: 3
      resources:
        - apiVersion: v1
          kind: Namespace
          metadata:
            name: << inputs.tenant >>
        - apiVersion: kustomize.toolkit.fluxcd.io/v1
          kind: Kustomization
          metadata:
            name: << inputs.tenant >>
            namespace: flux-system
          spec:
            interval: 10m
            path: ./tenants/<< inputs.tenant >>
            prune: true
            sourceRef:
              kind: GitRepository
              name: flux-system
            postBuild:
              substitute:
                TENANT: << inputs.tenant >>
                REPLICAS: << inputs.replicas | quote >>
    """
)
TENANT_APP = deployment("app").replace("replicas: 2", "replicas: ${REPLICAS}")
TENANT_FILES = {
    "clusters/prod/tenants.yaml": RESOURCE_SET,
    "tenants/team1/settings.yaml": configmap("${TENANT}-settings"),
    "tenants/team2/settings.yaml": configmap("${TENANT}-settings"),
    "tenants/team3/settings.yaml": configmap("${TENANT}-settings"),
}


def test_a_resourceset_expands_its_inline_inputs() -> None:
    model = build(repo(TENANT_FILES))
    [rset] = [k for k in model.kustomizations if k.kind == "ResourceSet"]
    assert {str(o.id) for o in rset.objects} == {
        "Namespace team1",
        "Namespace team2",
        "Kustomization flux-system/team1",
        "Kustomization flux-system/team2",
    }
    team2 = next(o for o in rset.objects if str(o.id) == "Kustomization flux-system/team2")
    assert value(team2, "spec", "path") == "./tenants/team2"
    assert origin(team2, "spec", "path")[:2] == (
        "clusters/prod/tenants.yaml",
        line_of(RESOURCE_SET, "path: ./tenants"),
    )
    # each Kustomization it creates is followed with its own inputs
    assert ids(model, "team1") == {"ConfigMap team1-settings"}
    assert ids(model, "team2") == {"ConfigMap team2-settings"}
    assert not model.applied("tenants/team3/settings.yaml")


def test_a_quoted_resourceset_input_is_a_string() -> None:
    files = repo({**TENANT_FILES, "tenants/team2/deployment.yaml": TENANT_APP})
    model = build(files)
    [rset] = [k for k in model.kustomizations if k.kind == "ResourceSet"]
    team2 = next(o for o in rset.objects if str(o.id) == "Kustomization flux-system/team2")
    assert value(team2, "spec", "postBuild", "substitute", "REPLICAS") == "3"
    assert value(obj(model, "team2", "Deployment", "app"), "spec", "replicas") == 3


def test_a_sources_ignore_hides_a_file_from_every_build_below_it() -> None:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/web.yaml": deployment("web"),
            "apps/dev.local.yaml": configmap("dev"),
            "apps/more.yaml": flux_kustomization("more", "./more"),
            "more/cm.yaml": configmap("more"),
            "more/debug.local.yaml": configmap("debug"),
            "listed/kustomization.yaml": kustomization(["a.local.yaml"]),
            "listed/a.local.yaml": configmap("a"),
            "clusters/prod/listed.yaml": flux_kustomization("listed", "./listed"),
        }
    )
    sync = str(files["clusters/prod/flux-system/gotk-sync.yaml"])
    files["clusters/prod/flux-system/gotk-sync.yaml"] = sync.replace(
        "  url: ssh", "  ignore: |\n    *.local.yaml\n  url: ssh"
    )
    model = build(files)
    assert ids(model, "apps") == {"Deployment web", "Kustomization flux-system/more"}
    assert ids(model, "more") == {"ConfigMap more"}
    assert not model.applied("apps/dev.local.yaml")
    assert not model.applied("more/debug.local.yaml")
    # a kustomization that lists an ignored file: the build does not find it
    listed = flux_ks(model, "listed")
    assert listed.built is not None
    assert [str(u) for u in listed.built.unknown] == [
        "`a.local.yaml` in listed/kustomization.yaml does not exist"
    ]
    [missing] = [f for f in run(files) if f.rule == "kustomize-missing-resource"]
    assert (missing.path, missing.severity) == ("listed/kustomization.yaml", Severity.ERROR)


def test_a_rolebinding_subject_follows_its_service_account() -> None:
    files = repo(
        {
            "clusters/prod/team.yaml": flux_kustomization("team", "./team"),
            "team/kustomization.yaml": kustomization(
                ["rbac.yaml"], extra="namespace: team\nnamePrefix: t-\n"
            ),
            "team/rbac.yaml": dedent(
                """
                apiVersion: v1
                kind: ServiceAccount
                metadata:
                  name: web
                ---
                apiVersion: rbac.authorization.k8s.io/v1
                kind: RoleBinding
                metadata:
                  name: web
                roleRef:
                  apiGroup: rbac.authorization.k8s.io
                  kind: ClusterRole
                  name: view
                subjects:
                  - kind: ServiceAccount
                    name: web
                    namespace: default
                  - kind: ServiceAccount
                    name: web
                    namespace: elsewhere
                """
            ),
        }
    )
    binding = obj(build(files), "team", "RoleBinding", "t-web")
    # The account written without a namespace is in "default" until kustomize moves it.
    assert value(binding, "subjects") == [
        {"kind": "ServiceAccount", "name": "t-web", "namespace": "team"},
        {"kind": "ServiceAccount", "name": "web", "namespace": "elsewhere"},
    ]


def test_a_json_patch_in_yaml_types_its_values_as_kustomize_does() -> None:
    files = repo(
        {
            "clusters/prod/app.yaml": flux_kustomization("app", "./app"),
            "app/kustomization.yaml": kustomization(
                ["cm.yaml"],
                extra="""
                patches:
                  - target:
                      kind: ConfigMap
                    patch: |
                      - op: add
                        path: /data/flags
                        value: [yes, "yes", on, 1_000, 0x1F, 1:30, 2024-01-01]
                """,
            ),
            "app/cm.yaml": configmap("settings", "plain: yes"),
        }
    )
    cm = obj(build(files), "app", "ConfigMap", "settings")
    # go-yaml v2 (YAML 1.1) reads the patch; go-yaml v3 the object it patches
    assert value(cm, "data") == {
        "plain": "yes",
        "flags": [True, "yes", True, 1000, 31, "1:30", "2024-01-01"],
    }


CONFIG_CLUSTERS = """\
clusters:
  - clusters/lab
  - name: edge
    paths: [clusters/edge, infrastructure/edge]
    substitute: {REPLICAS: 3, ZONE: eu-1}
"""


def test_the_configs_clusters_are_entry_points_with_their_substitutions() -> None:
    files = {
        "clusters/lab/web.yaml": deployment("lab-web", namespace="lab"),
        "clusters/edge/web.yaml": dedent(
            """
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: edge-web
              namespace: ${ZONE}
            spec:
              replicas: ${REPLICAS}
            """
        ),
        "infrastructure/edge/cm.yaml": configmap("infra"),
        "infrastructure/other/cm.yaml": configmap("other"),
    }
    model = build(files, CONFIG_CLUSTERS)
    assert sorted((c.name, c.entry.kind) for c in model.clusters) == [
        ("clusters/lab", "config"),
        ("edge", "config"),
    ]
    [edge] = [c for c in model.clusters if c.name == "edge"]
    web = next(o for o in edge.objects() if o.id.kind == "Deployment")
    # the bootstrap's variables, as Flux substitutes them: a number where YAML reads one
    assert (web.id.namespace, value(web, "spec", "replicas")) == ("eu-1", 3)
    assert origin(web, "spec", "replicas") == (
        "clusters/edge/web.yaml",
        7,
        "substituted by cluster edge's entry `clusters/edge` (flux-review config) "
        "from its postBuild.substitute (.github/flux-review.yml:3)",
    )
    assert model.applied("infrastructure/edge/cm.yaml")
    assert not model.applied("infrastructure/other/cm.yaml")
    assert model.clusters_of("clusters/lab/web.yaml")[0].name == "clusters/lab"


def test_a_configs_cluster_directory_that_is_missing_is_a_notice() -> None:
    files = {"clusters/lab/web.yaml": deployment("lab-web", namespace="lab")}
    findings = run(files, config="clusters: [clusters/lab, clusters/gone]\n")
    [notice] = [f for f in findings if f.path == ".github/flux-review.yml"]
    assert (notice.rule, notice.severity, notice.line) == (
        "kustomize-missing-resource",
        Severity.NOTICE,
        1,
    )
    assert "clusters/gone" in notice.message


def test_a_patch_targets_pattern_is_matched_in_linear_time() -> None:
    # `(a*)*b` against forty `a`s backtracks for hours in a backtracking engine; Go's
    # regexp (and RE2) answer at once: no match, so the patch changes nothing.
    name = "a" * 40
    text = dedent(
        """
        resources: [deployment.yaml]
        patches:
          - target: {kind: Deployment, name: "(a*)*b"}
            patch: |
              - {op: replace, path: /spec/replicas, value: 9}
        """
    )
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/kustomization.yaml": text,
            "apps/deployment.yaml": deployment(name),
        }
    )
    model = build(files)
    assert value(obj(model, "apps", "Deployment", name), "spec", "replicas") == 2


def test_a_root_whose_own_source_pins_a_tag_builds_nothing_here() -> None:
    # A tenant's sync.yaml of a release, applied by hand: what it syncs is that tag, not
    # the revision under review, and every YAML file at the top of this one was reported
    # as an object Flux cannot decode.
    files = {
        "tenants/dev-team/sync.yaml": tenant_sync("tag: v1.2.0"),
        "apps/web.yaml": deployment("web"),
        "ci/settings.yaml": "lint: strict\n",
    }
    model = build(files)
    assert flux_ks(model, "dev-team").unfollowed == (
        "its source GitRepository apps/dev-team follows another revision of "
        "https://github.com/example/fleet"
    )
    assert not model.applied("apps/web.yaml")
    assert [f for f in run(files) if f.severity is Severity.ERROR] == []
    assert flux_ks(
        build({**files, "tenants/dev-team/sync.yaml": tenant_sync("commit: abc")}), "dev-team"
    ).unfollowed
    # A branch, whichever, may be the one under review (a repository whose default
    # branch is not main, or one renamed since): the root stays this repository's.
    for ref in ("branch: main", "branch: develop"):
        same = {**files, "tenants/dev-team/sync.yaml": tenant_sync(ref)}
        assert flux_ks(build(same), "dev-team").followed and build(same).applied("apps/web.yaml")
        assert ("yaml-syntax-error", "ci/settings.yaml") in {(f.rule, f.path) for f in run(same)}


def test_a_root_on_another_branch_than_the_one_reviewed_builds_nothing_here() -> None:
    files = {
        "tenants/dev-team/sync.yaml": tenant_sync("branch: dev-team"),
        "apps/web.yaml": deployment("web"),
    }
    into_main = Snapshot(tree(files), Config(branch="main")).build
    assert flux_ks(into_main, "dev-team").unfollowed == (
        "its source GitRepository apps/dev-team follows branch dev-team of "
        "https://github.com/example/fleet, not main, which the change goes to"
    )
    assert not into_main.applied("apps/web.yaml")
    into_dev_team = Snapshot(tree(files), Config(branch="dev-team")).build
    assert flux_ks(into_dev_team, "dev-team").followed and into_dev_team.applied("apps/web.yaml")
