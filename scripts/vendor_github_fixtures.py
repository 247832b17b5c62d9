#!/usr/bin/env python3
"""Regenerate the GitHub fixtures vendored under ``tests/fakegithub/``.

How to run (from the repository root; needs ``npm`` on PATH and the npm registry)::

    python scripts/vendor_github_fixtures.py                  # latest published versions
    python scripts/vendor_github_fixtures.py \\
        --openapi-version 23.0.2 --webhooks-version 7.6.1       # pin exact versions
    python scripts/vendor_github_fixtures.py --check            # exit 1 if outputs would change

It uses nothing but the standard library and ``npm pack``, which downloads the two package
tarballs into a temporary directory; nothing is installed and nothing else is fetched.

What it writes:

``tests/fakegithub/openapi-subset.json``
    The operations of GitHub's REST OpenAPI description (``@octokit/openapi``, file
    ``generated/api.github.com.json``) that the App calls (see ``OPERATIONS``), plus every
    ``components`` entry they reference, transitively, so the subset is self-contained.
    Media-type ``examples`` are dropped (they are most of the weight and nobody validates
    against them); parameters, request bodies and response schemas are kept verbatim.
    ``info.x-vendored`` records the package, its version and the operations.

``tests/fakegithub/payloads/<event>.<action>.json``
    One real example webhook payload per event/action in ``PAYLOADS``, taken from
    ``@octokit/webhooks-examples`` (``api.github.com/index.json``). ``_sources.json`` records
    the package version, which example was taken and any adaptation made.

After running it, review ``git diff tests/fakegithub`` and run ``pytest tests/test_fakegithub.py``:
a new OpenAPI version may tighten a schema the App relies on, which is exactly what the
subset is for.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "tests" / "fakegithub"
SUBSET_PATH = OUT_DIR / "openapi-subset.json"
PAYLOAD_DIR = OUT_DIR / "payloads"

OPENAPI_PACKAGE = "@octokit/openapi"
OPENAPI_FILE = "package/generated/api.github.com.json"
WEBHOOKS_PACKAGE = "@octokit/webhooks-examples"
WEBHOOKS_FILE = "package/api.github.com/index.json"

# (method, path template) of every REST operation the App may call. Adding a call to the App
# means adding it here and re-running this script, otherwise the fake rejects it as unknown.
OPERATIONS: list[tuple[str, str]] = [
    ("post", "/app/installations/{installation_id}/access_tokens"),
    # `python -m bot register`: the manifest flow's code, exchanged for the credentials.
    ("post", "/app-manifests/{code}/conversions"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}/files"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}/comments"),
    ("post", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews"),
    ("get", "/repos/{owner}/{repo}/tarball/{ref}"),
    # The Git database: the fallback when the tarball cannot be used.
    ("get", "/repos/{owner}/{repo}/git/trees/{tree_sha}"),
    ("get", "/repos/{owner}/{repo}/git/blobs/{file_sha}"),
    ("get", "/repos/{owner}/{repo}/contents/{path}"),
    ("get", "/repos/{owner}/{repo}/commits/{commit_sha}/pulls"),
    # Reconciliation: the open pull requests of a repository the App has seen.
    ("get", "/repos/{owner}/{repo}/pulls"),
    # Where a PR branched off: its merge base is what the PR is reviewed against.
    ("get", "/repos/{owner}/{repo}/compare/{basehead}"),
    ("post", "/repos/{owner}/{repo}/check-runs"),
    ("get", "/repos/{owner}/{repo}/check-runs/{check_run_id}"),
    ("patch", "/repos/{owner}/{repo}/check-runs/{check_run_id}"),
    # A retried review finds the run a killed worker left in progress on the commit.
    ("get", "/repos/{owner}/{repo}/commits/{ref}/check-runs"),
    ("get", "/repos/{owner}/{repo}/collaborators/{username}/permission"),
    ("post", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions"),
    ("get", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("post", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
]

PayloadPicker = Callable[[dict[str, Any]], bool]


def _any(_: dict[str, Any]) -> bool:
    return True


def _app_ping(example: dict[str, Any]) -> bool:
    # A GitHub App's ping names the App; repository-hook pings do not.
    return bool(example.get("hook", {}).get("app_id"))


def _has_installation(example: dict[str, Any]) -> bool:
    # Deliveries to a GitHub App always carry `installation`; examples recorded from plain
    # repository webhooks lack it, so prefer the App-shaped ones.
    return "installation" in example


def _issue_comment_on_pr(example: dict[str, Any]) -> bool:
    return "pull_request" in example.get("issue", {})


# name -> (event, action or None, preference predicates in order). The first example that
# satisfies the most leading predicates wins, so the choice is stable across versions.
PAYLOADS: dict[str, tuple[str, str | None, list[PayloadPicker]]] = {
    "ping": ("ping", None, [_app_ping]),
    "pull_request.opened": ("pull_request", "opened", [_has_installation]),
    "pull_request.synchronize": ("pull_request", "synchronize", [_has_installation]),
    "pull_request.reopened": ("pull_request", "reopened", [_has_installation]),
    "pull_request.ready_for_review": ("pull_request", "ready_for_review", [_has_installation]),
    "issue_comment.created": (
        "issue_comment",
        "created",
        [_issue_comment_on_pr, _has_installation],
    ),
    "check_run.rerequested": ("check_run", "rerequested", [_has_installation]),
    "check_run.requested_action": ("check_run", "requested_action", [_has_installation]),
    "check_suite.requested": ("check_suite", "requested", [_has_installation]),
    "check_suite.rerequested": ("check_suite", "rerequested", [_has_installation]),
    "installation.deleted": ("installation", "deleted", [_any]),
}
OPTIONAL_PAYLOADS = {"check_run.requested_action"}


def npm_pack(package: str, version: str | None, dest: Path) -> tuple[str, Path]:
    """Download ``package`` with ``npm pack`` and extract it; returns (version, directory)."""
    spec = f"{package}@{version}" if version else package
    out = subprocess.run(
        ["npm", "pack", spec, "--json", "--pack-destination", str(dest)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    info = json.loads(out)[0]
    tarball = dest / info["filename"]
    target = dest / info["filename"].removesuffix(".tgz")
    target.mkdir()
    with tarfile.open(tarball, "r:gz") as tar:
        # The "data" filter refuses absolute paths, links out of the tree and device files.
        tar.extractall(target, filter="data")
    return str(info["version"]), target


def _walk_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from _walk_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_refs(value)


def _drop_media_examples(node: Any) -> Any:
    """Remove ``examples`` maps from media types and parameters (pure documentation)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "examples" and isinstance(value, dict):
                continue
            out[key] = _drop_media_examples(value)
        return out
    if isinstance(node, list):
        return [_drop_media_examples(v) for v in node]
    return node


def build_subset(spec: dict[str, Any], version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, template in OPERATIONS:
        path_item = spec["paths"].get(template)
        if path_item is None or method not in path_item:
            raise SystemExit(f"{method.upper()} {template} is not in {OPENAPI_PACKAGE}@{version}")
        entry = paths.setdefault(template, {})
        if "parameters" in path_item:
            entry["parameters"] = path_item["parameters"]
        entry[method] = path_item[method]
    paths = _drop_media_examples(paths)

    components: dict[str, dict[str, Any]] = {}
    pending = list(_walk_refs(paths))
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        if not ref.startswith("#/components/"):
            raise SystemExit(f"unsupported $ref {ref!r}")
        _, _, kind, name = ref.split("/", 3)
        value = _drop_media_examples(spec["components"][kind][name])
        components.setdefault(kind, {})[name] = value
        pending.extend(_walk_refs(value))

    info = copy.deepcopy(spec["info"])
    info["x-vendored"] = {
        "package": OPENAPI_PACKAGE,
        "version": version,
        "file": OPENAPI_FILE.removeprefix("package/"),
        "generated-by": "scripts/vendor_github_fixtures.py",
        "operations": [f"{m.upper()} {p}" for m, p in OPERATIONS],
    }
    return {
        "openapi": spec["openapi"],
        "info": info,
        "servers": spec.get("servers", []),
        "paths": paths,
        "components": {kind: dict(sorted(v.items())) for kind, v in sorted(components.items())},
    }


def _score(example: dict[str, Any], preferences: list[PayloadPicker]) -> int:
    score = 0
    for predicate in preferences:
        if not predicate(example):
            break
        score += 1
    return score


def _as_pr_comment(example: dict[str, Any]) -> dict[str, Any]:
    """Turn an issue comment example into a comment on a pull request.

    GitHub models a PR as an issue; webhooks for comments on a PR's conversation tab are
    `issue_comment` events whose `issue` has a `pull_request` object with these URLs. The
    examples package only ships comments on plain issues, so build it from the issue's URLs.
    """
    payload = copy.deepcopy(example)
    issue = payload["issue"]
    number = issue["number"]
    api_repo = issue["repository_url"]
    html_repo = issue["html_url"].rsplit("/issues/", 1)[0]
    issue["html_url"] = f"{html_repo}/pull/{number}"
    issue["pull_request"] = {
        "url": f"{api_repo}/pulls/{number}",
        "html_url": f"{html_repo}/pull/{number}",
        "diff_url": f"{html_repo}/pull/{number}.diff",
        "patch_url": f"{html_repo}/pull/{number}.patch",
        "merged_at": None,
    }
    comment = payload.get("comment", {})
    if "html_url" in comment:
        comment["html_url"] = comment["html_url"].replace(f"/issues/{number}#", f"/pull/{number}#")
    return payload


def pick_payloads(
    events: list[dict[str, Any]],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    by_name = {entry["name"]: entry for entry in events}
    chosen: dict[str, dict[str, Any]] = {}
    sources: dict[str, dict[str, Any]] = {}
    for name, (event, action, preferences) in PAYLOADS.items():
        examples = by_name.get(event, {}).get("examples", [])
        candidates = [
            (index, ex) for index, ex in enumerate(examples) if ex.get("action") == action
        ]
        if not candidates:
            if name in OPTIONAL_PAYLOADS:
                continue
            raise SystemExit(f"no example for {name}")
        # max() keeps the first of equally good examples: stable choice.
        index, example = max(candidates, key=lambda c: (_score(c[1], preferences), -c[0]))
        source: dict[str, Any] = {"event": event, "action": action, "example_index": index}
        if name == "issue_comment.created" and not _issue_comment_on_pr(example):
            example = _as_pr_comment(example)
            source["adapted"] = "added issue.pull_request (no PR comment example is published)"
        chosen[name] = example
        sources[name] = source
    return chosen, sources


def render(data: Any) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--openapi-version", help="version of @octokit/openapi (default latest)")
    parser.add_argument(
        "--webhooks-version", help="version of @octokit/webhooks-examples (default latest)"
    )
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if any output would change"
    )
    args = parser.parse_args(argv)
    if shutil.which("npm") is None:
        raise SystemExit("npm is required (it downloads the package tarballs)")

    with tempfile.TemporaryDirectory(prefix="vendor-github-") as tmp:
        tmpdir = Path(tmp)
        openapi_version, openapi_dir = npm_pack(OPENAPI_PACKAGE, args.openapi_version, tmpdir)
        webhooks_version, webhooks_dir = npm_pack(WEBHOOKS_PACKAGE, args.webhooks_version, tmpdir)
        spec = json.loads((openapi_dir / OPENAPI_FILE).read_text(encoding="utf-8"))
        events = json.loads((webhooks_dir / WEBHOOKS_FILE).read_text(encoding="utf-8"))

    outputs: dict[Path, str] = {SUBSET_PATH: render(build_subset(spec, openapi_version))}
    payloads, sources = pick_payloads(events)
    for name, payload in payloads.items():
        outputs[PAYLOAD_DIR / f"{name}.json"] = render(payload)
    outputs[PAYLOAD_DIR / "_sources.json"] = render(
        {
            "package": WEBHOOKS_PACKAGE,
            "version": webhooks_version,
            "file": WEBHOOKS_FILE.removeprefix("package/"),
            "generated-by": "scripts/vendor_github_fixtures.py",
            "payloads": sources,
        }
    )

    stale = [
        p
        for p in PAYLOAD_DIR.glob("*.json")
        if p not in outputs  # payloads no longer produced
    ]
    changed = [p for p, text in outputs.items() if not p.exists() or p.read_text() != text]
    if args.check:
        for path in changed + stale:
            print(f"out of date: {path.relative_to(ROOT)}")
        return 1 if changed or stale else 0

    PAYLOAD_DIR.mkdir(parents=True, exist_ok=True)
    for path in stale:
        path.unlink()
    for path, text in outputs.items():
        path.write_text(text, encoding="utf-8")
    size = SUBSET_PATH.stat().st_size
    print(
        f"{OPENAPI_PACKAGE}@{openapi_version}: {len(OPERATIONS)} operations, "
        f"{size / 1024:.0f} KiB -> {SUBSET_PATH.relative_to(ROOT)}"
    )
    print(
        f"{WEBHOOKS_PACKAGE}@{webhooks_version}: {len(payloads)} payloads -> "
        f"{PAYLOAD_DIR.relative_to(ROOT)}/"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
