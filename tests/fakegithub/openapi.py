"""Check requests (and the fake's own responses) against GitHub's published REST description.

The description is the vendored subset ``openapi-subset.json`` (regenerate it with
``scripts/vendor_github_fixtures.py``). It is OpenAPI 3.0, whose schema dialect is *almost*
JSON Schema draft 4; ``_to_json_schema`` bridges the differences so ``jsonschema`` can do the
validation.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import jsonschema
from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT4

SUBSET_PATH = Path(__file__).with_name("openapi-subset.json")
_BASE_URI = "urn:github-openapi-subset"

_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    # GitHub parses ISO 8601 timestamps and answers 422 for anything else; fromisoformat
    # accepts the RFC 3339 forms (including "Z" since Python 3.11).
    if isinstance(value, str):
        if "T" not in value.upper():
            raise ValueError("date-time needs a 'T' separator")
        datetime.fromisoformat(value)
    return True


def _to_json_schema(node: Any, *, strict: bool, in_combinator: bool = False) -> Any:
    """Rewrite an OpenAPI 3.0 schema tree into JSON Schema draft 4.

    - ``nullable: true`` has no JSON Schema meaning; it becomes ``anyOf [schema, null]``
      (that also covers ``nullable`` next to ``enum`` or ``allOf``, where adding "null" to
      ``type`` would not be enough).
    - With ``strict``, object schemas that list ``properties`` but say nothing about extra
      ones get ``additionalProperties: false``. GitHub silently ignores unknown request
      fields, so a misspelt ``anotations`` would "work" against the real API while doing
      nothing; the fake turns that into a test failure. Sub-schemas of ``allOf``/``anyOf``/
      ``oneOf`` are left alone: there the properties are spread over several branches.
    """
    if isinstance(node, list):
        return [_to_json_schema(v, strict=strict, in_combinator=in_combinator) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("allOf", "anyOf", "oneOf"):
            out[key] = _to_json_schema(value, strict=strict, in_combinator=True)
        elif key in ("properties", "patternProperties", "definitions") and isinstance(value, dict):
            out[key] = {name: _to_json_schema(sub, strict=strict) for name, sub in value.items()}
        elif key in ("example", "examples", "nullable", "discriminator", "xml"):
            continue
        else:
            out[key] = _to_json_schema(value, strict=strict)
    if (
        strict
        and not in_combinator
        and "properties" in out
        and "additionalProperties" not in out
        and "$ref" not in out
    ):
        out["additionalProperties"] = False
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str  # "path" | "query" | "header"
    required: bool
    schema: dict[str, Any]


@dataclass
class Operation:
    method: str
    template: str
    operation_id: str
    parameters: list[Parameter]
    body_required: bool
    body_schema: dict[str, Any] | None  # None: the operation takes no JSON body
    pointer: str  # JSON pointer of the operation inside the subset
    regex: re.Pattern[str] = field(repr=False)
    responses: dict[str, Any] = field(repr=False, default_factory=dict)


@dataclass
class Match:
    operation: Operation
    path_params: dict[str, str]


def _escape_pointer(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _template_regex(template: str, multi_segment: set[str]) -> re.Pattern[str]:
    # `x-multi-segment` marks parameters that may contain "/" (a file path, or a ref such as
    # "feature/x"); every other parameter is exactly one segment.
    pattern = ""
    for part in re.split(r"(\{[^}]+\})", template):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            body = ".+" if name in multi_segment else "[^/]+"
            pattern += f"(?P<{name}>{body})"
        else:
            pattern += re.escape(part)
    return re.compile(f"^{pattern}$")


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    """Convert a query/path string the way GitHub's router reads it, for type checking."""
    kind = schema.get("type")
    if kind == "integer" and re.fullmatch(r"-?\d+", value):
        return int(value)
    if kind == "number":
        try:
            return float(value)
        except ValueError:
            return value
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    if kind == "array":
        return value.split(",")
    return value


class OpenAPIValidator:
    """Finds the operation for a request and lists everything wrong with the request."""

    def __init__(self, spec: dict[str, Any] | None = None, *, strict: bool = True) -> None:
        self.spec = spec if spec is not None else load_subset()
        self.strict = strict
        request_doc = _to_json_schema(copy.deepcopy(self.spec), strict=strict)
        response_doc = _to_json_schema(copy.deepcopy(self.spec), strict=False)
        self._request_registry: Registry[Any] = Registry().with_resource(
            _BASE_URI, DRAFT4.create_resource(request_doc)
        )
        self._response_registry: Registry[Any] = Registry().with_resource(
            _BASE_URI, DRAFT4.create_resource(response_doc)
        )
        self.operations = self._load_operations()

    @property
    def source(self) -> str:
        vendored = self.spec.get("info", {}).get("x-vendored", {})
        return f"{vendored.get('package', '?')}@{vendored.get('version', '?')}"

    def _resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            parts = node["$ref"].removeprefix("#/").split("/")
            node = self.spec
            for part in parts:
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def _load_operations(self) -> list[Operation]:
        operations: list[Operation] = []
        for template, item in self.spec["paths"].items():
            shared = [self._resolve(p) for p in item.get("parameters", [])]
            for method, op in item.items():
                if method == "parameters":
                    continue
                params = shared + [self._resolve(p) for p in op.get("parameters", [])]
                parameters = [
                    Parameter(
                        name=p["name"],
                        location=p["in"],
                        required=bool(p.get("required", p["in"] == "path")),
                        schema=p.get("schema", {}),
                    )
                    for p in params
                ]
                multi = {p["name"] for p in params if p.get("x-multi-segment")}
                pointer = f"/paths/{_escape_pointer(template)}/{method}"
                body_required = False
                body_schema = None
                request_body = self._resolve(op.get("requestBody"))
                if request_body:
                    body_required = bool(request_body.get("required", False))
                    media = request_body.get("content", {}).get("application/json")
                    if media is not None:
                        body_schema = {
                            "$ref": f"{_BASE_URI}#{pointer}/requestBody/content/"
                            "application~1json/schema"
                        }
                operations.append(
                    Operation(
                        method=method.upper(),
                        template=template,
                        operation_id=op.get("operationId", f"{method} {template}"),
                        parameters=parameters,
                        body_required=body_required,
                        body_schema=body_schema,
                        pointer=pointer,
                        regex=_template_regex(template, multi),
                        responses=op.get("responses", {}),
                    )
                )
        # Literal segments beat parameters (like GitHub's router): try templates with more
        # literal characters first.
        operations.sort(key=lambda o: -len(re.sub(r"\{[^}]+\}", "", o.template)))
        return operations

    def match(self, method: str, path: str) -> Match | None:
        path = urlsplit(path).path
        for op in self.operations:
            if op.method != method.upper():
                continue
            found = op.regex.match(path)
            if found:
                return Match(op, {k: unquote(v) for k, v in found.groupdict().items()})
        return None

    def validate(self, method: str, path: str, body: Any = None) -> list[str]:
        """Errors for one request. ``path`` may include the query string.

        ``body`` is the parsed JSON body, or None when the request had none (an empty body is
        what clients send for body-less POSTs such as the access-token call).
        """
        split = urlsplit(path)
        where = f"{method.upper()} {split.path}"
        found = self.match(method, split.path)
        if found is None:
            return [f"{where}: no such operation in {self.source} (unknown endpoint or method)"]
        op = found.operation
        errors: list[str] = []
        query = parse_qsl(split.query, keep_blank_values=True)
        query_names = {name for name, _ in query}
        known = {p.name for p in op.parameters if p.location == "query"}
        for name in sorted(query_names - known):
            # GitHub ignores unknown query parameters, which hides typos such as `perpage`.
            errors.append(f"{where} ({op.operation_id}): unknown query parameter {name!r}")
        for param in op.parameters:
            if param.location == "path":
                raw = found.path_params.get(param.name)
            elif param.location == "query":
                values = [v for n, v in query if n == param.name]
                raw = values[-1] if values else None
            else:
                continue
            if raw is None:
                if param.required:
                    errors.append(
                        f"{where} ({op.operation_id}): missing required {param.location} "
                        f"parameter {param.name!r}"
                    )
                continue
            value = _coerce(raw, param.schema)
            schema = _to_json_schema(param.schema, strict=False)
            for err in Draft4Validator(schema, format_checker=_FORMATS).iter_errors(value):
                errors.append(
                    f"{where} ({op.operation_id}): {param.location} parameter "
                    f"{param.name}={raw!r}: {err.message}"
                )
        if op.body_schema is None:
            if body not in (None, {}, b"", ""):
                errors.append(f"{where} ({op.operation_id}): this operation takes no body")
        elif body is None:
            if op.body_required:
                errors.append(f"{where} ({op.operation_id}): request body is required")
        else:
            errors.extend(
                f"{where} ({op.operation_id}): body{_json_path(err)}: {_short(err.message)}"
                for err in self._body_errors(op.body_schema, body, self._request_registry)
            )
        return errors

    def body_errors(self, method: str, path: str, body: Any) -> list[str]:
        """Only the request-body schema violations (bare messages), for 422 answers."""
        found = self.match(method, path)
        if found is None or found.operation.body_schema is None or body is None:
            return []
        return [
            f"body{_json_path(err)}: {_short(err.message)}"
            for err in self._body_errors(found.operation.body_schema, body, self._request_registry)
        ]

    def validate_response(
        self, method: str, path: str, status: int, body: Any, content_type: str
    ) -> list[str]:
        """Errors in a response body (used to keep the fake's own answers GitHub-shaped)."""
        found = self.match(method, path)
        if found is None:
            return [f"{method} {path}: no such operation"]
        op = found.operation
        response = op.responses.get(str(status))
        if response is None:
            return [f"{method} {path}: status {status} is not documented for {op.operation_id}"]
        response = self._resolve(response)
        content = response.get("content", {})
        media = content.get(content_type.split(";")[0].strip())
        if media is None:
            return [] if not content else [f"{method} {path}: undocumented type {content_type}"]
        ref = self._find_media_pointer(op, str(status), response, content_type)
        if ref is None or "schema" not in media:
            return []
        return [
            f"{method} {path} -> {status}: body{_json_path(err)}: {_short(err.message)}"
            for err in self._body_errors({"$ref": ref}, body, self._response_registry)
        ]

    def _find_media_pointer(
        self, op: Operation, status: str, response: dict[str, Any], content_type: str
    ) -> str | None:
        raw = op.responses[status]
        media = _escape_pointer(content_type.split(";")[0].strip())
        if "$ref" in raw:
            base = raw["$ref"].removeprefix("#")
        else:
            base = f"{op.pointer}/responses/{status}"
        if "content" not in response:
            return None
        return f"{_BASE_URI}#{base}/content/{media}/schema"

    @staticmethod
    def _body_errors(schema: dict[str, Any], body: Any, registry: Registry[Any]) -> list[Any]:
        validator = Draft4Validator(schema, registry=registry, format_checker=_FORMATS)
        # best_match-style flattening: report the deepest, most specific errors of anyOf.
        errors = []
        for err in validator.iter_errors(body):
            errors.append(jsonschema.exceptions.best_match([err]) if err.context else err)
        return errors


def _short(message: str, limit: int = 300) -> str:
    # jsonschema quotes the whole offending instance; 51 annotations make an unreadable line.
    return message if len(message) <= limit else message[: limit - 20] + f"… ({len(message)} chars)"


def _json_path(err: Any) -> str:
    return "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in err.absolute_path)


@cache
def load_subset() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SUBSET_PATH.read_text(encoding="utf-8"))
    return data


@cache
def default_validator() -> OpenAPIValidator:
    """Shared validator: compiling the subset takes a moment, and it never changes."""
    return OpenAPIValidator()


@cache
def lenient_validator() -> OpenAPIValidator:
    """Without the unknown-property strictness: what GitHub's own validation enforces."""
    return OpenAPIValidator(strict=False)
