"""flux-schema asks jsonschema-rs first whether an object is valid and jsonschema only for
the errors of one it refuses: a finding must never be lost to the faster validator."""

from __future__ import annotations

import copy
import random
import re
from typing import Any

from bot.analysis import fluxschemas
from bot.analysis.rules import flux_schema as fs

# Values a field is likely to be written with, right or wrong: the types of YAML scalars,
# numbers at the edges of integer fields, strings for patterns, and what substitution
# leaves (`${VAR}`).
POOL: list[Any] = [
    0,
    1,
    -1,
    1.0,
    1.5,
    2**70,
    True,
    False,
    "x",
    "",
    "1m",
    "10s",
    "\u0661\u0662",
    "true",
    "1",
    "a" * 300,
    "Foo",
    "-bad-",
    [],
    {},
    {"a": 1},
    ["x"],
    [1],
    "http://x",
    "a b",
    "a/b",
    "0.1.0",
    "9999h",
    "12\n",
]
CANDIDATES = ["1m", "flux-system", "a", "https://example.com", "1.0.0", "main", "0"]


def _instance(schema: Any, depth: int = 0) -> Any:
    """A value of every declared field (to a depth), each written to fit its schema where
    a simple value can: enums take their first value, patterns the first candidate they
    match."""
    if not isinstance(schema, dict):
        return "x"
    for alternatives in ("anyOf", "oneOf"):
        if schema.get(alternatives):
            return _instance({**schema, **schema[alternatives][0], alternatives: None}, depth)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > 6:
            return {}
        return {k: _instance(v, depth + 1) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [] if depth > 6 else [_instance(schema.get("items", {}), depth + 1)]
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "string":
        pattern = schema.get("pattern")
        for text in CANDIDATES:
            if pattern is None or re.search(pattern, text):
                return text[: schema.get("maxLength", len(text))]
        return "x"
    return "x"


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _mutated(value: dict[str, Any], rnd: random.Random) -> dict[str, Any]:
    out = copy.deepcopy(value)
    path = rnd.choice(_paths(out)[1:])
    parent: Any = out
    for part in path[:-1]:
        parent = parent[part]
    choice = rnd.random()
    if choice < 0.5:
        parent[path[-1]] = rnd.choice(POOL)
    elif choice < 0.7:
        # As flux-schema reads `${VAR}`: a value of any type.
        parent[path[-1]] = fs._Any("${VAR}")
    elif choice < 0.85 and isinstance(parent[path[-1]], dict):
        parent[path[-1]]["unknownField"] = "x"
    elif isinstance(parent, dict):
        del parent[path[-1]]
    return out


def _objects() -> list[tuple[str, dict[str, Any]]]:
    objects = []
    for release in fluxschemas.releases():
        for api_version, kinds in release.kinds.items():
            for kind, schema_id in kinds.items():
                value = _instance(fs._validator(schema_id).schema)
                value.update(apiVersion=api_version, kind=kind, metadata={"name": "a"})
                value.pop("status", None)
                objects.append((schema_id, value))
    return objects


def _said(errors: Any) -> list[tuple[str, list[Any]]]:
    return [(e.message, list(e.absolute_path)) for e in errors]


def test_the_fast_validator_never_accepts_what_jsonschema_refuses() -> None:
    rnd = random.Random(7)
    seen: set[str] = set()
    judged = refused = accepted = 0
    for schema_id, value in _objects():
        if schema_id in seen:
            continue
        seen.add(schema_id)
        fast = fs._fast_validator(schema_id)
        assert fast is not None, schema_id
        slow = fs._validator(schema_id)
        for candidate in [value] + [_mutated(value, rnd) for _ in range(25)]:
            slow_valid = not any(True for _ in slow.iter_errors(candidate))
            fast_valid = fast.is_valid(fs._plain(candidate))
            assert not (fast_valid and not slow_valid), (schema_id, candidate)
            assert _said(fs._schema_errors(schema_id, candidate)) == _said(
                slow.iter_errors(candidate)
            )
            judged += 1
            refused += not slow_valid
            accepted += fast_valid
    # Both sides are exercised: most mutations break an object, and the objects written
    # to fit their schema are valid (the faster path is taken, not always skipped).
    assert seen == {schema_id for schema_id, _ in _objects()}
    assert refused > judged // 3
    assert accepted > len(seen) // 2
