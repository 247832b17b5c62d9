"""The renderer: requests, positioned errors, the cache, and the child processes that run
the Helm SDK under limits, so that a hostile chart costs a render, not the review."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.analysis.helmchart import ChartFiles, ChartListing, assemble_chart
from bot.analysis.helmvalues import ABSENT, Found, Unknown, ValuesError, ValuesUnknown
from bot.analysis.rendering import (
    NOT_INSTALLED_NOTICE,
    CachingRenderer,
    FailureKind,
    Position,
    PreparedRelease,
    RenderCache,
    Rendered,
    RenderFailure,
    RenderRequest,
    RenderResult,
    check_kube_version,
    error_positions,
    failure_from_helm,
    kube_version,
    prepare_release,
    release_name,
    release_namespace,
    storage_namespace,
)
from bot.analysis.tree import DictTree
from tests.helm_support import requires_helm

ROOT = Path(__file__).resolve().parent.parent
CHART_YAML = b"apiVersion: v2\nname: demo\nversion: 0.1.0\n"


def _chart(templates: dict[str, str], **extra: bytes) -> ChartFiles:
    files = {"charts/demo/Chart.yaml": CHART_YAML}
    files.update({f"charts/demo/templates/{k}": v.encode() for k, v in templates.items()})
    files.update({f"charts/demo/{k}": v for k, v in extra.items()})
    chart = assemble_chart(ChartListing(DictTree(files)), "charts/demo")
    assert isinstance(chart, ChartFiles), chart
    return chart


def _request(chart: ChartFiles, values: dict[str, Any] | None = None, **kw: Any) -> RenderRequest:
    return RenderRequest(
        chart, values or {}, kw.pop("name", "rel"), kw.pop("namespace", "ns"), **kw
    )


# -- what helm-controller sets --------------------------------------------------------


def test_release_name_and_namespace_as_helm_controller_sets_them() -> None:
    assert release_name("podinfo", {}) == "podinfo"
    assert release_name("podinfo", {"targetNamespace": "prod"}) == "prod-podinfo"
    assert release_name("podinfo", {"targetNamespace": "prod", "releaseName": "pi"}) == "pi"
    # helm-controller's own examples of names Helm would refuse (internal/release).
    long = "release-name-with-very-long-name-which-is-longer-than-53-characters"
    assert release_name(long, {}) == "release-name-with-very-long-name-which-i-788ca0d0d7b0"
    assert release_namespace("flux-system", {"targetNamespace": "prod"}) == "prod"
    assert release_namespace("apps", {}) == "apps"
    assert storage_namespace("apps", {"storageNamespace": "helm", "targetNamespace": "x"}) == "helm"


def test_a_configured_kubernetes_version_reads_as_a_cluster_reports_it() -> None:
    assert kube_version("1.31") == "v1.31.0"
    assert kube_version("v1.30.4") == "v1.30.4"
    assert kube_version("1.29.2-eks-1") == "v1.29.2-eks-1"
    with pytest.raises(ValueError):
        kube_version("latest")


def test_a_chart_that_refuses_the_clusters_version_fails_as_helm_fails_it() -> None:
    chart = _chart({}, **{"Chart.yaml": CHART_YAML + b'kubeVersion: ">=1.30.0-0"\n'})
    assert check_kube_version(chart, "v1.31.2-eks-1") is None
    refused = check_kube_version(chart, "v1.29.0")
    assert refused == RenderFailure(
        FailureKind.CHART,
        "chart requires kubeVersion: >=1.30.0-0 which is incompatible with Kubernetes v1.29.0",
    )
    assert refused.kind.definite


# -- Helm's errors, positioned ---------------------------------------------------------

# Messages as the Helm SDK (v4.2.3) words them.
_NESTED = (
    "demo/templates/case.yaml:2:8\n"
    '  executing "demo/templates/case.yaml" at <include "demo.bad" .>:\n'
    "    error calling include:\n"
    "demo/templates/_helpers.tpl:5:10\n"
    '  executing "demo.bad" at <.Values.nope.deeper>:\n'
    "    nil pointer evaluating interface {}.deeper"
)


@pytest.mark.parametrize(
    ("error_type", "message", "kind", "summary", "positions"),
    [
        (
            "HelmRenderError",
            "execution error at (demo/templates/d.yaml:12:19): name needed",
            FailureKind.TEMPLATE,
            "name needed",
            [Position("demo/templates/d.yaml", 12, 19)],
        ),
        (
            "HelmRenderError",
            'parse error at (demo/templates/x.yaml:1): function "foo" not defined',
            FailureKind.TEMPLATE,
            'function "foo" not defined',
            [Position("demo/templates/x.yaml", 1)],
        ),
        (
            "HelmRenderError",
            _NESTED,
            FailureKind.TEMPLATE,
            "nil pointer evaluating interface {}.deeper",
            [
                Position("demo/templates/case.yaml", 2, 8),
                Position("demo/templates/_helpers.tpl", 5, 10),
            ],
        ),
        (
            "HelmRenderError",
            'template: demo/templates/case.yaml:1:3: executing "demo/templates/case.yaml" at '
            '<tpl "{{ .Values.q.w }}" .>: error calling tpl: error during tpl function execution '
            'for "{{ .Values.q.w }}": template: gotpl:1:10: executing "gotpl" at <.Values.q.w>: '
            "nil pointer evaluating interface {}.w",
            FailureKind.TEMPLATE,
            "nil pointer evaluating interface {}.w",
            [Position("demo/templates/case.yaml", 1, 3)],
        ),
        (
            "HelmValuesError",
            "values don't meet the specifications of the schema(s) in the following chart(s):\n"
            "demo:\n- at '/replicas': got string, want integer\n",
            FailureKind.VALUES,
            "values don't meet the specifications of the schema(s) in the following chart(s): "
            "demo: - at '/replicas': got string, want integer",
            [],
        ),
        (
            "HelmChartLoadError",
            "error unpacking subchart README.md in demo: Chart.yaml file is missing",
            FailureKind.CHART,
            "error unpacking subchart README.md in demo: Chart.yaml file is missing",
            [],
        ),
    ],
)
def test_helm_errors_become_positioned_failures(error_type, message, kind, summary, positions):
    failure = failure_from_helm(error_type, message)
    assert failure.kind is kind
    assert failure.message == summary
    assert list(failure.positions) == positions
    assert failure.position == (positions[-1] if positions else None)
    assert error_positions(message) == tuple(positions)


# -- the cache -------------------------------------------------------------------------


class _Counting:
    def __init__(self, result: RenderResult | None = None) -> None:
        self.calls: list[RenderRequest] = []
        self.result = result

    def render(self, request: RenderRequest) -> RenderResult:
        self.calls.append(request)
        return self.result or Rendered({"demo/templates/a.yaml": f"v: {request.values}"})

    def render_all(self, requests: Sequence[RenderRequest]) -> list[RenderResult]:
        return [self.render(r) for r in requests]

    def close(self) -> None:
        pass


def test_renders_are_cached_by_their_inputs_blob_ids() -> None:
    inner = _Counting()
    renderer = CachingRenderer(inner)
    base = _chart({"a.yaml": "v: {{ .Values.v }}"})
    head_same = _chart({"a.yaml": "v: {{ .Values.v }}"})  # another tree, same blobs
    head_changed = _chart({"a.yaml": "v: {{ .Values.v | quote }}"})
    results = renderer.render_all(
        [_request(base, {"v": 1}), _request(head_same, {"v": 1}), _request(base, {"v": 1})]
    )
    assert len(inner.calls) == 1 and results[0] is results[1] is results[2]
    renderer.render(_request(head_same, {"v": 1}))
    assert len(inner.calls) == 1
    for changed in (
        _request(head_changed, {"v": 1}),
        _request(base, {"v": 2}),
        _request(base, {"v": 1}, name="other"),
        _request(base, {"v": 1}, kube_version="v1.30.0"),
        _request(base, {"v": 1}, api_versions=("example.com/v1",)),
        _request(base, {"v": 1}, skip_schema_validation=True),
    ):
        renderer.render(changed)
    assert len(inner.calls) == 7


def test_a_renderer_that_could_not_run_is_asked_again() -> None:
    inner = _Counting(RenderFailure(FailureKind.UNAVAILABLE, "did not start"))
    renderer = CachingRenderer(inner)
    request = _request(_chart({}))
    renderer.render(request)
    renderer.render(request)
    assert len(inner.calls) == 2


def test_the_cache_holds_a_bounded_size_least_recently_used_out() -> None:
    cache = RenderCache(max_bytes=12_000)
    big = Rendered({"x": "y" * 3000})
    for key in "abc":
        cache.put(key, big)
    cache.get("a")
    cache.put("d", big)
    assert cache.get("b") is None and cache.get("a") is big and cache.get("d") is big
    cache.put("huge", Rendered({"x": "y" * 20_000}))
    assert cache.get("huge") is None


# -- without the extra ------------------------------------------------------------------


def test_without_the_extra_everything_imports_and_the_renderer_says_why_not() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["helm_python"] = None  # as if not installed
        import bot.analysis.rendering, bot.analysis.helmchart, bot.analysis.helmvalues
        import bot.helm, bot.helm.pool, bot.helm.wire, bot.helm.child
        from bot.helm import renderer
        result = renderer()
        print(type(result).__name__)
        print(result.notice)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert proc.stdout.splitlines() == ["RendererUnavailable", NOT_INSTALLED_NOTICE]
    assert NOT_INSTALLED_NOTICE == (
        "HelmReleases of charts in this repository were not rendered: install flux-review[helm]"
    )


# -- with the Helm SDK, in child processes ------------------------------------------------


@pytest.fixture(scope="module")
def pool() -> Iterator[Any]:
    from bot.helm.pool import ChildRenderer

    renderer = ChildRenderer(workers=2)
    yield renderer
    renderer.close()


@pytest.fixture(scope="module")
def hostile() -> Iterator[Any]:
    """One child with small limits, so that breaking them is quick and certain."""
    from bot.helm.pool import ChildRenderer

    renderer = ChildRenderer(time_limit=3.0, memory_limit=512 << 20, max_output=1 << 20)
    yield renderer
    renderer.close()


# The kernel enforces the memory limit and the network namespace, and /proc shows them.
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="limits enforced and observed on Linux"
)


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@requires_helm
def test_renders_reuse_one_child_and_set_the_release(pool) -> None:
    chart = _chart({"cm.yaml": "name: {{ .Release.Name }}\nns: {{ .Release.Namespace }}\n"})
    starts = pool.starts
    for i in range(20):
        result = pool.render(_request(chart, name=f"r{i}", namespace="apps"))
        assert result == Rendered({"demo/templates/cm.yaml": f"name: r{i}\nns: apps\n"})
    assert pool.starts - starts <= 1


@requires_helm
def test_values_reach_the_templates_as_helm_controllers_do(pool) -> None:
    chart = _chart(
        {"cm.yaml": "n: {{ .Values.n }}\nmode: {{ .Values.mode }}\n"},
        **{"values.yaml": b"n: 1\nmode: 0755\nkept: 1\n"},
    )
    result = pool.render(_request(chart, {"n": 1000000, "kept": None}))
    # A million, from YAML or JSON values, is a float64 to Helm: printed as 1e+06.
    assert isinstance(result, Rendered)
    assert result.manifests["demo/templates/cm.yaml"] == "n: 1e+06\nmode: 493\n"


@requires_helm
def test_a_failing_helper_is_positioned_at_its_line_and_its_caller(pool) -> None:
    chart = _chart(
        {
            "_helpers.tpl": '{{- define "demo.port" -}}\n{{ .Values.service.port }}\n{{- end }}\n',
            "svc.yaml": 'kind: Service\nport: {{ include "demo.port" . }}\n',
        }
    )
    result = pool.render(_request(chart))
    assert isinstance(result, RenderFailure) and result.kind is FailureKind.TEMPLATE
    assert result.positions == (
        Position("demo/templates/svc.yaml", 2, 9),
        Position("demo/templates/_helpers.tpl", 2, 10),
    )
    assert chart.repository_path(result.positions[-1].template) == (
        "charts/demo/templates/_helpers.tpl",
        True,
    )
    assert result.message == "nil pointer evaluating interface {}.port"


@requires_helm
def test_values_the_schema_refuses_fail_unless_validation_is_disabled(pool) -> None:
    chart = _chart(
        {"cm.yaml": "r: {{ .Values.replicas }}\n"},
        **{
            "values.schema.json": b'{"type": "object", "properties": '
            b'{"replicas": {"type": "integer"}}}'
        },
    )
    refused = pool.render(_request(chart, {"replicas": "two"}))
    assert isinstance(refused, RenderFailure) and refused.kind is FailureKind.VALUES
    assert "at '/replicas': got string, want integer" in refused.message
    skipped = pool.render(_request(chart, {"replicas": "two"}, skip_schema_validation=True))
    assert skipped == Rendered({"demo/templates/cm.yaml": "r: two\n"})


@requires_helm
def test_requests_render_in_parallel_and_come_back_in_order(pool) -> None:
    chart = _chart({"cm.yaml": "i: {{ .Values.i }}\n"})
    results = pool.render_all([_request(chart, {"i": i}) for i in range(12)])
    assert [r.manifests["demo/templates/cm.yaml"] for r in results] == [
        f"i: {i}\n" for i in range(12)
    ]


@requires_helm
def test_a_template_that_loops_forever_hits_the_time_limit_and_rendering_goes_on(hostile) -> None:
    chart = _chart({"loop.yaml": "{{ range 100000000000 }}{{ end }}\n"})
    hostile.render(_request(_chart({"ok.yaml": "ok: 1\n"})))
    before = hostile.starts
    start = time.perf_counter()
    result = hostile.render(_request(chart))
    elapsed = time.perf_counter() - start
    assert result == RenderFailure(FailureKind.LIMIT, "the render exceeded its time limit (3 s)")
    assert not result.kind.definite
    assert elapsed < 3.0 + 2.0
    after = hostile.render(_request(_chart({"ok.yaml": "ok: 1\n"})))
    assert isinstance(after, Rendered)
    assert hostile.starts == before + 1  # the child that looped was replaced
    # The same chart for another HelmRelease costs nothing more.
    start = time.perf_counter()
    again = hostile.render(_request(chart, {"other": "values"}, name="other"))
    assert time.perf_counter() - start < 0.5
    assert again == RenderFailure(
        FailureKind.LIMIT,
        "not rendered: an earlier render of this chart exceeded its time limit (3 s)",
    )


@requires_helm
@linux_only
def test_a_gigabyte_string_hits_the_memory_limit_in_the_child_not_the_parent(hostile) -> None:
    rss = _rss_kib()
    for template in ('{{ repeat 1000000000 "x" }}\n', "{{ range until 1000000000 }}x{{ end }}\n"):
        result = hostile.render(_request(_chart({"big.yaml": template})))
        assert result == RenderFailure(
            FailureKind.LIMIT, "the render exceeded its memory limit (512 MiB)"
        ), template
    assert _rss_kib() - rss < 100 * 1024
    assert isinstance(hostile.render(_request(_chart({"ok.yaml": "ok: 1\n"}))), Rendered)


@requires_helm
def test_a_deeply_recursive_include_fails_as_helm_fails_it(hostile) -> None:
    chart = _chart(
        {"rec.yaml": '{{- define "r" }}{{ include "r" . }}{{ end }}{{ include "r" . }}\n'}
    )
    result = hostile.render(_request(chart))
    assert isinstance(result, RenderFailure) and result.kind is FailureKind.TEMPLATE
    assert result.message == (
        "error calling include: rendering template has a nested reference name: r: "
        "unable to execute template"
    )
    assert result.positions[0] == Position("demo/templates/rec.yaml", 1, 48)
    assert len(result.detail) < 70_000  # Helm's message repeats the chain a thousand times


@requires_helm
def test_output_beyond_the_limit_is_refused(hostile) -> None:
    result = hostile.render(_request(_chart({"big.yaml": '{{ repeat 2000000 "x" }}\n'})))
    assert result == RenderFailure(
        FailureKind.LIMIT, "the render exceeded its output limit (1 MiB)"
    )


@requires_helm
def test_nothing_reaches_outside_the_chart(pool) -> None:
    chart = _chart(
        {
            "probe.yaml": textwrap.dedent(
                """\
                lookup: {{ lookup "v1" "Secret" "kube-system" "" | toJson }}
                host: {{ getHostByName "example.com" | quote }}
                passwd: {{ .Files.Get "/etc/passwd" | len }}
                parent: {{ .Files.Get "../../Chart.yaml" | len }}
                own: {{ .Files.Get "files/a.txt" | trim }}
                env: {{ .Capabilities.HelmVersion.Version | hasPrefix "v4" }}
                """
            )
        },
        **{"files/a.txt": b"inside\n"},
    )
    result = pool.render(_request(chart))
    assert result == Rendered(
        {
            "demo/templates/probe.yaml": (
                'lookup: {}\nhost: ""\npasswd: 0\nparent: 0\nown: inside\nenv: true\n'
            )
        }
    )


@requires_helm
@linux_only
def test_the_child_has_no_network_where_linux_lets_it_leave(pool) -> None:
    info = pool.info()
    pool.render(_request(_chart({})))
    pid = pool._idle[0].proc.pid
    isolated = os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
    assert isolated == (info.network == "isolated"), info.network
    if os.geteuid() == 0:
        assert isolated


@requires_helm
def test_a_broken_sdk_makes_the_renderer_unavailable_not_the_review(monkeypatch, tmp_path) -> None:
    from bot.helm.pool import ChildRenderer

    bogus = tmp_path / "libhelm_c.so"
    bogus.write_bytes(b"not a library")
    monkeypatch.setenv("HELM_C_LIB", str(bogus))
    renderer = ChildRenderer(start_timeout=30)
    try:
        first = renderer.render(_request(_chart({})))
        assert isinstance(first, RenderFailure) and first.kind is FailureKind.UNAVAILABLE
        assert "could not load it" in first.message
        starts = renderer.starts
        again = renderer.render(_request(_chart({})))
        assert isinstance(again, RenderFailure) and again.kind is FailureKind.UNAVAILABLE
        assert renderer.starts == starts  # no restart loop
    finally:
        renderer.close()


@requires_helm
@linux_only
def test_no_child_outlives_its_renderer_or_its_parent() -> None:
    from bot.helm.pool import ChildRenderer

    renderer = ChildRenderer()
    renderer.render(_request(_chart({"a.yaml": "a: 1\n"})))
    children = [c.proc for c in renderer._idle]
    assert children and all(p.poll() is None for p in children)
    renderer.close()
    assert all(p.poll() is not None for p in children)

    # A parent that dies without closing anything: its child sees its stdin close.
    code = textwrap.dedent(
        """
        import os
        from bot.analysis.helmchart import ChartListing, assemble_chart
        from bot.analysis.rendering import RenderRequest
        from bot.analysis.tree import DictTree
        from bot.helm.pool import ChildRenderer
        files = {"c/Chart.yaml": b"apiVersion: v2\\nname: c\\nversion: 0.1.0\\n"}
        chart = assemble_chart(ChartListing(DictTree(files)), "c")
        renderer = ChildRenderer()
        renderer.render(RenderRequest(chart, {}, "r", "n"))
        print(renderer._idle[0].proc.pid, renderer._dir, flush=True)
        os._exit(0)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    pid_text, directory = proc.stdout.split()
    pid = int(pid_text)
    shutil.rmtree(directory, ignore_errors=True)  # what the dead parent left
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


# -- a HelmRelease, prepared ---------------------------------------------------------------


def test_a_helmrelease_is_prepared_as_helm_controller_would_render_it() -> None:
    chart = _chart({}, **{"values.yaml": b"replicas: 1\nimage: {tag: v0}\n"})
    artifact = {"apps/podinfo/values-prod.yaml": b"image: {tag: v1}\n"}
    spec = {
        "targetNamespace": "prod",
        "chart": {
            "spec": {"chart": "./charts/demo", "valuesFiles": ["apps/podinfo/values-prod.yaml"]}
        },
        "valuesFrom": [{"kind": "ConfigMap", "name": "podinfo-values"}],
        "values": {"owner": "team"},
        "install": {"disableSchemaValidation": True},
    }

    def lookup(kind: str, namespace: str, name: str):
        assert (kind, namespace, name) == ("ConfigMap", "flux-system", "podinfo-values")
        return Found({"values.yaml": b"image: {pullPolicy: Always}\n"}, "apps/podinfo/cm.yaml")

    prepared = prepare_release(
        chart, "podinfo", "flux-system", spec, lookup, artifact.get, kube_version="v1.31.0"
    )
    assert isinstance(prepared, PreparedRelease)
    request = prepared.request
    assert (request.release_name, request.namespace) == ("prod-podinfo", "prod")
    # valuesFiles replaced the chart's defaults; valuesFrom then values are user values.
    assert request.chart.files["values.yaml"] == b'{"image":{"tag":"v1"}}'
    assert request.values == {"image": {"pullPolicy": "Always"}, "owner": "team"}
    assert request.skip_schema_validation and request.kube_version == "v1.31.0"
    assert prepared.values_files == ("apps/podinfo/values-prod.yaml",)
    assert prepared.values_from == ("apps/podinfo/cm.yaml",)


def test_a_chart_from_a_helm_repository_reads_its_values_files_inside_the_chart() -> None:
    chart = _chart({}, **{"values.yaml": b"a: 1\n", "values-prod.yaml": b"a: 2\nb: 3\n"})
    spec = {"chart": {"spec": {"chart": "demo", "valuesFiles": ["values-prod.yaml"]}}}
    prepared = prepare_release(chart, "demo", "apps", spec, lambda *a: ABSENT)
    assert isinstance(prepared, PreparedRelease)
    assert prepared.request.chart.files["values.yaml"] == b'{"a":2,"b":3}'


def test_a_helmrelease_whose_values_cannot_be_composed_says_why() -> None:
    chart = _chart({}, **{"values.yaml": b"a: 1\n"})
    missing_file = {"chart": {"spec": {"valuesFiles": ["nope.yaml"]}}}
    artifact: dict[str, bytes] = {}
    assert prepare_release(chart, "x", "apps", missing_file, lambda *a: ABSENT, artifact.get) == (
        ValuesError("no values file found at path '/nope.yaml' (reference 'nope.yaml')")
    )
    secret = {"valuesFrom": [{"kind": "Secret", "name": "creds"}]}
    unknown = prepare_release(
        chart, "x", "apps", secret, lambda *a: Unknown("an ExternalSecret writes it")
    )
    assert unknown == ValuesUnknown(("Secret apps/creds: an ExternalSecret writes it",))


@requires_helm
@linux_only
def test_a_forked_process_leaves_its_parents_children_alone(pool) -> None:
    # The YAML scan forks workers (bot/analysis/parallel.py); they inherit the pool.
    chart = _chart({"a.yaml": "a: {{ .Values.a }}\n"})
    assert isinstance(pool.render(_request(chart, {"a": 1})), Rendered)
    children = [c.proc.pid for c in pool._idle]
    pid = os.fork()
    if pid == 0:  # the forked process: it must neither render through nor kill them
        result = pool.render(_request(chart, {"a": 2}))
        pool.close()
        os._exit(0 if isinstance(result, RenderFailure) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert all(_alive(c) for c in children)
    assert pool.render(_request(chart, {"a": 3})) == Rendered({"demo/templates/a.yaml": "a: 3\n"})
    assert Path(pool._dir).is_dir()  # where the next child starts
