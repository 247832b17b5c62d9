"""Record what `helm template` renders for the fixture charts of tests/helmcharts.

    python scripts/record_helm_fixtures.py --helm /path/to/helm

For each case of tests/helmcharts/cases.yaml, the chart is copied out, its `file://`
dependencies are packaged into `charts/` (`helm dependency build`, offline: the way
source-controller adds them), and `helm template` renders it with the case's release,
namespace, Kubernetes version, API versions and values. Its output (or its error) is
written to tests/helmcharts/expected/<case>.yaml (.error), headed by the Helm version,
for tests/test_helm_fixtures.py to compare the renderer with.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "helmcharts"


def _has_file_dependency(chart: Path) -> bool:
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    return any(
        str(d.get("repository", "")).startswith("file://") for d in meta.get("dependencies") or []
    )


def record(helm: str, case: dict[str, Any], version: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        shutil.copytree(FIXTURES / "repo", repo)
        chart = repo / case["chart"]
        if _has_file_dependency(chart):
            subprocess.run(
                [helm, "dependency", "build", str(chart)], check=True, capture_output=True
            )
        values = Path(tmp) / "values.json"
        values.write_text(json.dumps(case.get("values") or {}))
        command = [
            helm,
            "template",
            case["release"],
            str(chart),
            "--namespace",
            case["namespace"],
            "--kube-version",
            case["kubeVersion"],
            "--include-crds",
            "--values",
            str(values),
        ]
        for api in case.get("apiVersions") or []:
            command += ["--api-versions", api]
        proc = subprocess.run(command, capture_output=True, text=True, env={"HOME": tmp})
    header = f"# helm template, Helm {version}: recorded by scripts/record_helm_fixtures.py\n"
    expected = FIXTURES / "expected"
    expected.mkdir(exist_ok=True)
    ok = expected / f"{case['name']}.yaml"
    failed = expected / f"{case['name']}.error"
    if proc.returncode == 0:
        ok.write_text(header + proc.stdout)
        failed.unlink(missing_ok=True)
    else:
        failed.write_text(header + proc.stderr)
        ok.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--helm", required=True, help="a helm v4 binary")
    args = parser.parse_args()
    version = subprocess.run(
        [args.helm, "version", "--template", "{{ .Version }}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    for case in yaml.safe_load((FIXTURES / "cases.yaml").read_text()):
        record(args.helm, case, version)
        print(case["name"])


if __name__ == "__main__":
    main()
