"""invalid-image-reference: images the kubelet cannot parse."""

from __future__ import annotations

import pytest

from tests.analysis_helpers import (
    dedent,
    deployment,
    flux_kustomization,
    helm_release,
    kustomization,
    line_of,
    repo,
    run,
)

RULE = "invalid-image-reference"
PATH = "apps/podinfo/deployment.yaml"
SHA = "sha256:" + "0123456789abcdef" * 4


def applied(image: str) -> dict[str, str | bytes]:
    return repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            PATH: deployment("podinfo", image),
        }
    )


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        ("ghcr.io/Example/podinfo:6.5.4", "repository names must be lower case"),
        ("Podinfo", "repository names must be lower case"),
        ('"ghcr.io/stefanprodan/podinfo:"', "the tag after `:` is empty"),
        ("ghcr.io/stefanprodan/podinfo@sha256:abc123", "the digest is not"),
        (f"ghcr.io/stefanprodan/podinfo@{SHA[:-1]}", "the digest is not"),
        (f"ghcr.io/stefanprodan/podinfo@{SHA.upper().replace('SHA', 'sha')}", "the digest"),
        ("ghcr.io/stefanprodan/podinfo@md5:" + "a" * 32, "digest algorithm `md5`"),
        ('"ghcr.io/stefanprodan/podinfo :6.5.4"', "it contains a space"),
        ('" ghcr.io/stefanprodan/podinfo:6.5.4"', "leading or trailing spaces"),
        ("ghcr.io//stefanprodan/podinfo:6.5.4", "empty path component"),
        ('""', "the image is empty"),
    ],
)
def test_invalid_images_are_reported(image: str, reason: str) -> None:
    files = applied(image)
    [finding] = run(files)
    assert (finding.rule, finding.path, finding.severity) == (RULE, PATH, "error")
    assert finding.line == line_of(str(files[PATH]), "image:")
    assert reason in finding.message
    assert "InvalidImageName" in finding.message


@pytest.mark.parametrize(
    "image",
    [
        "nginx",
        "nginx:1.25-alpine",
        "docker.io/library/nginx:1.25",
        "ghcr.io/stefanprodan/podinfo:6.5.4",
        f"ghcr.io/stefanprodan/podinfo@{SHA}",
        f"ghcr.io/stefanprodan/podinfo:6.5.4@{SHA}",
        "registry.example.com:5000/team/app:v1.2.3",
        "localhost:5000/app",
        '"[::1]:5000/app:1.0"',
        "MyRegistry.Example.com/app:1.0",
        "quay.io/prometheus-operator/prometheus-config-reloader:v0.72.0",
        "public.ecr.aws/eks-distro/kubernetes/pause:3.9",
        "ghcr.io/example/app__worker:1.0",
        "${REGISTRY}/app:${TAG}",
        '"${REGISTRY}/platform/api:${API_VERSION:=1.4.0}"',
        "ghcr.io/example/api:${TAG}",
        "ghcr.io/example/api@${API_DIGEST}",
        "ghcr.io/example/api:1.4.0@sha256:${API_DIGEST}",
    ],
)
def test_valid_images_are_silent(image: str) -> None:
    files = applied(image)
    # The variables come from the Kustomization's postBuild (without one, Flux would
    # leave `${TAG}` in the image: postbuild-substitution says so).
    files["clusters/prod/apps.yaml"] = flux_kustomization(
        "apps",
        "./apps",
        substitute={"REGISTRY": "ghcr.io/example", "TAG": "1.0.0", "API_DIGEST": "0" * 64},
    )
    assert run(files) == []


def test_init_and_ephemeral_containers_and_cronjobs_are_checked() -> None:
    text = dedent(
        """
        apiVersion: batch/v1
        kind: CronJob
        metadata:
          name: backup
        spec:
          schedule: "0 3 * * *"
          jobTemplate:
            spec:
              template:
                spec:
                  initContainers:
                    - name: wait
                      image: busybox:1.36
                  containers:
                    - name: backup
                      image: ghcr.io/Example/backup:1.0
                  restartPolicy: OnFailure
        """
    )
    files = repo({"clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"), PATH: text})
    assert [(f.rule, f.line) for f in run(files)] == [(RULE, line_of(text, "Example/backup"))]


def test_helm_template_image_is_reported_once_by_the_template_rule() -> None:
    findings = run(applied('"{{ .Values.image.repository }}:{{ .Values.image.tag }}"'))
    assert [f.rule for f in findings] == ["helm-template-in-raw-manifest"]


def test_helmrelease_values_images_are_not_checked() -> None:
    text = helm_release(
        "podinfo",
        version="6.x",
        values="""
        image:
          repository: ghcr.io/stefanprodan/podinfo
        containers:
          - name: x
            image: "{{ .Values.image.repository }}"
        """,
    )
    files = repo({"clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"), PATH: text})
    assert run(files) == []


def test_unconsumed_file_is_not_checked() -> None:
    files = repo({"docs/examples/deployment.yaml": deployment("x", "ghcr.io/Example/x:1")})
    assert run(files) == []


def test_placeholder_replaced_by_kustomize_images_is_silent() -> None:
    # kustomize's images transformer swaps the placeholder before anything is applied.
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps/podinfo"),
            "apps/podinfo/kustomization.yaml": kustomization(
                ["deployment.yaml"],
                extra="""
                images:
                  - name: PODINFO_IMAGE
                    newName: ghcr.io/stefanprodan/podinfo
                    newTag: 6.5.4
                """,
            ),
            PATH: deployment("podinfo", "PODINFO_IMAGE"),
        }
    )
    assert run(files) == []
    # Without the transformer entry the placeholder reaches the kubelet.
    files["apps/podinfo/kustomization.yaml"] = kustomization(["deployment.yaml"])
    assert [f.rule for f in run(files)] == [RULE]


def test_placeholder_replaced_by_flux_kustomization_images_is_silent() -> None:
    flux = flux_kustomization("apps", "./apps") + (
        "  images:\n"
        "    - name: PODINFO_IMAGE\n"
        "      newName: ghcr.io/stefanprodan/podinfo\n"
        "      newTag: 6.5.4\n"
    )
    files = repo({"clusters/prod/apps.yaml": flux, PATH: deployment("podinfo", "PODINFO_IMAGE")})
    assert run(files) == []
