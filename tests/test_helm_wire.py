"""HelmReleases of in-repository charts rendered on their clusters: which are rendered and
how (chart, values, release, `.Capabilities`), the objects Helm installs joining the
cluster with their template lines, what a pull request renders, and the notes a review
gives about what it did not render."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from yaml import nodes as ynodes

from bot.analysis import analyze
from bot.analysis import yamlscan as ys
from bot.analysis.rendering import (
    NOT_INSTALLED_NOTICE,
    CachingRenderer,
    Renderer,
    RendererUnavailable,
    RenderRequest,
    RenderResult,
)
from bot.analysis.snapshot import Snapshot
from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.snapshot.build.helm import HelmOptions, ReleaseRender, Status
from tests.analysis_helpers import (
    chart_yaml,
    config_from,
    configmap,
    dedent,
    flux_kustomization,
    helm_release,
    helm_repository,
    kustomization,
    line_of,
    oci_repository,
    repo,
    service,
    tree,
)
from tests.helm_support import requires_helm

pytestmark = requires_helm

DEPLOYMENT = dedent(
    """
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: {{ .Release.Name }}
      labels:
        app: {{ .Chart.Name }}
    spec:
      replicas: {{ .Values.replicas }}
      template:
        spec:
          containers:
            - name: app
              image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
    """
)
SERVICE = dedent(
    """
    apiVersion: v1
    kind: Service
    metadata:
      name: {{ .Release.Name }}
    spec:
      ports:
        - port: {{ .Values.port | default 80 }}
    """
)
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n"
VALUES = "replicas: 1\nimage:\n  repository: ghcr.io/example/demo\n  tag: 1.0.0\n"


class Recording:
    """The real renderer, recording what the analysis asks it to render."""

    def __init__(self, inner: Renderer) -> None:
        self.inner = inner
        self.requests: list[RenderRequest] = []

    def render(self, request: RenderRequest) -> RenderResult:
        return self.render_all([request])[0]

    def render_all(self, requests: Sequence[RenderRequest]) -> list[RenderResult]:
        self.requests.extend(requests)
        return self.inner.render_all(requests)

    def close(self) -> None:
        pass

    @property
    def releases(self) -> list[tuple[str, str]]:
        return sorted((r.release_name, r.namespace) for r in self.requests)


@pytest.fixture(scope="module")
def renderer() -> Iterator[Renderer]:
    import bot.helm

    shared = bot.helm.renderer()
    assert not isinstance(shared, RendererUnavailable)
    yield shared


def demo_chart(
    name: str = "demo", directory: str = "charts/demo", **templates: str
) -> dict[str, Any]:
    files = {
        f"{directory}/Chart.yaml": chart_yaml(name, "0.1.0"),
        f"{directory}/values.yaml": VALUES,
        f"{directory}/templates/deployment.yaml": DEPLOYMENT,
        f"{directory}/templates/service.yaml": SERVICE,
    }
    files.update({f"{directory}/templates/{k}": v for k, v in templates.items()})
    return files


def git_release(name: str = "demo", chart: str = "./charts/demo", spec: str = "", **kw: Any) -> str:
    """A HelmRelease of an in-repository chart from the flux-system GitRepository; `spec`
    adds fields to its spec (written unindented)."""
    text = helm_release(name, chart, source_kind="GitRepository", source="flux-system", **kw)
    if spec:
        text += "".join(f"  {line}\n" for line in dedent(spec).splitlines())
    return text


def apps(*files: str, **more: str) -> dict[str, Any]:
    """One Flux Kustomization `apps` applying `apps/` (every file of `files` listed)."""
    out = {
        "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
        "apps/kustomization.yaml": kustomization(files),
    }
    out.update(more)
    return out


def snapshot(
    files: dict[str, Any], renderer: Renderer | RendererUnavailable, config: str = ""
) -> Snapshot:
    return Snapshot(
        tree(files), config_from(config) if config else None, helm=HelmOptions(renderer)
    )


def release(snap: Snapshot, name: str = "demo", cluster: str | None = None) -> ReleaseRender:
    found = [
        r
        for r in snap.build.helm.releases
        if r.key[2] == name and (cluster is None or r.key[0] == cluster)
    ]
    assert len(found) == 1, [(r.key, r.status) for r in snap.build.helm.releases]
    return found[0]


def rendered(snap: Snapshot, kind: str, name: str) -> Any:
    for cluster in snap.build.clusters:
        for obj in cluster.objects():
            if obj.rendered_by is not None and (obj.id.kind, obj.id.name) == (kind, name):
                return obj
    raise AssertionError(f"no rendered {kind} {name}")


def value(obj: Any) -> Any:
    return yn.to_value(obj.node)


# --- what is rendered, and how --------------------------------------------------------


def test_a_chart_from_this_repository_is_rendered_and_its_objects_join_the_cluster(renderer):
    files = repo(
        {
            **apps("release.yaml"),
            "apps/release.yaml": git_release(values="replicas: 3\n", spec="targetNamespace: shop"),
            **demo_chart(),
        }
    )
    snap = snapshot(files, renderer)
    r = release(snap)
    assert r.status is Status.RENDERED
    deployment = rendered(snap, "Deployment", "shop-demo")
    # Helm's release: `<targetNamespace>-<name>` in the target namespace, applied by the
    # HelmRelease's Flux Kustomization.
    assert str(deployment.id) == "Deployment shop/shop-demo"
    assert deployment.owner.label == "Flux Kustomization flux-system/apps"
    assert deployment.rendered_by.id.name == "demo"
    # Its file and line are the template's: `metadata.name`, and each value's own line.
    assert (deployment.path, deployment.line) == ("charts/demo/templates/deployment.yaml", 4)
    image = yn.at(deployment.node, ("spec", "template", "spec", "containers", 0, "image"))
    assert image is not None
    assert yn.origin_of(image, deployment.path)[:2] == (
        "charts/demo/templates/deployment.yaml",
        line_of(DEPLOYMENT, "image:"),
    )
    assert value(deployment)["spec"]["replicas"] == 3
    # helm-controller's post-renderer labels every object with its HelmRelease.
    assert value(deployment)["metadata"]["labels"] == {
        "app": "demo",
        "helm.toolkit.fluxcd.io/name": "demo",
        "helm.toolkit.fluxcd.io/namespace": "flux-system",
    }
    assert str(rendered(snap, "Service", "shop-demo").id) == "Service shop/shop-demo"


def test_values_are_merged_as_helm_controller_merges_them(renderer):
    files = repo(
        {
            **apps("release.yaml", "values.yaml"),
            "apps/release.yaml": dedent(
                """
                apiVersion: helm.toolkit.fluxcd.io/v2
                kind: HelmRelease
                metadata:
                  name: demo
                  namespace: flux-system
                spec:
                  interval: 30m
                  chart:
                    spec:
                      chart: ./charts/demo
                      valuesFiles: [charts/demo/values.yaml, apps/prod-values.yaml]
                      sourceRef: {kind: GitRepository, name: flux-system}
                  valuesFrom:
                    - kind: ConfigMap
                      name: demo-values
                  values:
                    image: {tag: 3.0.0}
                """
            ),
            "apps/prod-values.yaml": "replicas: 2\nimage: {tag: 2.0.0}\n",
            "apps/values.yaml": configmap(
                "demo-values", "values.yaml: |\n  replicas: 5\n  image: {tag: 2.5.0}\n"
            ).replace("name: demo-values", "name: demo-values\n  namespace: flux-system"),
            **demo_chart(),
        }
    )
    snap = snapshot(files, renderer)
    r = release(snap)
    assert r.status is Status.RENDERED, (r.failure, r.why)
    spec = value(rendered(snap, "Deployment", "demo"))["spec"]
    # values.yaml <- valuesFiles <- valuesFrom <- values
    assert spec["replicas"] == 5
    assert spec["template"]["spec"]["containers"][0]["image"] == "ghcr.io/example/demo:3.0.0"
    assert r.values_origin == (
        "apps/release.yaml",
        "charts/demo/values.yaml",
        "apps/prod-values.yaml",
        "apps/values.yaml",
    )


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        (
            dedent(
                """
                apiVersion: v1
                kind: Secret
                metadata:
                  name: demo-values
                  namespace: flux-system
                stringData:
                  values.yaml: ENC[AES256_GCM,data:abc,type:str]
                sops:
                  version: 3.8.1
                """
            ),
            "Secret flux-system/demo-values: Secret flux-system/demo-values is encrypted with SOPS",
        ),
        (
            None,
            "Secret flux-system/demo-values: Secret flux-system/demo-values is not applied "
            "from this repository",
        ),
    ],
)
def test_values_from_a_secret_the_repository_does_not_show_are_not_guessed(renderer, secret, why):
    files = repo(
        {
            **apps("release.yaml", *(["secret.yaml"] if secret else [])),
            "apps/release.yaml": git_release(
                spec="valuesFrom:\n  - kind: Secret\n    name: demo-values\n"
            ),
            **({"apps/secret.yaml": secret} if secret else {}),
            **demo_chart(),
        }
    )
    result = analyze(tree(files), renderer=renderer)
    snap = snapshot(files, renderer)
    r = release(snap)
    assert (r.status, r.why) == (Status.UNKNOWN, (why,))
    assert not r.objects
    assert result.notes == [
        f"HelmRelease flux-system/demo on cluster clusters/prod is not rendered: {why}"
    ]


def test_capabilities_are_the_clusters(renderer):
    versions = dedent(
        """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: capabilities
        data:
          kube: {{ .Capabilities.KubeVersion.Version | quote }}
          monitors: {{ .Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor"
            | quote }}
        """
    )
    crd = dedent(
        """
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata:
          name: servicemonitors.monitoring.coreos.com
        spec:
          group: monitoring.coreos.com
          names: {kind: ServiceMonitor, plural: servicemonitors}
          scope: Namespaced
          versions:
            - name: v1
              served: true
              storage: true
        """
    )
    files = repo(
        {
            **apps("release.yaml"),
            "apps/release.yaml": git_release(),
            **demo_chart(**{"capabilities.yaml": versions}),
            "clusters/staging/flux-system/gotk-sync.yaml": "",
        },
        cluster="prod",
    )
    files.pop("clusters/staging/flux-system/gotk-sync.yaml")
    files.update(
        {
            "clusters/staging/flux-system/gotk-components.yaml": NAMESPACE,
            "clusters/staging/apps.yaml": flux_kustomization("apps", "./apps"),
            "clusters/staging/crds.yaml": crd,
        }
    )
    snap = snapshot(files, renderer, "kubernetes_version:\n  clusters/prod: '1.29'\n")
    data = {
        c.name: value(o)["data"]
        for c in snap.build.clusters
        for o in c.objects()
        if o.id.name == "capabilities"
    }
    assert data["clusters/prod"] == {"kube": "v1.29.0", "monitors": "false"}
    # Without a configured version, the newest the SDK knows; a CRD the cluster applies
    # from the repository is an API version Helm sees.
    assert data["clusters/staging"]["monitors"] == "true"
    assert (
        data["clusters/staging"]["kube"].startswith("v1.")
        and data["clusters/staging"]["kube"] != "v1.29.0"
    )


def test_a_chart_this_repository_publishes_is_rendered_when_the_version_is_this_commits(renderer):
    oci_release = helm_release("edge", chart_ref=("OCIRepository", "edge"))
    files = repo(
        {
            **apps("sources.yaml", "release.yaml", "edge.yaml"),
            "apps/sources.yaml": helm_repository("charts", "https://charts.example.com/platform")
            + "---\n"
            + oci_repository("edge", "oci://ghcr.io/example/charts/edge", tag="0.1.0"),
            "apps/release.yaml": helm_release("demo", "demo", version="0.1.x"),
            "apps/edge.yaml": oci_release,
            **demo_chart(),
            **demo_chart("edge", "charts/edge"),
        }
    )
    snap = snapshot(files, renderer)
    assert release(snap, "demo").status is Status.RENDERED
    assert release(snap, "edge").status is Status.RENDERED
    assert rendered(snap, "Deployment", "edge").path == "charts/edge/templates/deployment.yaml"

    files["apps/release.yaml"] = helm_release("demo", "demo", version="0.2.x")
    result = analyze(tree(files), renderer=renderer)
    assert (
        "HelmRelease flux-system/demo is not rendered: HelmRepository flux-system/charts "
        "selects a version of chart demo other than this commit's 0.1.0."
    ) in result.notes


def test_an_umbrella_chart_renders_its_file_dependency_from_the_repository(renderer):
    files = repo(
        {
            **apps("release.yaml"),
            "apps/release.yaml": git_release("platform", "./charts/platform"),
            "charts/platform/Chart.yaml": chart_yaml(
                "platform", "1.0.0", dependencies=[("demo", "0.1.x", "file://../demo")]
            ),
            "charts/platform/templates/config.yaml": configmap("platform"),
            **demo_chart(),
        }
    )
    snap = snapshot(files, renderer)
    assert release(snap, "platform").status is Status.RENDERED
    sub = rendered(snap, "Deployment", "platform")
    assert sub.path == "charts/demo/templates/deployment.yaml"
    assert rendered(snap, "ConfigMap", "platform").path == "charts/platform/templates/config.yaml"


def test_charts_not_in_this_repository_are_never_fetched_and_say_so_once(renderer):
    files = repo(
        {
            **apps("sources.yaml", "podinfo.yaml", "other.yaml"),
            "apps/sources.yaml": helm_repository(
                "podinfo", "https://stefanprodan.github.io/podinfo"
            )
            + "---\n"
            + dedent(
                """
                apiVersion: source.toolkit.fluxcd.io/v1
                kind: GitRepository
                metadata:
                  name: other
                  namespace: flux-system
                spec:
                  interval: 5m
                  url: https://github.com/someone/else
                  ref: {branch: main}
                """
            ),
            "apps/podinfo.yaml": helm_release("podinfo", "podinfo", source="podinfo"),
            "apps/other.yaml": git_release("other", "./charts/demo").replace(
                "name: flux-system", "name: other"
            ),
            **demo_chart(),
        }
    )
    result = analyze(tree(files), renderer=renderer)
    assert result.notes == [
        "HelmRelease flux-system/other is not rendered: its source GitRepository "
        "flux-system/other is another repository (https://github.com/someone/else).",
        "HelmRelease flux-system/podinfo is not rendered: its chart podinfo comes from "
        "https://stefanprodan.github.io/podinfo.",
    ]
    assert not Snapshot(tree(files), helm=HelmOptions(renderer)).build.helm.releases


def test_without_the_extra_one_notice_and_nothing_else_changes():
    files = repo(
        {
            **apps("release.yaml", "service.yaml"),
            "apps/release.yaml": git_release(
                values="replicas: 2\n", spec="valuesFrom:\n  - kind: ConfigMap\n    name: nowhere\n"
            ),
            "apps/service.yaml": service("demo").replace(
                "name: demo", "name: demo\n  namespace: x", 1
            ),
            **demo_chart(**{"broken.yaml": '{{ include "nope" . }}\n'}),
        }
    )
    unavailable = RendererUnavailable("helm-python-sdk is not installed")
    without = analyze(tree(files), renderer=unavailable)
    plain = analyze(tree(files))
    assert without.notes == [NOT_INSTALLED_NOTICE]
    assert without.findings == plain.findings and plain.notes == []
    snap = snapshot(files, unavailable)
    assert [r.status for r in snap.build.helm.releases] == [Status.UNRENDERED]
    assert not any(o.rendered_by for c in snap.build.clusters for o in c.objects())


def test_without_the_extra_nothing_is_said_where_no_chart_is_in_the_repository():
    files = repo({**apps("podinfo.yaml"), "apps/podinfo.yaml": helm_release("podinfo")})
    assert analyze(tree(files), renderer=RendererUnavailable("absent")).notes == []


# --- a pull request renders what it changes ------------------------------------------


def _two_releases() -> dict[str, Any]:
    return repo(
        {
            **apps("a.yaml", "b.yaml", "values.yaml"),
            "apps/a.yaml": git_release("a", values="replicas: 2\n"),
            "apps/b.yaml": git_release(
                "b", "./charts/other", spec="valuesFrom:\n  - kind: ConfigMap\n    name: b-values\n"
            ),
            "apps/values.yaml": configmap("b-values", "values.yaml: 'replicas: 4'").replace(
                "name: b-values", "name: b-values\n  namespace: flux-system"
            ),
            **demo_chart(),
            **demo_chart("other", "charts/other"),
        }
    )


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ("apps/a.yaml", [("a", "flux-system")] * 2),
        ("charts/other/templates/service.yaml", [("b", "flux-system")] * 2),
        ("apps/values.yaml", [("b", "flux-system")] * 2),
        ("README.md", []),
    ],
)
def test_a_pull_request_renders_only_the_releases_whose_inputs_it_changes(renderer, edit, expected):
    base = _two_releases()
    head = dict(base)
    head[edit] = (
        base.get(edit, "")
        .replace("replicas: 2", "replicas: 3")
        .replace("replicas: 4", "replicas: 5")
        .replace("- port:", "- name: http\n          port:")
        or "# docs\n"
    )
    recording = Recording(CachingRenderer(renderer))  # a cache of its own: every render seen
    result = analyze(tree(head), tree(base), renderer=recording)
    # Rendered at the base and at the head, once each (the cache dedupes nothing here).
    assert recording.releases == sorted(expected)
    assert not result.errors


def test_renders_are_cached_by_their_inputs_across_reviews(renderer):
    base = _two_releases()
    head = dict(base)
    head["apps/a.yaml"] = base["apps/a.yaml"].replace("replicas: 2", "replicas: 3")
    recording = Recording(renderer)
    cached = CachingRenderer(recording)
    analyze(tree(head), tree(base), renderer=cached)
    assert len(recording.requests) == 2
    # The same pull request again (a recheck), and a whole-tree check of its head: only
    # the release never rendered before is rendered.
    analyze(tree(head), tree(base), renderer=cached)
    analyze(tree(head), renderer=cached)
    assert [r.release_name for r in recording.requests] == ["a", "a", "b"]


def test_the_apps_worker_keeps_one_render_cache_across_reviews(monkeypatch, renderer):
    import bot.helm
    from bot.review import CachingAnalyzer

    recording = Recording(renderer)
    monkeypatch.setattr(bot.helm, "_shared", CachingRenderer(recording))
    files = _two_releases()
    analyzer = CachingAnalyzer()
    for _ in range(2):
        analyzer(tree(files), None, None, None, (), __import__("threading").Event())
    assert sorted(r.release_name for r in recording.requests) == ["a", "b"]


# --- the fixture charts, through HelmReleases, against `helm template` -----------------

FIXTURES = Path(__file__).resolve().parent / "helmcharts"
CASES: list[dict[str, Any]] = yaml.safe_load((FIXTURES / "cases.yaml").read_text())
ORIGIN_LABELS = ("helm.toolkit.fluxcd.io/name", "helm.toolkit.fluxcd.io/namespace")


def _fixture_repo(case: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The fixture charts, and a HelmRelease of the case's chart with its release name,
    namespace and values; the case's Kubernetes version in the config, and a CRD for
    each extra API version it renders against."""
    root = FIXTURES / "repo"
    files: dict[str, Any] = {
        str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()
    }
    values = yaml.safe_dump({"values": case.get("values") or {}}, sort_keys=False)
    release = git_release(case["release"], "./" + case["chart"], namespace=case["namespace"])
    release = release.replace(
        "name: flux-system\n", "name: flux-system\n        namespace: flux-system\n"
    )
    files.update(
        repo(
            {
                **apps("release.yaml", "crds.yaml"),
                "apps/release.yaml": release + "  " + values.replace("\n", "\n  ").rstrip() + "\n",
            }
        )
    )
    crds = []
    for api in case.get("apiVersions") or ():
        group_version, kind = api.rsplit("/", 1)
        group, version = group_version.split("/")
        crds.append(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": f"{kind.lower()}s.{group}"},
                "spec": {
                    "group": group,
                    "names": {"kind": kind, "plural": f"{kind.lower()}s"},
                    "scope": "Namespaced",
                    "versions": [{"name": version, "served": True, "storage": True}],
                },
            }
        )
    files["apps/crds.yaml"] = yaml.safe_dump_all(crds) if crds else "---\n"
    minor = case["kubeVersion"].split(".")[1]
    return files, f"kubernetes_version: '1.{minor}'\n"


def _objects(text: str) -> list[Any]:
    return [yn.to_value(d) for d in ys.compose_all(text) if isinstance(d, ynodes.MappingNode)]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_fixture_charts_install_what_helm_template_renders(renderer, case):
    files, config = _fixture_repo(case)
    result = analyze(tree(files), config=config_from(config), renderer=renderer)
    snap = snapshot(files, renderer, config)
    r = release(snap, case["release"])
    expected = FIXTURES / "expected" / f"{case['name']}.yaml"
    if not expected.exists():
        error = (FIXTURES / "expected" / f"{case['name']}.error").read_text().split("\n")[1]
        if error == "Error: library charts are not installable":
            # helm-controller's install action renders a library chart as nothing.
            assert (r.status, r.objects) == (Status.RENDERED, [])
            return
        (finding,) = [f for f in result.findings if f.rule == "helm-render-error"]
        assert r.failure is not None and error.endswith(r.failure.detail or r.failure.message)
        position = re.search(r"\((\w+/templates/[\w.]+):(\d+):", error)
        if position is not None:
            template = position.group(1).replace(case["chart"].rsplit("/", 1)[-1] + "/", "", 1)
            assert (finding.path, finding.line) == (
                f"{case['chart']}/{template}",
                int(position.group(2)),
            )
        return
    assert r.status is Status.RENDERED, (r.failure, r.why)
    want: list[Any] = []
    text = expected.read_text()
    for block in re.split(r"^---\n(?=# Source: )", text, flags=re.M)[1:]:
        want.extend(_objects(block.partition("\n")[2]))
    got: list[Any] = []
    for obj in r.objects:
        content = yn.to_value(obj.node)
        labels = content["metadata"]["labels"]
        assert [labels.pop(k) for k in ORIGIN_LABELS] == [case["release"], case["namespace"]]
        if not labels:
            del content["metadata"]["labels"]
        got.append(content)
        # Each object on the template that wrote it, a file of the repository.
        assert obj.path in files and obj.path.startswith("charts/"), obj.path
    key = lambda o: json.dumps(o, sort_keys=True)  # noqa: E731
    assert sorted(got, key=key) == sorted(want, key=key)


def test_hooks_are_not_what_the_release_keeps_applied(renderer):
    hook = dedent(
        """
        apiVersion: v1
        kind: Pod
        metadata:
          name: "{{ .Release.Name }}-test"
          annotations:
            helm.sh/hook: test
        spec:
          containers:
            - name: wget
              image: busybox
        """
    )
    files = repo(
        {
            **apps("release.yaml"),
            "apps/release.yaml": git_release(),
            **demo_chart(**{"tests/t.yaml": hook}),
        }
    )
    r = release(snapshot(files, renderer))
    assert sorted(str(o.id) for o in r.objects) == [
        "Deployment flux-system/demo",
        "Service flux-system/demo",
    ]


def test_a_chart_whose_files_were_not_all_fetched_is_not_guessed(renderer):
    """The App's file-by-file download holds what `is_read` accepts: a file a template
    reads with `.Files.Get` may not be there, and Helm would render it."""
    from bot.analysis import is_read
    from bot.github.gitdata import SparseTree

    conf = dedent(
        """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: conf
        data:
          app.conf: {{ .Files.Get "files/app.conf" | quote }}
        """
    )
    files = repo(
        {
            **apps("release.yaml"),
            "apps/release.yaml": git_release(),
            **demo_chart(**{"conf.yaml": conf}),
            "charts/demo/files/app.conf": "threads = 4\n",
        }
    )
    full = tree(files)
    ids = {p: full.blob_id(p) or "" for p in full.paths()}
    sparse = SparseTree({p: full.read(p) or b"" for p in full.paths() if is_read(p)}, ids)
    assert release(snapshot(files, renderer)).status is Status.RENDERED
    snap = Snapshot(sparse, helm=HelmOptions(renderer))
    r = release(snap)
    assert (r.status, r.why) == (
        Status.UNKNOWN,
        ("the chart's file charts/demo/files/app.conf is not in what was fetched of the commit",),
    )
