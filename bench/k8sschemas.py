"""Cost of validating built objects against the vendored Kubernetes schemas, against
reading the same manifests with libyaml (the floor of any analysis that reads them),
measured in the same run (machines are shared: compare ratios).

    python bench/k8sschemas.py --apps 1600      # the 10,000-manifest tree of bench/run.py
    python bench/k8sschemas.py --apps 1600 --check

Prints: how many objects of built-in kinds the synthetic tree has, the time to compose
them with libyaml, the time of the first validation of each kind (compiling its
validator), the time to validate them all once compiled, per object and as a ratio.
With `--check`: the whole-tree check and bench/run.py's pull request check with the
rules `kubernetes-schema` and `removed-api-version` off, then on (the validators compiled
by the first check that needs them), as ratios, and how many validators were compiled.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from bench.generate import generate
from bot.analysis import DictTree, analyze, k8sschemas, parse_config
from bot.analysis.k8sschemas import validate

RULES = ("kubernetes-schema", "removed-api-version")


def checks(files: dict[str, str]) -> None:
    """Whole-tree and pull-request checks without the Kubernetes rules, then with them."""
    from bench.run import platform_pull_request

    data = {p: t.encode() for p, t in files.items()}
    tree, head = DictTree(data), DictTree(platform_pull_request(data, 3))
    off = parse_config("rules:\n" + "".join(f"  {r}: off\n" for r in RULES))
    timings: dict[str, float] = {}
    for label, config in (("without", off), ("with", None)):
        start = time.perf_counter()
        result = analyze(tree, config=config)
        timings[f"tree {label}"] = time.perf_counter() - start
        found = sum(1 for f in result.findings if f.rule in RULES)
        start = time.perf_counter()
        analyze(head, tree, config=config)
        timings[f"pr {label}"] = time.perf_counter() - start
        print(
            f"check {label} the rules: whole tree {timings[f'tree {label}']:6.2f} s "
            f"({found} of their findings), pull request {timings[f'pr {label}']:6.2f} s"
        )
    compiled = len(importlib.import_module("bot.analysis.k8sschemas.validate")._COMPILED)
    print(f"validators compiled in the process: {compiled}")
    print(f"whole tree, with / without: {timings['tree with'] / timings['tree without']:.2f}x")
    print(f"pull request, with / without: {timings['pr with'] / timings['pr without']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=1600)
    parser.add_argument("--minor", default="1.37")
    parser.add_argument("--check", action="store_true", help="time whole checks instead")
    args = parser.parse_args()
    files = generate(args.apps)
    if args.check:
        checks(files)
        return
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    texts = [t for p, t in files.items() if p.endswith((".yaml", ".yml")) and "{{" not in t]

    start = time.perf_counter()
    documents: list[Any] = []
    for text in texts:
        documents.extend(yaml.load_all(text, Loader=loader))
    parse = time.perf_counter() - start

    objects = [
        d
        for d in documents
        if isinstance(d, dict)
        and isinstance(d.get("apiVersion"), str)
        and isinstance(d.get("kind"), str)
        and k8sschemas.is_builtin(d["apiVersion"], d["kind"])
    ]
    kinds = collections.Counter(d["kind"] for d in objects)

    start = time.perf_counter()
    first: dict[tuple[str, str], bool] = {}
    for obj in objects:
        key = (obj["apiVersion"], obj["kind"])
        if key not in first:
            first[key] = True
            validate(obj, args.minor)
    compile_time = time.perf_counter() - start

    start = time.perf_counter()
    problems = sum(len(validate(obj, args.minor)) for obj in objects)
    check = time.perf_counter() - start

    print(f"{len(texts)} YAML files, {len(documents)} documents, {len(objects)} built-in objects")
    print("kinds:", ", ".join(f"{k} {n}" for k, n in kinds.most_common()))
    print(f"libyaml load of every file:   {parse:7.3f} s")
    print(f"compiling {len(first)} validators:    {compile_time:7.3f} s")
    print(
        f"validating every object:      {check:7.3f} s "
        f"({check / max(len(objects), 1) * 1e6:.0f} us per object, {problems} problems)"
    )
    print(f"validation / libyaml load:    {check / parse:7.2f}x")


if __name__ == "__main__":
    main()
