"""The project's own deployment files: flux-review reviews them like any GitOps repository,
the chart's values satisfy its schema, and the image runs the App as an unprivileged user."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from bot.analysis import DictTree, Severity, analyze

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def deploy_tree() -> DictTree:
    return DictTree(
        {
            str(path.relative_to(ROOT)): path.read_bytes()
            for path in sorted(DEPLOY.rglob("*"))
            if path.is_file()
        }
    )


def test_flux_review_finds_nothing_wrong_in_its_own_deployment() -> None:
    result = analyze(deploy_tree())
    problems = [f for f in result.findings if f.severity is Severity.ERROR]
    assert problems == [], "\n".join(f"{f.path}:{f.line} {f.rule}: {f.message}" for f in problems)
    assert not list(getattr(result, "errors", None) or ())


def test_the_chart_values_and_the_helmrelease_values_satisfy_the_schema() -> None:
    schema = json.loads((DEPLOY / "chart/values.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    values = yaml.safe_load((DEPLOY / "chart/values.yaml").read_text())
    jsonschema.validate(values, schema)
    docs = list(yaml.safe_load_all((DEPLOY / "flux/helmrelease.yaml").read_text()))
    release = next(d for d in docs if d["kind"] == "HelmRelease")
    merged = {**values, **release["spec"]["values"]}
    jsonschema.validate(merged, schema)
    # A typo in a value is refused, not ignored.
    bad = {**values, "worker": {**values["worker"], "replica": 3}}
    assert not jsonschema.Draft202012Validator(schema).is_valid(bad)


def test_both_deployments_probe_health_and_readiness_and_share_the_secret() -> None:
    for name in ("web.yaml", "worker.yaml"):
        text = (DEPLOY / "chart/templates" / name).read_text()
        assert "path: /healthz" in text and "path: /readyz" in text, name
    helpers = (DEPLOY / "chart/templates/_helpers.tpl").read_text()
    for key in ("APP_ID", "PRIVATE_KEY", "WEBHOOK_SECRET"):
        assert f"key: {key}" in helpers


def test_the_image_runs_the_app_unprivileged() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    final = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")) :]
    user = [line for line in final if line.startswith("USER ")]
    assert user and user[-1] not in ("USER root", "USER 0")
    assert final[-1] == 'CMD ["python", "-m", "bot", "serve"]'
    assert any(line.startswith("FROM python:") and "slim" in line for line in final)


def test_the_redis_of_the_chart_and_of_compose_keeps_an_append_only_file() -> None:
    # A webhook answered 202 is only in Redis: a Redis restarted without its data loses it.
    values = yaml.safe_load((DEPLOY / "chart/values.yaml").read_text())
    assert "appendonly yes" in values["redis"]["commonConfiguration"].splitlines()
    assert values["redis"]["master"]["persistence"]["enabled"] is True
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert compose["services"]["redis"]["volumes"] == ["redis-data:/data"]
    for name in ("web", "worker"):
        assert compose["services"][name]["environment"]["REDIS_PERSISTENCE"] == "require"
