"""Rendering the check run and the review: pure functions, no GitHub."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from bot.analysis import Finding, Severity
from bot.report.checkrun import (
    MAX_ANNOTATIONS_PER_REQUEST,
    annotation,
    annotation_batches,
    conclusion_for,
    count_title,
    render_summary,
)
from bot.report.review import (
    comment_body,
    fingerprints_in,
    hunk_ranges,
    marker,
    plan_comments,
)

RULE = "helm-template-in-raw-manifest"


def finding(
    path: str = "apps/app/deployment.yaml",
    line: int = 3,
    *,
    severity: Severity = Severity.ERROR,
    rule: str = RULE,
    message: str = "breaks",
    end_line: int | None = None,
    suggestion: str | None = None,
    anchor: str | None = None,
) -> Finding:
    return Finding(
        rule=rule,
        severity=severity,
        path=path,
        line=line,
        message=message,
        end_line=end_line,
        suggestion=suggestion,
        anchor=anchor if anchor is not None else f"{path}:{line}:{message}",
    )


PATCH = """@@ -1,4 +1,5 @@
 apiVersion: apps/v1
 kind: Deployment
-image: app:1.0
+image: {{ .Values.global.imageRegistry }}/app:1.0
+replicas: 2
 metadata: {}
@@ -20,3 +21,0 @@
-a
-b
-c
@@ -40 +40 @@
-x
+y"""


def test_title_counts_by_severity() -> None:
    assert count_title([]) == "No problems found"
    assert (
        count_title([finding(), finding(line=4), finding(severity=Severity.WARNING)])
        == "2 errors, 1 warning"
    )
    assert count_title([finding(severity=Severity.NOTICE)]) == "1 notice"


def test_conclusion_follows_the_threshold() -> None:
    warning = finding(severity=Severity.WARNING)
    assert conclusion_for([warning], Severity.ERROR) == "success"
    assert conclusion_for([warning], Severity.WARNING) == "failure"
    assert conclusion_for([finding()], Severity.ERROR) == "failure"
    assert conclusion_for([], Severity.NOTICE) == "success"


def test_annotation_fields() -> None:
    data = annotation(finding(end_line=5, severity=Severity.WARNING))
    assert data == {
        "path": "apps/app/deployment.yaml",
        "start_line": 3,
        "end_line": 5,
        "annotation_level": "warning",
        "title": RULE,
        "message": "breaks",
    }
    plain = annotation(finding())
    assert plain is not None
    assert plain["end_line"] == 3
    assert plain["annotation_level"] == "failure"
    notice = annotation(finding(severity=Severity.NOTICE))
    assert notice is not None
    assert notice["annotation_level"] == "notice"


def test_annotations_go_out_fifty_at_a_time() -> None:
    findings = [finding(line=n) for n in range(1, 124)]
    batches = annotation_batches(findings)
    assert [len(b) for b in batches] == [50, 50, 23]
    assert all(len(b) <= MAX_ANNOTATIONS_PER_REQUEST for b in batches)
    lines = [a["start_line"] for batch in batches for a in batch]
    assert lines == list(range(1, 124))


def test_summary_groups_by_file_with_consumers_and_rule_links() -> None:
    findings = [finding(), finding("b.yaml", 7, severity=Severity.WARNING, rule="x-rule")]
    summary = render_summary(
        findings,
        {"apps/app/deployment.yaml": ["Flux Kustomization `apps` (applied raw)"]},
        fail_on=Severity.ERROR,
        docs_url="https://docs.example/rules.md",
    )
    assert "### `apps/app/deployment.yaml`" in summary
    assert "Read by: Flux Kustomization `apps` (applied raw)" in summary
    assert f"[`{RULE}`](https://docs.example/rules.md#{RULE})" in summary
    assert "**line 3**" in summary and "**line 7**" in summary
    assert summary.index("apps/app") < summary.index("b.yaml")


def test_summary_without_findings() -> None:
    assert "found nothing" in render_summary([], {}, fail_on=Severity.ERROR)


@given(st.integers(min_value=1, max_value=400), st.integers(min_value=10, max_value=3000))
def test_summary_is_always_under_the_limit(count: int, length: int) -> None:
    findings = [finding(f"dir/file{n % 37}.yaml", n, message="m" * length) for n in range(count)]
    summary = render_summary(findings, {}, fail_on=Severity.ERROR)
    assert len(summary) <= 65535
    if count * length > 70000:
        assert "more not listed here" in summary


def test_summary_truncates_between_findings() -> None:
    findings = [finding(line=n, message=f"problem {n} " + "x" * 1000) for n in range(1, 200)]
    summary = render_summary(findings, {}, fail_on=Severity.ERROR, limit=10_000)
    assert len(summary) <= 10_000
    shown = re.findall(r"\*\*line (\d+)\*\*", summary)
    assert shown and shown == [str(n) for n in range(1, len(shown) + 1)]
    assert f"…and {199 - len(shown)} more not listed here" in summary


def test_hunk_ranges() -> None:
    assert hunk_ranges(PATCH) == [range(1, 6), range(40, 41)]
    assert hunk_ranges(None) == []
    assert hunk_ranges("@@ -0,0 +1,3 @@\n+a\n+b\n+c") == [range(1, 4)]


def test_comments_only_on_lines_in_the_diff() -> None:
    findings = [
        finding(line=3),
        finding(line=21),
        finding(line=40),
        finding("untouched.yaml", 1),
        finding(line=6),
    ]
    comments = plan_comments(findings, {"apps/app/deployment.yaml": PATCH}, set())
    assert [(c.path, c.line) for c in comments] == [
        ("apps/app/deployment.yaml", 3),
        ("apps/app/deployment.yaml", 40),
    ]
    assert all(c.to_json()["side"] == "RIGHT" for c in comments)


def test_multi_line_comment_within_one_hunk() -> None:
    inside = plan_comments(
        [finding(line=3, end_line=5, suggestion="a\nb\nc")],
        {"apps/app/deployment.yaml": PATCH},
        set(),
    )[0]
    assert inside.to_json() == {
        "path": "apps/app/deployment.yaml",
        "line": 5,
        "side": "RIGHT",
        "start_line": 3,
        "start_side": "RIGHT",
        "body": inside.body,
    }
    assert "```suggestion\na\nb\nc\n```" in inside.body
    # The end is in another hunk: a single-line comment, and no suggestion, since it would
    # replace only the commented line.
    spanning = plan_comments(
        [finding(line=3, end_line=40, suggestion="z")], {"apps/app/deployment.yaml": PATCH}, set()
    )[0]
    assert spanning.line == 3 and spanning.start_line is None
    assert "suggestion" not in spanning.body


def test_suggestion_block() -> None:
    body = comment_body(finding(suggestion="image: registry.example/app:1.0"))
    assert "```suggestion\nimage: registry.example/app:1.0\n```" in body
    assert body.rstrip().endswith(marker(finding().fingerprint))
    # Backticks in the suggestion get a longer fence, so they cannot end the block early.
    tricky = comment_body(finding(suggestion="run: |\n  echo ```x```"))
    assert "````suggestion\n" in tricky and tricky.count("````") == 2
    # An empty suggestion (delete the line) is still a suggestion.
    assert "```suggestion\n```" in comment_body(finding(suggestion=""))


def test_fingerprint_dedupe() -> None:
    first = finding(line=3)
    # The same problem after lines above it moved: same fingerprint, no second comment.
    moved = finding(line=4, anchor=first.anchor)
    assert moved.fingerprint == first.fingerprint
    bot = {"user": {"login": "flux-review[bot]", "type": "Bot"}, "body": comment_body(first)}
    human = {
        "user": {"login": "someone", "type": "User"},
        "body": "quoting " + marker("0123456789abcdef"),
    }
    posted = fingerprints_in([bot, human])
    assert posted == {first.fingerprint}
    assert plan_comments([moved], {"apps/app/deployment.yaml": PATCH}, posted) == []
    # Two findings with one fingerprint in the same run: one comment.
    assert len(plan_comments([first, moved], {"apps/app/deployment.yaml": PATCH}, set())) == 1


def test_findings_not_introduced_get_no_comment() -> None:
    old = Finding(
        rule=RULE,
        severity=Severity.ERROR,
        path="apps/app/deployment.yaml",
        line=3,
        message="old",
        introduced=False,
    )
    assert plan_comments([old], {"apps/app/deployment.yaml": PATCH}, set()) == []
