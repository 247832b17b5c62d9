"""Base and head share what their inputs make equal (parses by blob id, each Flux
Kustomization's build by what it read, its post-build steps by their variables), and a
worker carries that over to the next review of a repository: none of it may change a
finding. Every repository of the rule tests and the scenarios (see test_reads.py) is
analysed incrementally and in full, and the two must agree exactly."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from bench import homeops
from bot.analysis import DictTree, analyze
from bot.analysis.cache import Carried, RepositoryCaches
from bot.analysis.snapshot.build import clusters
from tests import analysis_helpers as helpers
from tests.test_reads import MODULES, Files, _cases


def _outcome(result: Any) -> tuple[Any, ...]:
    return (
        [(f, f.anchor) for f in result.findings],
        result.impact,
        result.notes,
        result.errors,
        result.base_errors,
        result.consumers,
    )


def _analysed(head: Files, base: Files | None, config: Any, **kwargs: Any) -> tuple[Any, ...]:
    cfg = helpers.config_from(config) if isinstance(config, str) else config
    tree = helpers.tree(head)
    return _outcome(
        analyze(tree, helpers.tree(base) if base else None, config=cfg, report_all=True, **kwargs)
    )


@pytest.mark.parametrize("module_name", MODULES)
def test_sharing_between_base_head_and_reviews_changes_no_finding(
    module_name: str, tmp_path: Path
) -> None:
    module = importlib.import_module(f"tests.{module_name}")
    cases = _cases(module, tmp_path)
    assert len(cases) >= 3, "no repositories were recorded"
    # One worker reviewing every repository of the module in turn, as if they were one
    # repository's pull requests: whatever it carries over is keyed by content.
    caches = RepositoryCaches(1 << 40)
    differ: list[tuple[Any, ...]] = []
    for number, (head, base, config) in enumerate(cases):
        full = _analysed(head, base, config, incremental=False)
        shared = _analysed(head, base, config)
        carried = caches.begin("one repository")
        kept = _analysed(head, base, config, cache=carried)
        caches.end("one repository", carried, 1)
        if not full == shared == kept:
            differ.append((number, sorted(head), full, shared, kept))
        if base is not None:
            # The base is the very tree the worker's last review analysed: its clusters
            # are a copy of that walk.
            cfg = helpers.config_from(config) if isinstance(config, str) else config
            base_tree = helpers.tree(base)
            carried = caches.begin("same trees")
            analyze(base_tree, config=cfg, cache=carried)
            caches.end("same trees", carried, 1)
            carried = caches.begin("same trees")
            again = _outcome(
                analyze(helpers.tree(head), base_tree, config=cfg, report_all=True, cache=carried)
            )
            caches.end("same trees", carried, 1)
            if again != full:
                differ.append((number, sorted(head), full, again))
        if base is not None:
            # Only what the change introduces: rules may then leave out, on both sides,
            # objects the change left as they were (flux-schema, kubernetes-schema).
            introduced = [(f, anchor) for f, anchor in full[0] if f.introduced]
            cfg = helpers.config_from(config) if isinstance(config, str) else config
            reported = analyze(helpers.tree(head), helpers.tree(base), config=cfg).findings
            if [(f, f.anchor) for f in reported] != introduced:
                differ.append((number, sorted(head), introduced, reported))
    assert differ == [], f"{len(differ)} of {len(cases)} repositories differ"


def _calls(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, what: Any) -> list[Any]:
    """What each call of `owner.name` was about (`what` of its arguments), in order."""
    seen: list[Any] = []
    real = getattr(owner, name)

    def counted(*args: Any) -> Any:
        seen.append(what(*args))
        return real(*args)

    monkeypatch.setattr(owner, name, counted)
    return seen


def _home_ops(apps: int) -> dict[str, bytes]:
    return {p: t.encode() for p, t in homeops.generate(apps).items()}


CLUSTER = "kubernetes/flux/cluster"


@pytest.mark.parametrize(
    "change",
    [
        # a file added where Flux generates the kustomization: the parent's build lists it
        {f"{CLUSTER}/extra.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n"},
        # a variable every child substitutes, changed in the one ConfigMap that defines it
        {
            f"{CLUSTER}/cluster-settings.yaml": lambda t: t.replace(
                b"SECRET_DOMAIN: example.com", b"SECRET_DOMAIN: example.org"
            )
        },
        # an app's kustomization loses a resource (the file stays)
        {
            "kubernetes/apps/ns-01/app-00001/app/kustomization.yaml": lambda t: t.replace(
                b"  - ./pvc.yaml\n", b""
            )
        },
        # the namespace's list drops an app: its Kustomization is pruned
        {"kubernetes/apps/ns-02/kustomization.yaml": lambda t: t.replace(b"app-00002", b"gone")},
    ],
)
def test_a_change_that_reaches_builds_it_does_not_list_is_seen_by_both(change: Any) -> None:
    base = _home_ops(6)
    head = dict(base)
    for path, edit in change.items():
        head[path] = edit(head[path]) if callable(edit) else edit
    full = analyze(DictTree(head), DictTree(base), report_all=True, incremental=False)
    shared = analyze(DictTree(head), DictTree(base), report_all=True)
    assert _outcome(shared) == _outcome(full)
    assert shared.impact, "the change reaches a cluster"


def test_a_pull_request_shares_every_build_its_change_does_not_reach(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = _home_ops(8)
    head = homeops.pull_request(base, 3)
    built = _calls(monkeypatch, clusters.ClusterBuilder, "_build_once", lambda _self, _k, d, *_: d)
    analyze(DictTree(base))
    alone = len(built)
    built.clear()
    analyze(DictTree(head), DictTree(base))
    # The head builds everything; the base only the app whose files the change touched
    # and the parent whose build reads its ks.yaml (cluster-apps).
    assert len(built) == alone + 2
    assert sorted(built[alone:]) == ["kubernetes/apps", "kubernetes/apps/ns-00/app-00000/app"]


def test_the_next_review_of_a_repository_parses_nothing_it_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.analysis import yamlscan

    base = _home_ops(5)
    first = homeops.pull_request(base, 3)
    second = dict(base)
    second["kubernetes/apps/ns-04/app-00004/app/pvc.yaml"] += b"# resized\n"
    caches = RepositoryCaches(1 << 30)
    parsed: list[bytes | str] = []
    real = yamlscan.compose_all

    def counted(data: bytes | str) -> Any:
        parsed.append(data)
        return real(data)

    monkeypatch.setattr(yamlscan, "compose_all", counted)
    counts = []
    for head in (first, second):
        parsed.clear()
        cache = caches.begin("repo")
        result = analyze(DictTree(head), DictTree(base), cache=cache)
        caches.end("repo", cache, 1)
        # (inline patches are parsed by the builds that apply them)
        files = set(base.values()) | set(head.values())
        counts.append(sum(1 for data in parsed if data in files))
        fresh = analyze(DictTree(head), DictTree(base), incremental=False)
        assert _outcome(result) == _outcome(fresh)
    # the first review composed every distinct content once (base and head share what
    # did not change); the second only the one file its pull request changed
    assert counts == [len(set(base.values()) | set(first.values())), 1]


def test_a_tree_the_last_review_walked_is_not_walked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = _home_ops(6)
    head = homeops.pull_request(base, 3)
    walks = _calls(monkeypatch, clusters._Walk, "run", lambda walk: walk.cluster.name)
    caches = RepositoryCaches(1 << 30)
    base_tree = DictTree(base)
    cache = caches.begin("repo")
    analyze(base_tree, cache=cache)
    caches.end("repo", cache, 1)
    assert len(walks) == 1
    fresh = analyze(DictTree(head), DictTree(base), incremental=False, report_all=True)
    for _ in range(2):
        walks.clear()
        cache = caches.begin("repo")
        result = analyze(DictTree(head), base_tree, cache=cache, report_all=True)
        caches.end("repo", cache, 1)
        # each review walks its head; the base is the tree walked before
        assert len(walks) == 1
        assert _outcome(result) == _outcome(fresh)
        assert result.diff == fresh.diff
    # another config is another walk
    walks.clear()
    cache = caches.begin("repo")
    analyze(base_tree, config=helpers.config_from("raw_paths: [kubernetes/apps]\n"), cache=cache)
    assert walks


def test_a_worker_keeps_what_fits_its_budget_least_recently_reviewed_out_first() -> None:
    caches = RepositoryCaches(100)
    for name in ("a", "b", "c"):
        cache = caches.begin(name)
        cache[("docs", name)] = [name]
        caches.end(name, cache, 40)
    assert len(caches) == 2 and caches.nbytes == 80
    assert ("docs", "a") not in caches.begin("a")
    assert caches.begin("c")[("docs", "c")] == ["c"]
    # what the last review of a repository did not use is not kept for the next
    used = caches.begin("c")
    caches.end("c", used, 40)
    assert ("docs", "c") not in caches.begin("c")
    too_large = caches.begin("d")
    caches.end("d", too_large, 101)
    assert "d" not in {k for k in caches._kept}
    assert isinstance(caches.begin(None), Carried) and RepositoryCaches.key([]) is None


def test_a_pull_request_validates_only_the_flux_objects_its_change_reached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A field typo that predates the change, one the change writes, and an app whose
    # HelmRelease the change edits: only the second is introduced, as a full analysis
    # says, and the objects the change left as they were are validated on neither side.
    from bot.analysis.rules import flux_schema

    def typo(ks: bytes) -> bytes:
        return ks.replace(b"  wait: false\n", b"  wait: false\n  intervall: 5m\n")

    base = _home_ops(6)
    base["kubernetes/apps/ns-01/app-00001/ks.yaml"] = typo(
        base["kubernetes/apps/ns-01/app-00001/ks.yaml"]
    )
    head = homeops.pull_request(base, 3)
    head["kubernetes/apps/ns-02/app-00002/ks.yaml"] = typo(
        head["kubernetes/apps/ns-02/app-00002/ks.yaml"]
    )
    full = analyze(DictTree(head), DictTree(base), report_all=True, incremental=False)
    validated: list[str] = []
    real = flux_schema._validated

    def counted(repo: Any, target: Any, schema_id: str) -> Any:
        validated.append(target.path)
        return real(repo, target, schema_id)

    monkeypatch.setattr(flux_schema, "_validated", counted)
    reported = analyze(DictTree(head), DictTree(base))
    assert any(f.rule == "flux-schema" and f.introduced for f in full.findings)
    assert [(f, f.anchor) for f in reported.findings] == [
        (f, f.anchor) for f in full.findings if f.introduced
    ]
    assert [(f.path, f.message) for f in reported.findings if f.rule == "flux-schema"] == [
        (f.path, f.message)
        for f in full.findings
        if f.rule == "flux-schema" and f.path.endswith("app-00002/ks.yaml")
    ]
    assert validated, "the objects the change reached are validated"
    assert "kubernetes/apps/ns-01/app-00001/ks.yaml" not in validated
    assert "kubernetes/apps/ns-02/app-00002/ks.yaml" in validated
    assert len(validated) < len({p for p in head if p.endswith(("ks.yaml", "helmrelease.yaml"))})
