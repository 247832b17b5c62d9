"""Scenarios with the `helm` extra: one change each to a monorepo whose HelmReleases render
charts of the repository, through the command line (`flux-review check --base --head
--format json`, in this process), with the EXACT set of findings each change brings.

The monorepo: two clusters bootstrapped by `flux bootstrap`. On `clusters/prod` the
`apps` Kustomization applies `apps/`: a HelmRelease `shop` of `charts/shop` (from the
flux-system GitRepository; an umbrella chart with a `file://` dependency on
`charts/redis-lite`) whose values come from its `values` and a ConfigMap, and a raw
Service. On `clusters/edge` the `edge` Kustomization applies one of the chart's
templates raw through `deploy/edge/kustomization.yaml` (the seed incident's shape: one
template, two consumers).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from bot.__main__ import main as bot_main
from tests.analysis_helpers import (
    assert_readable,
    bootstrap,
    chart_yaml,
    dedent,
    flux_kustomization,
    kustomization,
    line_of,
)
from tests.fakegithub.gitrepo import GitRepo
from tests.helm_support import requires_helm

pytestmark = requires_helm

ERROR, WARNING = "error", "warning"
RENDER = "helm-render-error"

API = dedent(
    """
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: api
      namespace: shop
    spec:
      replicas: 2
      template:
        spec:
          containers:
            - name: api
              image: ghcr.io/example/shop-api:1.4.0
    """
)
WORKER = dedent(
    """
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: {{ include "shop.name" . }}-worker
    spec:
      replicas: {{ .Values.worker.replicas }}
      template:
        spec:
          containers:
            - name: worker
              image: "{{ .Values.worker.image }}"
    """
)
HELPERS = '{{- define "shop.name" -}}\n{{ .Release.Name }}\n{{- end }}\n'
REDIS = dedent(
    """
    apiVersion: v1
    kind: Service
    metadata:
      name: {{ .Release.Name }}-redis
    spec:
      ports:
        - port: 6379
    """
)
RELEASE = dedent(
    """
    apiVersion: helm.toolkit.fluxcd.io/v2
    kind: HelmRelease
    metadata:
      name: shop
      namespace: shop
    spec:
      interval: 30m
      chart:
        spec:
          chart: ./charts/shop
          sourceRef:
            kind: GitRepository
            name: flux-system
            namespace: flux-system
      valuesFrom:
        - kind: ConfigMap
          name: shop-values
      values:
        worker:
          image: ghcr.io/example/shop-worker:2.0.0
    """
)
VALUES_CM = dedent(
    """
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: shop-values
      namespace: shop
    data:
      values.yaml: |
        worker:
          replicas: 3
    """
)
RAW_SERVICE = dedent(
    """
    apiVersion: v1
    kind: Service
    metadata:
      name: storefront
      namespace: shop
    spec:
      ports:
        - port: 80
    """
)


def monorepo() -> dict[str, str]:
    files: dict[str, Any] = {**bootstrap("prod"), **bootstrap("edge")}
    files.update(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "clusters/edge/edge.yaml": flux_kustomization("edge", "./deploy/edge"),
            "deploy/edge/kustomization.yaml": kustomization(
                ["../../charts/shop/templates/api-deployment.yaml"]
            ),
            "apps/kustomization.yaml": kustomization(
                ["release.yaml", "values.yaml", "storefront.yaml"]
            ),
            "apps/release.yaml": RELEASE,
            "apps/values.yaml": VALUES_CM,
            "apps/storefront.yaml": RAW_SERVICE,
            "charts/shop/Chart.yaml": chart_yaml(
                "shop", "1.0.0", dependencies=[("redis-lite", "0.3.x", "file://../redis-lite")]
            ),
            "charts/shop/values.yaml": "worker:\n  replicas: 1\n",
            "charts/shop/templates/api-deployment.yaml": API,
            "charts/redis-lite/Chart.yaml": chart_yaml("redis-lite", "0.3.1"),
            "charts/redis-lite/templates/service.yaml": REDIS,
            "charts/shop/templates/_helpers.tpl": HELPERS,
            "charts/shop/templates/worker.yaml": WORKER,
        }
    )
    return files


Edit = str | None | Callable[[str], str]


@pytest.fixture
def gitops(tmp_path: Path) -> Iterator[tuple[GitRepo, dict[str, str]]]:
    repo = GitRepo(tmp_path / "gitops")
    files = monorepo()
    repo.write(files)
    repo.commit("the monorepo")
    yield repo, files


def check(
    repo: GitRepo, files: dict[str, str], edits: Mapping[str, Edit]
) -> tuple[set[tuple[str, str, int, str, bool]], dict[str, Any], str]:
    base = repo.head()
    written: dict[str, str | None] = {}
    for path, edit in edits.items():
        if callable(edit):
            written[path] = edit(files[path])
        else:
            written[path] = edit
    repo.write(written)
    repo.commit("the change")
    argv = ["check", "--repo", str(repo.path), "--base", base, "--format", "json"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = bot_main(argv)
    assert code in (0, 1), err.getvalue()
    assert "warning:" not in err.getvalue(), err.getvalue()
    document = json.loads(out.getvalue())
    assert_readable(document["findings"])
    found = {
        (f["rule"], f["path"], f["line"], f["severity"], f["introduced"])
        for f in document["findings"]
    }
    return found, document, err.getvalue()


def test_the_monorepo_renders_cleanly(gitops):
    repo, files = gitops
    found, _, err = check(repo, files, {"README.md": "# platform\n"})
    assert found == set()
    assert "note:" not in err


def test_a_required_value_removed_from_a_helmrelease(gitops):
    repo, files = gitops
    worker = WORKER.replace(
        '"{{ .Values.worker.image }}"', '{{ required "worker.image" .Values.worker.image }}'
    )
    repo.write({"charts/shop/templates/worker.yaml": worker})
    repo.commit("the image is required")
    found, document, _ = check(
        repo,
        files,
        {
            "apps/release.yaml": lambda t: t.replace(
                "      image: ghcr.io/example/shop-worker:2.0.0\n", "      tier: backend\n"
            )
        },
    )
    line = line_of(worker, "image:")
    assert found == {(RENDER, "charts/shop/templates/worker.yaml", line, ERROR, True)}
    (f,) = document["findings"]
    assert f["message"] == (
        "This change makes HelmRelease shop/shop fail to render on cluster clusters/prod: "
        "worker.image."
    )


def test_a_template_typo(gitops):
    repo, files = gitops
    found, _, _ = check(
        repo,
        files,
        {
            "charts/shop/templates/worker.yaml": lambda t: t.replace('"shop.name"', '"shop.nmae"'),
            "charts/shop/Chart.yaml": lambda t: t.replace("version: 1.0.0", "version: 1.0.1"),
        },
    )
    assert found == {(RENDER, "charts/shop/templates/worker.yaml", 4, ERROR, True)}


def test_an_umbrella_dependency_renamed(gitops):
    repo, files = gitops
    repo.rename("charts/redis-lite", "charts/redis")
    found, _, _ = check(repo, files, {})
    chart = files["charts/shop/Chart.yaml"]
    assert found == {
        (RENDER, "charts/shop/Chart.yaml", line_of(chart, "- name: redis-lite"), ERROR, True)
    }


def test_a_values_change_that_renders_an_invalid_image(gitops):
    repo, files = gitops
    found, document, _ = check(
        repo,
        files,
        {"apps/release.yaml": lambda t: t.replace("shop-worker:2.0.0", "Shop-Worker:2.0.0")},
    )
    image = line_of(WORKER, "image:")
    assert found == {
        ("invalid-image-reference", "charts/shop/templates/worker.yaml", image, ERROR, True)
    }
    changed = document["impact"]
    assert changed[0]["kustomizations"][0]["changed"] == [
        "Deployment shop/shop-worker",
        "HelmRelease shop/shop",
    ]


def test_the_seeds_shared_templates_changed_for_both_consumers(gitops):
    repo, files = gitops
    templated = API.replace(
        "image: ghcr.io/example/shop-api:1.4.0",
        'image: {{ required "global.registry" .Values.global.registry }}/shop-api:1.4.0',
    )
    found, _, _ = check(repo, files, {"charts/shop/templates/api-deployment.yaml": templated})
    line = line_of(templated, "image:")
    # Kustomize applies the template raw on the edge cluster, Helm fails to render it on
    # prod: both outcomes, on the line that causes them.
    assert found == {
        (
            "helm-template-in-raw-manifest",
            "charts/shop/templates/api-deployment.yaml",
            line,
            ERROR,
            True,
        ),
        (RENDER, "charts/shop/templates/api-deployment.yaml", line, ERROR, True),
        ("chart-not-bumped", "charts/shop/Chart.yaml", 5, WARNING, True),
    }


def test_a_rendered_service_colliding_with_a_raw_one(gitops):
    repo, files = gitops
    storefront = RAW_SERVICE.replace("name: storefront", "name: {{ .Values.storefront }}")
    found, _, _ = check(
        repo,
        files,
        {
            "charts/shop/templates/storefront.yaml": storefront,
            "charts/shop/values.yaml": lambda t: t + "storefront: storefront\n",
            "charts/shop/Chart.yaml": lambda t: t.replace("version: 1.0.0", "version: 1.1.0"),
        },
    )
    assert found == {
        ("object-applied-twice", "charts/shop/templates/storefront.yaml", 4, WARNING, True)
    }


def test_a_template_that_never_ends_completes_the_review_with_a_finding(gitops, monkeypatch):
    import bot.helm
    from bot.analysis.rendering import CachingRenderer
    from bot.helm.pool import ChildRenderer

    limited = CachingRenderer(ChildRenderer(time_limit=2.0))
    monkeypatch.setattr(bot.helm, "_shared", limited)
    repo, files = gitops
    try:
        found, _, _ = check(
            repo,
            files,
            {"charts/shop/templates/loop.yaml": "{{ range 100000000000 }}{{ end }}\n"},
        )
    finally:
        limited.close()
    assert (RENDER, "charts/shop/Chart.yaml", 1, WARNING, True) in found
