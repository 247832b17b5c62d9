"""Secrets never leak: a known string planted in a Secret's `stringData`, in its `data`
(base64), and in a Secret that post-build substitution reads, at base and at head,
appears in no output of any format: the diff (text, JSON, Markdown), `check` (every
format), the check run's summary and text, the command line's stdout and stderr, and no
log record."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from bot.analysis import analyze
from bot.analysis.diff import Redactor
from bot.analysis.engine import diff_trees
from bot.report import diff as report
from bot.report import formats, markdown
from bot.report.checkrun import render_summary, render_text
from tests.analysis_helpers import bootstrap, dedent, deployment, flux_kustomization, tree
from tests.fakegithub.gitrepo import GitRepo

PLANTED = {
    "string": ("sT-string-base-7f3a91c2", "sT-string-head-0be44d18"),
    "data": ("sT-data-base-52c1e9aa", "sT-data-head-93d0f7b6"),
    "substituted": ("sT-subst-base-1a2b3c4d", "sT-subst-head-5e6f7a8b"),
}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _forbidden() -> list[str]:
    found = []
    for pair in PLANTED.values():
        for value in pair:
            found += [value, _b64(value)]
    return found


def files(side: int) -> dict[str, str | bytes]:
    string, data, substituted = (PLANTED[k][side] for k in ("string", "data", "substituted"))
    out: dict[str, str | bytes] = dict(bootstrap("prod"))
    out["clusters/prod/vars.yaml"] = dedent(
        f"""
        apiVersion: v1
        kind: Secret
        metadata:
          name: app-vars
          namespace: flux-system
        stringData:
          DB_PASSWORD: {substituted}
        """
    )
    out["clusters/prod/apps.yaml"] = flux_kustomization("apps", "./apps") + (
        "  postBuild:\n    substituteFrom:\n      - kind: Secret\n        name: app-vars\n"
    )
    out["apps/credentials.yaml"] = dedent(
        f"""
        apiVersion: v1
        kind: Secret
        metadata:
          name: credentials
          namespace: web
        stringData:
          password: {string}
        data:
          token: {_b64(data)}
        """
    )
    out["apps/settings.yaml"] = dedent(
        """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: settings
          namespace: web
        data:
          url: postgres://app:${DB_PASSWORD}@db:5432/app
          password: ${DB_PASSWORD}
        """
    )
    out["apps/web.yaml"] = deployment(
        "web", f"ghcr.io/example/web:{'1.0' if side == 0 else '1.1'}", namespace="web"
    )
    return out


def test_the_planted_secrets_appear_in_no_output(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    base, head = tree(files(0)), tree(files(1))
    result = diff_trees(head, base)
    outputs = {
        "diff text": report.to_text(result.clusters, result.redactor),
        "diff json": report.to_json(result.clusters, "b", "h", result.redactor),
        "diff markdown": report.section(
            result.clusters, result.redactor, base="b", head="h", limit=65535
        ),
    }
    checked = analyze(head, base)
    assert checked.diff is not None and checked.redactor is not None
    outputs |= {
        "check text": formats.to_text(checked.findings, impact=checked.impact),
        "check json": formats.to_json(checked.findings, "b", "h", checked.impact, checked.diff),
        "check sarif": formats.to_sarif(checked.findings, "b", "h", None),
        "check github": formats.to_github(checked.findings),
        "check markdown": markdown.job_summary(
            checked.findings,
            base="b",
            head="h",
            impact=checked.impact,
            diff=checked.diff,
            redactor=checked.redactor,
        ),
        "check run summary": render_summary(
            checked.findings, checked.consumers, fail_on=None, impact=checked.impact
        ),
        "check run text": render_text(
            [f.rule for f in checked.findings],
            checked.diff,
            checked.redactor,
            base="b",
            head="h",
        ),
        "logs": caplog.text,
    }
    for name, text in outputs.items():
        leaked = [s for s in _forbidden() if s in text]
        assert not leaked, f"{name} shows {leaked}"
    # Each value is there, as a marker that tells the base's from the head's.
    diff_text = outputs["diff text"]
    for field in ("password", "token", "url"):
        lines = [line for line in diff_text.splitlines() if f"{field}: <secret sha256:" in line]
        minus = {line.split(": ", 1)[1] for line in lines if line.lstrip().startswith("-")}
        plus = {line.split(": ", 1)[1] for line in lines if line.lstrip().startswith("+")}
        assert minus and plus and not minus & plus, (field, diff_text)
    doc = json.loads(outputs["diff json"])
    [cluster] = doc["clusters"]
    [apps] = [k for k in cluster["kustomizations"] if k["kustomization"] == "flux-system/apps"]
    by_name = {o["name"]: o for o in apps["objects"]}
    assert by_name["settings"]["after"]["data"]["password"].startswith("<secret sha256:")


def test_the_marker_is_salted_per_run_and_follows_the_value() -> None:
    one, two = Redactor(), Redactor()
    assert one.marker("hunter2-value") == one.marker("hunter2-value")
    assert one.marker("hunter2-value") != one.marker("hunter2-valuf")
    assert one.marker("hunter2-value") != two.marker("hunter2-value")


def test_sops_encrypted_values_are_shown_as_written() -> None:
    cipher = "ENC[AES256_GCM,data:pPZLBw==,iv:abc=,tag:def=,type:str]"

    def side(extra: str) -> dict[str, str | bytes]:
        out: dict[str, str | bytes] = dict(bootstrap("prod"))
        out["clusters/prod/apps.yaml"] = flux_kustomization("apps", "./apps")
        out["apps/secret.yaml"] = dedent(
            f"""
            apiVersion: v1
            kind: Secret
            metadata:
              name: sealed
              namespace: web
            stringData:
              password: {cipher}
            sops:
              version: 3.8.1
              lastmodified: "{extra}"
            """
        )
        return out

    result = diff_trees(tree(side("2024-01-02T00:00:00Z")), tree(side("2024-01-01T00:00:00Z")))
    text = report.to_text(result.clusters, result.redactor)
    assert f"password: {cipher}" in text


def _cli(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args, "--repo", str(repo)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_command_line_shows_no_planted_secret(tmp_path: Path) -> None:
    git = GitRepo(tmp_path / "gitops")
    base = git.commit("base", files(0))
    head = git.commit("head", files(1))
    runs = [
        *(
            ("diff", "--base", base, "--head", head, "--format", f)
            for f in ("text", "json", "markdown")
        ),
        *(
            ("check", "--base", base, "--head", head, "--format", f)
            for f in ("text", "json", "sarif", "github", "markdown")
        ),
        ("check", "--all"),
    ]
    for args in runs:
        done = _cli(git.path, *args)
        assert done.returncode in (0, 1), (args, done.stderr)
        leaked = [s for s in _forbidden() if s in done.stdout + done.stderr]
        assert not leaked, f"{' '.join(args[:1] + args[-1:])} shows {leaked}"
    shown = _cli(git.path, "diff", "--base", base, "--head", head, "--color", "never")
    assert "<secret sha256:" in shown.stdout
