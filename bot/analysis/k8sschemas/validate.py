"""Validate a built object against its kind's schema as the API server's server-side apply
would, and say in a reviewer's words what it refuses.

kustomize-controller applies with server-side apply: the API server first types the
applied object against the kind's schema (structured-merge-diff), which refuses a field
the schema does not declare (`.spec.replica: field not declared in schema`), a value of
the wrong type and duplicate entries of a list keyed by a field (`env` names, container
ports); then it decodes the object, defaults it and runs the kind's validation code, which
refuses missing required values and values outside what `apiserver.CHECKS` lists.

What the API server accepts is never reported: an int-or-string field takes either,
a quantity takes a string in its syntax or a number, an integer field takes an integral
float (the unstructured converter does), `x-kubernetes-preserve-unknown-fields` and
embedded objects (RawExtension) take anything, `null` is left alone (the decoder drops it),
a `status` is not judged (the main resource ignores it) and a required field is reported
missing only where its zero value is refused. A string still holding `${` (Flux's
post-build substitution decides its value) and a mapping key holding it are not judged,
nor anything below them.

jsonschema does the walking; what it cannot express is compiled into the schema
(closed objects, int-or-string, quantities, the checks of `apiserver`) or added as one
keyword (`x-kubernetes-list-type`: duplicate keys). One validator is compiled per distinct
set of definitions and cached, so minors whose schema of a kind is identical share it.
"""

from __future__ import annotations

import difflib
import enum
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import jsonschema
from jsonschema import ValidationError
from jsonschema.protocols import Validator

from bot.analysis import k8sschemas
from bot.analysis.k8sschemas import KubeRelease, Minor, Schema, apiserver

Path = tuple[str | int, ...]
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
# resource.ParseQuantity's error names this expression; a string it does not match is
# refused (`quantities must match the regular expression ...`). The parser is stricter
# still; what only it refuses is not reported.
QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"


class ProblemKind(enum.Enum):
    UNKNOWN_FIELD = "unknown field"
    WRONG_TYPE = "wrong type"
    ENUM = "unsupported value"
    RANGE = "out of range"
    FORMAT = "invalid format"
    REQUIRED = "required"
    DUPLICATE = "duplicate entry"


@dataclass(frozen=True)
class SchemaProblem:
    path: Path  # where in the object: ("spec", "template", "spec", "containers", 0, ...)
    kind: ProblemKind
    message: str  # one sentence for a reviewer
    suggestion: str | None = None  # the field meant, for an unknown one


class Unjudged:
    """A value this check does not judge: it matches nothing and every error on it is
    dropped. Stands in for `${VAR}` strings and nulls."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value


def _integer(_checker: object, instance: object) -> bool:
    if isinstance(instance, bool):
        return False
    return isinstance(instance, int) or (isinstance(instance, float) and instance.is_integer())


_TYPES = jsonschema.Draft4Validator.TYPE_CHECKER.redefine("integer", _integer)


def _list_type(
    validator: Validator, list_type: object, instance: object, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """Server-side apply refuses a list keyed by fields (`x-kubernetes-list-type: map`) or
    a set with two equal entries: `duplicate entries for key [name="FOO"]`."""
    if not isinstance(instance, list) or list_type not in ("map", "set"):
        return
    keys = schema.get("x-kubernetes-list-map-keys") or ()
    seen: dict[object, int] = {}
    for index, item in enumerate(instance):
        if list_type == "set":
            if not isinstance(item, str | int | float | bool):
                continue
            key: object = (type(item), item)
        else:
            if not isinstance(item, dict):
                continue
            values = tuple(item.get(k, _MISSING) for k in keys)
            if not all(isinstance(v, str | int | float | _Missing) for v in values):
                continue
            if all(isinstance(v, _Missing) for v in values):
                continue
            key = values
        if key in seen:
            error = ValidationError(
                f"duplicate of entry {seen[key]}",
                validator="duplicate",
                validator_value=list(keys) if list_type == "map" else None,
                instance=item,
            )
            error.relative_path.append(index)
            yield error
        else:
            seen[key] = index


class _Missing:
    __slots__ = ()


_MISSING = _Missing()

BaseValidator = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft4Validator,
    validators={"x-kubernetes-list-type": _list_type},
    type_checker=_TYPES,
)


def _refs(node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                out.append(value.rpartition("/")[2])
            else:
                _refs(value, out)
    elif isinstance(node, list):
        for item in node:
            _refs(item, out)


def closure(release: KubeRelease, root: str) -> tuple[str, ...]:
    seen: set[str] = set()
    stack = [root]
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            _refs(release.definition(name), stack)
    return tuple(sorted(seen))


@cache
def _checks() -> dict[tuple[str, str], apiserver.Check]:
    return {(c.definition, c.field): c for c in apiserver.CHECKS}


def _constrain(prop: Schema, check: apiserver.Check) -> Schema:
    target = dict(prop)
    if check.items:
        items = target.get("items", {})
        target["items"] = {"allOf": [items, check.constraint]}
        return target
    if "$ref" in target:
        # Draft 4 ignores the siblings of a $ref.
        return {"allOf": [{"$ref": target.pop("$ref")}, check.constraint]} | (
            {"x-kubernetes-list-type": target["x-kubernetes-list-type"]}
            if "x-kubernetes-list-type" in target
            else {}
        )
    return target | check.constraint


_COMBINATORS = frozenset({"allOf", "anyOf", "oneOf", "not"})


def compile_schema(node: Any, branch: bool = False) -> Any:
    """A structural OpenAPI schema as jsonschema reads it for the API server: objects
    closed to undeclared fields, int-or-string as either type. A branch of `allOf`,
    `anyOf`, `oneOf` or `not` only adds checks to the fields its parent declares (a
    structural schema declares fields outside them), so it is not closed itself."""
    if isinstance(node, list):
        return [compile_schema(v, branch) for v in node]
    if not isinstance(node, dict):
        return node
    out: Schema = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {name: compile_schema(s, branch) for name, s in value.items()}
        elif key in ("enum", "required", "x-kubernetes-list-map-keys"):
            out[key] = value
        else:
            out[key] = compile_schema(value, branch or key in _COMBINATORS)
    if out.get("format") == "int-or-string" or out.get("x-kubernetes-int-or-string"):
        out.pop("format", None)
        out["type"] = ["integer", "string"]
    preserve = out.get("x-kubernetes-preserve-unknown-fields")
    if out.get("x-kubernetes-embedded-resource"):
        # An embedded object always has apiVersion, kind and metadata, declared or not.
        props = out.setdefault("properties", {})
        for field in ("apiVersion", "kind"):
            props.setdefault(field, {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    if "properties" in out and "additionalProperties" not in out and not preserve and not branch:
        out["additionalProperties"] = False
    return out


def kind_schema(release: KubeRelease, root: str, names: tuple[str, ...]) -> Schema:
    checks = _checks()
    defs: dict[str, Schema] = {}
    for name in names:
        schema = dict(release.definition(name))
        if name == QUANTITY:
            schema = {"type": ["string", "number"], "pattern": QUANTITY_PATTERN}
        props = schema.get("properties")
        if props:
            props = dict(props)
            for field, prop in props.items():
                check = checks.get((name, field))
                if check is not None:
                    props[field] = _constrain(prop, check)
            if name == OBJECT_META and "labels" in props:
                labels = dict(props["labels"])
                labels["additionalProperties"] = {"type": "string", **apiserver.LABEL_VALUE}
                props["labels"] = labels
            schema["properties"] = props
        defs[name] = compile_schema(schema)
    return inline(defs, root)


def inline(defs: dict[str, Schema], root: str) -> Schema:
    """The document with each `$ref` replaced by the definition it names (one shared
    object per definition), but for the references of a definition to itself or to one
    that contains it (CustomResourceDefinition's JSONSchemaProps): jsonschema resolves a
    reference on every visit, a third of the time of a validation otherwise."""
    resolved: dict[str, Schema] = {}

    def definition(name: str, within: frozenset[str]) -> Schema:
        if name not in resolved:
            resolved[name] = visit(defs[name], within | {name})
        return resolved[name]

    def visit(node: Any, within: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [visit(v, within) for v in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            name = ref.removeprefix("#/definitions/")
            return node if name in within else definition(name, within)
        out: Schema = {}
        for key, value in node.items():
            if key in ("properties", "patternProperties"):
                out[key] = {k: visit(v, within) for k, v in value.items()}
            elif key in ("enum", "required", "x-kubernetes-list-map-keys"):
                out[key] = value
            else:
                out[key] = visit(value, within)
        return out

    document = dict(definition(root, frozenset()))
    # Definitions referenced within a cycle keep their `$ref`, resolved from here.
    document["definitions"] = {**defs, **resolved}
    return document


@dataclass(frozen=True, eq=False)
class KindValidator:
    """What validates the objects of one kind (of one minor, or of several that agree)."""

    api_version: str
    kind: str
    root: str
    schema: Schema
    validator: Validator
    custom: bool = False  # a custom resource: no zero values, a missing field is missing

    @cached_property
    def owners(self) -> dict[int, str]:
        """id() of each compiled definition -> its name: a `required` error carries the
        definition it comes from, not its name."""
        defs: dict[str, Schema] = self.schema.get("definitions", {})
        owners = {id(d): name for name, d in defs.items()}
        owners[id(self.schema)] = self.root
        return owners


_COMPILED: dict[str, KindValidator] = {}
_BY_KIND: dict[tuple[str, str, str], KindValidator | None] = {}


def validator_for(api_version: str, kind: str, release: KubeRelease) -> KindValidator | None:
    """The compiled validator of a built-in kind in this release; None for a kind it does
    not serve."""
    key = (release.release, api_version, kind)
    if key not in _BY_KIND:
        _BY_KIND[key] = _compile(api_version, kind, release)
    return _BY_KIND[key]


def _compile(api_version: str, kind: str, release: KubeRelease) -> KindValidator | None:
    root = release.kind(api_version, kind)
    if root is None:
        return None
    names = closure(release, root)
    key = hashlib.sha256(
        "\n".join([api_version, kind, root, *(release.types[n] for n in names)]).encode()
    ).hexdigest()
    found = _COMPILED.get(key)
    if found is None:
        schema = kind_schema(release, root, names)
        found = KindValidator(api_version, kind, root, schema, BaseValidator(schema))
        _COMPILED[key] = found
    return found


def as_release(kube_version: KubeRelease | Minor | str) -> KubeRelease:
    if isinstance(kube_version, KubeRelease):
        return kube_version
    if isinstance(kube_version, str):
        minor = k8sschemas.parse_minor(kube_version)
        if minor is None:
            raise ValueError(f"not a Kubernetes version: {kube_version!r}")
        return k8sschemas.release_for(minor)
    return k8sschemas.release_for(kube_version)


def validate(
    obj: Mapping[str, Any], kube_version: KubeRelease | Minor | str
) -> list[SchemaProblem]:
    """The problems the API server would refuse this object for, in the given Kubernetes
    minor (the nearest vendored one). An object whose apiVersion and kind are not a
    built-in kind of that minor gets none: removed-api-version and custom resources are
    judged elsewhere."""
    release = as_release(kube_version)
    if obj.get("kind") == "Secret" and isinstance(obj.get("sops"), dict):
        # kustomize-controller decrypts a SOPS-encrypted Secret and drops its `sops`
        # metadata before it applies it; its values are judged once decrypted, not here.
        obj = {k: v for k, v in obj.items() if k not in ("sops", "data", "stringData")}
    api = obj.get("apiVersion")
    kind = obj.get("kind")
    if not isinstance(api, str) or not isinstance(kind, str):
        return []
    compiled = validator_for(api, kind, release)
    if compiled is None:
        return []
    return problems(compiled, obj, f"{kind} {api}")


def problems(compiled: KindValidator, obj: Mapping[str, Any], what: str) -> list[SchemaProblem]:
    instance = prepare(obj)
    if isinstance(instance, dict):
        instance.pop("status", None)
    found: list[SchemaProblem] = []
    seen: set[tuple[Path, ProblemKind]] = set()
    for error in compiled.validator.iter_errors(instance):
        for problem in _explain(error, compiled, what):
            if (problem.path, problem.kind) not in seen:
                seen.add((problem.path, problem.kind))
                found.append(problem)
    _drop_typo_twins(found)
    return found


def prepare(value: Any, depth: int = 0) -> Any:
    """A copy to validate: `${...}` strings and nulls become Unjudged, and so does
    whatever a mapping key holding `${` maps to."""
    if depth > 100:
        return Unjudged(value)
    if isinstance(value, dict):
        return {
            k: (Unjudged(v) if isinstance(k, str) and "${" in k else prepare(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [prepare(v, depth + 1) for v in value]
    if value is None or (isinstance(value, str) and "${" in value):
        return Unjudged(value)
    return value


def dotted(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            out += f".{part}"
        else:
            out += f'["{part}"]'
    return out or "the object"


def _type_word(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "null"


_WANTED = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "a boolean (true or false)",
    "object": "a mapping",
    "array": "a list",
}


def _wanted(types: object, schema: object) -> str:
    if isinstance(schema, dict) and schema.get("pattern") == QUANTITY_PATTERN:
        return "a quantity (such as 500m or 1Gi)"
    if isinstance(types, list):
        return " or ".join(_WANTED.get(str(t), str(t)) for t in types)
    return _WANTED.get(str(types), str(types))


def _short(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"' if len(value) <= 28 else f'"{value[:25]}..."'
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "..."


def guess(key: str, known: list[str]) -> str | None:
    lowered = {k.lower(): k for k in known}
    if key.lower() in lowered:
        return lowered[key.lower()]
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    return close[0] if close else None


def _explain(error: ValidationError, compiled: KindValidator, what: str) -> Iterator[SchemaProblem]:
    path: Path = tuple(error.absolute_path)
    instance = error.instance
    if isinstance(instance, Unjudged):
        return
    kind = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    at = f"`{dotted(path)}`"
    if kind == "additionalProperties":
        known = list(schema.get("properties", {}))
        if not isinstance(instance, dict):
            return
        for key, value in instance.items():
            if key in known or "${" in key:
                continue
            if isinstance(value, Unjudged) and value.value is None:
                continue  # `strategy:` with nothing under it: not judged
            meant = guess(key, known)
            hint = f" (did you mean `{meant}`?)" if meant else ""
            yield SchemaProblem(
                (*path, key),
                ProblemKind.UNKNOWN_FIELD,
                f"`{dotted((*path, key))}` is not a field of {what}{hint}",
                meant,
            )
    elif kind == "type":
        yield SchemaProblem(
            path,
            ProblemKind.WRONG_TYPE,
            f"{at} must be {_wanted(error.validator_value, schema)}, not "
            f"{_type_word(instance)} ({_short(instance)})",
        )
    elif kind == "enum":
        allowed = [str(v) for v in error.validator_value if v != ""]  # type: ignore[union-attr]
        yield SchemaProblem(
            path,
            ProblemKind.ENUM,
            f"{at} is {_short(instance)}: {what} accepts " + ", ".join(allowed),
        )
    elif kind in ("minimum", "maximum"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            bound = f"between {low} and {high}"
        elif low is not None:
            bound = f"at least {low}"
        else:
            bound = f"at most {high}"
        yield SchemaProblem(path, ProblemKind.RANGE, f"{at} is {_short(instance)}: must be {bound}")
    elif kind in ("pattern", "maxLength"):
        if schema.get("pattern") == QUANTITY_PATTERN:
            text = f"{at} {_short(instance)} is not a quantity (such as 500m, 128Mi or 1.5)"
        elif schema.get("pattern") == apiserver.LABEL_VALUE["pattern"]:
            text = (
                f"{at} {_short(instance)} is not a label value (at most 63 letters, digits, "
                "`-_.`, alphanumeric at both ends)"
            )
        else:
            text = f"{at} {_short(instance)}: {error.message}"
        yield SchemaProblem(path, ProblemKind.FORMAT, text)
    elif kind == "required":
        missing = str(error.validator_value and error.message.split("'")[1])
        if not isinstance(instance, dict) or missing in instance:
            return
        if _zero_value_accepted(compiled, schema, missing):
            return
        yield SchemaProblem(
            (*path, missing),
            ProblemKind.REQUIRED,
            f"`{dotted((*path, missing))}` is required by {what} and missing",
        )
    elif kind == "duplicate":
        keys = error.validator_value
        if isinstance(keys, list) and keys and isinstance(instance, dict):
            named = ", ".join(f"{k}: {_short(instance.get(k))}" for k in keys if k in instance)
            text = f"{at} repeats {named} of an earlier entry: server-side apply refuses duplicates"
        else:
            text = f"{at} repeats {_short(instance)}: server-side apply refuses duplicates"
        yield SchemaProblem(path, ProblemKind.DUPLICATE, text)
    else:
        yield SchemaProblem(path, ProblemKind.FORMAT, f"{at}: {error.message[:80]}")


def _zero_value_accepted(compiled: KindValidator, schema: Schema, field: str) -> bool:
    """A required field the API server decodes as its zero value when missing: only where
    that value is refused is the field reported."""
    prop = schema.get("properties", {}).get(field, {})
    if "default" in prop:
        return True  # a CRD's structural default fills it before validation
    if compiled.custom:
        return False
    owner = compiled.owners.get(id(schema))
    if owner is not None and (owner, field) in apiserver.ZERO_VALUE_ACCEPTED:
        return True
    types = prop.get("type")
    if types == "boolean":
        return True
    if types in ("integer", "number"):
        check = _checks().get((owner or "", field))
        low = check.constraint.get("minimum") if check else None
        return not (isinstance(low, int | float) and low > 0)
    return False


def _drop_typo_twins(found: list[SchemaProblem]) -> None:
    """`replica` for `replicas` is one mistake: when an unknown field's guess is a required
    field reported missing beside it, the missing one goes."""
    meant = {
        (*p.path[:-1], p.suggestion)
        for p in found
        if p.kind is ProblemKind.UNKNOWN_FIELD and p.suggestion
    }
    found[:] = [p for p in found if not (p.kind is ProblemKind.REQUIRED and p.path in meant)]
