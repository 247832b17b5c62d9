"""invalid-suppression: `# flux-review:` comments that silence nothing."""

from __future__ import annotations

import pytest

from tests.analysis_helpers import deployment, flux_kustomization, line_of, repo, run

RULE = "invalid-suppression"
PATH = "apps/podinfo.yaml"
BAD = "ghcr.io/Example/podinfo:6.5.4"


def with_comment(comment: str) -> tuple[dict[str, str | bytes], str]:
    text = deployment("podinfo", BAD).replace(f"image: {BAD}", f"image: {BAD}  {comment}")
    files = repo({"clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"), PATH: text})
    return files, text


@pytest.mark.parametrize(
    ("comment", "says"),
    [
        ("# flux-review: ignore invalid-image-reference", "without a reason"),
        ("# flux-review: ignore invalid-image-reference --", "without a reason"),
        ("# flux-review: ignore invalid-image-ref -- mirrored", "unknown rule invalid-image-ref"),
        ("# flux-review: disable invalid-image-reference", "is not `flux-review: ignore"),
        ("# flux-review: ignore -- vendor image", "is not `flux-review: ignore"),
    ],
)
def test_invalid_suppressions_are_reported_and_silence_nothing(comment: str, says: str) -> None:
    files, text = with_comment(comment)
    findings = run(files)
    line = line_of(text, "image:")
    assert [(f.rule, f.line) for f in findings] == [
        ("invalid-image-reference", line),
        (RULE, line),
    ]
    notice = findings[1]
    assert (notice.path, notice.severity) == (PATH, "notice")
    assert says in notice.message
    assert "silences nothing" in notice.message


def test_valid_suppression_is_not_reported() -> None:
    files, _ = with_comment("# flux-review: ignore invalid-image-reference -- vendor mirror")
    assert run(files) == []


def test_suppressions_in_files_nobody_reads_are_still_checked() -> None:
    files = repo(
        {
            "docs/example.yaml": "# flux-review: ignore helm-template-in-raw-manifest\nkey: v\n",
        }
    )
    findings = run(files)
    assert [(f.rule, f.path, f.line) for f in findings] == [(RULE, "docs/example.yaml", 1)]
