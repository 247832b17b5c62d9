"""The repository config `.github/flux-review.yml`: what it changes and how it fails."""

from __future__ import annotations

import pytest

from bot.analysis import ConfigError, Severity, parse_config
from tests.analysis_helpers import (
    dedent,
    deployment,
    flux_kustomization,
    kustomization,
    repo,
    run,
    service,
)

BAD_IMAGE = "ghcr.io/Example/podinfo:6.5.4"


def platform() -> dict[str, str | bytes]:
    """One invalid image (error) and one unlisted manifest (warning)."""
    return repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps/podinfo"),
            "apps/podinfo/kustomization.yaml": kustomization(["deployment.yaml"]),
            "apps/podinfo/deployment.yaml": deployment("podinfo", BAD_IMAGE),
            "apps/podinfo/service.yaml": service("podinfo"),
        }
    )


def summary(config: str | None = None) -> list[tuple[str, str, str]]:
    return [(f.rule, f.severity.value, f.path) for f in run(platform(), config=config)]


def test_defaults() -> None:
    assert summary() == [
        ("invalid-image-reference", "error", "apps/podinfo/deployment.yaml"),
        ("kustomize-unlisted-manifest", "warning", "apps/podinfo/service.yaml"),
    ]


def test_severity_override() -> None:
    config = """
    rules:
      kustomize-unlisted-manifest: error
      invalid-image-reference: notice
    """
    assert summary(dedent(config)) == [
        ("invalid-image-reference", "notice", "apps/podinfo/deployment.yaml"),
        ("kustomize-unlisted-manifest", "error", "apps/podinfo/service.yaml"),
    ]


def test_rule_off() -> None:
    assert summary("rules:\n  invalid-image-reference: off\n") == [
        ("kustomize-unlisted-manifest", "warning", "apps/podinfo/service.yaml"),
    ]


def test_rule_false_is_off_too() -> None:
    config = parse_config("rules:\n  chart-not-bumped: false\n")
    assert config.severity_for("chart-not-bumped", Severity.WARNING) is None


@pytest.mark.parametrize(
    "pattern",
    [
        "apps/podinfo/deployment.yaml",
        "apps/**",
        "apps/",
        "/apps/podinfo/",
        "deployment.yaml",
        "*/podinfo/deploy*.yaml",
    ],
)
def test_ignore_globs(pattern: str) -> None:
    rules = [r for r, _, _ in summary(f"ignore:\n  - '{pattern}'\n")]
    assert "invalid-image-reference" not in rules


@pytest.mark.parametrize("pattern", ["other/**", "deploy.yaml", "podinfo/deployment.yaml"])
def test_ignore_globs_that_do_not_match(pattern: str) -> None:
    rules = [r for r, _, _ in summary(f"ignore:\n  - '{pattern}'\n")]
    assert "invalid-image-reference" in rules


def test_raw_paths() -> None:
    config = parse_config("raw_paths:\n  - ./legacy/manifests/\n  - /\n")
    assert config.raw_paths == ("legacy/manifests", "")
    files = {"legacy/manifests/api.yaml": deployment("api", "{{ .Values.image }}")}
    assert run(files) == []
    assert [f.rule for f in run(files, config="raw_paths: [legacy/manifests]\n")] == [
        "helm-template-in-raw-manifest"
    ]


def test_fail_on_and_review_drafts() -> None:
    config = parse_config("fail_on: warning\nreview_drafts: false\n")
    assert config.fail_on is Severity.WARNING
    assert config.review_drafts is False
    default = parse_config("")
    assert default.fail_on is Severity.ERROR
    assert default.review_drafts is True


def test_fail_on_never_is_a_threshold_nothing_reaches() -> None:
    assert parse_config("fail_on: never\n").fail_on is None
    assert parse_config("fail_on: notice\n").fail_on is Severity.NOTICE


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        # A plural, a typo, the other separator, a part of the id: the rule the user meant.
        ("rules:\n  helm-template-in-raw-manifests: off\n", "'helm-template-in-raw-manifest'"),
        ("rules:\n  chart-not-bumpd: off\n", "'chart-not-bumped'"),
        ("rules:\n  kustomize_unlisted_manifest: notice\n", "'kustomize-unlisted-manifest'"),
        ("rules:\n  pull-secret: off\n", "'missing-pull-secret'"),
        ("fail-on: warning\n", "'fail_on'"),
        ("rule:\n  chart-not-bumped: off\n", "'rules'"),
        ("externalObjects: []\n", "'external_objects'"),
    ],
)
def test_an_unknown_rule_or_key_gets_did_you_mean(text: str, suggestion: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert f"did you mean {suggestion}?" in str(info.value)


def test_an_unknown_rule_nothing_resembles_gets_no_guess() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("rules:\n  zzz: off\n")
    assert str(info.value) == ".github/flux-review.yml: line 2: unknown rule 'zzz' in 'rules'"


def test_empty_and_comment_only_configs_are_the_defaults() -> None:
    assert parse_config("") == parse_config("# nothing yet\n") == parse_config(b"")


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("rule:\n  chart-not-bumped: off\n", 1, "unknown key 'rule'"),
        ("ignore: []\nfail-on: warning\n", 2, "unknown key 'fail-on'"),
        ("rules:\n  chart-not-bumped: of\n", 2, "rules.chart-not-bumped must be one of"),
        ("rules:\n  helm-templates: off\n", 2, "unknown rule 'helm-templates'"),
        ("rules: off\n", 1, "'rules' must be a mapping"),
        ("rules:\n  chart-not-bumped: null\n", 2, "rules.chart-not-bumped"),
        ("ignore: 3\n", 1, "'ignore' must be a list of strings"),
        ("ignore:\n  - charts/**\n  - 3\n", 3, "'ignore' must be a list of strings"),
        ("raw_paths:\n  - legacy\n  - {path: x}\n", 3, "'raw_paths' must be a list of strings"),
        ("fail_on: critical\n", 1, "'fail_on' must be error, warning, notice or never"),
        ("review_drafts: maybe\n", 1, "'review_drafts' must be true or false"),
        ("- rules\n", 1, "the config must be a mapping"),
        ("rules:\n  a: [\n", 3, "invalid YAML"),
    ],
)
def test_invalid_configs_name_key_and_line(text: str, line: int, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    message = str(info.value)
    assert message.startswith(".github/flux-review.yml: ")
    assert f"line {line}" in message
    assert says in message


def test_config_error_names_the_source() -> None:
    with pytest.raises(ConfigError, match=r"^ci/review\.yml: line 1: unknown key 'x'"):
        parse_config("x: 1\n", source="ci/review.yml")


def test_config_that_is_not_utf8() -> None:
    with pytest.raises(ConfigError, match="not UTF-8"):
        parse_config(b"ignore:\n  - caf\xe9\n")


def test_flux_version_is_a_quoted_flux_2_release() -> None:
    assert parse_config('flux_version: "2.4.0"\n').flux_version == (2, 4)
    assert parse_config("flux_version: v2.10\n").flux_version == (2, 10)
    assert parse_config("flux_version: 2.4.x\n").flux_version == (2, 4)
    for bad in ("flux_version: 2.4\n", "flux_version: latest\n", 'flux_version: "0.41.2"\n'):
        with pytest.raises(ConfigError, match="line 1: 'flux_version' must be a Flux 2 release"):
            parse_config(bad)


def test_external_objects_are_parsed() -> None:
    config = parse_config(
        dedent(
            """
            external_objects:
              - GitRepository/flux-system/platform
              - HelmRepository/*/bitnami
              - ClusterIssuer/letsencrypt
            """
        )
    )
    assert config.has_external("GitRepository", "flux-system", "platform")
    assert config.has_external("GitRepository", None, "platform")
    assert not config.has_external("GitRepository", "apps", "platform")
    assert not config.has_external("HelmRepository", "flux-system", "platform")
    assert config.has_external("HelmRepository", "apps", "bitnami")
    assert config.has_external("ClusterIssuer", None, "letsencrypt")
    assert config.has_external("ClusterIssuer", "default", "letsencrypt")
    assert not config.has_external("ClusterIssuer", None, "letsencrypt-staging")
    assert [(e.kind, e.namespace, e.name) for e in config.external_objects] == [
        ("GitRepository", "flux-system", "platform"),
        ("HelmRepository", None, "bitnami"),
        ("ClusterIssuer", None, "letsencrypt"),
    ]
    assert parse_config("external_objects: []\n").external_objects == ()
    lower = parse_config("external_objects: [helmrepository/flux-system/bitnami]\n")
    assert lower.has_external("HelmRepository", "flux-system", "bitnami")


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("external_objects: HelmRepository/a/b\n", 1, "must be a list"),
        ("external_objects:\n  - HelmRepository/a/b\n  - 42\n", 3, "item 2 must be a string"),
        ("external_objects:\n  - HelmRepository\n", 2, "write `Kind/namespace/name`"),
        ("external_objects:\n  - HelmRepository/a/b/c\n", 2, "write `Kind/namespace/name`"),
        ("external_objects:\n  - HelmRepository//b\n", 2, "write `Kind/namespace/name`"),
        ("external_objects:\n  - helm-repository/a/b\n", 2, "is not a Kubernetes kind"),
        ("external_objects:\n  - HelmRepository/a/my repo\n", 2, "write"),
        ("rules: {}\nexternal_object:\n  - HelmRepository/a/b\n", 2, "unknown key"),
    ],
)
def test_invalid_external_objects_name_the_line(text: str, line: int, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert f"line {line}:" in str(info.value) and says in str(info.value)


def test_clusters_and_kubernetes_version_are_read() -> None:
    config = parse_config(
        dedent(
            """
            clusters:
              - clusters/lab/
              - name: edge
                paths: [clusters/edge, ./infrastructure/edge]
                substitute: {REPLICAS: 3, TLS: true}
                kubernetes_version: "1.31"
            kubernetes_version:
              "*": "1.33"
              clusters/lab: v1.32.4
            """
        )
    )
    lab, edge = config.clusters
    assert (lab.name, lab.paths, lab.line) == ("clusters/lab", ("clusters/lab",), 2)
    # postBuild.substitute is a map of strings: what YAML read as 3 or true is that text
    assert (edge.paths, edge.substitute) == (
        ("clusters/edge", "infrastructure/edge"),
        (("REPLICAS", "3"), ("TLS", "true")),
    )
    assert config.kubernetes_version("edge") == (1, 31)
    assert config.kubernetes_version("clusters/lab") == (1, 32)
    assert config.kubernetes_version("another") == (1, 33)
    assert parse_config("flux_version: '2.6'\n").kubernetes_version("any") is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("kubernetes_version: 1.30\n", "an unquoted 1.30 reads as 1.3"),
        ('kubernetes_version: "2.1"\n', "must be a Kubernetes release"),
        ("clusters: clusters/prod\n", "'clusters' must be a list"),
        ("clusters: [{name: a}]\n", "'paths' must be a list of directories"),
        ("clusters: [{paths: [a], substitutes: {}}]\n", "did you mean 'substitute'?"),
        ("clusters: [{paths: [a], substitute: {1X: y}}]\n", "is not a variable name"),
        ("clusters: [a, {name: a, paths: [b]}]\n", "a second cluster named 'a'"),
    ],
)
def test_clusters_and_kubernetes_version_mistakes_name_the_line(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(text)
    assert says in str(raised.value) and ": line 1" in str(raised.value)
