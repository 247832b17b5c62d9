"""A chart of the repository as source-controller packages it: `.helmignore`, vendored
subcharts, `file://` dependencies, and what is never fetched."""

from __future__ import annotations

import gzip
import io
import tarfile
import time

from bot.analysis.helmchart import (
    MAX_CHART_SIZE,
    MAX_FILE_SIZE,
    ChartFiles,
    ChartListing,
    ChartProblem,
    assemble_chart,
    chart_values_files,
)
from bot.analysis.helmvalues import ValuesError, ValuesFiles
from bot.analysis.tree import DictTree, git_blob_id

APP = b"apiVersion: v2\nname: app\nversion: 1.0.0\n"


def _assemble(files: dict[str, bytes], chart: str = "charts/app", include=None):
    return assemble_chart(ChartListing(DictTree(files), include), chart)


def _chart(files: dict[str, bytes], chart: str = "charts/app", include=None) -> ChartFiles:
    result = _assemble(files, chart, include)
    assert isinstance(result, ChartFiles), result
    return result


def _tgz(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue())


def test_helmignore_and_helms_default_rule_leave_files_out() -> None:
    chart = _chart(
        {
            "charts/app/Chart.yaml": APP,
            "charts/app/.helmignore": b"*.md\nci/\n",
            "charts/app/README.md": b"# app\n",
            "charts/app/ci/test-values.yaml": b"a: 1\n",
            "charts/app/templates/.draft.yaml": b"kind: X\n",
            "charts/app/templates/cm.yaml": b"kind: ConfigMap\n",
            "charts/other/Chart.yaml": b"apiVersion: v2\nname: other\nversion: 1.0.0\n",
        }
    )
    # .helmignore itself is one of the chart's files (Helm's `.Files` sees it).
    assert sorted(chart.files) == [".helmignore", "Chart.yaml", "templates/cm.yaml"]
    assert chart.name == "app" and chart.directory == "charts/app"
    assert chart.sources == {
        "charts/app/.helmignore",
        "charts/app/Chart.yaml",
        "charts/app/templates/cm.yaml",
    }


def test_a_double_star_in_helmignore_fails_the_chart_on_its_line() -> None:
    problem = _assemble(
        {"charts/app/Chart.yaml": APP, "charts/app/.helmignore": b"# docs\n**/*.md\n"}
    )
    assert problem == ChartProblem(
        "double-star (**) syntax is not supported ('**/*.md')", "charts/app/.helmignore", 2
    )


def test_the_artifacts_filter_and_a_byte_order_mark_apply() -> None:
    chart = _chart(
        {
            "charts/app/Chart.yaml": APP,
            "charts/app/templates/a.yaml": b"\xef\xbb\xbfkind: A\n",
            "charts/app/templates/b.yaml": b"kind: B\n",
        },
        include=lambda path: not path.endswith("b.yaml"),
    )
    assert chart.files == {"Chart.yaml": APP, "templates/a.yaml": b"kind: A\n"}
    assert chart.blob_ids["templates/a.yaml"] == git_blob_id(b"kind: A\n")


def test_a_file_larger_than_helm_loads_fails_the_chart() -> None:
    problem = _assemble(
        {"charts/app/Chart.yaml": APP, "charts/app/files/big.bin": b"x" * (MAX_FILE_SIZE + 1)}
    )
    assert isinstance(problem, ChartProblem) and problem.definite
    assert problem.path == "charts/app/files/big.bin"
    assert "larger than the maximum file size" in problem.message


def test_vendored_subcharts_map_back_to_their_files_under_their_aliases() -> None:
    chart = _chart(
        {
            "charts/app/Chart.yaml": APP
            + b"dependencies:\n  - name: redis\n    version: 1.x\n    alias: cache\n",
            "charts/app/charts/redis-dir/Chart.yaml": (
                b"apiVersion: v2\nname: redis\nversion: 1.2.0\n"
            ),
            "charts/app/charts/redis-dir/templates/sts.yaml": b"kind: StatefulSet\n",
        }
    )
    assert "charts/redis-dir/templates/sts.yaml" in chart.files
    assert chart.repository_path("app/charts/cache/templates/sts.yaml") == (
        "charts/app/charts/redis-dir/templates/sts.yaml",
        True,
    )
    assert chart.repository_path("app/templates/x.yaml") == ("charts/app/templates/x.yaml", True)
    assert chart.repository_path("other/templates/x.yaml") is None


def test_a_file_dependency_comes_from_the_same_repository_renamed_to_its_alias() -> None:
    chart = _chart(
        {
            "charts/app/Chart.yaml": APP
            + b"dependencies:\n  - name: common\n    version: ~1.2.0\n"
            + b"    repository: file://../lib/common\n    alias: base\n",
            "charts/lib/common/Chart.yaml": (
                b"apiVersion: v2\nname: common # shared\nversion: 1.2.3\ntype: library\n"
            ),
            "charts/lib/common/.helmignore": b"*.txt\n",
            "charts/lib/common/notes.txt": b"left out\n",
            "charts/lib/common/templates/_names.tpl": b'{{- define "x" -}}x{{- end -}}\n',
        }
    )
    assert chart.files["charts/base/Chart.yaml"] == (
        b'apiVersion: v2\nname: "base" # shared\nversion: 1.2.3\ntype: library\n'
    )
    assert "charts/base/notes.txt" not in chart.files
    assert chart.files["charts/base/templates/_names.tpl"].startswith(b"{{- define")
    assert "charts/lib/common/templates/_names.tpl" in chart.sources
    assert chart.directories == {"charts/app", "charts/lib/common"}
    assert chart.repository_path("app/charts/base/templates/_names.tpl") == (
        "charts/lib/common/templates/_names.tpl",
        True,
    )


def test_a_file_dependency_must_exist_and_satisfy_its_version() -> None:
    declared = (
        APP
        + b"dependencies:\n  - name: common\n    version: 2.x\n    repository: file://../common\n"
    )
    common = b"apiVersion: v2\nname: common\nversion: 1.2.3\n"
    missing = _assemble({"charts/app/Chart.yaml": declared})
    assert missing == ChartProblem(
        "failed to add local dependency 'common': no chart found at '/charts/common' "
        "(reference 'file://../common')",
        "charts/app/Chart.yaml",
        5,
    )
    old = _assemble({"charts/app/Chart.yaml": declared, "charts/common/Chart.yaml": common})
    assert isinstance(old, ChartProblem) and old.definite
    assert old.message == (
        "failed to add local dependency 'common': can't get a valid version for constraint '2.x'"
    )


def test_a_remote_dependency_that_charts_does_not_vendor_is_not_rendered() -> None:
    problem = _assemble(
        {
            "charts/app/Chart.yaml": APP
            + b"dependencies:\n  - name: postgresql\n    version: 15.x\n"
            + b"    repository: oci://registry-1.docker.io/bitnamicharts\n"
        }
    )
    assert problem == ChartProblem(
        "dependency 'postgresql' comes from oci://registry-1.docker.io/bitnamicharts and is "
        "not vendored in charts/: it is not fetched, so the chart is not rendered",
        "charts/app/Chart.yaml",
        5,
        definite=False,
    )


def test_a_vendored_archive_counts_as_the_dependency() -> None:
    archive = _tgz(
        {
            "postgresql/Chart.yaml": b"apiVersion: v2\nname: postgresql\nversion: 15.2.0\n",
            "postgresql/templates/sts.yaml": b"kind: StatefulSet\n",
        }
    )
    chart = _chart(
        {
            "charts/app/Chart.yaml": APP
            + b"dependencies:\n  - name: postgresql\n    version: 15.x\n"
            + b"    repository: https://charts.example.com\n",
            "charts/app/charts/postgresql-15.2.0.tgz": archive,
        }
    )
    assert chart.files["charts/postgresql-15.2.0.tgz"] == archive
    assert chart.repository_path("app/charts/postgresql/templates/sts.yaml") == (
        "charts/app/charts/postgresql-15.2.0.tgz",
        False,
    )


def test_an_archive_bomb_in_charts_is_read_within_helms_bounds() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("bomb/zeros")
        info.size = MAX_CHART_SIZE + (1 << 20)
        tar.addfile(info, io.BytesIO(b"\0" * info.size))
    bomb = gzip.compress(buffer.getvalue(), compresslevel=1)
    assert len(bomb) < MAX_FILE_SIZE
    start = time.perf_counter()
    result = _assemble(
        {
            "charts/app/Chart.yaml": APP + b"dependencies:\n  - name: bomb\n    version: 1.x\n",
            "charts/app/charts/bomb.tgz": bomb,
        }
    )
    elapsed = time.perf_counter() - start
    # Read only up to Helm's 100 MiB limit: the archive is a chart Helm cannot load, and
    # the render says so with Helm's message.
    assert isinstance(result, ChartFiles)
    assert not any(o.path.endswith("bomb.tgz") for o in result.origins)
    assert elapsed < 10


def test_the_lock_decides_what_is_missing_when_there_is_one() -> None:
    files = {
        "charts/app/Chart.yaml": APP
        + b"dependencies:\n  - name: redis\n    version: 1.x\n    alias: cache\n"
        + b"    repository: https://charts.example.com\n",
        "charts/app/Chart.lock": b"dependencies:\n- name: redis\n  version: 1.2.0\n"
        + b"  repository: https://charts.example.com\n",
        "charts/app/charts/redis/Chart.yaml": b"apiVersion: v2\nname: redis\nversion: 1.2.0\n",
    }
    assert isinstance(_assemble(files), ChartFiles)


def test_as_many_subcharts_as_dependencies_means_none_is_missing_whatever_their_names() -> None:
    # source-controller's collectMissing compares the counts first.
    files = {
        "charts/app/Chart.yaml": APP
        + b"dependencies:\n  - name: redis\n    version: 1.x\n"
        + b"    repository: https://charts.example.com\n",
        "charts/app/charts/valkey/Chart.yaml": b"apiVersion: v2\nname: valkey\nversion: 1.0.0\n",
    }
    assert isinstance(_assemble(files), ChartFiles)


def test_the_key_changes_with_the_charts_content_and_nothing_else() -> None:
    files = {
        "charts/app/Chart.yaml": APP,
        "charts/app/templates/cm.yaml": b"kind: ConfigMap\n",
        "apps/unrelated.yaml": b"kind: Namespace\n",
    }
    key = _chart(files).key
    assert _chart({**files, "apps/unrelated.yaml": b"kind: Other\n"}).key == key
    assert _chart({**files, "charts/app/templates/cm.yaml": b"kind: Secret\n"}).key != key
    assert _chart({**files, "charts/app/templates/new.yaml": b"kind: X\n"}).key != key


def test_values_files_replace_the_charts_defaults() -> None:
    chart = _chart(
        {
            "charts/app/Chart.yaml": APP,
            "charts/app/values.yaml": b"replicas: 1\n",
            "charts/app/values-prod.yaml": b"replicas: 3\n",
        }
    )
    replaced = chart.with_default_values({"image": {"tag": "v2"}})
    assert isinstance(replaced, ChartFiles)
    assert replaced.files["values.yaml"] == b'{"image":{"tag":"v2"}}'
    assert replaced.key != chart.key and chart.files["values.yaml"] == b"replicas: 1\n"
    assert chart.with_default_values({}) != chart  # an empty merge empties the defaults
    without = _chart({"charts/app/Chart.yaml": APP})
    assert without.with_default_values({"a": 1}) == ValuesError(
        "failed to locate values file: values.yaml"
    )
    # From a Helm repository, valuesFiles are paths inside the chart.
    assert chart_values_files(chart, ["values.yaml", "values-prod.yaml"]) == ValuesFiles(
        {"replicas": 3}, ("values.yaml", "values-prod.yaml")
    )
    assert isinstance(chart_values_files(chart, ["templates/x.yaml"]), ValuesError)


def test_skipping_schema_validation_drops_the_schemas_of_the_chart_and_its_subcharts() -> None:
    chart = _chart(
        {
            "charts/app/Chart.yaml": APP,
            "charts/app/values.schema.json": b"{}",
            "charts/app/files/values.schema.json": b"{}",
            "charts/app/charts/sub/Chart.yaml": b"apiVersion: v2\nname: sub\nversion: 1.0.0\n",
            "charts/app/charts/sub/values.schema.json": b"{}",
        }
    )
    assert sorted(chart.without_schemas().files) == [
        "Chart.yaml",
        "charts/sub/Chart.yaml",
        "files/values.schema.json",
    ]


def test_no_chart_yaml_is_no_chart() -> None:
    problem = _assemble({"charts/app/templates/x.yaml": b"kind: X\n"})
    assert isinstance(problem, ChartProblem) and problem.definite
