"""What the diff costs a pull request's review on the synthetic monorepo, and the size of
the check run it gives.

    python bench/diff.py --apps 1600     # about 10,000 manifests

Two changes: the images of 500 Deployments bumped (500 objects, each its own change),
and a label added by the kustomization of enough teams to change about 5,000 objects (the
same change per kind). For each: the review's analysis with the diff and without it (one
run each, in memory), the time the diff adds as a ratio, and the check run's summary and
text in characters, against GitHub's 65,535.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import generate
from bot.analysis import AnalysisResult, DictTree, analyze, engine
from bot.report.checkrun import MAX_OUTPUT_CHARS, render_summary, render_text

_IMAGE = re.compile(rb"image: ghcr.io/example/(app-\d+):1\.")


def image_bumps(files: dict[str, bytes], count: int) -> dict[str, bytes]:
    head = dict(files)
    done = 0
    for path in sorted(files):
        if path.endswith("/deployment.yaml") and done < count:
            head[path] = _IMAGE.sub(rb"image: ghcr.io/example/\1:2.", files[path])
            done += 1
    return head


def team_labels(files: dict[str, bytes], objects: int) -> dict[str, bytes]:
    """A label added by team kustomizations until at least `objects` objects carry it
    (each app's kustomization lists its objects, one file each)."""
    head = dict(files)
    teams = sorted(
        p for p in files if re.fullmatch(r"apps/team-\d+/kustomization\.yaml", p) is not None
    )
    covered = 0
    for path in teams:
        if covered >= objects:
            break
        head[path] = files[path] + b"labels:\n  - pairs:\n      example.com/cost-center: platform\n"
        team = path.rsplit("/", 1)[0]
        for app in re.findall(rb"\n  - (app-\d+)", files[path]):
            listed = files[f"{team}/{app.decode()}/kustomization.yaml"]
            covered += listed.count(b"\n  - ")
    return head


def _review(head: DictTree, base: DictTree, with_diff: bool) -> tuple[float, float, AnalysisResult]:
    """The review's analysis: its time, the time spent making the diff, its result."""
    spent = [0.0]
    real = getattr(engine, "change_diff")  # noqa: B009 (not exported: patched here)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return real(*args, **kwargs) if with_diff else []
        finally:
            spent[0] += time.perf_counter() - started

    started = time.perf_counter()
    with mock.patch.object(engine, "change_diff", timed):
        result = analyze(head, base)
    return time.perf_counter() - started, spent[0], result


def measure(name: str, base: DictTree, head: DictTree) -> None:
    _review(head, base, with_diff=False)  # warm the process's caches for both runs
    t_without, _, _ = _review(head, base, with_diff=False)
    t_with, t_diff, result = _review(head, base, with_diff=True)
    assert result.diff is not None
    objects = sum(len(k.objects) for c in result.diff for k in c.kustomizations)
    started = time.perf_counter()
    findings = [f for f in result.findings if f.introduced]
    summary = render_summary(
        findings, result.consumers, fail_on=None, notes=result.notes, impact=result.impact
    )
    text = render_text(
        [f.rule for f in findings], result.diff, result.redactor, base="0" * 40, head="1" * 40
    )
    t_render = time.perf_counter() - started
    valid = (
        len(summary) <= MAX_OUTPUT_CHARS
        and len(text) <= MAX_OUTPUT_CHARS
        and text.count("<details>") == text.count("</details>")
    )
    last = text.rstrip().splitlines()[-1] if text.strip() else ""
    print(f"{name}: {objects} objects in the diff")
    print(
        f"  check run: summary {len(summary):,} characters, text {len(text):,} characters "
        f"(limit {MAX_OUTPUT_CHARS:,} each): {'valid' if valid else 'INVALID'}"
    )
    print(f"  text ends: {last[:160]}")
    print(
        f"  review analysis: {t_without:.2f} s without the diff, {t_with:.2f} s with it, "
        f"of which {t_diff:.2f} s making the diff; rendering the check run "
        f"{t_render:.2f} s: the diff adds {(t_diff + t_render) / t_without:.0%} to the "
        f"review (one run; the machine is shared, so the two totals differ by more)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apps", type=int, default=1600)
    args = parser.parse_args()
    files = {p: t.encode() for p, t in generate(args.apps).items()}
    manifests = sum(1 for p, d in files.items() if p.endswith(".yaml") and b"kind:" in d)
    print(f"tree: {len(files)} files, {manifests} manifests")
    base = DictTree(files)
    small = max(1, min(500, args.apps))
    measure(f"{small} image bumps", base, DictTree(image_bumps(files, small)))
    target = min(5000, manifests // 2)
    measure(f"a label on at least {target:,} objects", base, DictTree(team_labels(files, target)))


if __name__ == "__main__":
    main()
