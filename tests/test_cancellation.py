"""A caller that gives up stops the analysis: it cannot kill the thread that runs it."""

from __future__ import annotations

import threading

import pytest

from bot.analysis import AnalysisCancelled, DictTree, analyze
from bot.analysis import yamlscan as ys
from tests.analysis_helpers import configmap, flux_kustomization, kustomization, repo, tree


def big_repo(apps: int, broken: bool = False) -> DictTree:
    files: dict[str, str | bytes] = {
        "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
        "apps/kustomization.yaml": kustomization([f"cm-{i}.yaml" for i in range(apps)]),
    }
    files.update({f"apps/cm-{i}.yaml": configmap(f"cm-{i}") for i in range(apps)})
    if broken:
        files["apps/cm-0.yaml"] = "data: [\n"
    return tree(repo(files))


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the YAML checks, the bulk of an analysis's work."""
    count = [0]
    real = ys.scan

    def counting(data: bytes | str) -> ys.YamlInfo:
        count[0] += 1
        return real(data)

    monkeypatch.setattr(ys, "scan", counting)
    return count


def test_a_cancelled_analysis_stops_at_the_next_file(scans: list[int]) -> None:
    stop = threading.Event()
    files = big_repo(300)

    class Stopping(DictTree):
        def read(self, path: str) -> bytes | None:
            if scans[0] >= 20:
                stop.set()
            return files.read(path)

    with pytest.raises(AnalysisCancelled):
        analyze(Stopping({p: files.read(p) or b"" for p in files.paths()}), cancel=stop)
    # It stopped right after the signal, not after checking the other 280 files.
    assert 20 <= scans[0] <= 22


def test_an_analysis_cancelled_before_it_starts_checks_nothing(scans: list[int]) -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(AnalysisCancelled):
        analyze(big_repo(5), big_repo(6), cancel=stop)
    assert scans[0] == 0


def test_an_unset_signal_changes_nothing() -> None:
    files = big_repo(20, broken=True)
    base = big_repo(19)
    result = analyze(files, base, cancel=threading.Event())
    assert [(f.rule, f.path) for f in result.findings] == [("yaml-syntax-error", "apps/cm-0.yaml")]
    assert result == analyze(files, base)
