"""kustomize's `replacements` in the build, against the real kustomize: each case below
is a directory built by `kubectl kustomize` (kustomize v5.5, what kustomize-controller
runs) and by the build; both must produce the same objects (their JSON values, typed by
`yn.to_value` on both sides), or both fail, the build saying what kustomize prints. Then
what kubectl cannot show: where a replaced value comes from, and what the analysis
reports.

Skipped where `kubectl` is not on the PATH, unless `FLUX_REVIEW_REQUIRE_KUBECTL` is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.analysis.snapshot import Snapshot
from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.snapshot.build.kustomize import Built, Kustomizer
from bot.analysis.snapshot.build.problems import ProblemKind
from bot.analysis.snapshot.build.replacements import lookup, split_path
from bot.analysis.snapshot.build.source import RepoView
from tests.analysis_helpers import (
    Files,
    dedent,
    flux_kustomization,
    line_of,
    of_rule,
    repo,
    run,
    tree,
)

KUBECTL = shutil.which("kubectl")
REQUIRED = bool(os.environ.get("FLUX_REVIEW_REQUIRE_KUBECTL"))
needs_kubectl = pytest.mark.skipif(
    KUBECTL is None and not REQUIRED, reason="kubectl is not on the PATH"
)

SOURCES = dedent(
    """
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: settings
      annotations:
        config.kubernetes.io/local-config: "true"
    data:
      host: shop.example.com
      replicas: "3"
      port: "8080"
      enabled: "true"
      image: ghcr.io/example/web:2.0.0
      tags: blue,green,red
      empty: ""
    ---
    apiVersion: v1
    kind: Secret
    metadata:
      name: creds
    stringData:
      password: hunter2
    """
)
WORKLOAD = dedent(
    """
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      labels:
        tier: front
    spec:
      replicas: 1
      selector:
        matchLabels: {app: web}
      template:
        metadata:
          labels: {app: web}
        spec:
          containers:
            - name: app
              image: nginx:1.0
              args: [--port, "80", --verbose]
              env:
                - name: HOST
                  value: placeholder
                - name: PORT
                  value: "80"
                - name: EMPTY
                  value:
              resources:
                limits: {cpu: 100m}
            - name: app-sidecar
              image: busybox:1.36
            - name: proxy
              image: envoy:1.0
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: web
      namespace: shop
      labels:
        tier: front
      annotations:
    spec:
      ports:
        - name: http
          port: 80
        - name: metrics
          port: 9090
    ---
    apiVersion: networking.k8s.io/v1
    kind: Ingress
    metadata:
      name: web
      namespace: shop
    spec:
      rules:
        - host: placeholder
          http:
            paths:
              - path: /
                pathType: Prefix
                backend:
                  service: {name: web, port: {number: 80}}
    """
)


def case(replacements: str, extra: str = "", more: Files | None = None) -> Files:
    """A directory of the sources and workloads above, with `replacements` (and `extra`
    fields of its kustomization, `more` files)."""
    out: dict[str, str | bytes] = {
        "kustomization.yaml": "resources: [sources.yaml, workload.yaml]\n"
        + dedent(extra)
        + "replacements:\n"
        + dedent(replacements),
        "sources.yaml": SOURCES,
        "workload.yaml": WORKLOAD,
    }
    out.update(more or {})
    return out


# Directories kustomize builds: the build must produce the same objects.
BUILDS: dict[str, Files] = {
    "default-fieldpaths": case(
        """
        - source: {kind: ConfigMap, name: settings}
          targets:
            - select: {kind: Ingress}
        """
    ),
    "data-into-env-and-unanchored-item-pattern": case(
        """
        - source: {kind: ConfigMap, name: settings, fieldPath: data.host}
          targets:
            - select: {kind: Deployment, name: web}
              fieldPaths:
                - spec.template.spec.containers.[name=app].env.[name=HOST].value
                - spec.template.spec.containers.[name=app].image
        """
    ),
    "scalar-types-kept": case(
        """
        - source: {kind: ConfigMap, name: settings, fieldPath: data.replicas}
          targets:
            - select: {kind: Deployment}
              fieldPaths: [spec.replicas]
        - source: {kind: Service, name: web, fieldPath: spec.ports.1.port}
          targets:
            - select: {kind: Deployment}
              fieldPaths:
                - spec.template.spec.containers.[name=app].env.[name=PORT].value
                - spec.template.spec.containers.[name=app].env.[name=HOST].value
        """
    ),
    "created-fields-typed-by-text-annotations-strings": case(
        """
        - source: {kind: ConfigMap, name: settings, fieldPath: data.port}
          targets:
            - select: {kind: Service}
              fieldPaths:
                - metadata.annotations.[example.com/port]
                - metadata.labels.port
                - spec.extra.port
              options: {create: true}
        - source: {kind: ConfigMap, name: settings, fieldPath: data.enabled}
          targets:
            - select: {kind: Service}
              fieldPaths: [spec.extra.enabled]
              options: {create: true}
        """
    ),
    "created-list-items-and-indexes": case(
        """
        - source: {kind: ConfigMap, name: settings, fieldPath: data.host}
          targets:
            - select: {kind: Deployment}
              fieldPaths:
                - spec.template.spec.containers.[name=proxy].env.[name=UPSTREAM].value
                - spec.template.spec.hostAliases.0.hostnames.0
              options: {create: true}
        """
    ),
    "create-below-a-null-changes-nothing": case(
        """
        - source: {kind: ConfigMap, name: settings, fieldPath: data.host}
          targets:
            - select: {kind: Deployment}
              fieldPaths:
                - spec.template.spec.containers.[name=app].env.[name=EMPTY].value.x
              options: {create: true}
        """
    ),
    "delimiters": case(
        """
        - source:
            kind: ConfigMap
            name: settings
            fieldPath: data.image
            options: {delimiter: ":", index: 1}
          targets:
            - select: {kind: Deployment}
              fieldPaths: ["spec.template.spec.containers.[name=proxy].image"]
              options: {delimiter: ":", index: 1}
        - source:
            kind: ConfigMap
            name: settings
            fieldPath: data.tags
            options: {delimiter: ",", index: 2}
          targets:
            - select: {kind: Ingress}
              fieldPaths: [spec.rules.0.host]
              options: {delimiter: ".", index: -1}
            - select: {kind: Deployment}
              fieldPaths: [metadata.labels.tier]
              options: {delimiter: "-", index: 7}
        """
    ),
    "mapping-and-list-values": case(
        """
        - source:
            kind: Deployment
            fieldPath: spec.template.spec.containers.0.resources
          targets:
            - select: {kind: Deployment}
              fieldPaths:
                - spec.template.spec.containers.[name=proxy].resources
              options: {create: true}
        - source:
            kind: Deployment
            fieldPath: spec.template.spec.containers.[name=app].args
          targets:
            - select: {kind: Deployment}
              fieldPaths: [spec.template.spec.containers.2.args]
              options: {create: true}
        """
    ),
    "wildcards-and-primitive-items": case(
        """
        - source: {kind: ConfigMap, name: settings, fieldPath: data.port}
          targets:
            - select: {kind: Service}
              fieldPaths: ["spec.ports.*.targetPort"]
              options: {create: true}
            - select: {kind: Deployment}
              fieldPaths:
                - "spec.template.spec.containers.[name=app].args.[=80]"
                - "spec.template.spec.containers.[name=app].args.[=^--verbose$]"
        """
    ),
    "select-and-reject": case(
        """
        - source: {kind: ConfigMap, name: settings, fieldPath: data.host}
          targets:
            - select: {labelSelector: tier=front}
              reject: [{kind: Service}]
              fieldPaths: [metadata.annotations.host]
              options: {create: true}
            - select: {namespace: shop}
              reject: [{labelSelector: tier=front}]
              fieldPaths: [metadata.annotations.shop]
              options: {create: true}
            - select: {group: networking.k8s.io, version: v1}
              fieldPaths: [metadata.annotations.ingress]
              options: {create: true}
            - select: {namespace: default}
              fieldPaths: [metadata.annotations.in-default]
              options: {create: true}
        """
    ),
    "source-by-earlier-name-and-namespace": case(
        """
        - source: {kind: ConfigMap, name: settings, namespace: default, fieldPath: data.host}
          targets:
            - select: {kind: Ingress, name: web}
              fieldPaths: [spec.rules.0.host]
        - source: {kind: Deployment, name: web}
          targets:
            - select: {kind: Ingress}
              fieldPaths: [metadata.annotations.deployment]
              options: {create: true}
        """,
        extra="namePrefix: shop-\n",
    ),
    "after-the-other-transformers": case(
        """
        - source: {kind: Deployment, fieldPath: spec.template.spec.containers.0.image}
          targets:
            - select: {kind: Service}
              fieldPaths: [metadata.annotations.image]
              options: {create: true}
        - source: {kind: Ingress, fieldPath: metadata.namespace}
          targets:
            - select: {kind: Deployment}
              fieldPaths: [metadata.annotations.namespace]
              options: {create: true}
        """,
        extra="namespace: prod\nimages:\n  - name: nginx\n    newTag: '1.27'\n",
    ),
    "one-after-the-other": case(
        """
        - source: {kind: ConfigMap, name: settings, fieldPath: data.host}
          targets:
            - select: {kind: Service}
              fieldPaths: [metadata.name]
        - source: {kind: Service, fieldPath: metadata.name}
          targets:
            - select: {kind: Ingress}
              fieldPaths: [spec.rules.0.http.paths.0.backend.service.name]
        """
    ),
    "from-files": case(
        """
        - path: replacements/host.yaml
        - path: replacements/more.yaml
        """,
        more={
            "replacements/host.yaml": dedent(
                """
                source: {kind: ConfigMap, name: settings, fieldPath: data.host}
                targets:
                  - select: {kind: Ingress}
                    fieldPaths: [spec.rules.0.host]
                """
            ),
            "replacements/more.yaml": dedent(
                """
                - source: {kind: Secret, name: creds, fieldPath: stringData.password}
                  targets:
                    - select: {kind: Deployment}
                      fieldPaths: [spec.template.spec.containers.0.env.1.value]
                - source: {kind: ConfigMap, name: settings, fieldPath: data.empty}
                  targets:
                    - select: {kind: Deployment}
                      fieldPaths: [spec.template.spec.containers.0.env.0.value]
                """
            ),
        },
    ),
    "whole-values-over-scalars-and-scalars-over-mappings": case(
        """
        - source: {kind: ConfigMap, name: settings, fieldPath: data.port}
          targets:
            - select: {kind: Deployment}
              fieldPaths: [spec.template.spec.containers.0.resources]
        - source: {kind: Service, fieldPath: spec.ports}
          targets:
            - select: {kind: Ingress}
              fieldPaths: [spec.rules.0.host]
        """
    ),
    "lookups-by-item-index-and-last": case(
        """
        - source: {kind: Service, fieldPath: "spec.ports.[name=metrics].port"}
          targets:
            - select: {kind: Deployment}
              fieldPaths:
                - spec.template.spec.containers.[name=proxy].ports.[containerPort=90].containerPort
              options: {create: true}
        - source: {kind: Service, fieldPath: spec.ports.-.name}
          targets:
            - select: {kind: Service}
              fieldPaths: ["spec.ports.[port=80].name", metadata.annotations.example\\.com/last]
              options: {create: true}
        """
    ),
    "types-of-other-targets": {
        "kustomization.yaml": dedent(
            """
            resources: [objects.yaml]
            replacements:
              - source: {kind: ConfigMap, fieldPath: data.one}
                targets:
                  - select: {kind: Widget}
                    fieldPaths: [spec.ratio, spec.count, spec.text]
              - source: {kind: ConfigMap, fieldPath: data.off}
                targets:
                  - select: {kind: Widget}
                    fieldPaths: [spec.enabled, spec.yes]
              - source: {kind: ConfigMap, fieldPath: data.list}
                targets:
                  - select: {kind: Widget}
                    fieldPaths: [spec.words]
                    options: {delimiter: " ", index: 1}
              - source: {kind: ConfigMap, fieldPath: data.quoted}
                targets:
                  - select: {kind: Widget}
                    fieldPaths: [spec.created.quoted, spec.created.plain]
                    options: {create: true, delimiter: "-", index: 1}
            """
        ),
        "objects.yaml": dedent(
            """
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: values
            data:
              one: "1"
              "off": "false"
              list: a b c
              quoted: "10"
            ---
            apiVersion: example.com/v1
            kind: Widget
            metadata:
              name: w
            spec:
              ratio: 0.5
              count: 7
              text: seven
              enabled: true
              yes: no
              words: one two
            """
        ),
    },
    "cluster-scoped-objects-are-in-default-for-selectors": {
        "kustomization.yaml": dedent(
            """
            resources: [objects.yaml]
            namespace: apps
            replacements:
              - source: {kind: ClusterRole, namespace: default}
                targets:
                  - select: {kind: ClusterRoleBinding, namespace: default}
                    fieldPaths: [roleRef.name]
                  - select: {namespace: apps}
                    reject: [{annotationSelector: skip=yes}]
                    fieldPaths: [metadata.annotations.role]
                    options: {create: true}
            """
        ),
        "objects.yaml": dedent(
            """
            apiVersion: rbac.authorization.k8s.io/v1
            kind: ClusterRole
            metadata:
              name: reader
            rules: []
            ---
            apiVersion: rbac.authorization.k8s.io/v1
            kind: ClusterRoleBinding
            metadata:
              name: reader
            roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: old}
            subjects: []
            ---
            apiVersion: v1
            kind: ServiceAccount
            metadata:
              name: a
            ---
            apiVersion: v1
            kind: ServiceAccount
            metadata:
              name: b
              annotations: {skip: "yes"}
            """
        ),
    },
    "generated-names-and-components": {
        "kustomization.yaml": dedent(
            """
            resources: [workload.yaml]
            configMapGenerator:
              - name: web-config
                literals: [LEVEL=debug]
            components: [component]
            """
        ),
        "workload.yaml": WORKLOAD,
        "component/kustomization.yaml": dedent(
            """
            apiVersion: kustomize.config.k8s.io/v1alpha1
            kind: Component
            replacements:
              - source: {kind: ConfigMap, name: web-config}
                targets:
                  - select: {kind: Deployment}
                    fieldPaths:
                      - spec.template.spec.volumes.[name=config].configMap.name
                      - metadata.annotations.config
                    options: {create: true}
            """
        ),
    },
}

# Directories kustomize refuses: the build has a problem that quotes its error.
FAILURES: dict[str, tuple[Files, str]] = {
    "no-source": (
        case(
            """
            - source: {kind: ConfigMap, name: other, fieldPath: data.host}
              targets: [{select: {kind: Ingress}}]
            """
        ),
        "nothing selected by ConfigMap.[noVer].[noGrp]/other.[noNs]:data.host",
    ),
    "several-sources": (
        case(
            """
            - source: {name: web}
              targets: [{select: {kind: Ingress}}]
            """
        ),
        "multiple matches for selector [noKind].[noVer].[noGrp]/web.[noNs]",
    ),
    "missing-source-field": (
        case(
            """
            - source: {kind: ConfigMap, fieldPath: data.missing}
              targets: [{select: {kind: Ingress}}]
            """
        ),
        "is missing for replacement source",
    ),
    "wildcard-source": (
        case(
            """
            - source: {kind: Service, fieldPath: "spec.ports.*.port"}
              targets: [{select: {kind: Ingress}}]
            """
        ),
        "wildcard is not supported in PathGetter",
    ),
    "missing-target-field": (
        case(
            """
            - source: {kind: ConfigMap, fieldPath: data.host}
              targets:
                - select: {kind: Ingress}
                  fieldPaths: [spec.tls.0.hosts.0]
            """
        ),
        "unable to find field",
    ),
    "no-item-matches": (
        case(
            """
            - source: {kind: ConfigMap, fieldPath: data.host}
              targets:
                - select: {kind: Deployment}
                  fieldPaths: ["spec.template.spec.containers.[name=db].image"]
            """
        ),
        'unable to find field "spec.template.spec.containers.[name=db].image" in replacement',
    ),
    "through-a-scalar": (
        case(
            """
            - source: {kind: ConfigMap, fieldPath: data.host}
              targets:
                - select: {kind: Ingress}
                  fieldPaths: [spec.rules.0.host.name]
                  options: {create: true}
            """
        ),
        "wrong node kind: expected MappingNode but got ScalarNode",
    ),
    "index-past-the-end": (
        case(
            """
            - source: {kind: ConfigMap, fieldPath: data.host}
              targets:
                - select: {kind: Service}
                  fieldPaths: [spec.ports.5.name]
                  options: {create: true}
            """
        ),
        "index 5 specified but only 2 elements found",
    ),
    "delimiter-index-out-of-bounds": (
        case(
            """
            - source: {kind: ConfigMap, fieldPath: data.tags, options: {delimiter: ",", index: 3}}
              targets: [{select: {kind: Ingress}}]
            """
        ),
        "options.index 3 is out of bounds for value blue,green,red",
    ),
    "text-an-integer-cannot-hold": (
        case(
            """
            - source: {kind: ConfigMap, fieldPath: data.host}
              targets:
                - select: {kind: Deployment}
                  fieldPaths: [spec.replicas]
            """
        ),
        "cannot decode !!str `shop.example.com` as a !!int",
    ),
    "into-a-null": (
        case(
            """
            - source: {kind: ConfigMap, fieldPath: data.port}
              targets:
                - select: {kind: Deployment}
                  fieldPaths: ["spec.template.spec.containers.0.env.[name=EMPTY].value"]
            """
        ),
        "cannot decode !!int `8080` as a !!null",
    ),
    "no-targets": (
        case("- source: {kind: ConfigMap}\n  targets: []\n"),
        "replacements must specify a source and at least one target",
    ),
    "target-without-select": (
        case("- source: {kind: ConfigMap}\n  targets: [{fieldPaths: [metadata.name]}]\n"),
        "target must specify resources to select",
    ),
    "path-and-inline": (
        case(
            "- path: r.yaml\n  source: {kind: ConfigMap}\n",
            more={"r.yaml": "source: {kind: ConfigMap}\ntargets: [{select: {kind: Ingress}}]\n"},
        ),
        "cannot specify both path and inline replacement",
    ),
    "delimiter-in-a-mapping": (
        case(
            """
            - source: {kind: ConfigMap, fieldPath: data.host}
              targets:
                - select: {kind: Ingress}
                  fieldPaths: [spec.rules.0]
                  options: {delimiter: "."}
            """
        ),
        "delimiter option can only be used with scalar nodes",
    ),
    "file-of-a-number": (
        case("- path: r.yaml\n", more={"r.yaml": "42\n"}),
        "unsupported replacement type encountered within replacement path: float64",
    ),
    "file-of-a-string": (
        case("- path: r.yaml\n", more={"r.yaml": "just text\n"}),
        "unsupported replacement type encountered within replacement path: string",
    ),
}


def _write(files: Files, root: Path) -> None:
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content if isinstance(content, str) else content.decode())


def _kubectl(root: Path) -> tuple[list[Any] | None, str]:
    assert KUBECTL is not None, "kubectl is not on the PATH"
    done = subprocess.run(
        [KUBECTL, "kustomize", str(root)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        return None, done.stderr
    return [yn.to_value(n) for n in yaml.compose_all(done.stdout) if n is not None], ""


def _build(files: Files) -> Built:
    snapshot = Snapshot(tree(files))
    return Kustomizer(RepoView(snapshot, None, "repo"), snapshot).build("")


def _key(value: dict[str, Any]) -> tuple[str, ...]:
    meta = value.get("metadata") or {}
    return (value["kind"], meta.get("namespace") or "", meta["name"])


@needs_kubectl
@pytest.mark.parametrize("name", sorted(BUILDS))
def test_the_build_replaces_as_kustomize_does(name: str, tmp_path: Path) -> None:
    files = BUILDS[name]
    _write(files, tmp_path)
    theirs, stderr = _kubectl(tmp_path)
    assert theirs is not None, stderr
    built = _build(files)
    assert not built.problems and not built.unknown, (built.problems, built.unknown)
    ours = sorted((yn.to_value(r.node) for r in built.resources), key=_key)
    assert ours == sorted(theirs, key=_key)


@needs_kubectl
@pytest.mark.parametrize("name", sorted(FAILURES))
def test_the_build_fails_where_kustomize_does(name: str, tmp_path: Path) -> None:
    files, error = FAILURES[name]
    _write(files, tmp_path)
    theirs, stderr = _kubectl(tmp_path)
    assert theirs is None
    stderr = stderr.replace("\n\t", "\n").replace('\\"', '"')
    assert error in stderr
    built = _build(files)
    assert not built.unknown
    [problem] = built.problems
    assert problem.kind is ProblemKind.REPLACEMENT
    assert "kustomize fails with" in problem.message and len(problem.message) < 260
    quoted = problem.message.split("kustomize fails with `", 1)[1].split("`", 1)[0]
    # What the message quotes is what kustomize prints (a long value cut short).
    for part in quoted.split("..."):
        assert part.strip(" .") in stderr


# --- what kubectl does not show ---------------------------------------------------------


def test_a_replaced_value_names_the_replacement_and_its_source() -> None:
    files = case(
        """
        - source: {kind: ConfigMap, name: settings, fieldPath: data.host}
          targets:
            - select: {kind: Ingress}
              fieldPaths:
                - spec.rules.0.host
            - select: {kind: Service}
              fieldPaths: [metadata.annotations.host]
              options: {create: true}
        - source: {kind: Secret, name: creds, fieldPath: stringData.password}
          targets:
            - select: {kind: Deployment}
              fieldPaths: [spec.template.spec.containers.0.env.0.value]
        """
    )
    built = _build(files)
    by_kind = {r.kind: r for r in built.resources}
    kfile = files["kustomization.yaml"]
    assert isinstance(kfile, str)
    host = yn.at(by_kind["Ingress"].node, ("spec", "rules", 0, "host"))
    assert host is not None and yn.text(host) == "shop.example.com"
    file, line, via = yn.origin_of(host, "workload.yaml")
    assert (file, line) == ("kustomization.yaml", line_of(kfile, "- spec.rules.0.host"))
    source_line = line_of(SOURCES, "host: shop")
    assert via == f"replaced from ConfigMap settings `data.host` (sources.yaml:{source_line})"
    created = yn.get(by_kind["Service"].node, "metadata", "annotations", "host")
    assert created is not None
    assert yn.origin_of(created, "workload.yaml")[:2] == (
        "kustomization.yaml",
        line_of(kfile, "[metadata.annotations.host]"),
    )
    password = yn.at(
        by_kind["Deployment"].node, ("spec", "template", "spec", "containers", 0, "env", 0, "value")
    )
    assert password is not None and isinstance(password.start_mark, yn.Origin)
    assert password.start_mark.secret
    assert not isinstance(host.start_mark, yn.Origin) or not host.start_mark.secret


def test_a_replacement_file_is_read_and_named_as_the_origin() -> None:
    files = BUILDS["from-files"]
    built = _build(files)
    assert "replacements/host.yaml" in built.files
    [ingress] = [r for r in built.resources if r.kind == "Ingress"]
    host = yn.at(ingress.node, ("spec", "rules", 0, "host"))
    assert host is not None
    host_file = files["replacements/host.yaml"]
    assert isinstance(host_file, str)
    assert yn.origin_of(host, "")[:2] == (
        "replacements/host.yaml",
        line_of(host_file, "fieldPaths"),
    )


def test_what_the_build_cannot_know_it_does_not_guess() -> None:
    remote = case(
        "- path: https://example.com/replacements.yaml\n",
    )
    assert [str(u) for u in _build(remote).unknown] == [
        "replacement file `https://example.com/replacements.yaml` in kustomization.yaml is remote"
    ]
    # A source that may be in a remote base: not known, not a failure.
    from_remote = dict(
        case(
            """
            - source: {kind: ConfigMap, name: elsewhere}
              targets: [{select: {kind: Ingress}}]
            """
        )
    )
    from_remote["kustomization.yaml"] = str(from_remote["kustomization.yaml"]).replace(
        "resources: [", "resources: [https://github.com/example/base, "
    )
    built = _build(from_remote)
    assert not built.problems
    assert "may read or write objects the build does not know" in {u.why for u in built.unknown}
    # Text kustomize reads as a number where it wants a string.
    typed = case("- source: {kind: ConfigMap, name: 12}\n  targets: [{select: {kind: Ingress}}]\n")
    assert [u.why for u in _build(typed).unknown] == [
        "holds `12`, which kustomize does not read as a string"
    ]


def test_paths_split_and_look_up_as_kyaml_does() -> None:
    assert split_path("spec.template.spec.containers.[name=a.b].image") == [
        *("spec", "template", "spec", "containers", "[name=a.b]", "image")
    ]
    assert split_path("metadata.annotations.[example.com/port]") == [
        *("metadata", "annotations", "example.com/port")
    ]
    assert split_path(r".data.a\.b") == ["data", "a.b"]
    node = yaml.compose("a: {list: [{name: x, v: 1}, {name: y, v: 2}], s: [p, q]}")
    assert node is not None
    found = lookup(node, "a.list.[name=y].v")
    assert found is not None and yn.to_value(found) == 2
    last = lookup(node, "a.s.-")
    assert last is not None and yn.text(last) == "q"
    assert lookup(node, "a.list.5.v") is None
    assert lookup(node, "a.nothing.deeper") is None


# --- through the analysis -----------------------------------------------------------------

FLUX: Files = repo(
    {
        "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
        "apps/kustomization.yaml": dedent(
            """
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            resources: [sources.yaml, workload.yaml]
            replacements:
              - source:
                  kind: ConfigMap
                  name: settings
                  fieldPath: data.host
                targets:
                  - select:
                      kind: Ingress
                    fieldPaths:
                      - spec.rules.0.hosts
            """
        ),
        "apps/sources.yaml": SOURCES,
        "apps/workload.yaml": WORKLOAD,
    }
)


def test_a_replacement_kustomize_fails_on_is_an_error_on_its_line() -> None:
    [finding] = of_rule(run(FLUX), "kustomize-invalid-kustomization")
    kfile = FLUX["apps/kustomization.yaml"]
    assert isinstance(kfile, str)
    assert (finding.path, finding.line) == (
        "apps/kustomization.yaml",
        line_of(kfile, "- spec.rules.0.hosts"),
    )
    assert finding.severity == "error"
    assert finding.message == (
        "Ingress shop/web has no `spec.rules.0.hosts` for this replacement to write: kustomize "
        "fails with `unable to find field`; `options.create: true` would add it."
    )


def test_a_working_replacement_leaves_the_build_known_and_silent() -> None:
    fixed = dict(FLUX)
    fixed["apps/kustomization.yaml"] = str(FLUX["apps/kustomization.yaml"]).replace(
        "spec.rules.0.hosts", "spec.rules.0.host"
    )
    assert not [f for f in run(fixed) if f.severity == "error"]
    model = Snapshot(tree(fixed)).build
    [apps] = [k for k in model.kustomizations if k.name == "apps"]
    assert apps.known
    [ingress] = [o for o in apps.objects if o.id.kind == "Ingress"]
    assert yn.to_value(ingress.node)["spec"]["rules"][0]["host"] == "shop.example.com"
    # The ConfigMap served the build only (local-config): it is not applied.
    assert not [o for o in apps.objects if o.id.kind == "ConfigMap"]


def test_a_misspelt_field_of_a_replacement_is_refused_or_dropped() -> None:
    """`fieldPath` in a target (it is `fieldPaths` there): kustomize refuses the
    kustomization; kustomize-controller drops the field from its entry point, and the
    replacement then writes the default, `metadata.name`."""
    kfile = dedent(
        """
        resources: [sources.yaml, workload.yaml]
        replacements:
          - source: {kind: ConfigMap, name: settings, fieldPath: data.host}
            targets:
              - select: {kind: Ingress}
                fieldPath: spec.rules.0.host
        """
    )
    files = {"apps/sources.yaml": SOURCES, "apps/workload.yaml": WORKLOAD}
    nested = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/kustomization.yaml": "resources: [web]\n",
            **{p.replace("apps/", "apps/web/"): t for p, t in files.items()},
            "apps/web/kustomization.yaml": kfile,
        }
    )
    [finding] = of_rule(run(nested), "kustomize-invalid-kustomization")
    assert (finding.path, finding.line, finding.severity) == (
        "apps/web/kustomization.yaml",
        line_of(kfile, "fieldPath: spec"),
        "error",
    )
    assert "unknown field `replacements[0].targets[0].fieldPath`" in finding.message
    entry = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/kustomization.yaml": kfile,
            **files,
        }
    )
    [finding] = of_rule(run(entry), "kustomize-invalid-kustomization")
    assert finding.severity == "warning"
    [apps] = [k for k in Snapshot(tree(entry)).build.kustomizations if k.name == "apps"]
    assert "Ingress shop/shop.example.com" in {str(o.id) for o in apps.objects}


# --- hostile replacements -------------------------------------------------------------------


def test_a_pattern_takes_time_linear_in_the_text() -> None:
    """`(a|a)*b` against thirty `a`s: a backtracking engine tries 2^30 ways; kustomize's
    Go regexp, and RE2 here, one pass. Nothing matches, so kustomize fails."""
    files = case(
        """
        - source: {kind: ConfigMap, name: settings, fieldPath: data.host}
          targets:
            - select: {kind: Deployment}
              fieldPaths: ["spec.template.spec.containers.[name=(a|a)*b].image"]
        """
    )
    files = {**files, "workload.yaml": WORKLOAD.replace("name: proxy", "name: " + "a" * 30)}
    built = _build(files)
    [problem] = built.problems
    assert "unable to find field" in problem.message


def test_replacements_that_would_take_too_long_are_not_followed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.analysis.snapshot.build import replacements

    many = "".join(
        f"- source: {{kind: ConfigMap, name: settings, fieldPath: data.host}}\n"
        f"  targets: [{{select: {{}}, fieldPaths: [metadata.annotations.a{i}], "
        "options: {create: true}}]\n"
        for i in range(40)
    )
    monkeypatch.setattr(replacements, "_MAX_STEPS", 200)
    built = _build(case(many))
    assert not built.problems
    assert [u.why for u in built.unknown] == [
        "takes more steps than the build spends on replacements"
    ]
    monkeypatch.undo()
    assert not _build(case(many)).unknown
    deep = case(
        """
        - source: {kind: ConfigMap, name: settings, fieldPath: data.host}
          targets:
            - select: {kind: Ingress}
              fieldPaths: [DEEP]
              options: {create: true}
        """.replace("DEEP", ".".join(["a"] * 150))
    )
    [unknown] = _build(deep).unknown
    assert unknown.why.endswith("a field path too long to follow")
