"""Inline suppression: `# flux-review: ignore RULE-ID -- reason` on the line or above."""

from __future__ import annotations

from tests.analysis_helpers import (
    chart_yaml,
    deployment,
    flux_kustomization,
    helm_release,
    helm_repository,
    line_of,
    repo,
    run,
)

PATH = "apps/podinfo.yaml"
BAD = "ghcr.io/Example/podinfo:6.5.4"
IMAGE_LINE = f"          image: {BAD}"


def applied(text: str) -> dict[str, str | bytes]:
    return repo({"clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"), PATH: text})


def base_text() -> str:
    return deployment("podinfo", BAD)


def test_unsuppressed_finding_is_reported() -> None:
    assert [f.rule for f in run(applied(base_text()))] == ["invalid-image-reference"]


def test_comment_on_the_same_line() -> None:
    text = base_text().replace(
        IMAGE_LINE,
        IMAGE_LINE + "  # flux-review: ignore invalid-image-reference -- Harbor accepts it",
    )
    assert run(applied(text)) == []


def test_comment_on_the_line_above() -> None:
    text = base_text().replace(
        IMAGE_LINE,
        "          # flux-review: ignore invalid-image-reference -- Harbor accepts it\n"
        + IMAGE_LINE,
    )
    assert run(applied(text)) == []


def test_comment_two_lines_above_does_not_count() -> None:
    text = base_text().replace(
        IMAGE_LINE,
        "          # flux-review: ignore invalid-image-reference -- Harbor accepts it\n"
        "          imagePullPolicy: Always\n" + IMAGE_LINE,
    )
    findings = run(applied(text))
    assert [(f.rule, f.line) for f in findings] == [
        ("invalid-image-reference", line_of(text, "image: ghcr"))
    ]


def test_comment_for_another_rule_does_not_count() -> None:
    text = base_text().replace(
        IMAGE_LINE, IMAGE_LINE + "  # flux-review: ignore yaml-syntax-error -- not this one"
    )
    assert [f.rule for f in run(applied(text))] == ["invalid-image-reference"]


def test_several_rules_in_one_comment() -> None:
    text = base_text().replace(
        IMAGE_LINE,
        IMAGE_LINE + "  # flux-review: ignore yaml-syntax-error, invalid-image-reference -- vendor",
    )
    assert run(applied(text)) == []


def test_text_in_a_string_is_not_a_comment() -> None:
    text = base_text().replace(
        IMAGE_LINE,
        '          args: ["# flux-review: ignore invalid-image-reference -- x"]\n' + IMAGE_LINE,
    )
    assert [f.rule for f in run(applied(text))] == ["invalid-image-reference"]


def test_suppression_on_a_reference_elsewhere() -> None:
    release = helm_release("podinfo", version="1.1.12", source="charts").replace(
        '      version: "1.1.12"',
        "      # flux-review: ignore chart-version-mismatch -- canary pinned on purpose\n"
        '      version: "1.1.12"',
    )
    files = repo(
        {
            "clusters/prod/infrastructure.yaml": flux_kustomization(
                "infrastructure", "./infrastructure"
            ),
            "infrastructure/charts.yaml": helm_repository("charts"),
            "infrastructure/podinfo.yaml": release,
            "charts/podinfo/Chart.yaml": chart_yaml("podinfo", "1.1.13"),
        }
    )
    assert run(files) == []


def test_suppressed_template_still_hides_the_yaml_error_it_causes() -> None:
    text = deployment("podinfo", "{{ .Values.image }}").replace(
        "          image: {{ .Values.image }}",
        "          # flux-review: ignore helm-template-in-raw-manifest -- rendered in CI\n"
        "          image: {{ .Values.image }}",
    )
    assert run(applied(text)) == []
