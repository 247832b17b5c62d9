"""kustomize-missing-resource: kustomization entries and Flux spec.path pointing at nothing."""

from __future__ import annotations

import pytest

from bot.analysis import analyze
from tests.analysis_helpers import (
    deployment,
    flux_kustomization,
    git_repository,
    gotk_sync,
    kustomization,
    line_of,
    repo,
    run,
    service,
    tree,
)

RULE = "kustomize-missing-resource"
KFILE = "apps/prod/kustomization.yaml"


def overlay(kfile: str, **files: str) -> dict[str, str | bytes]:
    return repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps/prod"),
            KFILE: kfile,
            **files,
        }
    )


def test_missing_file_is_reported_on_its_entry() -> None:
    text = kustomization(["deployment.yaml", "ingress.yaml"])
    [finding] = run(overlay(text, **{"apps/prod/deployment.yaml": deployment("podinfo")}))
    assert (finding.rule, finding.path, finding.severity) == (RULE, KFILE, "error")
    assert finding.line == line_of(text, "- ingress.yaml")
    assert "`ingress.yaml` in `resources` does not exist" in finding.message


def test_present_entries_are_silent() -> None:
    text = kustomization(["deployment.yaml", "../base/podinfo"])
    files = overlay(
        text,
        **{
            "apps/prod/deployment.yaml": deployment("api"),
            "apps/base/podinfo/kustomization.yaml": kustomization(["service.yaml"]),
            "apps/base/podinfo/service.yaml": service("podinfo"),
        },
    )
    assert run(files) == []


def test_directory_without_kustomization_file() -> None:
    text = kustomization(["../base/podinfo"])
    files = overlay(text, **{"apps/base/podinfo/deployment.yaml": deployment("podinfo")})
    [finding] = run(files)
    assert (finding.rule, finding.line) == (RULE, line_of(text, "../base/podinfo"))
    assert "directory without a kustomization file" in finding.message


def test_patch_pointing_at_a_directory() -> None:
    text = kustomization(extra="patches:\n  - path: ../base\n")
    files = overlay(text, **{"apps/base/kustomization.yaml": kustomization()})
    [finding] = run(files)
    assert "is a directory, but kustomize expects a file" in finding.message


@pytest.mark.parametrize("entry", ["../../../../shared/podinfo", "/home/ci/manifests/podinfo.yaml"])
def test_entries_outside_the_repository(entry: str) -> None:
    text = kustomization([entry])
    [finding] = run(overlay(text))
    assert (finding.rule, finding.line) == (RULE, line_of(text, entry))
    assert "points outside the repository" in finding.message


@pytest.mark.parametrize(
    "entry",
    [
        "https://github.com/fluxcd/flux2/releases/download/v2.3.0/install.yaml",
        "github.com/kubernetes-sigs/external-dns//kustomize?ref=v0.14.0",
        "git@github.com:example/shared.git//podinfo?ref=main",
        "ssh://git@gitlab.example.com/platform/base.git",
    ],
)
def test_remote_entries_are_silent(entry: str) -> None:
    assert run(overlay(kustomization([entry]))) == []


def test_missing_patch_and_generator_inputs() -> None:
    text = kustomization(
        extra="""
        patches:
          - path: replicas.yaml
            target:
              kind: Deployment
        configMapGenerator:
          - name: podinfo
            files:
              - settings=podinfo.properties
        """
    )
    files = overlay(text, **{"apps/prod/other.properties": "a=b\n"})
    findings = run(files)
    assert [(f.rule, f.line) for f in findings] == [
        (RULE, line_of(text, "path: replicas.yaml")),
        (RULE, line_of(text, "settings=podinfo.properties")),
    ]
    assert "`podinfo.properties` in `configMapGenerator.files`" in findings[1].message


def test_inline_patches_have_no_path_to_check() -> None:
    text = kustomization(
        ["deployment.yaml"],
        extra="""
        patches:
          - patch: |-
              - op: replace
                path: /spec/replicas
                value: 3
            target:
              kind: Deployment
        """,
    )
    assert run(overlay(text, **{"apps/prod/deployment.yaml": deployment("api")})) == []


def test_entry_excluded_by_sourceignore() -> None:
    text = kustomization(["deployment.yaml"])
    files = overlay(
        text,
        **{
            "apps/prod/deployment.yaml": deployment("api"),
            ".sourceignore": "apps/prod/deployment.yaml\n",
        },
    )
    [finding] = run(files)
    assert (finding.rule, finding.path) == (RULE, KFILE)
    assert finding.line == line_of(text, "deployment.yaml")
    assert "left out of the Flux source artifact" in finding.message
    assert "ignore rules exclude it" in finding.detail


def test_directory_entry_excluded_by_sourceignore() -> None:
    text = kustomization(["../base"])
    files = overlay(
        text,
        **{
            "apps/base/kustomization.yaml": kustomization(["service.yaml"]),
            "apps/base/service.yaml": service("api"),
            ".sourceignore": "apps/base/\n",
        },
    )
    [finding] = run(files)
    assert (finding.rule, finding.path) == (RULE, KFILE)
    assert finding.line == line_of(text, "../base")
    assert "left out of the Flux source artifact" in finding.message
    assert "ignore rules exclude it" in finding.detail


def test_flux_spec_path_that_does_not_exist() -> None:
    text = flux_kustomization("apps", "./apps/production")
    files = repo({"clusters/prod/apps.yaml": text, "apps/prod/a.yaml": deployment("a")})
    [finding] = run(files)
    assert (finding.rule, finding.path) == (RULE, "clusters/prod/apps.yaml")
    assert finding.line == line_of(text, "path: ./apps/production")
    assert "kustomization path not found" in finding.message


def test_flux_spec_path_of_another_source_is_not_checked() -> None:
    files = repo(
        {
            "clusters/prod/podinfo-source.yaml": git_repository(
                "podinfo", "https://github.com/stefanprodan/podinfo"
            ),
            "clusters/prod/podinfo.yaml": flux_kustomization(
                "podinfo", "./kustomize", source="podinfo"
            ),
        }
    )
    assert run(files) == []


def test_flux_spec_path_with_substitution_variable_is_not_guessed() -> None:
    # A parent Kustomization's postBuild may fill ${cluster_name} in.
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps/${cluster_name}"),
            "apps/prod/a.yaml": deployment("a"),
        }
    )
    assert run(files) == []


def test_kustomization_with_yaml_error_is_left_to_yaml_syntax_error() -> None:
    text = "apiVersion: kustomize.config.k8s.io/v1beta1\nresources:\n  - a.yaml\n - b.yaml\n"
    findings = run(overlay(text))
    assert [f.rule for f in findings] == ["yaml-syntax-error"]


def test_flux_spec_path_left_out_by_the_git_repository_ignore() -> None:
    # The pattern Flux's docs suggest: ship only some top-level directories.
    sync = gotk_sync().replace(
        "  url: ssh://git@github.com/example/platform-gitops\n",
        "  url: ssh://git@github.com/example/platform-gitops\n"
        "  ignore: |\n"
        "    /*\n"
        "    !/clusters/\n"
        "    !/apps/\n",
    )
    text = flux_kustomization("platform", "./charts/platform/templates")
    files = repo(
        {
            "clusters/prod/flux-system/gotk-sync.yaml": sync,
            "clusters/prod/platform.yaml": text,
            "charts/platform/Chart.yaml": "apiVersion: v2\nname: platform\nversion: 1.0.0\n",
            "charts/platform/templates/api.yaml": deployment("api"),
        }
    )
    [finding] = run(files)
    assert (finding.rule, finding.path) == (RULE, "clusters/prod/platform.yaml")
    assert finding.line == line_of(text, "path: ./charts/platform/templates")
    assert "left out of the Flux source artifact" in finding.message
    assert "ignore rules exclude it" in finding.detail
    # Under an included directory the same layout is fine.
    files["clusters/prod/flux-system/gotk-sync.yaml"] = sync.replace("!/apps/", "!/charts/")
    assert run(files) == []


# --- git submodules ----------------------------------------------------------------------

GITMODULES = '[submodule "vendor/addons"]\n\tpath = vendor/addons\n\turl = https://github.com/example/addons\n'


def with_submodule(recurse: bool, known_source: bool = True) -> dict[str, str | bytes]:
    """An overlay that lists files of a git submodule (its files are not in this tree)."""
    text = kustomization(["../../vendor/addons/base", "../../vendor/addons/extra.yaml"])
    files = overlay(text)
    files[".gitmodules"] = GITMODULES
    if not known_source:
        files = {k: v for k, v in files.items() if "/flux-system/" not in k}
    elif recurse:
        sync = str(files["clusters/prod/flux-system/gotk-sync.yaml"])
        files["clusters/prod/flux-system/gotk-sync.yaml"] = sync.replace(
            "  interval: 1m0s\n", "  interval: 1m0s\n  recurseSubmodules: true\n", 1
        )
    return files


def test_entries_into_a_submodule_that_flux_does_not_fetch() -> None:
    findings = run(with_submodule(recurse=False))
    assert [(f.rule, f.path, f.line) for f in findings] == [(RULE, KFILE, 4), (RULE, KFILE, 5)]
    assert "git submodule `vendor/addons`" in findings[0].message
    assert "spec.recurseSubmodules: true" in findings[0].detail


def test_entries_into_a_submodule_that_flux_fetches_are_silent() -> None:
    assert run(with_submodule(recurse=True)) == []


def test_entries_into_a_submodule_with_no_known_source_are_silent() -> None:
    # Which GitRepository builds this repository is not known: neither is what it fetches.
    assert run(with_submodule(recurse=False, known_source=False)) == []


def test_flux_spec_path_into_a_submodule() -> None:
    files = with_submodule(recurse=False)
    files["clusters/prod/addons.yaml"] = flux_kustomization("addons", "./vendor/addons/base")
    findings = [f for f in run(files) if f.path == "clusters/prod/addons.yaml"]
    assert [f.line for f in findings] == [
        line_of(str(files["clusters/prod/addons.yaml"]), "path: ./vendor/addons/base")
    ]
    assert "submodule" in findings[0].message
    files = with_submodule(recurse=True)
    files["clusters/prod/addons.yaml"] = flux_kustomization("addons", "./vendor/addons/base")
    assert run(files) == []


@pytest.mark.parametrize(
    "gitmodules",
    [
        '[submodule "addons"]\n\tpath = vendor/addons # pinned by platform team\n',
        '[submodule "addons"]\n\tPath=vendor/addons ; comment\n',
        '[submodule "addons"]\n  path = "vendor/addons"\n',
        "[submodule.addons]\npath = vendor/addons\n",
    ],
)
def test_gitmodules_read_as_git_config(gitmodules: str) -> None:
    files = with_submodule(recurse=True)
    files[".gitmodules"] = gitmodules
    assert run(files) == []


def test_only_submodule_sections_declare_submodules() -> None:
    files = with_submodule(recurse=True)
    files[".gitmodules"] = "[lfs]\n\tpath = vendor/addons\n"
    assert len(run(files)) == 2  # not a submodule: the entries point at nothing


def test_a_directory_of_submodules_is_not_missing() -> None:
    files = with_submodule(recurse=False)
    files["clusters/prod/vendor.yaml"] = flux_kustomization("vendor", "./vendor")
    assert [f.path for f in run(files)] == [KFILE, KFILE]


def test_a_narrowed_source_of_the_same_repository_leaves_flux_systems_path_alone() -> None:
    # flux-system ignores nothing; `apps-src`, the same repository narrowed to
    # kubernetes/, is the source of one Kustomization only.
    url = "ssh://git@github.com/example/platform-gitops"
    narrowed = git_repository("apps-src", url).replace(
        "spec:\n", "spec:\n  ignore: |\n    /*\n    !/kubernetes\n", 1
    )
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization(
                "apps", "./kubernetes/apps", source="apps-src"
            )
            + "---\n"
            + narrowed,
            "kubernetes/apps/kustomization.yaml": kustomization(["web.yaml"]),
            "kubernetes/apps/web.yaml": deployment("web"),
        }
    )
    result = analyze(tree(files), None, report_all=True, self_urls=[url])
    assert [f for f in result.findings if f.rule == RULE] == []
