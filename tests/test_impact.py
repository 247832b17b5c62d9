"""The change summary: per cluster, what a change does to each Flux Kustomization."""

from __future__ import annotations

import json

from bot.analysis import analyze
from bot.report.formats import impact_lines, to_json
from bot.report.markdown import impact_section
from tests.analysis_helpers import (
    bootstrap,
    configmap,
    deployment,
    flux_kustomization,
    kustomization,
    tree,
)


def two_clusters() -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = {}
    for cluster in ("prod", "staging"):
        files.update(bootstrap(cluster))
        files[f"clusters/{cluster}/apps.yaml"] = flux_kustomization(
            f"apps-{cluster}", f"./apps/{cluster}"
        )
        files[f"apps/{cluster}/kustomization.yaml"] = kustomization(["../base"])
    files["apps/base/kustomization.yaml"] = kustomization(["web.yaml", "settings.yaml"])
    files["apps/base/web.yaml"] = deployment("web", "ghcr.io/example/web:1.0")
    files["apps/base/settings.yaml"] = configmap("settings")
    files["apps/staging/kustomization.yaml"] = kustomization(["../base", "debug.yaml"])
    files["apps/staging/debug.yaml"] = configmap("debug")
    return files


def test_a_change_lists_what_each_cluster_gets() -> None:
    base = two_clusters()
    head = dict(base)
    head["apps/base/web.yaml"] = deployment("web", "ghcr.io/example/web:2.0")
    head["apps/staging/kustomization.yaml"] = kustomization(["../base"])
    result = analyze(tree(head), tree(base))
    assert result.impact is not None
    by_cluster = {c.cluster: c for c in result.impact}
    assert set(by_cluster) == {"clusters/prod", "clusters/staging"}
    [prod] = by_cluster["clusters/prod"].kustomizations
    assert prod.label == "Flux Kustomization flux-system/apps-prod"
    assert (prod.added, prod.changed, prod.removed) == ([], ["Deployment web"], [])
    [staging] = by_cluster["clusters/staging"].kustomizations
    assert staging.changed == ["Deployment web"] and staging.removed == ["ConfigMap debug"]
    text = "\n".join(impact_lines(result.impact))
    assert "Cluster clusters/staging:" in text and "1 removed (ConfigMap debug)" in text
    assert "| Flux Kustomization flux-system/apps-prod | – | 1: `Deployment web` | – |" in (
        impact_section(result.impact)
    )
    [_, doc_staging] = json.loads(to_json([], "a", "b", result.impact))["impact"]
    assert doc_staging == {
        "cluster": "clusters/staging",
        "kustomizations": [
            {
                "kustomization": "Flux Kustomization flux-system/apps-staging",
                "added": [],
                "changed": ["Deployment web"],
                "removed": ["ConfigMap debug"],
                "moved_from": {},
                "unknown": [],
                "fails": [],
            }
        ],
        "unfollowed": [],
    }


def test_a_change_nothing_applies_affects_no_cluster() -> None:
    base = two_clusters()
    head = dict(base, **{"docs/README.md": "notes\n"})
    result = analyze(tree(head), tree(base))
    assert result.impact == []
    assert impact_lines(result.impact) == [
        "No cluster is affected: nothing that Flux applies changes."
    ]
    assert "No cluster is affected" in impact_section(result.impact)


def test_a_whole_tree_check_has_no_impact() -> None:
    assert analyze(tree(two_clusters())).impact is None


def test_the_check_run_summary_names_the_clusters_first() -> None:
    from bot.analysis import Severity
    from bot.report.checkrun import render_summary

    base = two_clusters()
    head = dict(base, **{"apps/staging/kustomization.yaml": kustomization(["../base"])})
    result = analyze(tree(head), tree(base))
    summary = render_summary(
        result.findings, result.consumers, fail_on=Severity.ERROR, impact=result.impact
    )
    assert summary.startswith("#### Clusters this change reaches")
    assert "**clusters/staging**" in summary and "clusters/prod" not in summary


def test_a_build_the_change_makes_unreadable_fails_and_changes_nothing_it_says_why() -> None:
    # kustomize fails on a file that does not parse, and kustomize-controller then
    # applies nothing: the Deployment's new image does not reach the cluster either.
    base = two_clusters()
    head = dict(
        base,
        **{
            "apps/base/settings.yaml": "data: [unclosed\n",
            "apps/base/web.yaml": deployment("web", "ghcr.io/example/web:9.9"),
        },
    )
    result = analyze(tree(head), tree(base))
    assert result.impact is not None
    for cluster in result.impact:
        [k] = cluster.kustomizations
        assert (k.added, k.changed, k.removed) == ([], [], [])
        assert k.fails == ["apps/base/settings.yaml does not parse"] and k.unknown == []
    assert (
        "fails to build (apps/base/settings.yaml does not parse): Flux applies none of it, "
        "the cluster keeps what it applied before"
    ) in "\n".join(impact_lines(result.impact))


def test_a_resource_the_change_makes_remote_or_removes_is_said_where_it_is_named() -> None:
    base = two_clusters()
    remote = "https://github.com/example/shared//base?ref=v1"
    head = dict(base, **{"apps/staging/kustomization.yaml": kustomization(["../base", remote])})
    result = analyze(tree(head), tree(base))
    assert result.impact is not None
    by_cluster = {c.cluster: c.kustomizations for c in result.impact}
    [staging] = by_cluster["clusters/staging"]
    assert staging.unknown == [f"`{remote}` in apps/staging/kustomization.yaml is remote"]
    assert "clusters/prod" not in by_cluster or not by_cluster["clusters/prod"]
    # The directory a resource names, deleted: the kustomization that names it is unknown.
    head = {p: c for p, c in base.items() if not p.startswith("apps/base/")}
    result = analyze(tree(head), tree(base))
    assert result.impact is not None
    for cluster in result.impact:
        [k] = cluster.kustomizations
        assert any("`../base`" in r and "does not exist" in r for r in k.fails), k.fails


def test_a_change_to_files_reaching_a_cluster_through_an_unfollowed_source_says_so() -> None:
    # The cluster applies ./apps through an ExternalArtifact (made from this repository by
    # an ArtifactGenerator), which flux-review does not follow.
    base: dict[str, str | bytes] = {
        **bootstrap("prod"),
        "clusters/prod/apps.yaml": flux_kustomization(
            "apps", "./", source="apps", source_kind="ExternalArtifact"
        ),
        "clusters/prod/infra.yaml": flux_kustomization("infra", "./infra"),
        "infra/kustomization.yaml": kustomization(["settings.yaml"]),
        "infra/settings.yaml": configmap("settings"),
        "apps/web.yaml": deployment("web", "ghcr.io/example/web:1.0"),
    }
    head = dict(base, **{"apps/web.yaml": deployment("web", "ghcr.io/example/web:2.0")})
    result = analyze(tree(head), tree(base))
    assert result.impact is not None
    [cluster] = result.impact
    assert cluster.kustomizations == []
    assert cluster.unfollowed == [
        "Flux Kustomization flux-system/apps (its source ExternalArtifact flux-system/apps"
        " is made by no ArtifactGenerator applied from this repository)"
    ]
    text = "\n".join(impact_lines(result.impact))
    assert "No cluster is affected" not in text
    assert "cannot follow: Flux Kustomization flux-system/apps (its source ExternalArtifact" in text
    assert "cannot follow" in impact_section(result.impact)
    doc = json.loads(to_json([], "a", "b", result.impact))
    assert doc["impact"][0]["unfollowed"] == cluster.unfollowed
    # A change inside what is followed says what it does there, and nothing more.
    head = dict(base, **{"infra/settings.yaml": configmap("settings", "key: other")})
    result = analyze(tree(head), tree(base))
    assert result.impact is not None
    [cluster] = result.impact
    assert [k.changed for k in cluster.kustomizations] == [["ConfigMap settings"]]
    assert cluster.unfollowed == []


def test_a_change_no_cluster_can_apply_names_no_unfollowed_kustomization() -> None:
    # flux's own manifests come from an OCI artifact that is not this repository: a change
    # to an archived app cannot reach the cluster through it.
    base: dict[str, str | bytes] = {
        **bootstrap("prod"),
        "clusters/prod/flux.yaml": flux_kustomization(
            "flux", "./", source="flux-manifests", source_kind="OCIRepository"
        ),
        "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
        "apps/web.yaml": deployment("web", "ghcr.io/example/web:1.0"),
        ".archive/old/web.yaml": deployment("old", "ghcr.io/example/old:1.0"),
    }
    head = dict(base, **{".archive/old/web.yaml": deployment("old", "ghcr.io/example/old:2.0")})
    result = analyze(tree(head), tree(base))
    assert result.impact == []
    assert impact_lines(result.impact) == [
        "No cluster is affected: nothing that Flux applies changes."
    ]
    # An OCI artifact pushed from a directory of this repository may carry its change.
    base["clusters/prod/apps.yaml"] = flux_kustomization(
        "apps", "./apps", source="apps", source_kind="OCIRepository"
    )
    head = dict(base, **{"apps/web.yaml": deployment("web", "ghcr.io/example/web:2.0")})
    [cluster] = analyze(tree(head), tree(base)).impact or []
    assert cluster.unfollowed == [
        "Flux Kustomization flux-system/apps (its source is OCIRepository flux-system/apps)"
    ]


def test_an_object_defined_in_another_file_is_said_moved_as_the_diff_says() -> None:
    base = two_clusters()
    head = {p: c for p, c in base.items() if p != "apps/base/web.yaml"}
    head["apps/base/kustomization.yaml"] = kustomization(["deployment.yaml", "settings.yaml"])
    head["apps/base/deployment.yaml"] = deployment("web", "ghcr.io/example/web:1.1")
    result = analyze(tree(head), tree(base))
    assert result.impact is not None
    for cluster in result.impact:
        [k] = cluster.kustomizations
        assert k.changed == ["Deployment web"]
        assert k.moved == {"Deployment web": "apps/base/web.yaml"}
    text = "\n".join(impact_lines(result.impact))
    assert "1 moved (Deployment web from apps/base/web.yaml)" in text and "changed" not in text
    assert result.diff is not None
    assert {o.change for c in result.diff for k in c.kustomizations for o in k.objects} == {"moved"}
