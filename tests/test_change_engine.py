"""The change-aware engine: what "introduced" means, related locations, rule scopes,
and rules that do not depend on each other."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.analysis import Config, Finding, Location, Severity, Side, analyze
from bot.analysis import yamlscan as ys
from bot.analysis.rules import RULES, RuleInfo
from bot.analysis.rules.base import Context, Scope
from bot.report import formats
from bot.report.checkrun import annotation
from bot.report.review import plan_comments
from tests.analysis_helpers import (
    chart_yaml,
    configmap,
    deployment,
    flux_kustomization,
    helm_release,
    helm_repository,
    kustomization,
    line_of,
    repo,
    tree,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "incident"


def three_clusters(chart_version: str, pins: dict[str, str]) -> dict[str, str | bytes]:
    """A platform chart in the repository, pinned by one HelmRelease per cluster tree."""
    files: dict[str, str | bytes] = {
        "charts/platform/Chart.yaml": chart_yaml("platform", chart_version),
        "charts/platform/templates/cm.yaml": "kind: ConfigMap\n",
        "infrastructure/sources.yaml": helm_repository("internal-charts"),
        "clusters/prod/infrastructure.yaml": flux_kustomization(
            "infrastructure", "./infrastructure"
        ),
    }
    for cluster, version in pins.items():
        files[f"clusters/prod/{cluster}/platform.yaml"] = helm_release(
            "platform", "platform", namespace=cluster, version=version, source="internal-charts"
        )
        files["clusters/prod/" + cluster + "/ks.yaml"] = flux_kustomization(
            f"apps-{cluster}", f"./clusters/prod/{cluster}"
        )
    return repo(files)


def test_a_bump_that_leaves_an_already_stale_pin_behind_is_introduced() -> None:
    base = three_clusters("1.1.2", {"eu": "1.1.2", "us": "1.1.2", "ap": "1.1.1"})
    head = dict(base, **{"charts/platform/Chart.yaml": chart_yaml("platform", "1.1.3")})
    result = analyze(tree(head), tree(base))
    mismatches = [f for f in result.findings if f.rule == "chart-version-mismatch"]
    # All three now pin a version the chart does not have, ap's already did at the base.
    assert sorted(f.path for f in mismatches) == [
        "clusters/prod/ap/platform.yaml",
        "clusters/prod/eu/platform.yaml",
        "clusters/prod/us/platform.yaml",
    ]
    version_line = line_of(chart_yaml("platform", "1.1.3"), "version:")
    for f in mismatches:
        assert f.introduced
        assert Location("charts/platform/Chart.yaml", version_line) in [
            replace(r, message="") for r in f.related
        ]


def test_an_untouched_stale_pin_without_a_bump_stays_pre_existing() -> None:
    base = three_clusters("1.1.2", {"eu": "1.1.2", "ap": "1.1.1"})
    head = dict(
        base, **{"infrastructure/sources.yaml": helm_repository("internal-charts") + "# moved\n"}
    )
    assert [f.rule for f in analyze(tree(head), tree(base)).findings] == []
    every = analyze(tree(head), tree(base), report_all=True).findings
    [stale] = [f for f in every if f.rule == "chart-version-mismatch"]
    assert stale.path == "clusters/prod/ap/platform.yaml" and stale.introduced is False


def test_the_pr_comment_sits_on_the_chart_version_line_it_changed() -> None:
    base = three_clusters("1.1.2", {"eu": "1.1.2"})
    head = dict(base, **{"charts/platform/Chart.yaml": chart_yaml("platform", "1.1.3")})
    [finding] = analyze(tree(head), tree(base)).findings
    version_line = line_of(chart_yaml("platform", "1.1.3"), "version:")
    patch = f"@@ -{version_line},1 +{version_line},1 @@\n-version: 1.1.2\n+version: 1.1.3\n"
    [comment] = plan_comments([finding], {"charts/platform/Chart.yaml": patch}, set())
    assert (comment.path, comment.line) == ("charts/platform/Chart.yaml", version_line)
    assert comment.to_json()["side"] == "RIGHT"
    assert "clusters/prod/eu/platform.yaml" in comment.body
    assert "suggestion" not in comment.body  # the suggestion is for the HelmRelease's line


def test_related_locations_reach_json_sarif_and_annotations() -> None:
    base = three_clusters("1.1.2", {"eu": "1.1.2"})
    head = dict(base, **{"charts/platform/Chart.yaml": chart_yaml("platform", "1.1.3")})
    [finding] = analyze(tree(head), tree(base)).findings
    doc = json.loads(formats.to_json([finding], "a" * 40, "b" * 40))
    [related] = doc["findings"][0]["related"]
    assert related["path"] == "charts/platform/Chart.yaml" and related["side"] == "head"
    assert "1.1.3" in related["message"]
    note = annotation(finding)
    assert note is not None and "charts/platform/Chart.yaml:" in note["message"]


def test_a_keyed_finding_keeps_its_fingerprint_when_its_message_changes() -> None:
    base = three_clusters("1.1.3", {"eu": "1.1.2"})
    head = dict(base, **{"charts/platform/Chart.yaml": chart_yaml("platform", "1.1.4")})
    [before] = [f for f in analyze(tree(base)).findings if f.rule == "chart-version-mismatch"]
    [after] = [f for f in analyze(tree(head)).findings if f.rule == "chart-version-mismatch"]
    assert before.message != after.message
    assert before.fingerprint == after.fingerprint


def test_a_comment_on_a_deleted_line_goes_on_the_left_side() -> None:
    finding = Finding("prune-deletes", Severity.WARNING, "apps/pvc.yaml", 3, "gone", side=Side.BASE)
    patch = "@@ -1,5 +0,0 @@\n-a\n-b\n-c\n-d\n-e\n"
    [comment] = plan_comments([finding], {"apps/pvc.yaml": patch}, set())
    assert comment.to_json()["side"] == "LEFT" and comment.line == 3
    # GitHub shows annotations only on the head's files: none without a head location.
    assert annotation(finding) is None


def _broken_on(target_tree: object, rule: str, monkeypatch: pytest.MonkeyPatch) -> None:
    info = RULES[rule]
    original = info.check
    assert original is not None

    def check(ctx: Context) -> Iterable[Finding]:
        if ctx.repo.tree is target_tree:
            raise RuntimeError("boom")
        return original(ctx)

    # The registry is one dict: the engine's name for it is the registry's own.
    monkeypatch.setitem(
        RULES,
        rule,
        RuleInfo(info.id, info.default_severity, info.summary, info.doc, check, info.check_change),
    )


def test_a_rule_that_fails_on_the_base_only_keeps_findings_on_touched_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old_bad = deployment("legacy", "ghcr.io/Example/legacy:1.0")
    base_files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/legacy.yaml": old_bad,
            "apps/web.yaml": deployment("web", "ghcr.io/example/web:1.0"),
        }
    )
    head_files = dict(base_files, **{"apps/web.yaml": deployment("web", "ghcr.io/Example/web:2")})
    base_tree = tree(base_files)
    _broken_on(base_tree, "invalid-image-reference", monkeypatch)
    result = analyze(tree(head_files), base_tree)
    # The untouched legacy image is not blamed on this change; the new one is reported.
    assert [(f.rule, f.path) for f in result.findings] == [
        ("invalid-image-reference", "apps/web.yaml")
    ]
    assert result.errors == []
    assert len(result.base_errors) == 1 and "invalid-image-reference" in result.base_errors[0]


def test_change_rule_findings_are_always_introduced() -> None:
    base = three_clusters("1.1.2", {"eu": "1.1.2"})
    head = dict(base, **{"charts/platform/templates/cm.yaml": "kind: ConfigMap\n# new\n"})
    [finding] = analyze(tree(head), tree(base)).findings
    assert finding.rule == "chart-not-bumped" and finding.introduced
    assert Scope.CHANGE in RULES["chart-not-bumped"].scopes


def _incident(side: str) -> dict[str, str | bytes]:
    root = EXAMPLES / side
    files: dict[str, str | bytes] = {
        str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()
    }
    return files


def _scenarios() -> list[tuple[str, dict[str, str | bytes], dict[str, str | bytes] | None]]:
    base_files = _incident("base")
    head_files = dict(base_files)
    head_files.update(_incident("head"))
    mixed = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps", depends_on=["nope"]),
            "apps/kustomization.yaml": kustomization(["web.yaml", "bad.yaml", "missing.yaml"]),
            "apps/web.yaml": deployment("web", '"{{ .Values.image }}"').replace(
                "  replicas", "  replicas: {{ .Values.n }}\n  x"
            ),
            "apps/bad.yaml": "a: [\n",
            "charts/c/Chart.yaml": chart_yaml("c", "1.0.0"),
            "charts/c/templates/kustomization.yaml": kustomization(["x.yaml"]),
            "apps/rel.yaml": helm_release("c", version="2.0.0", source="nowhere"),
        }
    )
    return [("incident", head_files, base_files), ("mixed", mixed, None)]


@pytest.mark.parametrize("rule", sorted(RULES))
def test_a_rules_findings_do_not_depend_on_which_other_rules_run(rule: str) -> None:
    for _, head_files, base_files in _scenarios():
        base = tree(base_files) if base_files is not None else None
        everything = analyze(tree(head_files), base)
        alone = analyze(
            tree(head_files),
            base,
            # The others off; this one not named, so that its findings keep the severity
            # the rule gives each (a config that names a rule sets all of them).
            config=Config(rules={r: None for r in RULES if r != rule}),
        )
        assert [f for f in everything.findings if f.rule == rule] == alone.findings


def test_the_scenarios_exercise_several_rules() -> None:
    seen = set()
    for _, head_files, base_files in _scenarios():
        base = tree(base_files) if base_files is not None else None
        seen |= {f.rule for f in analyze(tree(head_files), base).findings}
    assert {
        "helm-template-in-raw-manifest",
        "yaml-syntax-error",
        "chart-version-mismatch",
        "kustomize-missing-resource",
        "dangling-reference",
    } <= seen


def test_base_and_head_cost_one_parse_per_distinct_blob(monkeypatch: pytest.MonkeyPatch) -> None:
    apps = {f"apps/cm{n}.yaml": configmap(f"cm{n}", f"n: '{n}'") for n in range(40)}
    # The same content at two paths: one parse too.
    apps["apps/copy.yaml"] = apps["apps/cm0.yaml"]
    base = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/kustomization.yaml": kustomization(sorted(p[5:] for p in apps)),
            **apps,
        }
    )
    changed = configmap("cm3", "n: 'changed'")
    head = {**base, "apps/cm3.yaml": changed}
    parsed: dict[str, list[bytes]] = {"scan": [], "compose_all": []}
    for name in parsed:
        real = getattr(ys, name)

        def counting(data: bytes | str, *args: Any, _real: Any = real, _name: str = name) -> Any:
            parsed[_name].append(data.encode() if isinstance(data, str) else data)
            return _real(data, *args)

        monkeypatch.setattr(ys, name, counting)
    analyze(tree(head), tree(base))
    yaml_contents = {c for p, c in {**base, "changed.yaml": changed}.items() if p.endswith(".yaml")}
    for name, contents in parsed.items():
        # Each content once, whichever commit and path hold it; the changed file's both.
        assert len(contents) == len(set(contents)), name
        assert {c.decode() for c in contents} <= yaml_contents, name
    before = base["apps/cm3.yaml"]
    assert isinstance(before, str)
    assert {changed.encode(), before.encode()} <= set(parsed["scan"])
