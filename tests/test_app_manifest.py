"""app.yml stays in step with what the App does: its events and its API calls."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml
from gidgethub import sansio

from bot.server.events import router
from tests.fakegithub import available_payloads, load_payload

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = yaml.safe_load((ROOT / "app.yml").read_text())

# Each REST endpoint the App calls -> the permission it needs.
ENDPOINT_PERMISSIONS = {
    r"^/app/installations/\{installation_id\}/access_tokens$": None,  # the App's JWT
    r"/check-runs(/\{check_run_id\})?$": ("checks", "write"),
    r"/commits/\{ref\}/check-runs\{\?check_name(,status)?,per_page\}$": ("checks", "read"),
    r"/pulls/\{pull_number\}(/files|/comments)?(\{\?per_page\})?$": ("pull_requests", "read"),
    r"/pulls/\{pull_number\}/reviews$": ("pull_requests", "write"),
    r"/commits/\{commit_sha\}/pulls\{\?per_page\}$": ("pull_requests", "read"),
    # Reconciliation: the open pull requests of a repository.
    r"/pulls\{\?state,sort,direction,per_page\}$": ("pull_requests", "read"),
    r"/tarball/\{ref\}$": ("contents", "read"),
    r"/git/trees/\{tree_sha\}(\{\?recursive\})?$": ("contents", "read"),
    r"/git/blobs/\{file_sha\}$": ("contents", "read"),
    r"/contents/\{\+path\}\{\?ref\}$": ("contents", "read"),
    r"/compare/\{basehead\}\{\?per_page\}$": ("contents", "read"),
    r"/collaborators/\{username\}/permission$": ("metadata", "read"),
    r"/issues/\{issue_number\}/comments(\{\?per_page\})?$": ("issues", "write"),
    r"/issues/comments/\{comment_id\}/reactions$": ("issues", "write"),
}
LEVEL = {"read": 1, "write": 2}


def _used_endpoints() -> set[str]:
    found = set()
    for path in (ROOT / "bot").rglob("*.py"):
        if "analysis" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.match(r"^/(repos|app)/", node.value)
            ):
                found.add(node.value)
    return found


def test_manifest_events_are_the_events_the_routers_handle() -> None:
    registered = set(router._shallow_routes) | set(router._deep_routes)
    assert set(MANIFEST["default_events"]) == registered
    # And each of them really dispatches a real payload of that event.
    handled = set()
    for name in available_payloads():
        data = load_payload(name)
        event = sansio.Event(data, event=name.split(".")[0], delivery_id="x")
        if router.fetch(event):
            handled.add(event.event)
    assert handled == set(MANIFEST["default_events"])


def test_manifest_permissions_cover_every_api_call_and_no_more() -> None:
    used = _used_endpoints()
    assert used, "no endpoints found"
    needed: dict[str, str] = {"metadata": "read"}
    for endpoint in used:
        matches = [
            perm for pattern, perm in ENDPOINT_PERMISSIONS.items() if re.search(pattern, endpoint)
        ]
        assert matches, f"{endpoint}: add it to ENDPOINT_PERMISSIONS and app.yml"
        for perm in matches:
            if perm is not None:
                name, level = perm
                if LEVEL[level] > LEVEL.get(needed.get(name, ""), 0):
                    needed[name] = level
    # Commands reply and react on PR conversations, which are issue comments.
    assert MANIFEST["default_permissions"] == {
        "checks": "write",
        "pull_requests": "write",
        "contents": "read",
        "issues": "write",
        "metadata": "read",
    }
    assert needed == MANIFEST["default_permissions"]


def test_manifest_shape() -> None:
    assert MANIFEST["name"] == "flux-review"
    assert MANIFEST["url"]
    assert MANIFEST["hook_attributes"]["url"].endswith("/api/github/webhooks")
    assert isinstance(MANIFEST["public"], bool)


def test_procfile_runs_the_server_and_the_workers() -> None:
    assert (ROOT / "Procfile").read_text().splitlines() == [
        "web: python -m bot serve",
        "worker: python -m bot worker",
    ]
