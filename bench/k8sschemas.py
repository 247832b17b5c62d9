"""Cost of validating built objects against the vendored Kubernetes schemas, against
reading the same manifests with libyaml (the floor of any analysis that reads them),
measured in the same run (machines are shared: compare ratios).

    python bench/k8sschemas.py --apps 1600      # the 10,000-manifest tree of bench/run.py

Prints: how many objects of built-in kinds the synthetic tree has, the time to compose
them with libyaml, the time of the first validation of each kind (compiling its
validator), the time to validate them all once compiled, per object and as a ratio.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from bench.generate import generate
from bot.analysis import k8sschemas
from bot.analysis.k8sschemas import validate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=1600)
    parser.add_argument("--minor", default="1.37")
    args = parser.parse_args()
    files = generate(args.apps)
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
