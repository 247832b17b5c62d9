"""The consumer graph: for every file, which controller reads it and how."""

from __future__ import annotations

from tests.analysis_helpers import (
    chart_yaml,
    consumer_kinds,
    consumers_of,
    dedent,
    deployment,
    flux_kustomization,
    git_repository,
    gotk_sync,
    kustomization,
    line_of,
    of_rule,
    repo,
    run,
    service,
)

APPS = "Flux Kustomization flux-system/apps (clusters/prod/apps.yaml)"
SELF = "Flux Kustomization flux-system/flux-system (clusters/prod/flux-system/gotk-sync.yaml)"


def apps_repo(**files: str) -> dict[str, str | bytes]:
    """A cluster whose `apps` Flux Kustomization applies ./apps."""
    return repo({"clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"), **files})


# --- Flux Kustomization spec.path without a kustomization file ----------------------------


def test_bootstrap_layout_is_read_by_flux_system() -> None:
    files = apps_repo(**{"apps/podinfo.yaml": deployment("podinfo")})
    assert consumers_of(files, "clusters/prod/apps.yaml") == [SELF]
    # flux-system/ has its own kustomization.yaml: taken as a whole, not walked into.
    assert consumers_of(files, "clusters/prod/flux-system/kustomization.yaml") == [SELF]
    assert consumers_of(files, "clusters/prod/flux-system/gotk-sync.yaml") == [
        "kustomize via clusters/prod/flux-system/kustomization.yaml"
    ]


def test_walk_takes_yaml_and_yml_recursively() -> None:
    files = apps_repo(
        **{
            "apps/a.yaml": deployment("a"),
            "apps/b.yml": deployment("b"),
            "apps/team/c.yaml": deployment("c"),
            "apps/team/deep/d.yaml": deployment("d"),
        }
    )
    for path in ("apps/a.yaml", "apps/b.yml", "apps/team/c.yaml", "apps/team/deep/d.yaml"):
        assert consumers_of(files, path) == [APPS], path
        assert consumer_kinds(files, path) == ["raw"]


def test_walk_skips_upper_case_extension_json_and_other_files() -> None:
    files = apps_repo(
        **{
            "apps/a.yaml": deployment("a"),
            "apps/legacy.YAML": deployment("legacy"),
            "apps/dashboard.json": '{"title": "x"}',
            "apps/README.md": "# apps\n",
        }
    )
    assert consumers_of(files, "apps/legacy.YAML") == []
    assert consumers_of(files, "apps/dashboard.json") == []
    assert consumers_of(files, "apps/README.md") == []
    # So a broken .YAML file is no one's problem: Flux never reads it.
    files["apps/legacy.YAML"] = "kind: [\n"
    assert run(files) == []


def test_walk_stops_at_subdirectory_with_its_own_kustomization() -> None:
    files = apps_repo(
        **{
            "apps/a.yaml": deployment("a"),
            "apps/podinfo/kustomization.yaml": kustomization(["deployment.yaml"]),
            "apps/podinfo/deployment.yaml": deployment("podinfo"),
            "apps/podinfo/nested/extra.yaml": deployment("extra"),
        }
    )
    assert consumers_of(files, "apps/podinfo/kustomization.yaml") == [APPS]
    # Reached only through the kustomization file, never walked into by Flux.
    assert consumers_of(files, "apps/podinfo/deployment.yaml") == [
        "kustomize via apps/podinfo/kustomization.yaml"
    ]
    assert consumers_of(files, "apps/podinfo/nested/extra.yaml") == []


def test_kustomization_yml_and_bare_kustomization_names_also_stop_the_walk() -> None:
    files = apps_repo(
        **{
            "apps/one/kustomization.yml": kustomization(["a.yaml"]),
            "apps/one/a.yaml": deployment("a"),
            "apps/one/b.yaml": deployment("b"),
            "apps/two/Kustomization": kustomization(["c.yaml"]),
            "apps/two/c.yaml": deployment("c"),
            "apps/two/d.yaml": deployment("d"),
        }
    )
    assert consumers_of(files, "apps/one/kustomization.yml") == [APPS]
    assert consumers_of(files, "apps/two/Kustomization") == [APPS]
    assert consumers_of(files, "apps/one/b.yaml") == []
    assert consumers_of(files, "apps/two/d.yaml") == []


def test_spec_path_with_kustomization_file_reads_only_that_file() -> None:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps/prod"),
            "apps/prod/kustomization.yaml": kustomization(["podinfo.yaml"]),
            "apps/prod/podinfo.yaml": deployment("podinfo"),
            "apps/prod/scratch.yaml": deployment("scratch"),
        }
    )
    prod_apps = "Flux Kustomization flux-system/apps (clusters/prod/apps.yaml)"
    assert consumers_of(files, "apps/prod/kustomization.yaml") == [prod_apps]
    assert consumers_of(files, "apps/prod/podinfo.yaml") == [
        "kustomize via apps/prod/kustomization.yaml"
    ]
    assert consumers_of(files, "apps/prod/scratch.yaml") == []


def test_spec_path_is_resolved_like_securejoin() -> None:
    # `..` cannot climb above the artifact root: ../../apps is ./apps.
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "../../apps"),
            "apps/a.yaml": deployment("a"),
        }
    )
    assert consumers_of(files, "apps/a.yaml") == [APPS]


def test_sourceignore_and_default_ignores_hide_files_from_flux() -> None:
    files = apps_repo(
        **{
            "apps/a.yaml": deployment("a"),
            "apps/.sops.yaml": "creation_rules:\n  - age: age1xyz\n",
            "apps/cloudbuild.yaml": "steps:\n  - name: gcr.io/cloud-builders/docker\n",
        }
    )
    # fluxcd/pkg's default exclusions apply when there is no .sourceignore.
    assert consumers_of(files, "apps/.sops.yaml") == []
    assert consumers_of(files, "apps/cloudbuild.yaml") == []
    assert consumers_of(files, "apps/a.yaml") == [APPS]


def test_sourceignore_patterns_scoped_to_their_directory() -> None:
    files = apps_repo(
        **{
            ".sourceignore": "apps/drafts/\n*.example.yaml\n",
            "apps/a.yaml": deployment("a"),
            "apps/drafts/wip.yaml": deployment("wip"),
            "apps/b.example.yaml": deployment("b"),
            "apps/team/.sourceignore": "local.yaml\n",
            "apps/team/local.yaml": deployment("local"),
            "apps/team/c.yaml": deployment("c"),
            "apps/local.yaml": deployment("root-local"),
        }
    )
    assert consumers_of(files, "apps/drafts/wip.yaml") == []
    assert consumers_of(files, "apps/b.example.yaml") == []
    assert consumers_of(files, "apps/team/local.yaml") == []
    assert consumers_of(files, "apps/team/c.yaml") == [APPS]
    # The nested .sourceignore only applies below its own directory.
    assert consumers_of(files, "apps/local.yaml") == [APPS]


def test_sourceignored_broken_file_is_not_reported() -> None:
    files = apps_repo(
        **{
            ".sourceignore": "apps/drafts/\n",
            "apps/a.yaml": deployment("a"),
            "apps/drafts/wip.yaml": "apiVersion: v1\nkind: [\n",
        }
    )
    assert run(files) == []


# --- kustomization.yaml entries ------------------------------------------------------------


def overlay_repo() -> dict[str, str | bytes]:
    return repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps/prod"),
            "apps/prod/kustomization.yaml": kustomization(
                ["../base/podinfo"],
                extra="""
                components:
                  - ../components/monitoring
                patches:
                  - path: replicas-patch.yaml
                    target:
                      kind: Deployment
                patchesStrategicMerge:
                  - resources-patch.yaml
                configMapGenerator:
                  - name: podinfo-config
                    files:
                      - config.yaml
                      - app.properties=settings/app.yaml
                    envs:
                      - podinfo.env
                """,
            ),
            "apps/prod/replicas-patch.yaml": dedent(
                """
                apiVersion: apps/v1
                kind: Deployment
                metadata:
                  name: podinfo
                spec:
                  replicas: 3
                """
            ),
            "apps/prod/resources-patch.yaml": "apiVersion: apps/v1\nkind: Deployment\n"
            "metadata:\n  name: podinfo\n",
            "apps/prod/config.yaml": "logLevel: debug\n",
            "apps/prod/settings/app.yaml": "featureFlags: {}\n",
            "apps/prod/podinfo.env": "PODINFO_UI_COLOR=#34577c\n",
            "apps/base/podinfo/kustomization.yaml": kustomization(
                ["deployment.yaml", "service.yaml"]
            ),
            "apps/base/podinfo/deployment.yaml": deployment("podinfo"),
            "apps/base/podinfo/service.yaml": service("podinfo"),
            "apps/components/monitoring/kustomization.yaml": dedent(
                """
                apiVersion: kustomize.config.k8s.io/v1alpha1
                kind: Component
                resources:
                  - servicemonitor.yaml
                """
            ),
            "apps/components/monitoring/servicemonitor.yaml": dedent(
                """
                apiVersion: monitoring.coreos.com/v1
                kind: ServiceMonitor
                metadata:
                  name: podinfo
                spec:
                  endpoints:
                    - port: http
                """
            ),
        }
    )


def test_resources_components_and_patches_are_read_raw() -> None:
    files = overlay_repo()
    via_prod = "kustomize via apps/prod/kustomization.yaml"
    for path in (
        "apps/base/podinfo/kustomization.yaml",
        "apps/components/monitoring/kustomization.yaml",
        "apps/prod/replicas-patch.yaml",
        "apps/prod/resources-patch.yaml",
    ):
        assert consumers_of(files, path) == [via_prod], path
        assert consumer_kinds(files, path) == ["raw"], path
    assert consumers_of(files, "apps/base/podinfo/deployment.yaml") == [
        "kustomize via apps/base/podinfo/kustomization.yaml"
    ]
    assert consumers_of(files, "apps/components/monitoring/servicemonitor.yaml") == [
        "kustomize via apps/components/monitoring/kustomization.yaml"
    ]


def test_generator_inputs_are_data_not_manifests() -> None:
    files = overlay_repo()
    for path in ("apps/prod/config.yaml", "apps/prod/settings/app.yaml", "apps/prod/podinfo.env"):
        assert consumer_kinds(files, path) == ["data"], path
    assert run(files) == []
    # A generator input is a payload: Helm-looking text or invalid YAML in it is fine.
    files["apps/prod/config.yaml"] = "template: {{ .Values.x }}\nbroken: [\n"
    assert run(files) == []


def test_consumer_line_points_at_the_entry() -> None:
    from bot.analysis.snapshot import Snapshot
    from tests.analysis_helpers import tree

    files = overlay_repo()
    consumers = Snapshot(tree(files)).consumers["apps/prod/replicas-patch.yaml"]
    text = str(files["apps/prod/kustomization.yaml"])
    assert [(c.source, c.line) for c in consumers] == [
        ("apps/prod/kustomization.yaml", line_of(text, "path: replicas-patch.yaml"))
    ]


def test_remote_resources_add_no_consumers_and_no_findings() -> None:
    files = repo(
        {
            "clusters/prod/infra.yaml": flux_kustomization("infra", "./infrastructure"),
            "infrastructure/kustomization.yaml": kustomization(
                [
                    "https://github.com/cert-manager/cert-manager/releases/download/"
                    "v1.14.4/cert-manager.yaml",
                    "github.com/kubernetes-sigs/external-dns//kustomize?ref=v0.14.0",
                    "namespace.yaml",
                ]
            ),
            "infrastructure/namespace.yaml": "apiVersion: v1\nkind: Namespace\n"
            "metadata:\n  name: cert-manager\n",
        }
    )
    assert run(files) == []


# --- charts --------------------------------------------------------------------------------


def chart_files() -> dict[str, str]:
    return {
        "charts/podinfo/Chart.yaml": chart_yaml("podinfo", "6.5.4"),
        "charts/podinfo/values.yaml": "replicaCount: 1\n",
        "charts/podinfo/.helmignore": "*.md\ntemplates/tests/\n",
        "charts/podinfo/templates/deployment.yaml": deployment(
            "podinfo", '"{{ .Values.image.repository }}:{{ .Values.image.tag }}"'
        ),
        "charts/podinfo/templates/_helpers.tpl": '{{- define "podinfo.name" -}}x{{- end }}\n',
        "charts/podinfo/templates/tests/test-connection.yaml": "apiVersion: v1\nkind: Pod\n",
        "charts/podinfo/templates/NOTES.md": "{{ .Release.Name }}\n",
        "charts/podinfo/crds/podinfos.yaml": dedent(
            """
            apiVersion: apiextensions.k8s.io/v1
            kind: CustomResourceDefinition
            metadata:
              name: podinfos.example.com
            """
        ),
        "charts/podinfo/crds/README.txt": "not a CRD\n",
    }


def test_chart_templates_are_rendered_by_helm() -> None:
    files = chart_files()
    assert consumer_kinds(files, "charts/podinfo/templates/deployment.yaml") == ["template"]
    assert consumers_of(files, "charts/podinfo/templates/deployment.yaml") == [
        "Helm, which renders it as a template of chart podinfo (charts/podinfo)"
    ]
    assert consumer_kinds(files, "charts/podinfo/templates/_helpers.tpl") == ["template"]
    # Chart templates are not YAML until rendered: nothing to report here.
    assert run(files) == []


def test_helmignored_templates_have_no_consumer() -> None:
    files = chart_files()
    assert consumers_of(files, "charts/podinfo/templates/tests/test-connection.yaml") == []
    assert consumers_of(files, "charts/podinfo/templates/NOTES.md") == []


def test_chart_crds_are_read_raw() -> None:
    files = chart_files()
    assert consumer_kinds(files, "charts/podinfo/crds/podinfos.yaml") == ["raw"]
    assert consumers_of(files, "charts/podinfo/crds/podinfos.yaml") == [
        "Helm, which installs it unrendered from the crds/ of chart podinfo (charts/podinfo)"
    ]
    # Helm loads only .yaml, .yml and .json from crds/.
    assert consumers_of(files, "charts/podinfo/crds/README.txt") == []


def test_subchart_files_belong_to_the_subchart() -> None:
    files = {
        "charts/platform/Chart.yaml": chart_yaml("platform", "1.0.0"),
        "charts/platform/charts/redis/Chart.yaml": chart_yaml("redis", "18.0.0"),
        "charts/platform/charts/redis/templates/sts.yaml": "kind: StatefulSet\n",
    }
    assert consumers_of(files, "charts/platform/charts/redis/templates/sts.yaml") == [
        "Helm, which renders it as a template of chart redis (charts/platform/charts/redis)"
    ]


def test_file_in_chart_templates_and_flux_path_has_both_consumers() -> None:
    files = repo(
        {
            "clusters/prod/platform.yaml": flux_kustomization(
                "platform-services", "./charts/platform/templates"
            ),
            "charts/platform/Chart.yaml": chart_yaml("platform", "1.1.12"),
            "charts/platform/templates/api.yaml": deployment("api"),
        }
    )
    assert consumers_of(files, "charts/platform/templates/api.yaml") == [
        "Flux Kustomization flux-system/platform-services (clusters/prod/platform.yaml)",
        "Helm, which renders it as a template of chart platform (charts/platform)",
    ]
    assert consumer_kinds(files, "charts/platform/templates/api.yaml") == ["raw", "template"]


def test_file_listed_by_two_kustomizations_names_both_in_findings() -> None:
    bad = deployment("api", "{{ .Values.registry }}/api:1.0")
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps/prod"),
            "clusters/prod/staging.yaml": flux_kustomization("staging", "./apps/staging"),
            "apps/prod/kustomization.yaml": kustomization(["../shared/api.yaml"]),
            "apps/staging/kustomization.yaml": kustomization(["../shared/api.yaml"]),
            "apps/shared/api.yaml": bad,
        }
    )
    assert consumers_of(files, "apps/shared/api.yaml") == [
        "kustomize via apps/prod/kustomization.yaml",
        "kustomize via apps/staging/kustomization.yaml",
    ]
    [finding] = run(files)
    assert finding.rule == "helm-template-in-raw-manifest"
    assert "apps/prod/kustomization.yaml" in finding.detail
    assert "apps/staging/kustomization.yaml" in finding.detail
    # and the Flux Kustomizations that build them
    assert "applied raw by Flux Kustomizations flux-system/apps and flux-system/staging" in (
        finding.message
    )


# --- raw_paths and foreign sources ------------------------------------------------------


def test_raw_paths_from_config_are_applied_raw() -> None:
    files = {
        "legacy/deploy.yaml": deployment("legacy"),
        "legacy/nested/svc.yaml": service("legacy"),
        "other/deploy.yaml": deployment("other"),
    }
    config = "raw_paths:\n  - ./legacy/\n"
    assert consumers_of(files, "legacy/deploy.yaml", config) == [
        "raw_paths entry legacy of the flux-review config"
    ]
    assert consumers_of(files, "legacy/nested/svc.yaml", config) == [
        "raw_paths entry legacy of the flux-review config"
    ]
    assert consumers_of(files, "other/deploy.yaml", config) == []
    assert consumers_of(files, "legacy/deploy.yaml") == []


def test_raw_paths_makes_templates_there_findings() -> None:
    files = {"legacy/deploy.yaml": deployment("legacy", "{{ .Values.image }}")}
    assert run(files) == []
    [finding] = run(files, config="raw_paths: [legacy]\n")
    assert (finding.rule, finding.path) == ("helm-template-in-raw-manifest", "legacy/deploy.yaml")
    assert "raw_paths entry legacy" in finding.message


def test_kustomization_from_another_source_adds_no_consumers() -> None:
    files = repo(
        {
            "clusters/prod/sources/podinfo.yaml": git_repository(
                "podinfo", "https://github.com/stefanprodan/podinfo"
            ),
            "clusters/prod/podinfo.yaml": flux_kustomization(
                "podinfo", "./kustomize", source="podinfo"
            ),
            # Same path in this repository: not what the Kustomization above reads.
            "kustomize/deployment.yaml": deployment("podinfo", "{{ .Values.image }}"),
        }
    )
    assert consumers_of(files, "kustomize/deployment.yaml") == []
    assert of_rule(run(files), "helm-template-in-raw-manifest") == []


def test_kustomization_from_oci_repository_adds_no_consumers() -> None:
    files = repo(
        {
            "clusters/prod/podinfo.yaml": flux_kustomization(
                "podinfo", "./", source="podinfo", source_kind="OCIRepository"
            ),
            "apps/deployment.yaml": deployment("podinfo"),
        }
    )
    assert consumers_of(files, "apps/deployment.yaml") == []


def test_git_repository_spec_ignore_hides_files_from_flux() -> None:
    sync = gotk_sync().replace(
        "  url: ssh://git@github.com/example/platform-gitops\n",
        "  url: ssh://git@github.com/example/platform-gitops\n"
        "  ignore: |\n"
        "    # ship only the deploy directories\n"
        "    /*\n"
        "    !/clusters/\n"
        "    !/apps/\n"
        "    apps/**/*.draft.yaml\n",
    )
    files = apps_repo(
        **{
            "clusters/prod/flux-system/gotk-sync.yaml": sync,
            "apps/a.yaml": deployment("a"),
            "apps/team/b.draft.yaml": deployment("b"),
        }
    )
    assert consumers_of(files, "apps/a.yaml") == [APPS]
    assert consumers_of(files, "apps/team/b.draft.yaml") == []


def test_git_repository_spec_ignore_re_includes_below_an_ignored_directory() -> None:
    # source-controller walks into an ignored directory and judges each file on its own
    # path with go-git's matcher (the last matching pattern wins), so `!/kubernetes/main`
    # ships that directory although `/*` ignores `kubernetes/`: git's rule that a file
    # below an excluded directory cannot be re-included is not Flux's.
    sync = gotk_sync().replace(
        "  url: ssh://git@github.com/example/platform-gitops\n",
        "  url: ssh://git@github.com/example/platform-gitops\n"
        "  ignore: |\n"
        "    /*\n"
        "    !/clusters/\n"
        "    !/kubernetes/main\n",
    )
    files = repo(
        {
            "clusters/prod/flux-system/gotk-sync.yaml": sync,
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./kubernetes/main/apps"),
            "clusters/prod/storage.yaml": flux_kustomization(
                "storage", "./kubernetes/storage/apps"
            ),
            "kubernetes/main/apps/a.yaml": deployment("a"),
            "kubernetes/storage/apps/b.yaml": deployment("b"),
        }
    )
    assert consumers_of(files, "kubernetes/main/apps/a.yaml") == [APPS]
    assert consumers_of(files, "kubernetes/storage/apps/b.yaml") == []


def test_each_cluster_reads_through_its_own_git_repository_ignore() -> None:
    # Two clusters bootstrapped from their own config directories, each with a
    # GitRepository of the same name that ships only that cluster's directory: each
    # cluster's source is the one beside its root, not the first of that name.
    files: dict[str, str | bytes] = {}
    for cluster in ("main", "storage"):
        source = (
            git_repository("home-kubernetes", "ssh://git@github.com/example/platform-gitops")
            + f"  ignore: |\n    /*\n    !/kubernetes/{cluster}\n"
        )
        root = flux_kustomization(
            "cluster", f"./kubernetes/{cluster}/apps", source="home-kubernetes"
        )
        files[f"kubernetes/{cluster}/config/kustomization.yaml"] = kustomization(["cluster.yaml"])
        files[f"kubernetes/{cluster}/config/cluster.yaml"] = source + "---\n" + root
        files[f"kubernetes/{cluster}/apps/app.yaml"] = deployment(f"app-{cluster}")
    for cluster in ("main", "storage"):
        assert consumers_of(files, f"kubernetes/{cluster}/apps/app.yaml") == [
            f"Flux Kustomization flux-system/cluster (kubernetes/{cluster}/config/cluster.yaml)"
        ]


def test_kustomize_entry_left_out_of_the_artifact_reads_nothing() -> None:
    # The build fails on the missing entry; the chart template is never applied raw.
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            ".sourceignore": "charts/\n",
            "apps/kustomization.yaml": kustomization(["../charts/platform/templates/api.yaml"]),
            "charts/platform/Chart.yaml": chart_yaml("platform", "1.0.0"),
            "charts/platform/templates/api.yaml": deployment("api", "{{ .Values.image }}"),
        }
    )
    assert consumer_kinds(files, "charts/platform/templates/api.yaml") == ["template"]
    assert [f.rule for f in run(files)] == ["kustomize-missing-resource"]
