"""Validators for custom resources, built from the CustomResourceDefinitions a repository
applies (a chart's `crds/`, a CRD manifest).

The API server validates a custom resource against the structural schema of its served
version (`spec.versions[].schema.openAPIV3Schema`). What is reported, and why:
- A field the schema does not declare: server-side apply (kustomize-controller's) types
  the applied object against the structural schema first and refuses it with `field not
  declared in schema`, as it does for Flux's own kinds. (A client-side apply would have
  the field pruned silently instead; Flux does not apply that way.) Under
  `x-kubernetes-preserve-unknown-fields`, and in an object that declares no properties
  at all, any field is accepted.
- Wrong types, `enum`, `pattern`, bounds and lengths, `required`: the API server checks
  each of them with its OpenAPI validator. A required field with a `default` is not
  missing: defaulting runs first. A `pattern` Python cannot compile (RE2 syntax such as
  `\\p{L}`) is not checked.
- `x-kubernetes-int-or-string` takes an integer or a string; `x-kubernetes-embedded-
  resource` always has apiVersion, kind and metadata; `metadata` is ObjectMeta whatever
  the CRD says of it; `status` is not judged.
Not checked: `format`s and the CEL rules (`x-kubernetes-validations`): there is no
maintained Python evaluator of Kubernetes' CEL dialect.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

from bot.analysis import k8sschemas
from bot.analysis.k8sschemas import Schema
from bot.analysis.k8sschemas.validate import (
    OBJECT_META,
    BaseValidator,
    KindValidator,
    SchemaProblem,
    closure,
    compile_schema,
    kind_schema,
    problems,
)


def _python_patterns(node: Any) -> Any:
    if isinstance(node, list):
        return [_python_patterns(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "pattern" and isinstance(value, str):
            try:
                re.compile(value)
            except re.error:
                continue
            out[key] = value
        elif key in ("enum", "default", "example", "x-kubernetes-validations"):
            out[key] = value
        elif key == "properties" and isinstance(value, dict):
            out[key] = {k: _python_patterns(v) for k, v in value.items()}
        else:
            out[key] = _python_patterns(value)
    return out


def _object_meta() -> dict[str, Schema]:
    release = k8sschemas.newest()
    names = closure(release, OBJECT_META)
    defs: dict[str, Schema] = kind_schema(release, OBJECT_META, names)["definitions"]
    return defs


def compile_crd_version(api_version: str, kind: str, schema: Schema) -> KindValidator:
    root = _python_patterns(copy.deepcopy(schema))
    if not isinstance(root, dict):
        root = {"type": "object"}
    props = root.setdefault("properties", {})
    props.pop("status", None)
    props["metadata"] = {"$ref": f"#/definitions/{OBJECT_META}"}
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    compiled = compile_schema(root)
    compiled["definitions"] = _object_meta()
    return KindValidator(
        api_version, kind, f"{kind} CRD", compiled, BaseValidator(compiled), custom=True
    )


class CrdSchemas:
    """The custom resource kinds a set of CRDs defines, each served version compiled once."""

    def __init__(self, crds: Iterable[Mapping[str, Any]] = ()) -> None:
        self._schemas: dict[tuple[str, str], Schema] = {}
        self._compiled: dict[tuple[str, str], KindValidator] = {}
        for crd in crds:
            self.add(crd)

    def add(self, crd: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Read one CustomResourceDefinition (apiextensions.k8s.io/v1); the (apiVersion,
        kind) pairs it defines with a schema. Anything else is ignored."""
        if crd.get("kind") != "CustomResourceDefinition":
            return []
        spec = crd.get("spec")
        if not isinstance(spec, dict):
            return []
        group = spec.get("group")
        names = spec.get("names")
        kind = names.get("kind") if isinstance(names, dict) else None
        if not isinstance(group, str) or not isinstance(kind, str):
            return []
        found = []
        for version in spec.get("versions") or ():
            if not isinstance(version, dict) or version.get("served") is False:
                continue
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            name = version.get("name")
            if isinstance(schema, dict) and isinstance(name, str):
                key = (f"{group}/{name}", kind)
                self._schemas[key] = schema
                self._compiled.pop(key, None)
                found.append(key)
        return found

    def defines(self, api_version: str, kind: str) -> bool:
        return (api_version, kind) in self._schemas

    def validator_for(self, api_version: str, kind: str) -> KindValidator | None:
        key = (api_version, kind)
        if key not in self._schemas:
            return None
        if key not in self._compiled:
            self._compiled[key] = compile_crd_version(api_version, kind, self._schemas[key])
        return self._compiled[key]

    def validate(self, obj: Mapping[str, Any]) -> list[SchemaProblem]:
        """The problems the API server would refuse this custom resource for; none for an
        object of a kind these CRDs do not define."""
        api, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api, str) or not isinstance(kind, str):
            return []
        compiled = self.validator_for(api, kind)
        if compiled is None:
            return []
        return problems(compiled, obj, f"{kind} {api}")
