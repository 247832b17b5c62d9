"""Findings land on the line GitHub shows, whatever other line breaks a file holds.

GitHub numbers lines by `\\n` alone. libyaml (like go-yaml) also breaks lines on a lone
`\\r`, NEL, U+2028 and U+2029, and Python's `splitlines` on those and `\\v`, `\\f`,
`\\x1c`-`\\x1e`: a review comment placed by either count would land lines below the
mistake, or past the end of the file.
"""

from __future__ import annotations

import pytest

from bot.analysis.lines import split_lines, yaml_line_map
from tests.analysis_helpers import (
    configmap,
    dedent,
    deployment,
    flux_kustomization,
    helm_release,
    helm_repository,
    kustomization,
    line_of,
    of_rule,
    repo,
    run,
)

# Line breaks to libyaml and go-yaml, not to git.
YAML_BREAKS = ["\x85", "\u2028", "\u2029", "\r"]
# Line breaks to `str.splitlines` only; YAML refuses them as control characters.
CONTROL = ["\x0b", "\x0c", "\x1c"]


def _files(odd: str, kustomization_too: bool = True) -> dict[str, str | bytes]:
    deploy = dedent(
        f"""
        # owner: team-web (pager rota){odd}{odd}
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec:
          replicas: {{{{ .Values.replicas }}}}
          template:
            spec:
              containers:
                - name: web
                  image: nginx:1.27
        """
    )
    worker = f"# batch jobs{odd}{odd}\n" + deployment("worker", '"ghcr.io/example/Worker:1.0"')
    release = (
        f"# chart for web{odd}{odd}\n"
        + helm_repository("charts")
        + "---\n"
        + helm_release("web", source="missing-repo")
    )
    return repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/kustomization.yaml": (f"# layer{odd}{odd}\n" if kustomization_too else "")
            + kustomization(["deploy.yaml", "release.yaml", "worker.yaml", "missing.yaml"]),
            "apps/deploy.yaml": deploy,
            "apps/worker.yaml": worker,
            "apps/release.yaml": release,
        }
    )


@pytest.mark.parametrize("odd", YAML_BREAKS, ids=[f"U+{ord(c):04X}" for c in YAML_BREAKS])
def test_findings_keep_git_line_numbers(odd: str) -> None:
    files = _files(odd)
    findings = run(files, report_all=True)
    deploy = str(files["apps/deploy.yaml"])
    release = str(files["apps/release.yaml"])

    templated = of_rule(findings, "helm-template-in-raw-manifest")
    assert [(f.path, f.line) for f in templated] == [
        ("apps/deploy.yaml", line_of(deploy, "replicas:"))
    ]
    dangling = of_rule(findings, "dangling-reference")
    assert [(f.path, f.line) for f in dangling] == [
        ("apps/release.yaml", line_of(release, "name: missing-repo"))
    ]
    images = of_rule(findings, "invalid-image-reference")
    worker = str(files["apps/worker.yaml"])
    assert [(f.path, f.line) for f in images] == [("apps/worker.yaml", line_of(worker, "Worker"))]
    missing = of_rule(findings, "kustomize-missing-resource")
    kfile = str(files["apps/kustomization.yaml"])
    assert [(f.path, f.line) for f in missing] == [
        ("apps/kustomization.yaml", line_of(kfile, "- missing.yaml"))
    ]
    assert len(findings) == 4


@pytest.mark.parametrize("odd", CONTROL, ids=[f"U+{ord(c):04X}" for c in CONTROL])
def test_control_characters_are_reported_where_they_are(odd: str) -> None:
    files = _files(odd, kustomization_too=False)
    findings = run(files, report_all=True)
    deploy = str(files["apps/deploy.yaml"])
    kfile = str(files["apps/kustomization.yaml"])
    assert sorted((f.rule, f.path, f.line) for f in findings) == [
        ("helm-template-in-raw-manifest", "apps/deploy.yaml", line_of(deploy, "replicas:")),
        ("kustomize-missing-resource", "apps/kustomization.yaml", line_of(kfile, "missing")),
        ("yaml-syntax-error", "apps/deploy.yaml", 1),
        ("yaml-syntax-error", "apps/release.yaml", 1),
        ("yaml-syntax-error", "apps/worker.yaml", 1),
    ]


@pytest.mark.parametrize("odd", ["\x85", "\u2028", "\r"], ids=["NEL", "LS", "CR"])
def test_yaml_error_line_after_an_odd_break(odd: str) -> None:
    text = f"# {odd}{odd}{odd}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n"
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/kustomization.yaml": kustomization(["cm.yaml"]),
            "apps/cm.yaml": text,
        }
    )
    errors = of_rule(run(files, report_all=True), "yaml-syntax-error")
    assert [(f.path, f.line) for f in errors] == [("apps/cm.yaml", 6)]


def test_split_lines_counts_newlines_only() -> None:
    text = "a\x85b\r\nc\u2028d\re\n\nf"
    assert split_lines(text) == ["a\x85b", "c\u2028d\re", "", "f"]
    assert "".join(split_lines(text, keepends=True)) == text
    assert split_lines("") == []
    assert split_lines("x\n") == ["x"]


def test_yaml_line_map_only_when_counts_differ() -> None:
    assert yaml_line_map("a: 1\r\nb: 2\n") is None
    assert yaml_line_map(b"a: 1\nb: 2\n") is None
    # libyaml lines: "a", "b", "c\r\n" -> git lines 1, 1, 2, and "d" on git line 2 too.
    assert yaml_line_map("a\x85b\u2028c\r\nd\re") == [1, 1, 1, 2, 2]
    assert yaml_line_map("a\x85b".encode()) == [1, 1]


def test_a_yaml_only_line_break_inside_a_comment_is_explained() -> None:
    # go-yaml, like libyaml, ends the comment at the NEL: `(pager rota)` becomes content.
    text = "# owner: team-web\x85(pager rota)\n" + configmap("a")
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/kustomization.yaml": kustomization(["cm.yaml"]),
            "apps/cm.yaml": text,
        }
    )
    [error] = run(files)
    assert (error.rule, error.line) == ("yaml-syntax-error", 2)
    assert "a line break that only YAML sees" in error.message
