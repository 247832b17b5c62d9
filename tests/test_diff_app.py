"""The App's check run shows what a pull request changes, in `text`, on the update it
already makes (no other API call), within GitHub's limits; against the fake GitHub, which
checks every request against GitHub's REST description."""

from __future__ import annotations

import re

from tests.fakegithub import GitRepo
from tests.test_app_e2e import (
    SYNC,
    App,
    app,
    deployment,
    flux_kustomization,
    log_guard,
    only,
    start_app,
)

__all__ = ["app", "log_guard", "start_app"]  # fixtures

PLANTED = "pLanted-e2e-secret-6d1f0c"


def secret(value: str) -> str:
    return (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: default\n"
        f"stringData:\n  password: {value}\n"
    )


async def test_the_check_run_text_shows_the_diff(app: App, git_repo: GitRepo) -> None:
    git_repo.commit(
        "cluster",
        {
            "clusters/prod/flux-system/gotk-sync.yaml": SYNC,
            "clusters/prod/apps.yaml": flux_kustomization("./apps/podinfo"),
            "apps/podinfo/deployment.yaml": deployment("ghcr.io/stefanprodan/podinfo:6.5.0"),
            "apps/podinfo/secret.yaml": secret(PLANTED + "-base"),
        },
    )
    git_repo.branch("bump")
    git_repo.commit(
        "bump",
        {
            "apps/podinfo/deployment.yaml": deployment("ghcr.io/stefanprodan/podinfo:6.6.0"),
            "apps/podinfo/secret.yaml": secret(PLANTED + "-head"),
        },
    )
    app.fake.add_pull("bump")
    await app.deliver("pull_request.opened")
    await app.idle()
    run = only(app.runs())
    assert run.conclusion == "success"
    text = run.text
    assert text.startswith("## What this pull request changes\n")
    assert (
        "<summary><code>clusters/prod</code> · Flux Kustomization flux-system/apps: 2 changed"
        in text
    )
    assert "-        image: ghcr.io/stefanprodan/podinfo:6.5.0" in text.replace(
        "- image", "  image"
    )
    assert re.search(r"-  password: <secret sha256:[0-9a-f]{8}>\n\+  password: <secret", text)
    assert PLANTED not in text + run.summary
    # The check run is created, then completed once: the diff rides on that update.
    assert [r.method for r in app.api_calls() if "check-runs" in r.path] == ["POST", "PATCH"]


async def test_a_large_pull_request_fits_the_check_run(app: App, git_repo: GitRepo) -> None:
    many = {
        f"apps/podinfo/app-{i}.yaml": deployment(f"ghcr.io/example/app-{i}:1.0", f"app-{i}")
        for i in range(600)
    }
    git_repo.commit(
        "cluster",
        {
            "clusters/prod/flux-system/gotk-sync.yaml": SYNC,
            "clusters/prod/apps.yaml": flux_kustomization("./apps/podinfo"),
            **many,
        },
    )
    git_repo.branch("bump")
    git_repo.commit(
        "bump all",
        {
            path: str(content).replace(":1.0", f":2.{i}")
            for i, (path, content) in enumerate(many.items())
        },
    )
    app.fake.add_pull("bump")
    await app.deliver("pull_request.opened")
    await app.idle()
    run = only(app.runs())
    assert run.status == "completed"
    assert len(run.text) <= 65535 and len(run.summary) <= 65535
    last = run.text.rstrip().splitlines()[-1]
    assert re.fullmatch(
        r"\d+ more objects in 1 Kustomization are not shown \(of 600\); run "
        r"`flux-review diff --base [0-9a-f]{12} --head [0-9a-f]{12}` to see every change\.",
        last,
    ), last
    assert run.text.count("<details>") == run.text.count("</details>") == 1
