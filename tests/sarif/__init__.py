"""The official SARIF 2.1.0 JSON schema (OASIS, errata 01), vendored with its licence.

`assert_valid_sarif` checks a document against it the way strict consumers do, including
the `uri` format that `repositoryUri` and `helpUri` must have.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_PATH = Path(__file__).resolve().parent / "sarif-schema-2.1.0.json"

# RFC 3986 absolute URI: a scheme, then anything without spaces. jsonschema checks the
# `uri` format only with an optional extra installed; this is the part that matters here.
_ABSOLUTE_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$")

_formats = jsonschema.FormatChecker()


@_formats.checks("uri")
def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or bool(_ABSOLUTE_URI.match(value))


@cache
def _validator() -> jsonschema.Draft4Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema, format_checker=_formats)


def assert_valid_sarif(doc: Any) -> None:
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "SARIF does not validate against the 2.1.0 schema:\n" + "\n".join(
        f"  at /{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:10]
    )
