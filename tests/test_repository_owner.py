"""Whose repository this is, from its clone URLs: the owner's chart registries are its
own, and a local path or an unknown host names no owner."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.analysis import analyze
from bot.analysis.charts import owner_of
from bot.analysis.model import normalize_git_url
from bot.gitrepo import GitTree, local_path, remote_urls
from tests.analysis_helpers import (
    chart_yaml,
    flux_kustomization,
    helm_release,
    helm_repository,
    kustomization,
    line_of,
)
from tests.fakegithub.gitrepo import GitRepo


@pytest.mark.parametrize(
    ("url", "owner"),
    [
        ("https://github.com/Acme/platform.git", "acme"),
        ("git@github.com:acme/platform.git", "acme"),
        ("ssh://git@github.com/acme/platform", "acme"),
        ("ssh://git@github.com:22/acme/platform.git", "acme"),
        ("https://gitlab.com/group/sub/repo.git", "group"),
        ("git@gitlab.com:group/sub/repo.git", "group"),
        ("/srv/mirrors/acme/platform", None),
        ("file:///srv/mirrors/acme/platform", None),
        ("../platform", None),
        ("https://git.example.com/acme/platform.git", None),
        ("https://github.com/acme", None),
    ],
)
def test_owner_of_a_clone_url(url: str, owner: str | None) -> None:
    assert owner_of(normalize_git_url(url)) == owner


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("/srv/mirrors/acme/platform", "/srv/mirrors/acme/platform"),
        ("file:///srv/mirrors/acme/platform.git", "/srv/mirrors/acme/platform.git"),
        ("../platform", "../platform"),
        ("platform.git", "platform.git"),
        ("git@github.com:acme/platform.git", None),
        ("github.com:acme/platform", None),
        ("ssh://git@github.com/acme/platform", None),
        ("https://gitlab.com/group/sub/repo.git", None),
    ],
)
def test_which_remote_urls_are_local_paths(url: str, path: str | None) -> None:
    assert local_path(url) == path


PLATFORM = {
    # No flux-system source: the clusters' Flux is bootstrapped from another repository,
    # so only the clone URL tells whose registry ghcr.io/acme is.
    ".github/flux-review.yml": "raw_paths: [clusters/prod]\n",
    "clusters/prod/kustomization.yaml": kustomization(["apps.yaml"]),
    "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps", source="platform"),
    "apps/kustomization.yaml": kustomization(["podinfo.yaml"]),
    "apps/podinfo.yaml": helm_repository("acme-charts", "oci://ghcr.io/acme/charts")
    + "---\n"
    + helm_release("podinfo", version="1.1.1", source="acme-charts"),
    "charts/podinfo/Chart.yaml": chart_yaml("podinfo", "1.1.3"),
}


def _mismatches(clone: Path) -> list[tuple[str, str, int]]:
    result = analyze(GitTree(clone, "HEAD"), self_urls=remote_urls(clone))
    return [(f.rule, f.path, f.line) for f in result.findings if f.rule == "chart-version-mismatch"]


def _clone(source: str, into: Path) -> GitRepo:
    into.parent.mkdir(parents=True, exist_ok=True)
    GitRepo(into.parent, init=False).git("clone", "--quiet", source, into.name)
    return GitRepo(into, init=False)


def test_a_clone_of_a_local_mirror_gets_the_findings_of_a_github_clone(tmp_path: Path) -> None:
    origin = GitRepo(tmp_path / "origin")
    origin.commit("platform", PLATFORM)
    github = _clone(str(origin.path), tmp_path / "github" / "platform")
    github.git("remote", "set-url", "origin", "https://github.com/acme/platform.git")
    expected = _mismatches(github.path)
    stale = line_of(PLATFORM["apps/podinfo.yaml"], "1.1.1")
    assert expected == [("chart-version-mismatch", "apps/podinfo.yaml", stale)]

    # A mirror on disk that remembers nothing of GitHub: the owner is unknown, and the
    # release is compared as one from a private registry would be.
    mirror = _clone(str(origin.path), tmp_path / "srv" / "mirrors" / "acme" / "platform")
    mirror.git("remote", "remove", "origin")
    for url in (str(mirror.path), f"file://{mirror.path}"):
        clone = _clone(url, tmp_path / "work" / str(len(list(tmp_path.glob("work/*")))))
        assert remote_urls(clone.path) == []
        assert _mismatches(clone.path) == expected
    relative = _clone(str(mirror.path), tmp_path / "relative")
    relative.git("remote", "set-url", "origin", "../srv/mirrors/acme/platform")
    assert _mismatches(relative.path) == expected


def test_the_remotes_of_a_local_mirror_name_the_repository(tmp_path: Path) -> None:
    origin = GitRepo(tmp_path / "origin")
    origin.commit("platform", PLATFORM)
    mirror = _clone(str(origin.path), tmp_path / "srv" / "mirrors" / "acme" / "platform")
    mirror.git("remote", "set-url", "origin", "git@github.com:acme/platform.git")
    clone = _clone(str(mirror.path), tmp_path / "work" / "platform")
    assert remote_urls(clone.path) == ["git@github.com:acme/platform.git"]
    clone.git("remote", "set-url", "origin", "../../srv/mirrors/acme/platform")
    clone.git("remote", "add", "upstream", "https://gitlab.com/acme/platform.git")
    assert sorted(remote_urls(clone.path)) == [
        "git@github.com:acme/platform.git",
        "https://gitlab.com/acme/platform.git",
    ]
    # Someone else's chart of the same name is not this repository's chart: with the
    # owner known, ghcr.io/grafana is another owner's registry.
    clone.write(
        {
            "apps/podinfo.yaml": helm_repository("grafana", "oci://ghcr.io/grafana/charts")
            + "---\n"
            + helm_release("podinfo", version="1.1.1", source="grafana")
        }
    )
    clone.commit("grafana's podinfo")
    assert _mismatches(clone.path) == []


def test_a_bare_mirror_clone_is_read_through_its_remote(tmp_path: Path) -> None:
    origin = GitRepo(tmp_path / "origin")
    origin.commit("platform", PLATFORM)
    origin.git("remote", "add", "origin", "https://github.com/acme/platform.git")
    GitRepo(tmp_path, init=False).git(
        "clone", "--quiet", "--mirror", str(origin.path), "mirror.git"
    )
    bare = tmp_path / "mirror.git"
    GitRepo(bare, init=False).git(
        "remote", "set-url", "origin", "ssh://git@github.com/acme/platform"
    )
    clone = _clone(f"file://{bare}", tmp_path / "work")
    assert remote_urls(clone.path) == ["ssh://git@github.com/acme/platform"]


def test_mirrors_that_point_at_each_other_end(tmp_path: Path) -> None:
    a = GitRepo(tmp_path / "a")
    a.commit("one", {"x.yaml": "a: 1\n"})
    b = _clone(str(a.path), tmp_path / "b")
    a.git("remote", "add", "origin", str(b.path))
    assert remote_urls(b.path) == []
