"""What a HelmRelease renders counts as applied: duplicates between a HelmRelease and a
raw Kustomization, pull secrets, references, images, and what a change does to each
cluster (a values change is the rendered objects' change)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bot.analysis import AnalysisResult, analyze
from bot.analysis.rendering import Renderer, RendererUnavailable
from tests.analysis_helpers import (
    chart_yaml,
    dedent,
    flux_kustomization,
    helm_release,
    helm_repository,
    kustomization,
    line_of,
    repo,
    tree,
)
from tests.helm_support import requires_helm

pytestmark = requires_helm

DEPLOYMENT = dedent(
    """
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
    spec:
      template:
        spec:
          imagePullSecrets:
            - name: {{ .Values.pullSecret }}
          containers:
            - name: web
              image: "{{ .Values.registry }}/web:{{ .Values.tag }}"
    """
)
SERVICE = dedent(
    """
    apiVersion: v1
    kind: Service
    metadata:
      name: web
    spec:
      ports:
        - port: 80
    """
)


@pytest.fixture(scope="module")
def renderer() -> Iterator[Renderer]:
    import bot.helm

    shared = bot.helm.renderer()
    assert not isinstance(shared, RendererUnavailable)
    yield shared


def release(values: str = "") -> str:
    text = helm_release(
        "web",
        "./charts/web",
        source_kind="GitRepository",
        source="flux-system",
        namespace="shop",
        values=values or "registry: ghcr.io/example\ntag: '1.0'\npullSecret: ghcr-pull\n",
    )
    # The HelmRelease is in `shop`: its source's namespace must be said.
    return text.replace(
        "name: flux-system\n", "name: flux-system\n        namespace: flux-system\n"
    )


def platform(**overrides: str) -> dict[str, Any]:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "clusters/prod/secrets.yaml": flux_kustomization("secrets", "./secrets"),
            "secrets/pull.yaml": dedent(
                """
                apiVersion: v1
                kind: Secret
                metadata:
                  name: ghcr-pull
                  namespace: shop
                type: kubernetes.io/dockerconfigjson
                data:
                  .dockerconfigjson: e30=
                """
            ),
            "apps/kustomization.yaml": kustomization(["release.yaml"]),
            "apps/release.yaml": release(),
            "charts/web/Chart.yaml": chart_yaml("web", "0.1.0"),
            "charts/web/templates/deployment.yaml": DEPLOYMENT,
            "charts/web/templates/service.yaml": SERVICE,
        }
    )
    files.update(overrides)
    return files


def run(renderer: Any, head: dict[str, Any], base: dict[str, Any] | None = None) -> AnalysisResult:
    result = analyze(tree(head), tree(base) if base is not None else None, renderer=renderer)
    assert not result.errors, result.errors
    return result


def found(result: AnalysisResult, rule: str) -> list[tuple[str, int, str]]:
    return [(f.path, f.line, f.message) for f in result.findings if f.rule == rule]


def test_a_rendered_service_colliding_with_a_raw_one(renderer):
    head = platform(
        **{
            "apps/kustomization.yaml": kustomization(["release.yaml", "service.yaml"]),
            "apps/service.yaml": SERVICE.replace("name: web", "name: web\n  namespace: shop"),
        }
    )
    assert found(run(renderer, head), "object-applied-twice") == [
        (
            "charts/web/templates/service.yaml",
            4,
            "Service shop/web is rendered by HelmRelease shop/web and also applied by Flux "
            "Kustomization flux-system/apps: Helm refuses to adopt it, or the two overwrite "
            "each other.",
        )
    ]
    # Without a renderer, only the raw Service is known.
    assert found(run(None, head), "object-applied-twice") == []


def test_a_values_change_that_renders_an_invalid_image(renderer):
    base = platform()
    head = dict(base)
    head["apps/release.yaml"] = release(
        "registry: ghcr.io/example/\ntag: '1.0'\npullSecret: ghcr-pull\n"
    )
    result = run(renderer, head, base)
    (image,) = [f for f in result.findings if f.rule == "invalid-image-reference"]
    assert (image.path, image.line, image.introduced) == (
        "charts/web/templates/deployment.yaml",
        line_of(DEPLOYMENT, "image:"),
        True,
    )
    assert image.message.startswith(
        "HelmRelease shop/web renders `ghcr.io/example//web:1.0` here, an invalid image "
        "reference: it contains an empty path component"
    )
    assert [(r.path, r.line) for r in image.related] == [("apps/release.yaml", 4)]


def test_a_rendered_pull_secret_nothing_defines(renderer):
    head = platform(
        **{"apps/release.yaml": release("registry: ghcr.io/x\ntag: '1'\npullSecret: ghcr-pul\n")}
    )
    assert found(run(renderer, head), "missing-pull-secret") == [
        (
            "charts/web/templates/deployment.yaml",
            line_of(DEPLOYMENT, "- name: {{ .Values.pullSecret }}"),
            "`imagePullSecrets` of Deployment shop/web names Secret ghcr-pul, which nothing "
            "on cluster clusters/prod defines in namespace shop; did you mean ghcr-pull?",
        )
    ]
    assert found(run(renderer, platform()), "missing-pull-secret") == []


def test_a_rendered_flux_object_with_a_dangling_reference(renderer):
    chart_release = dedent(
        """
        apiVersion: helm.toolkit.fluxcd.io/v2
        kind: HelmRelease
        metadata:
          name: redis
          namespace: shop
        spec:
          interval: 1h
          chart:
            spec:
              chart: redis
              sourceRef:
                kind: HelmRepository
                name: {{ .Values.repository }}
                namespace: flux-system
        """
    )
    head = platform(
        **{
            "charts/web/templates/redis.yaml": chart_release,
            "clusters/prod/sources.yaml": helm_repository("bitnami"),
            "apps/release.yaml": release(
                "registry: ghcr.io/x\ntag: '1'\npullSecret: ghcr-pull\nrepository: bitnamy\n"
            ),
        }
    )
    (finding,) = found(run(renderer, head), "dangling-reference")
    assert finding[:2] == ("charts/web/templates/redis.yaml", line_of(chart_release, "name: {{"))
    assert "names HelmRepository bitnamy in namespace flux-system" in finding[2]


def test_a_values_change_is_the_rendered_objects_change(renderer):
    base = platform()
    head = dict(base)
    head["apps/release.yaml"] = release(
        "registry: ghcr.io/example\ntag: '1.1'\npullSecret: ghcr-pull\n"
    )
    impact = run(renderer, head, base).impact
    assert impact is not None
    (cluster,) = [c.to_json() for c in impact]
    assert cluster["kustomizations"] == [
        {
            "kustomization": "Flux Kustomization flux-system/apps",
            "added": [],
            "changed": ["Deployment shop/web", "HelmRelease shop/web"],
            "removed": [],
            "moved_from": {},
            "unknown": [],
            "fails": [],
        }
    ]


def test_what_a_release_stops_rendering_is_helms_to_delete_not_the_prunes(renderer):
    base = platform()
    head = dict(base)
    del head["charts/web/templates/service.yaml"]
    result = run(renderer, head, base)
    assert [f for f in result.findings if f.rule == "prune-deletes"] == []
    assert result.impact is not None
    assert [k.removed for c in result.impact for k in c.kustomizations] == [["Service shop/web"]]


def test_a_render_that_fails_after_the_change_removes_nothing(renderer):
    base = platform()
    head = dict(base)
    head["charts/web/templates/deployment.yaml"] = DEPLOYMENT.replace(
        "{{ .Values.tag }}", '{{ required "tag" .Values.nothing }}'
    )
    result = run(renderer, head, base)
    assert [f.rule for f in result.findings if f.rule != "chart-not-bumped"] == [
        "helm-render-error"
    ]
    assert result.impact is not None
    (k,) = [k for c in result.impact for k in c.kustomizations]
    assert (k.removed, k.unknown) == (
        [],
        ["HelmRelease shop/web is not rendered after the change: tag"],
    )


def test_only_the_remote_chart_release_the_change_touches_is_said_to_be_unrendered(renderer):
    """A chart from a remote registry is never rendered; the change summary says so for
    the release the change edits, not for every other release of the cluster."""
    remote = helm_repository("bitnami", "https://charts.bitnami.com/bitnami")
    base = repo(
        {
            "clusters/prod/redis.yaml": flux_kustomization("redis", "./redis"),
            "clusters/prod/kafka.yaml": flux_kustomization("kafka", "./kafka"),
            "clusters/prod/sources.yaml": remote,
            "redis/release.yaml": helm_release("redis", version="1.0.0", source="bitnami"),
            "kafka/release.yaml": helm_release("kafka", version="2.0.0", source="bitnami"),
        }
    )
    head = dict(base)
    head["redis/release.yaml"] = helm_release("redis", version="1.0.1", source="bitnami")
    # A comment is no change to what Flux applies, though the file is another blob.
    head["kafka/release.yaml"] = "# owned by the data team\n" + helm_release(
        "kafka", version="2.0.0", source="bitnami"
    )
    result = run(renderer, head, base)
    impact = result.impact
    assert impact is not None
    (k,) = [k for c in impact for k in c.kustomizations]
    assert k.label == "Flux Kustomization flux-system/redis"
    assert k.changed == ["HelmRelease flux-system/redis"]
    assert [why.split(":")[0] for why in k.unknown] == [
        "HelmRelease flux-system/redis is not rendered after the change"
    ]
    # Each side built on its own (no object shared between them): releases are told
    # apart by what they hold, with the same outcome.
    alone = analyze(tree(head), tree(base), renderer=renderer, incremental=False)
    assert (alone.impact, alone.notes) == (result.impact, result.notes)


def test_a_kept_walk_of_the_base_renders_as_a_fresh_one(renderer):
    # The worker's last review analysed the base tree itself: this review's base copies
    # that walk, and what Helm installs joins the copy, never the walk it keeps.
    from bot.analysis.cache import RepositoryCaches

    base = platform()
    head = dict(base)
    head["apps/release.yaml"] = release(
        "registry: ghcr.io/example\ntag: '1.1'\npullSecret: ghcr-pull\n"
    )
    fresh = analyze(tree(head), tree(base), renderer=renderer, incremental=False)
    caches = RepositoryCaches(1 << 30)
    base_tree = tree(base)
    cache = caches.begin("repo")
    alone = analyze(base_tree, renderer=renderer, cache=cache)
    caches.end("repo", cache, 1)
    for _ in range(2):
        cache = caches.begin("repo")
        kept = analyze(tree(head), base_tree, renderer=renderer, cache=cache)
        caches.end("repo", cache, 1)
        assert not kept.errors, kept.errors
        assert (kept.findings, kept.impact, kept.diff, kept.notes) == (
            fresh.findings,
            fresh.impact,
            fresh.diff,
            fresh.notes,
        )
    cache = caches.begin("repo")
    again = analyze(base_tree, renderer=renderer, cache=cache)
    assert (again.findings, again.notes) == (alone.findings, alone.notes)
