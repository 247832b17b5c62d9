"""Five charts of tests/helmcharts/repo rendered by the renderer and by `helm template`.

Each case of tests/helmcharts/cases.yaml is assembled from the repository the way
source-controller packages it and rendered by the Helm SDK in its child process; the
result is compared with tests/helmcharts/expected/<case>, the output of `helm template`
(Helm v4.1.4, the version each file names; scripts/record_helm_fixtures.py records them)
on the same chart, release, namespace, Kubernetes version, API versions and values. The
documents of each template must be the same, text for text; an error must be the same
message at the same template line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.analysis.helmchart import ChartFiles, ChartListing, assemble_chart
from bot.analysis.rendering import FailureKind, Rendered, RenderFailure, RenderRequest
from bot.analysis.tree import DictTree
from tests.helm_support import requires_helm

FIXTURES = Path(__file__).resolve().parent / "helmcharts"
CASES: list[dict[str, Any]] = yaml.safe_load((FIXTURES / "cases.yaml").read_text())


@pytest.fixture(scope="module")
def renderer() -> Iterator[Any]:
    from bot.helm.pool import ChildRenderer

    pool = ChildRenderer()
    yield pool
    pool.close()


def _listing() -> ChartListing:
    root = FIXTURES / "repo"
    files = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    return ChartListing(DictTree(files))


# Helm's releaseutil.SplitManifests: documents split on `---` lines, trimmed, empty ones
# dropped.
_SEPARATOR = re.compile(r"(?:^|\s*\n)---\s*")


def _documents(text: str) -> list[str]:
    return [d.strip() for d in _SEPARATOR.split(text) if d.strip()]


def _helm_template(text: str) -> dict[str, list[str]]:
    """`helm template` output: `---\\n# Source: <template>\\n<document>` per document."""
    out: dict[str, list[str]] = {}
    for block in re.split(r"^---\n(?=# Source: )", text, flags=re.M)[1:]:
        head, _, body = block.partition("\n")
        out.setdefault(head.removeprefix("# Source: "), []).append(body.strip())
    return {k: sorted(v) for k, v in out.items()}


def _rendered(result: Rendered) -> dict[str, list[str]]:
    out = {name: sorted(_documents(text)) for name, text in result.manifests.items()}
    out.update({name: sorted(_documents(text)) for name, text in result.crds.items()})
    return {k: v for k, v in out.items() if v}


def _request(case: dict[str, Any], chart: ChartFiles) -> RenderRequest:
    return RenderRequest(
        chart,
        case.get("values") or {},
        case["release"],
        case["namespace"],
        kube_version=case["kubeVersion"],
        api_versions=tuple(case.get("apiVersions") or ()),
    )


def _expected(name: str) -> tuple[str, str]:
    for suffix in ("yaml", "error"):
        path = FIXTURES / "expected" / f"{name}.{suffix}"
        if path.exists():
            header, _, body = path.read_text().partition("\n")
            assert header.startswith("# helm template, Helm v4."), header
            return suffix, body
    raise AssertionError(f"no expected output for {name}")


@requires_helm
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_renderer_renders_what_helm_template_renders(renderer, case) -> None:
    chart = assemble_chart(_listing(), case["chart"])
    assert isinstance(chart, ChartFiles), chart
    result = renderer.render(_request(case, chart))
    kind, expected = _expected(case["name"])
    if kind == "yaml":
        assert isinstance(result, Rendered), result
        assert _rendered(result) == _helm_template(expected)
        return
    error = expected.removeprefix("Error: ").split("\n\nUse --debug")[0].strip()
    if error == "library charts are not installable":
        # The Helm CLI refuses a library chart (pkg/cmd/install.go); helm-controller's
        # install action does not check, and a library renders nothing.
        assert isinstance(result, Rendered) and not result.manifests
        return
    assert isinstance(result, RenderFailure), result
    assert result.kind.definite
    assert (result.detail or result.message) == error


def test_the_fixture_cases_cover_what_they_are_for() -> None:
    """The features the fixtures exist to show are in the charts they render."""
    listing = _listing()
    text = {
        case["name"]: b"".join(
            data for data in getattr(assemble_chart(listing, case["chart"]), "files", {}).values()
        ).decode()
        for case in CASES
    }
    assert {"include", "nindent", "required", "default", "tpl"} <= set(
        re.findall(r"\b(include|nindent|required|default|tpl)\b", text["webapp"])
    )
    assert "condition: cache.enabled" in text["platform"] and "alias: cache" in text["platform"]
    assert "file://../library/common" in text["api-on-1.30"]
    assert "type: library" in text["library"]
    assert ".Capabilities.KubeVersion" in text["api-on-1.30"]
    assert ".Capabilities.APIVersions.Has" in text["api-with-servicemonitor"]
    assert "lookup" in text["hardened"] and ".Files.Get" in text["hardened"]


@requires_helm
def test_a_template_error_points_at_the_repository_line(renderer) -> None:
    case = next(c for c in CASES if c["name"] == "webapp-without-owner")
    chart = assemble_chart(_listing(), case["chart"])
    assert isinstance(chart, ChartFiles)
    result = renderer.render(_request(case, chart))
    assert isinstance(result, RenderFailure) and result.kind is FailureKind.TEMPLATE
    assert result.message == "owner is required: set .Values.owner"
    position = result.position
    assert position is not None
    path, exact = chart.repository_path(position.template) or ("", False)
    assert (path, exact, position.line) == ("charts/webapp/templates/service.yaml", True, 6)
    line = (FIXTURES / "repo" / path).read_text().splitlines()[position.line - 1]
    assert 'include "webapp.labels"' in line
