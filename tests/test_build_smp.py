"""Strategic-merge patches as kustomize v5.5 applies them (`build/smp.py`).

Every expected result below is what `kubectl kustomize` (kustomize v5.5.0) printed for
that resource and patch. The differential test at the end runs kubectl itself on these
pairs, on hand-written shapes that real patches have and on a few hundred generated
ones, and compares its output with `smp.merge`: JSON values, list order included. It is
skipped, with the reason printed, where `kubectl` is not on the PATH, unless
`FLUX_REVIEW_REQUIRE_KUBECTL` is set: then it fails.
"""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from yaml import nodes as ynodes

from bot.analysis import yamlscan as ys
from bot.analysis.snapshot.build import fieldspecs, smp
from bot.analysis.snapshot.build import nodes as yn
from tests.analysis_helpers import dedent


class Fails(str):
    """An expected build failure: what kustomize's error says."""


GONE = object()


def parse(text: str) -> ynodes.Node:
    return ys.compose_all(dedent(text))[0]


def schema_of(node: ynodes.Node) -> fieldspecs.Schema:
    return fieldspecs.Schema.of(
        yn.text(yn.get(node, "apiVersion")) or "", yn.text(yn.get(node, "kind")) or ""
    )


def merged(resource: str, patch: str) -> Any:
    """The object as kustomize prints it: None when the patch deleted it."""
    target = parse(resource)
    out = smp.merge(parse(patch), target, schema_of(target))
    return None if out is None else yn.to_value(out)


BASE = """
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: app
      finalizers: [a, b]
      labels: {keep: k, drop: d}
    spec:
      replicas: 1
      strategy:
        type: RollingUpdate
        rollingUpdate: {maxSurge: 1}
      template:
        spec:
          tolerations:
          - {key: t1, operator: Exists}
          volumes:
          - name: v1
            emptyDir: {}
          - name: v2
            configMap: {name: cm}
          containers:
          - name: c1
            image: i1
            args: [a, b]
            env:
            - {name: E1, value: '1'}
            - {name: E2, value: '2'}
            ports:
            - {containerPort: 80, protocol: TCP, name: http}
            - {containerPort: 80, protocol: UDP, name: dns}
          - {name: c2, image: i2}
    """

C1 = {
    "name": "c1",
    "image": "i1",
    "args": ["a", "b"],
    "env": [{"name": "E1", "value": "1"}, {"name": "E2", "value": "2"}],
    "ports": [
        {"containerPort": 80, "protocol": "TCP", "name": "http"},
        {"containerPort": 80, "protocol": "UDP", "name": "dns"},
    ],
}
C2 = {"name": "c2", "image": "i2"}
CONTAINERS = "spec.template.spec.containers"


def base_with(changes: dict[str, Any]) -> Any:
    """BASE's value with the fields at the dotted paths set (GONE: removed)."""
    value = yaml.safe_load(dedent(BASE))
    for dotted, new in changes.items():
        *parents, last = dotted.split(".")
        node = value
        for part in parents:
            node = node.setdefault(part, {})
        if new is GONE:
            del node[last]
        else:
            node[last] = new
    return value


def c1(**fields: Any) -> dict[str, Any]:
    out = copy.deepcopy(C1)
    for key, value in fields.items():
        if value is GONE:
            del out[key]
        else:
            out[key] = value
    return out


def service_patch(ports: str) -> str:
    return "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports:\n  " + ports + "\n"


def deployment_patch(spec: str) -> str:
    return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\n" + dedent(spec)


# (name, resource, patch, what kubectl kustomize printed)
VECTORS: list[tuple[str, str, str, Any]] = [
    (
        "maps merge, null deletes, finalizers union, lists by their merge keys",
        BASE,
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: app
          finalizers: [c]
          labels: {drop: null, new: n}
        spec:
          strategy:
            $retainKeys: [type]
            type: Recreate
          template:
            spec:
              tolerations:
              - {key: t2, operator: Exists}
              volumes:
              - {name: v2, $patch: delete}
              - name: v3
                emptyDir: {}
              containers:
              - {name: c3, image: i3}
              - name: c1
                args: [c]
                env:
                - {name: E2, value: '22'}
                - {name: E0, value: '0'}
                ports:
                - {containerPort: 80, protocol: UDP, name: dns2}
                - {containerPort: 8080}
        """,
        base_with(
            {
                "metadata.finalizers": ["c", "a", "b"],
                "metadata.labels": {"keep": "k", "new": "n"},
                # `$retainKeys` is not implemented: it stays, and so does rollingUpdate.
                "spec.strategy": {
                    "$retainKeys": ["type"],
                    "type": "Recreate",
                    "rollingUpdate": {"maxSurge": 1},
                },
                CONTAINERS: [
                    {"image": "i3", "name": "c3"},
                    c1(
                        args=["c"],
                        env=[
                            {"name": "E2", "value": "22"},
                            {"name": "E0", "value": "0"},
                            {"name": "E1", "value": "1"},
                        ],
                        ports=[
                            {"containerPort": 8080},
                            {"containerPort": 80, "name": "http", "protocol": "TCP"},
                            {"containerPort": 80, "name": "dns2", "protocol": "UDP"},
                        ],
                    ),
                    C2,
                ],
                "spec.template.spec.tolerations": [{"key": "t2", "operator": "Exists"}],
                "spec.template.spec.volumes": [
                    {"emptyDir": {}, "name": "v3"},
                    {"emptyDir": {}, "name": "v1"},
                ],
            }
        ),
    ),
    (
        "Service ports: rows of port and protocol meet, matched target elements move last",
        """
        apiVersion: v1
        kind: Service
        metadata: {name: s}
        spec:
          ports:
          - {name: http, port: 80}
          - {name: https, port: 443, protocol: TCP}
          - {name: dns, port: 53, protocol: UDP}
        """,
        """
        apiVersion: v1
        kind: Service
        metadata: {name: s}
        spec:
          ports:
          - {port: 80, targetPort: 8080}
          - {port: 443, protocol: TCP, targetPort: 8443}
          - {port: 53, protocol: TCP, name: dnstcp}
        """,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "s"},
            "spec": {
                "ports": [
                    {"name": "dnstcp", "port": 53, "protocol": "TCP"},
                    {"name": "http", "port": 80, "targetPort": 8080},
                    {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443},
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                ]
            },
        },
    ),
    (
        "a patch port whose protocol the target states is lost",
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: d}
        spec:
          template:
            spec:
              containers:
              - name: a
                image: a
                ports:
                - {containerPort: 80}
                - {containerPort: 9090, protocol: TCP}
                volumeMounts:
                - {name: v, mountPath: /a}
                - {name: w, mountPath: /b}
        """,
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: d}
        spec:
          template:
            spec:
              containers:
              - name: a
                ports:
                - {containerPort: 80, name: web}
                - {containerPort: 9090, name: metrics}
                volumeMounts:
                - {name: v2, mountPath: /a}
        """,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d"},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "image": "a",
                                "name": "a",
                                "ports": [
                                    {"containerPort": 80, "name": "web"},
                                    {"containerPort": 9090, "protocol": "TCP"},
                                ],
                                "volumeMounts": [
                                    {"mountPath": "/a", "name": "v2"},
                                    {"mountPath": "/b", "name": "w"},
                                ],
                            }
                        ]
                    }
                }
            },
        },
    ),
    (
        "deleting an element the target does not have changes nothing",
        BASE,
        deployment_patch(
            """
            spec:
              template:
                spec:
                  containers:
                  - {name: c9, image: x, $patch: delete}
            """
        ),
        base_with({}),
    ),
    (
        "`$patch: replace` on an element whose target has the same fields",
        BASE,
        deployment_patch(
            """
            spec:
              template:
                spec:
                  containers:
                  - {name: c1, $patch: replace, image: r}
            """
        ),
        base_with({}),
    ),
    (
        "a patch element without its merge key empties the list",
        BASE,
        deployment_patch(
            """
            spec:
              template:
                spec:
                  containers:
                  - {image: nokey}
            """
        ),
        base_with({CONTAINERS: []}),
    ),
    (
        "null deletes a list inside an element",
        BASE,
        deployment_patch(
            """
            spec:
              template:
                spec:
                  containers:
                  - {name: c1, env: null}
            """
        ),
        base_with({CONTAINERS: [c1(env=GONE), C2]}),
    ),
    (
        "null deletes an associative list",
        BASE,
        deployment_patch("spec:\n  template:\n    spec: {containers: null}\n"),
        base_with({CONTAINERS: GONE}),
    ),
    (
        "a new list loses its `$patch: delete` elements",
        BASE,
        deployment_patch(
            """
            spec:
              template:
                metadata:
                  labels: {a: b}
                spec:
                  initContainers:
                  - {name: i1, image: x}
                  - {name: gone, $patch: delete}
            """
        ),
        base_with(
            {
                "spec.template.metadata": {"labels": {"a": "b"}},
                "spec.template.spec.initContainers": [{"image": "x", "name": "i1"}],
            }
        ),
    ),
    (
        "a new map with `$patch: delete` is not added; elements named first come first",
        BASE,
        deployment_patch(
            """
            spec:
              newmap: {$patch: delete, a: 1}
              template:
                spec:
                  containers:
                  - name: c2
                    ports:
                    - {containerPort: 1}
            """
        ),
        base_with(
            {CONTAINERS: [{"image": "i2", "name": "c2", "ports": [{"containerPort": 1}]}, C1]}
        ),
    ),
    (
        "a list without the merge strategy keeps a `{$patch: replace}` item literally",
        BASE,
        deployment_patch(
            """
            spec:
              template:
                spec:
                  tolerations:
                  - {$patch: replace}
                  - {key: z}
            """
        ),
        base_with({"spec.template.spec.tolerations": [{"$patch": "replace"}, {"key": "z"}]}),
    ),
    (
        "`{$patch: delete}` deletes an associative list",
        BASE,
        deployment_patch(
            """
            spec:
              template:
                spec:
                  volumes:
                  - {$patch: delete}
            """
        ),
        base_with({"spec.template.spec.volumes": GONE}),
    ),
    (
        "finalizers: a union, the patch's first",
        BASE,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n  finalizers: [b, z]\n",
        base_with({"metadata.finalizers": ["b", "z", "a"]}),
    ),
    (
        "two patch elements with one name: the first wins",
        BASE,
        deployment_patch(
            """
            spec:
              template:
                spec:
                  containers:
                  - name: c1
                    env:
                    - {name: E1, value: x}
                    - {name: E1, value: y}
            """
        ),
        base_with(
            {CONTAINERS: [c1(env=[{"name": "E1", "value": "x"}, {"name": "E2", "value": "2"}]), C2]}
        ),
    ),
    (
        "two target elements with one name: the last, unpatched, wins",
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: app}
        spec:
          template:
            spec:
              containers:
              - {name: a, image: a}
              - {name: a, image: dup}
              - {name: b}
        """,
        deployment_patch(
            """
            spec:
              template:
                spec:
                  containers:
                  - {name: a, image: new}
            """
        ),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "app"},
            "spec": {
                "template": {"spec": {"containers": [{"image": "dup", "name": "a"}, {"name": "b"}]}}
            },
        },
    ),
    (
        "a port row that meets two target rows changes neither",
        """
        apiVersion: v1
        kind: Service
        metadata: {name: s}
        spec:
          ports:
          - {port: 80}
          - {port: 80, protocol: UDP}
        """,
        service_patch("- {port: 80, name: x}"),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80}, {"port": 80, "protocol": "UDP"}]},
        },
    ),
    (
        "a port with a protocol the target omits is lost",
        """
        apiVersion: v1
        kind: Service
        metadata: {name: s}
        spec:
          ports:
          - {port: 80, name: a}
          - {port: 81, name: b}
        """,
        """
        apiVersion: v1
        kind: Service
        metadata: {name: s}
        spec:
          ports:
          - {port: 81, protocol: TCP, name: bb}
          - {port: 82}
        """,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 82}, {"name": "a", "port": 80}, {"name": "b", "port": 81}]},
        },
    ),
    (
        "deleting the only element leaves an empty list",
        service_patch("- {port: 80, name: a}"),
        service_patch("- {port: 80, $patch: delete}"),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": []}},
    ),
    (
        "a port deleted by port and protocol",
        BASE,
        deployment_patch(
            """
            spec:
              template:
                spec:
                  containers:
                  - name: c1
                    ports:
                    - {containerPort: 80, protocol: TCP, $patch: delete}
            """
        ),
        base_with(
            {CONTAINERS: [c1(ports=[{"containerPort": 80, "name": "dns", "protocol": "UDP"}]), C2]}
        ),
    ),
    (
        "a list without the merge strategy keeps a `{$patch: replace}` item among scalars",
        BASE,
        deployment_patch(
            """
            spec:
              template:
                spec:
                  containers:
                  - name: c1
                    args:
                    - {$patch: replace}
                    - x
            """
        ),
        base_with({CONTAINERS: [c1(args=[{"$patch": "replace"}, "x"]), C2]}),
    ),
    (
        "a custom resource: lists replaced, maps merged",
        """
        apiVersion: example.com/v1
        kind: Foo
        metadata: {name: app}
        spec:
          items:
          - {name: a, v: 1}
          m: {a: 1, b: 2}
        """,
        """
        apiVersion: example.com/v1
        kind: Foo
        metadata: {name: app}
        spec:
          items:
          - {name: b, v: 2}
          m: {b: null, c: 3}
        """,
        {
            "apiVersion": "example.com/v1",
            "kind": "Foo",
            "metadata": {"name": "app"},
            "spec": {"items": [{"name": "b", "v": 2}], "m": {"a": 1, "c": 3}},
        },
    ),
    (
        "an object with a built-in apiVersion and kind inside a custom resource has its schema",
        """
        apiVersion: example.com/v1
        kind: Foo
        metadata: {name: app}
        spec:
          embedded:
            apiVersion: apps/v1
            kind: Deployment
            spec:
              template:
                spec:
                  containers:
                  - {name: a, image: a}
        """,
        """
        apiVersion: example.com/v1
        kind: Foo
        metadata: {name: app}
        spec:
          embedded:
            spec:
              template:
                spec:
                  containers:
                  - {name: b, image: b}
        """,
        {
            "apiVersion": "example.com/v1",
            "kind": "Foo",
            "metadata": {"name": "app"},
            "spec": {
                "embedded": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "spec": {
                        "template": {
                            "spec": {
                                "containers": [
                                    {"image": "b", "name": "b"},
                                    {"image": "a", "name": "a"},
                                ]
                            }
                        }
                    },
                }
            },
        },
    ),
    (
        "a `$patch: delete` element in a list the target element does not have",
        BASE,
        deployment_patch(
            """
            spec:
              template:
                spec:
                  containers:
                  - name: c2
                    env:
                    - {name: N, value: v}
                    - {name: M, $patch: delete}
            """
        ),
        base_with(
            {CONTAINERS: [{"env": [{"name": "N", "value": "v"}], "image": "i2", "name": "c2"}, C1]}
        ),
    ),
    (
        "volumes' retainKeys is not applied: both volume sources stay",
        BASE,
        deployment_patch(
            """
            spec:
              template:
                spec:
                  volumes:
                  - name: v2
                    secret: {secretName: s}
            """
        ),
        base_with(
            {
                "spec.template.spec.volumes": [
                    {"configMap": {"name": "cm"}, "name": "v2", "secret": {"secretName": "s"}},
                    {"emptyDir": {}, "name": "v1"},
                ]
            }
        ),
    ),
    (
        "an empty associative list in a patch changes nothing",
        BASE,
        deployment_patch("spec:\n  template:\n    spec:\n      containers: []\n"),
        base_with({}),
    ),
    (
        "an empty associative list inside an element changes nothing",
        BASE,
        deployment_patch(
            """
            spec:
              template:
                spec:
                  containers:
                  - {name: c1, env: []}
            """
        ),
        base_with({}),
    ),
    (
        "`$patch: merge` merges; an unknown list is added",
        BASE,
        deployment_patch(
            """
            spec:
              template:
                spec:
                  containers:
                  - {name: c1, $patch: merge, image: m}
                  unknownList:
                  - {name: a}
            """
        ),
        base_with(
            {CONTAINERS: [c1(image="m"), C2], "spec.template.spec.unknownList": [{"name": "a"}]}
        ),
    ),
    (
        "lists the target lacks: delete elements go, a `{$patch: replace}` item stays",
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: app}
        spec:
          template:
            spec: {}
        """,
        deployment_patch(
            """
            spec:
              template:
                spec:
                  containers:
                  - {name: a, image: a}
                  - {name: b, $patch: delete}
                  volumes:
                  - {$patch: replace}
                  - {name: v}
            """
        ),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "app"},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [{"image": "a", "name": "a"}],
                        "volumes": [{"$patch": "replace"}],
                    }
                }
            },
        },
    ),
    (
        "a mapping where the target has a list fails the build",
        BASE,
        deployment_patch(
            """
            spec:
              template:
                spec:
                  containers:
                    $patch: delete
            """
        ),
        Fails("wrong node kind: expected SequenceNode but got MappingNode"),
    ),
    (
        "a port row without protocol meets both of the target's",
        BASE,
        deployment_patch(
            """
            spec:
              template:
                spec:
                  containers:
                  - name: c1
                    ports:
                    - {containerPort: 80}
            """
        ),
        base_with({}),
    ),
    (
        "a port row with both keys merges into its target row",
        BASE,
        deployment_patch(
            """
            spec:
              template:
                spec:
                  containers:
                  - name: c1
                    ports:
                    - {containerPort: 80, protocol: UDP, hostPort: 5}
            """
        ),
        base_with(
            {
                CONTAINERS: [
                    c1(
                        ports=[
                            {"containerPort": 80, "name": "http", "protocol": "TCP"},
                            {"containerPort": 80, "hostPort": 5, "name": "dns", "protocol": "UDP"},
                        ]
                    ),
                    C2,
                ]
            }
        ),
    ),
    (
        "a new port comes first",
        BASE,
        deployment_patch(
            """
            spec:
              template:
                spec:
                  containers:
                  - name: c1
                    ports:
                    - {containerPort: 443}
            """
        ),
        base_with({CONTAINERS: [c1(ports=[{"containerPort": 443}, *C1["ports"]]), C2]}),
    ),
    (
        "a list added inside an element",
        BASE,
        deployment_patch(
            """
            spec:
              template:
                spec:
                  containers:
                  - name: c1
                    volumeMounts:
                    - {mountPath: /x, name: v}
            """
        ),
        base_with({CONTAINERS: [c1(volumeMounts=[{"mountPath": "/x", "name": "v"}]), C2]}),
    ),
    (
        "a string replaces a number; null deletes a map",
        BASE,
        deployment_patch("spec: {replicas: '3', strategy: null}\n"),
        base_with({"spec.replicas": "3", "spec.strategy": GONE}),
    ),
    (
        "null deletes the labels",
        BASE,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app, labels: null}\n",
        base_with({"metadata.labels": GONE}),
    ),
    (
        "elements named in the patch come first, in its order",
        BASE,
        deployment_patch(
            """
            spec:
              template:
                spec:
                  containers:
                  - {name: c2}
                  - {name: c1}
            """
        ),
        base_with({CONTAINERS: [C2, C1]}),
    ),
    (
        "a number that replaces a quoted string keeps the quotes: it is a string",
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: app}
        spec:
          replicas: 1
          template:
            spec:
              containers:
              - name: c
                env:
                - {name: P, value: "8080"}
                - {name: Q, value: 'true'}
                - name: R
                  value: |-
                    x
        """,
        deployment_patch(
            """
            spec:
              replicas: "2"
              template:
                spec:
                  containers:
                  - name: c
                    env:
                    - {name: P, value: 9090}
                    - {name: Q, value: false}
                    - {name: R, value: 3}
            """
        ),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "app"},
            "spec": {
                "replicas": "2",
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "c",
                                "env": [
                                    {"name": "P", "value": "9090"},
                                    {"name": "Q", "value": "false"},
                                    {"name": "R", "value": "3"},
                                ],
                            }
                        ]
                    }
                },
            },
        },
    ),
    (
        "the walk drops the target's empty fields and keeps its explicit nulls",
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: app}
        spec:
          paused:
          minReadySeconds: ~
          template:
            spec:
              containers:
              - name: c
                command:
                workingDir: null
              tolerations:
              - key:
        """,
        deployment_patch("spec:\n  replicas: 2\n"),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "app"},
            "spec": {
                "minReadySeconds": None,
                "replicas": 2,
                "template": {
                    "spec": {
                        "containers": [{"name": "c", "workingDir": None}],
                        "tolerations": [{"key": None}],
                    }
                },
            },
        },
    ),
    (
        "a target element without the merge key drops the elements before it",
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: app}
        spec:
          template:
            spec:
              containers:
              - {name: a}
              - {image: nokey}
              - {name: b}
        """,
        deployment_patch("spec:\n  template:\n    spec:\n      containers:\n      - {name: c}\n"),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "app"},
            "spec": {"template": {"spec": {"containers": [{"image": "nokey"}]}}},
        },
    ),
    (
        "`<<` merge keys are written out, so a patch can delete what they bring",
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: app
          labels: &l {app: x, tier: y}
        spec:
          template:
            metadata:
              labels:
                <<: *l
                extra: z
            spec:
              containers:
              - &c
                name: a
                image: i
                env: &e
                - {name: A, value: "1"}
              - <<: *c
                name: b
                env: *e
        """,
        deployment_patch(
            """
            spec:
              template:
                metadata:
                  labels: {tier: null}
                spec:
                  containers:
                  - name: b
                    image: null
                    env:
                    - {name: B, value: "2"}
            """
        ),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "app", "labels": {"app": "x", "tier": "y"}},
            "spec": {
                "template": {
                    "metadata": {"labels": {"app": "x", "extra": "z"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "b",
                                "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}],
                            },
                            {"name": "a", "image": "i", "env": [{"name": "A", "value": "1"}]},
                        ]
                    },
                }
            },
        },
    ),
    (
        "`$patch: delete` on the whole object deletes it",
        BASE,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\n$patch: delete\n",
        None,
    ),
    (
        "an unknown directive fails the build where the target has the mapping",
        BASE,
        deployment_patch("spec:\n  strategy: {$patch: bogus}\n"),
        Fails("unknown patch strategy 'bogus'"),
    ),
    (
        "an unknown directive is copied where the target has nothing",
        BASE,
        deployment_patch("spec:\n  template:\n    metadata: {$patch: bogus, labels: {a: b}}\n"),
        base_with({"spec.template.metadata": {"$patch": "bogus", "labels": {"a": "b"}}}),
    ),
    (
        "a scalar where the target has a mapping fails the build",
        BASE,
        deployment_patch("spec:\n  strategy: Recreate\n"),
        Fails("wrong node kind: expected MappingNode but got ScalarNode"),
    ),
    (
        "`$patch: replace` on the whole object changes nothing (kustomize keeps its object)",
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: app, labels: {a: b}}
        spec:
          replicas: 2
        """,
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: app, labels: {c: d}}
        $patch: replace
        """,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "app", "labels": {"a": "b"}},
            "spec": {"replicas": 2},
        },
    ),
    (
        "a scalar among a patch's elements matches nothing and empties the target's",
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: app}
        spec:
          template:
            spec:
              containers:
              - {name: a, image: a}
        """,
        deployment_patch(
            """
            spec:
              template:
                spec:
                  containers:
                  - {name: c}
                  - just-a-string
            """
        ),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "app"},
            "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}},
        },
    ),
    (
        "ports and env with elements missing a merge key, and duplicates",
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: app}
        spec:
          template:
            spec:
              containers:
              - name: a
                ports: [{containerPort: 80}, {protocol: UDP}, {containerPort: 80, protocol: TCP}]
                env: [{name: A, value: "1"}, {name: A, value: "2"}, {value: nokey}]
        """,
        deployment_patch(
            """
            spec:
              template:
                spec:
                  containers:
                  - name: a
                    ports: [{containerPort: 80, protocol: UDP, name: u}, {protocol: TCP, name: t}]
                    env: [{name: A, value: 3}, {$patch: merge}]
            """
        ),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "app"},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "a",
                                "ports": [
                                    {"containerPort": 80},
                                    {"protocol": "UDP"},
                                    {"protocol": "UDP"},
                                    {"containerPort": 80, "protocol": "TCP"},
                                ],
                                "env": [{"value": "nokey"}],
                            }
                        ]
                    }
                }
            },
        },
    ),
    (
        "a list of a kind the schema does not know (autoscaling/v2) is replaced",
        """
        apiVersion: autoscaling/v2
        kind: HorizontalPodAutoscaler
        metadata: {name: h}
        spec:
          metrics:
          - type: Resource
            resource: {name: cpu}
          - type: Resource
            resource: {name: memory}
        """,
        """
        apiVersion: autoscaling/v2
        kind: HorizontalPodAutoscaler
        metadata: {name: h}
        spec:
          metrics:
          - type: Resource
            resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
        """,
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h"},
            "spec": {
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 50},
                        },
                    }
                ]
            },
        },
    ),
]


@pytest.mark.parametrize(
    ("resource", "patch", "expected"),
    [pytest.param(r, p, e, id=name) for name, r, p, e in VECTORS],
)
def test_merges_as_kustomize_does(resource: str, patch: str, expected: Any) -> None:
    if isinstance(expected, Fails):
        with pytest.raises(smp.MergeFailed) as failed:
            merged(resource, patch)
        assert str(failed.value) == expected
        return
    assert merged(resource, patch) == expected


def test_a_failure_names_the_field_and_the_patch_line() -> None:
    patch = deployment_patch(
        """
        spec:
          template:
            spec:
              containers:
              - name: c1
                image: {repository: x}
        """
    )
    target = parse(BASE)
    with pytest.raises(smp.MergeFailed) as failed:
        smp.merge(yn.stamp(parse(patch), "overlay/patch.yaml"), target, schema_of(target))
    assert failed.value.path[:4] == ("spec", "template", "spec", "containers")
    assert failed.value.path[-1] == "image"
    assert failed.value.node is not None
    assert yn.origin_of(failed.value.node, "base/app.yaml")[:2] == ("overlay/patch.yaml", 9)


def _shape(node: ynodes.Node) -> Any:
    """Everything a node holds, marks included, to see that nothing was mutated."""
    mark = node.start_mark
    where = (type(mark).__name__, mark.name, mark.line) if mark is not None else None
    if isinstance(node, ynodes.MappingNode):
        return ("map", node.tag, where, [(_shape(k), _shape(v)) for k, v in node.value])
    if isinstance(node, ynodes.SequenceNode):
        return ("seq", node.tag, where, [_shape(v) for v in node.value])
    assert isinstance(node, ynodes.ScalarNode)
    return ("scalar", node.tag, node.value, node.style, where)


@pytest.mark.parametrize(
    ("resource", "patch"), [(r, p) for _, r, p, e in VECTORS if not isinstance(e, Fails)]
)
def test_the_inputs_are_never_changed(resource: str, patch: str) -> None:
    target, patch_node = parse(resource), yn.stamp(parse(patch), "overlay/patch.yaml")
    before = (_shape(target), _shape(patch_node))
    first = smp.merge(patch_node, target, schema_of(target))
    assert (_shape(target), _shape(patch_node)) == before
    # The same inputs give the same result again (the parse cache shares them).
    second = smp.merge(patch_node, target, schema_of(target))
    assert (first is None) == (second is None)
    if first is not None and second is not None:
        assert yn.to_value(first) == yn.to_value(second)


def test_values_keep_the_file_and_line_they_come_from() -> None:
    patch = """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: app
          labels: {new: n}
        spec:
          template:
            spec:
              containers:
              - name: c1
                image: patched
                env:
                - {name: E1, value: '9'}
              - {name: c9, image: added}
        """
    target = parse(BASE)
    out = smp.merge(yn.stamp(parse(patch), "overlay/patch.yaml"), target, schema_of(target))
    assert out is not None

    def origin(*path: str | int) -> tuple[str, int]:
        node = yn.at(out, path)
        assert node is not None, path
        file, line, _ = yn.origin_of(node, "base/app.yaml")
        return file, line

    containers = ("spec", "template", "spec", "containers")
    assert origin("metadata", "labels", "new") == ("overlay/patch.yaml", 5)
    assert origin("metadata", "labels", "keep") == ("base/app.yaml", 6)
    # c1, merged, keeps its place at the head; a scalar the patch sets is the patch's.
    assert origin(*containers, 0, "name") == ("overlay/patch.yaml", 10)
    assert origin(*containers, 0, "image") == ("overlay/patch.yaml", 11)
    assert origin(*containers, 0, "env", 0, "value") == ("overlay/patch.yaml", 13)
    assert origin(*containers, 0, "env", 1, "value") == ("base/app.yaml", 27)
    assert origin(*containers, 0, "args", 1) == ("base/app.yaml", 24)
    assert origin(*containers, 1, "image") == ("overlay/patch.yaml", 14)
    assert origin(*containers, 2, "image") == ("base/app.yaml", 31)


def test_what_the_patch_leaves_alone_is_the_targets_own_nodes() -> None:
    target = parse(BASE)
    out = smp.merge(
        parse("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n  labels: {a: b}\n"),
        target,
        schema_of(target),
    )
    assert out is not None
    assert yn.get(out, "spec") is yn.get(target, "spec")
    assert yn.get(out, "metadata", "finalizers") is yn.get(target, "metadata", "finalizers")
    assert yn.get(out, "metadata") is not yn.get(target, "metadata")


def test_a_patch_nested_too_deep_fails_cleanly() -> None:
    deep = "x"
    for _ in range(400):
        deep = "{a: " + deep + "}"
    target = parse(BASE)
    with pytest.raises(smp.MergeFailed, match="too deep"):
        smp.merge(parse(deployment_patch(f"spec:\n  x: {deep}\n")), target, schema_of(target))


# --- against the real kustomize --------------------------------------------------------

KUBECTL = shutil.which("kubectl")
REQUIRED = bool(os.environ.get("FLUX_REVIEW_REQUIRE_KUBECTL"))
if KUBECTL is None:
    print(
        "test_build_smp: kubectl is not on the PATH"
        + (
            ", which FLUX_REVIEW_REQUIRE_KUBECTL requires"
            if REQUIRED
            else ": differential test skipped"
        )
    )

EMPTY, TILDE = "__EMPTY__", "__TILDE__"


def dump(value: Any) -> str:
    """YAML for a generated value; EMPTY and TILDE write `key:` and `key: ~`."""
    text = yaml.safe_dump(value, sort_keys=False)
    return text.replace(f" {EMPTY}", "").replace(TILDE, "~")


class Shapes:
    """Random resources and patches of the shapes real overlays have: containers by
    name, env, ports, volumeMounts, volumes, tolerations, labels and annotations, null
    deletions, `$patch` directives, Services, ConfigMaps, custom resources with embedded
    objects, and the awkward ones (elements without their merge key, duplicates, wrong
    node kinds, unknown directives)."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def pick(self, xs: list[Any]) -> Any:
        return self.r.choice(xs)

    def some(self, xs: list[Any], lo: int = 0) -> list[Any]:
        return self.r.sample(xs, self.r.randint(lo, len(xs)))

    def scalar(self) -> Any:
        return self.pick(["x", "y", 1, 2, "8080", True, "true", "yes", 1.5, "on"])

    def env(self, names: list[str]) -> list[dict[str, Any]]:
        out = []
        for n in names:
            if self.chance(0.8):
                out.append({"name": n, "value": self.scalar()})
            else:
                out.append({"name": n, "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}})
        return out

    def port(self) -> dict[str, Any]:
        p: dict[str, Any] = {"containerPort": self.pick([80, 443, 8080, 9090])}
        if self.chance(0.5):
            p["protocol"] = self.pick(["TCP", "UDP"])
        if self.chance(0.5):
            p["name"] = self.pick(["http", "https", "metrics", "dns"])
        return p

    def container(self, name: str) -> dict[str, Any]:
        c: dict[str, Any] = {"name": name, "image": self.pick(["nginx:1", "busybox"])}
        if self.chance(0.5):
            c["env"] = self.env(self.some(["A", "B", "C", "D"], 1)[:3])
        if self.chance(0.5):
            c["ports"] = [self.port() for _ in range(self.r.randint(1, 3))]
        if self.chance(0.4):
            c["volumeMounts"] = [
                {"name": v, "mountPath": f"/{v}"} for v in self.some(["data", "cfg", "tmp"], 1)
            ]
        if self.chance(0.3):
            c["args"] = self.some(["--a", "--b", "--c"], 1)
        if self.chance(0.3):
            c["resources"] = {"limits": {"cpu": self.pick(["1", "100m", 2])}}
        if self.chance(0.1):
            c["command"] = EMPTY
        if self.chance(0.1):
            c["workingDir"] = TILDE
        return c

    def volume(self, name: str) -> dict[str, Any]:
        kind = self.pick(["emptyDir", "configMap", "secret"])
        body = {"emptyDir": {}, "configMap": {"name": "cm"}, "secret": {"secretName": "s"}}[kind]
        return {"name": name, kind: body}

    def deployment(self, name: str) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name}
        if self.chance(0.6):
            meta["labels"] = {k: self.pick(["a", "b"]) for k in self.some(["app", "tier"], 1)}
        if self.chance(0.3):
            meta["annotations"] = {"note": self.pick(["x", "y"])}
        if self.chance(0.3):
            meta["finalizers"] = self.some(["f1", "f2", "f3"], 1)
        names = self.some(["a", "b", "c"], 1)
        if self.chance(0.08):
            names.append(self.pick(["a", "b"]))  # a duplicate
        pod: dict[str, Any] = {"containers": [self.container(n) for n in names]}
        if self.chance(0.05):
            pod["containers"].insert(1, {"image": "nokey"})
        if self.chance(0.3):
            pod["initContainers"] = [self.container("init")]
        if self.chance(0.5):
            pod["volumes"] = [self.volume(n) for n in self.some(["data", "cfg", "tmp"], 1)]
        if self.chance(0.4):
            pod["tolerations"] = [
                {"key": k, "operator": "Exists"} for k in self.some(["t1", "t2"], 1)
            ]
        if self.chance(0.2):
            pod["imagePullSecrets"] = [{"name": n} for n in self.some(["r1", "r2"], 1)]
        if self.chance(0.2):
            pod["topologySpreadConstraints"] = [
                {
                    "topologyKey": k,
                    "whenUnsatisfiable": self.pick(["DoNotSchedule", "ScheduleAnyway"]),
                    "maxSkew": 1,
                }
                for k in self.some(["zone", "host"], 1)
            ]
        if self.chance(0.2):
            pod["nodeSelector"] = {"disk": "ssd"}
        if self.chance(0.1):
            pod["hostNetwork"] = EMPTY
        spec: dict[str, Any] = {"template": {"spec": pod}}
        if self.chance(0.5):
            spec["replicas"] = self.pick([1, 2, "3"])
        if self.chance(0.4):
            spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}
        if self.chance(0.4):
            spec["template"]["metadata"] = {"labels": {"app": "x"}}
        kind = self.pick(["Deployment", "Deployment", "StatefulSet", "DaemonSet"])
        return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}

    def elements(self, pool: list[str], make: Any, key: str) -> list[Any]:
        out: list[Any] = []
        for n in self.some(pool):
            if self.chance(0.12):
                out.append({key: n, "$patch": "delete"})
            elif self.chance(0.08):
                out.append({**make(n), "$patch": "replace"})
            else:
                out.append(make(n))
        if self.chance(0.07):
            out.insert(
                self.r.randint(0, len(out)), {"$patch": self.pick(["replace", "merge", "delete"])}
            )
        if self.chance(0.05):
            out.append({k: v for k, v in make("x").items() if k != key})
        return out

    def container_patch(self, name: str) -> dict[str, Any]:
        c: dict[str, Any] = {"name": name}
        roll = self.r.random()
        if roll < 0.02:
            c["image"] = {"repository": "x"}  # a mapping over a scalar
        elif roll < 0.04:
            c["env"] = {"name": "A"}  # a mapping over a list
        elif roll < 0.06:
            c["resources"] = {"$patch": "bogus"}
        elif self.chance(0.5):
            c["image"] = self.pick(["nginx:3", "busybox:2", None])
        if self.chance(0.4):
            c["env"] = self.elements(["A", "B", "E"], lambda n: self.env([n])[0], "name")
            if self.chance(0.1):
                c["env"] = self.pick([None, []])
        if self.chance(0.4):
            c["ports"] = [self.port() for _ in range(self.r.randint(0, 3))]
            if self.chance(0.2):
                c["ports"].append({**self.port(), "$patch": "delete"})
            if self.chance(0.1):
                c["ports"].append({"protocol": "UDP", "name": "noport"})
        if self.chance(0.3):
            c["volumeMounts"] = self.elements(
                ["/data", "/cfg", "/new"], lambda m: {"mountPath": m, "name": "v"}, "mountPath"
            )
        if self.chance(0.2):
            c["args"] = self.pick([["--x"], [], None, [{"$patch": "replace"}, "--y"]])
        if self.chance(0.2):
            c["resources"] = self.pick(
                [
                    None,
                    {"$patch": "delete"},
                    {"limits": {"cpu": None, "memory": "1Gi"}},
                    {"$patch": "replace", "requests": {"cpu": 1}},
                ]
            )
        if self.chance(0.1):
            c["command"] = self.pick([["sh"], None])
        return c

    def deployment_patch(self, res: dict[str, Any]) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": res["metadata"]["name"]}
        p: dict[str, Any] = {"apiVersion": "apps/v1", "kind": res["kind"], "metadata": meta}
        if self.chance(0.3):
            meta["labels"] = self.pick([None, {"app": None, "new": "n"}, {"tier": "z"}])
        if self.chance(0.2):
            meta["finalizers"] = self.pick([["f2", "f9"], [], None, [{"$patch": "replace"}, "f4"]])
        if self.chance(0.15):
            meta["annotations"] = self.pick([{"note": None}, {"note": "z"}, None])
        spec: dict[str, Any] = {}
        if self.chance(0.2):
            spec["replicas"] = self.pick([5, "6", None])
        if self.chance(0.2):
            spec["strategy"] = self.pick(
                [
                    None,
                    {"type": "Recreate", "rollingUpdate": None},
                    {"$patch": "replace", "type": "Recreate"},
                    {"$patch": "delete"},
                ]
            )
        pod: dict[str, Any] = {}
        if self.chance(0.8):
            pod["containers"] = self.elements(["a", "b", "d"], self.container_patch, "name")
            if self.chance(0.05):
                pod["containers"] = self.pick([None, [], [{"$patch": "bogus"}]])
        if self.chance(0.3):
            pod["volumes"] = self.elements(["data", "cfg", "new"], self.volume, "name")
        if self.chance(0.2):
            pod["tolerations"] = self.pick(
                [
                    [{"key": "t3", "operator": "Exists"}],
                    None,
                    [{"$patch": "replace"}, {"key": "t4"}],
                ]
            )
        if self.chance(0.15):
            pod["imagePullSecrets"] = self.elements(["r2", "r3"], lambda n: {"name": n}, "name")
        if self.chance(0.1):
            pod["initContainers"] = self.elements(["init", "init2"], self.container_patch, "name")
        if self.chance(0.15):
            pod["topologySpreadConstraints"] = [
                {k: v for k, v in c.items() if v is not None}
                for c in [
                    {
                        "topologyKey": self.pick(["zone", "host", None]),
                        "whenUnsatisfiable": self.pick(["DoNotSchedule", None]),
                        "maxSkew": 2,
                    }
                    for _ in range(self.r.randint(1, 2))
                ]
            ]
        if self.chance(0.1):
            pod["nodeSelector"] = self.pick([None, {"disk": None, "zone": "a"}])
        if pod:
            spec["template"] = {"spec": pod}
        if self.chance(0.1):
            spec.setdefault("template", {})["metadata"] = {"labels": {"app": None, "v": "2"}}
        if spec:
            p["spec"] = spec
        if self.chance(0.02):
            p["$patch"] = "delete"
        return p

    def service(self, name: str) -> dict[str, Any]:
        ports = []
        for _ in range(self.r.randint(1, 3)):
            port: dict[str, Any] = {"port": self.pick([53, 80, 443])}
            if self.chance(0.5):
                port["protocol"] = self.pick(["TCP", "UDP"])
            if self.chance(0.6):
                port["name"] = self.pick(["a", "b", "c"])
            if self.chance(0.4):
                port["targetPort"] = self.pick([8080, "http"])
            ports.append(port)
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {"ports": ports, "selector": {"app": "x"}},
        }

    def service_patch(self, res: dict[str, Any]) -> dict[str, Any]:
        ports: list[Any] = []
        for _ in range(self.r.randint(0, 3)):
            port: dict[str, Any] = {"port": self.pick([53, 80, 443, 8443])}
            if self.chance(0.5):
                port["protocol"] = self.pick(["TCP", "UDP"])
            if self.chance(0.5):
                port["name"] = self.pick(["a", "b", "z"])
            if self.chance(0.4):
                port["targetPort"] = self.pick([9090, "web"])
            if self.chance(0.1):
                port["$patch"] = "delete"
            ports.append(port)
        spec: dict[str, Any] = {"ports": ports}
        if self.chance(0.2):
            spec["selector"] = self.pick([None, {"app": None, "b": "c"}])
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": res["metadata"]["name"]},
            "spec": spec,
        }

    def custom(self, name: str) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "items": [{"name": n, "v": self.scalar()} for n in self.some(["a", "b", "c"], 1)],
            "m": {k: self.scalar() for k in self.some(["a", "b", "c"], 1)},
        }
        if self.chance(0.5):
            spec["embedded"] = {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [self.container(n) for n in self.some(["a", "b"], 1)]
                        }
                    }
                },
            }
        if self.chance(0.3):
            spec["values"] = {"env": [{"name": "A", "value": "1"}], "replicas": 1}
        return {
            "apiVersion": "example.com/v1",
            "kind": "Foo",
            "metadata": {"name": name},
            "spec": spec,
        }

    def custom_patch(self, res: dict[str, Any]) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        if self.chance(0.5):
            spec["items"] = [{"name": n, "v": self.scalar()} for n in self.some(["b", "d"])]
        if self.chance(0.5):
            spec["m"] = {
                k: self.pick([None, self.scalar(), {"$patch": "delete"}])
                for k in self.some(["a", "d"], 1)
            }
        if self.chance(0.5):
            containers = [self.container_patch(n) for n in self.some(["a", "c"], 1)]
            embedded: dict[str, Any] = {"spec": {"template": {"spec": {"containers": containers}}}}
            if self.chance(0.3):
                # Only the patch says what the embedded object is.
                embedded = {"apiVersion": "apps/v1", "kind": "Deployment", **embedded}
            spec["embedded"] = embedded
        if self.chance(0.2):
            spec["values"] = self.pick(
                [{"env": [{"name": "B", "value": "2"}]}, {"$patch": "replace", "replicas": 3}]
            )
        return {
            "apiVersion": "example.com/v1",
            "kind": "Foo",
            "metadata": {"name": res["metadata"]["name"]},
            "spec": spec,
        }

    def configmap(self, name: str) -> dict[str, Any]:
        data = {k: self.pick(["x", "1", "true", "yes"]) for k in self.some(["a", "b", "c"], 1)}
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}

    def configmap_patch(self, res: dict[str, Any]) -> dict[str, Any]:
        data = {k: self.pick([None, "z", 7, True]) for k in self.some(["a", "d"], 1)}
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": res["metadata"]["name"]},
            "data": data,
        }

    def case(self) -> tuple[str, str]:
        kind = self.pick(["deployment"] * 6 + ["service"] * 2 + ["custom"] * 2 + ["configmap"])
        res = getattr(self, kind)("app")
        return dump(res), dump(getattr(self, kind + "_patch")(res))


# Shapes real overlays have, written out (each also checked against the recorded vectors
# above, which join them).
HAND_WRITTEN: list[tuple[str, str]] = [
    (
        """
        apiVersion: batch/v1
        kind: CronJob
        metadata: {name: app}
        spec:
          schedule: "0 * * * *"
          jobTemplate:
            spec:
              template:
                spec:
                  restartPolicy: Never
                  containers:
                  - name: job
                    image: j:1
                    env: [{name: A, value: "1"}]
        """,
        """
        apiVersion: batch/v1
        kind: CronJob
        metadata: {name: app}
        spec:
          schedule: "*/5 * * * *"
          jobTemplate:
            spec:
              template:
                spec:
                  containers:
                  - name: job
                    env: [{name: B, value: "2"}]
        """,
    ),
    (
        """
        apiVersion: v1
        kind: ServiceAccount
        metadata: {name: app}
        secrets: [{name: a}, {name: b}]
        imagePullSecrets: [{name: r}]
        """,
        """
        apiVersion: v1
        kind: ServiceAccount
        metadata: {name: app, annotations: {eks.amazonaws.com/role-arn: "arn:aws:iam::1:role/x"}}
        secrets: [{name: c}, {name: a, $patch: delete}]
        """,
    ),
    (
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: app}
        spec:
          template:
            spec:
              hostAliases:
              - {ip: 10.0.0.1, hostnames: [a]}
              containers:
              - {name: a, image: a}
        """,
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: app}
        spec:
          template:
            spec:
              hostAliases:
              - {ip: 10.0.0.1, hostnames: [b]}
              - {ip: 10.0.0.2, hostnames: [c]}
              containers:
              - {name: a, volumeDevices: [{devicePath: /dev/x, name: d}]}
        """,
    ),
    (
        """
        apiVersion: apps/v1
        kind: StatefulSet
        metadata: {name: app}
        spec:
          volumeClaimTemplates:
          - metadata: {name: data}
            spec: {resources: {requests: {storage: 1Gi}}}
          template:
            spec:
              containers:
              - {name: a, image: a, volumeMounts: [{name: data, mountPath: /data}]}
        """,
        """
        apiVersion: apps/v1
        kind: StatefulSet
        metadata: {name: app}
        spec:
          volumeClaimTemplates:
          - metadata: {name: data}
            spec: {resources: {requests: {storage: 5Gi}}}
        """,
    ),
    (
        """
        apiVersion: example.com/v1
        kind: HelmRelease
        metadata: {name: app}
        spec:
          values:
            replicaCount: 1
            ingress:
              hosts: [{host: a.example.com, paths: [/]}]
            env: {A: "1"}
        """,
        """
        apiVersion: example.com/v1
        kind: HelmRelease
        metadata: {name: app}
        spec:
          values:
            replicaCount: 3
            ingress:
              hosts: [{host: b.example.com}]
            env: {A: null, B: "2"}
        """,
    ),
]


def _normalize(value: Any) -> Any:
    # kustomize drops an empty `metadata.annotations` from every object it prints, patched
    # or not: its output step, not the merge.
    if isinstance(value, dict) and value.get("metadata", {}).get("annotations") == {}:
        value = copy.deepcopy(value)
        del value["metadata"]["annotations"]
    return json.loads(json.dumps(value))


def _kubectl(directory: Path) -> tuple[list[dict[str, Any]] | None, str]:
    assert KUBECTL is not None, "kubectl is not on the PATH"
    proc = subprocess.run(
        [KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        return None, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d], ""


def _write_case(directory: Path, resource: str, patch: str, namespace: str | None) -> None:
    directory.mkdir(parents=True)
    (directory / "resource.yaml").write_text(dedent(resource))
    (directory / "patch.yaml").write_text(dedent(patch))
    ns = f"namespace: {namespace}\n" if namespace else ""
    (directory / "kustomization.yaml").write_text(
        ns + "resources: [resource.yaml]\npatches:\n- path: patch.yaml\n"
    )


@pytest.mark.skipif(KUBECTL is None and not REQUIRED, reason="kubectl is not on the PATH")
def test_agrees_with_kubectl_kustomize(tmp_path: Path) -> None:
    cases = [(r, p) for _, r, p, _ in VECTORS] + HAND_WRITTEN
    shapes = Shapes(20261205)
    cases += [shapes.case() for _ in range(300)]

    predicted: list[tuple[Any, str | None]] = []
    for resource, patch in cases:
        try:
            predicted.append((_normalize(merged(resource, patch)), None))
        except smp.MergeFailed as failed:
            predicted.append((None, str(failed)))

    # One build for every case that merges: each its own kustomization, in a namespace of
    # its own so that the objects stay apart (kustomize sets the namespace after patches).
    root = tmp_path / "all"
    merging = [i for i, (_, error) in enumerate(predicted) if error is None]
    for i in merging:
        _write_case(root / f"c{i}", *cases[i], namespace=f"c{i}")
    (root / "kustomization.yaml").write_text("resources:\n" + "".join(f"- c{i}\n" for i in merging))
    docs, error = _kubectl(root)
    assert docs is not None, error
    built: dict[str, dict[str, Any]] = {}
    for doc in docs:
        built[doc["metadata"].pop("namespace")] = doc

    disagreements = []
    for i in merging:
        if built.get(f"c{i}") != predicted[i][0]:
            disagreements.append(
                f"case {i}:\n{dedent(cases[i][0])}--- patch\n{dedent(cases[i][1])}"
                f"--- kubectl kustomize: {json.dumps(built.get(f'c{i}'), sort_keys=True)}\n"
                f"--- smp.merge:         {json.dumps(predicted[i][0], sort_keys=True)}"
            )
    # kustomize stops at the first failure: each failing case is built alone.
    for i, (_, expected_error) in enumerate(predicted):
        if expected_error is None:
            continue
        _write_case(tmp_path / f"e{i}", *cases[i], namespace=None)
        docs, error = _kubectl(tmp_path / f"e{i}")
        if docs is not None or expected_error not in error:
            disagreements.append(
                f"case {i}: smp.merge fails with {expected_error!r}, kubectl: {error or docs}"
            )

    agree = len(cases) - len(disagreements)
    print(
        f"smp differential: {len(cases)} cases ({len(cases) - len(merging)} failing builds, "
        f"{sum(1 for v, e in predicted if v is None and e is None)} deleted objects), "
        f"{agree} agree with kubectl kustomize"
    )
    assert not disagreements, "\n\n".join(disagreements)


def _same_nodes(a: ynodes.Node, b: ynodes.Node, inputs: set[int], at: str) -> None:
    """Equal trees, where an input's node in either is the very same node in both."""
    if id(a) in inputs or id(b) in inputs:
        assert a is b, at
        return
    assert type(a) is type(b) and a.tag == b.tag, at
    assert a.start_mark is b.start_mark and a.end_mark is b.end_mark, at
    if isinstance(a, ynodes.ScalarNode):
        assert isinstance(b, ynodes.ScalarNode)
        assert (a.value, a.style) == (b.value, b.style), at
        return
    assert isinstance(a, ynodes.CollectionNode) and isinstance(b, ynodes.CollectionNode)
    assert a.flow_style == b.flow_style and len(a.value) == len(b.value), at
    if isinstance(a, ynodes.MappingNode):
        for i, ((k1, v1), (k2, v2)) in enumerate(zip(a.value, b.value, strict=True)):
            _same_nodes(k1, k2, inputs, f"{at}.<key {i}>")
            _same_nodes(v1, v2, inputs, f"{at}.{k1.value}")
    else:
        for i, (v1, v2) in enumerate(zip(a.value, b.value, strict=True)):
            _same_nodes(v1, v2, inputs, f"{at}[{i}]")


def _ids(node: ynodes.Node, out: set[int]) -> set[int]:
    out.add(id(node))
    for item in node.value if isinstance(node.value, list) else ():
        for n in item if isinstance(item, tuple) else (item,):
            _ids(n, out)
    return out


def _styled_mapping(r: random.Random, indent: int, depth: int) -> str:
    """A block mapping of few names, so that a target and a patch meet: scalars in every
    style, nulls, flow lists and mappings, embedded kinds, directives and `<<`."""
    keys = r.sample(["a", "b", "spec", "metadata", "containers", "kind", "$patch", "<<"], 4)
    if r.random() < 0.3:
        keys = ["apiVersion", "kind", *keys]
    pad = " " * indent
    lines = []
    for key in dict.fromkeys(keys):
        if key == "apiVersion":
            lines.append(f"{pad}apiVersion: {r.choice(['apps/v1', 'v1', 'example.com/v1'])}")
        elif key == "kind" and "apiVersion" in keys:
            lines.append(f"{pad}kind: {r.choice(['Deployment', 'Pod', 'Thing'])}")
        elif key == "$patch":
            if r.random() < 0.2:
                lines.append(f"{pad}$patch: {r.choice(['merge', 'replace', 'delete'])}")
        elif key == "<<":
            if r.random() < 0.2:
                lines.append(f"{pad}<<: {{m: 1}}")
        elif depth < 3 and r.random() < 0.4:
            lines.append(f"{pad}{key}:\n{_styled_mapping(r, indent + 2, depth + 1)}")
        else:
            value = r.choice(
                ["x", "'x'", '"1"', "1", "true", "'yes'", "~", "null", "", "[a, {b: 1}]", "{}"]
            )
            if r.random() < 0.25:
                value = r.choice(
                    [f"|\n{pad}  text", f">-\n{pad}  text", "{c: d}", "!!str 3", "!!null {}"]
                )
            lines.append(f"{pad}{key}: {value}")
    return "\n".join(lines) or f"{pad}a: x"


def test_merging_only_mappings_gives_what_the_walk_gives() -> None:
    """`merge` builds a patch that only sets fields of mappings straight from the nodes;
    the result must be the walk's to the node: same shared input nodes, marks, styles."""
    pairs = [(r, p) for _, r, p, _ in VECTORS] + HAND_WRITTEN
    shapes = Shapes(7)
    pairs += [shapes.case() for _ in range(300)]
    r = random.Random(11)
    for _ in range(1500):
        pairs.append((_styled_mapping(r, 0, 0) + "\n", _styled_mapping(r, 0, 0) + "\n"))
    for resource, patch in pairs:
        target, patch_node = parse(resource), parse(patch)
        schema = schema_of(target)
        try:
            walked = smp._walked(patch_node, target, schema)
        except smp.MergeFailed as failed:
            with pytest.raises(smp.MergeFailed) as raised:
                smp.merge(patch_node, target, schema)
            assert (str(raised.value), raised.value.path) == (str(failed), failed.path)
            assert raised.value.node is failed.node
            continue
        out = smp.merge(patch_node, target, schema)
        assert (out is None) == (walked is None), (resource, patch)
        if out is not None and walked is not None:
            _same_nodes(out, walked, _ids(target, _ids(patch_node, set())), f"{resource}{patch}$")
