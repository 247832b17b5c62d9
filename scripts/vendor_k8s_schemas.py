"""Regenerate bot/analysis/k8sschemas/ (the built-in kinds' schemas per Kubernetes minor).

    python scripts/vendor_k8s_schemas.py --kubernetes KUBERNETES_CLONE [--count 5]
    python scripts/vendor_k8s_schemas.py --kubernetes-validate WHEEL_OR_DIR [--count 5]

KUBERNETES_CLONE is a clone (bare is fine) of github.com/kubernetes/kubernetes: for each
minor the script reads `api/openapi-spec/v3/*_openapi.json` at the newest patch release tag
(`vX.Y.Z`, no pre-release) with `git`, and merges their `components.schemas`.

A kubernetes-validate wheel (PyPI, Apache-2.0) or its unpacked directory is the other
source: its `kubernetes-json-schema/vX.Y.0-local/_definitions.json` is the
`api/openapi-spec/swagger.json` of tag vX.Y.0, converted to JSON Schema by
openapi2jsonschema. The conversion is undone here (null added to optional types, int-or-
string and quantities turned into `oneOf`); for 1.33 to 1.36 the result is identical,
definition by definition, to the swagger.json copies of kubernetes-sigs/reference-docs.

The minors kept are the newest `--count` of the source (default 5: the three minors the
Kubernetes project supports, plus the two before them). Both sources give the same form:
the definitions that a built-in kind (one with `x-kubernetes-group-version-kind`, not a
List, not a meta type) reaches through `$ref`, without `description`, `default` and the
strategic-merge-patch extensions; `$ref`s read `#/definitions/NAME`. Each distinct
definition is stored once, named by its digest, in one gzip'd store shared by every minor;
each minor has a table from definition names to digests. `index.json` names, per minor,
the release read, its table and its kinds (apiVersion -> kind -> definition name).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "bot" / "analysis" / "k8sschemas"
_TAG = re.compile(r"^v1\.(\d+)\.(\d+)$")
_REF = re.compile(r"^.*#/(?:definitions|\$defs|components/schemas)/(.+)$")
_KV_DIR = re.compile(r"kubernetes-json-schema/v1\.(\d+)\.0-local/_definitions\.json$")
# Prose, defaults (the API server applies them, they constrain nothing) and the hints for
# strategic merge patch: none of them says what the API server accepts.
_DROP = frozenset(
    {
        "description",
        "default",
        "example",
        "externalDocs",
        "x-kubernetes-patch-strategy",
        "x-kubernetes-patch-merge-key",
        "x-kubernetes-group-version-kind",
        "x-kubernetes-map-type",
        "x-kubernetes-unions",
        "$schema",
        "$id",
    }
)
Schema = dict[str, Any]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def ref_name(ref: str) -> str:
    m = _REF.match(ref)
    if m is None:
        raise SystemExit(f"unexpected $ref {ref!r}")
    return m[1]


def normalize(node: Any, converted: bool = False) -> Any:
    """One definition in the vendored form. `converted`: it went through
    openapi2jsonschema, whose changes are undone."""
    if isinstance(node, list):
        return [normalize(v, converted) for v in node]
    if not isinstance(node, dict):
        return node
    if converted and "oneOf" in node:
        kinds = sorted(
            next(t for t in ([s["type"]] if isinstance(s["type"], str) else s["type"]))
            for s in node["oneOf"]
        )
        if kinds == ["integer", "string"]:
            return {"format": "int-or-string", "type": "string"}
        if kinds == ["number", "string"]:  # resource.Quantity, a string in the spec
            return {"type": "string"}
    out: Schema = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {name: normalize(s, converted) for name, s in value.items()}
        elif key == "$ref" and isinstance(value, str):
            out["$ref"] = "#/definitions/" + ref_name(value)
        elif key == "allOf" and len(value) == 1 and set(value[0]) == {"$ref"}:
            # OpenAPI v3 wraps a $ref in allOf to give it siblings (default, description).
            out["$ref"] = "#/definitions/" + ref_name(value[0]["$ref"])
        elif key == "type" and isinstance(value, list):
            kinds = [t for t in value if t != "null"]
            out[key] = kinds[0] if len(kinds) == 1 else kinds
        elif converted and key == "additionalProperties" and value is False:
            continue  # the "strict" variant's; the validator closes objects itself
        else:
            out[key] = normalize(value, converted)
    return out


def kinds_of(raw: dict[str, Schema]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for name, schema in raw.items():
        if name.startswith("io.k8s.apimachinery.") or name.endswith("List"):
            continue
        for gvk in schema.get("x-kubernetes-group-version-kind") or ():
            api = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            found.setdefault(api, {})[gvk["kind"]] = name
    return found


def refs(node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                out.append(ref_name(value))
            else:
                refs(value, out)
    elif isinstance(node, list):
        for item in node:
            refs(item, out)


def closure(defs: dict[str, Schema], roots: list[str]) -> set[str]:
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            refs(defs[name], stack)
    return seen


def from_kubernetes(clone: Path, count: int) -> dict[int, tuple[str, dict[str, Schema]]]:
    by_minor: dict[int, list[tuple[int, str]]] = {}
    for tag in git(clone, "tag").split():
        m = _TAG.match(tag)
        if m:
            by_minor.setdefault(int(m[1]), []).append((int(m[2]), tag))
    found = {}
    for minor in sorted(by_minor)[-count:]:
        tag = max(by_minor[minor])[1]
        raw: dict[str, Schema] = {}
        listing = git(clone, "ls-tree", "--name-only", f"{tag}:api/openapi-spec/v3").split()
        for name in listing:
            if name.endswith("_openapi.json"):
                spec = json.loads(git(clone, "show", f"{tag}:api/openapi-spec/v3/{name}"))
                raw.update(spec.get("components", {}).get("schemas", {}))
        found[minor] = (tag, raw)
    return found


def from_kubernetes_validate(source: Path, count: int) -> dict[int, tuple[str, dict[str, Schema]]]:
    files: dict[int, bytes] = {}
    if source.is_dir():
        for path in source.rglob("_definitions.json"):
            m = _KV_DIR.search(path.as_posix())
            if m:
                files[int(m[1])] = path.read_bytes()
    else:
        with zipfile.ZipFile(source) as wheel:
            for name in wheel.namelist():
                m = _KV_DIR.search(name)
                if m:
                    files[int(m[1])] = wheel.read(name)
    found = {}
    for minor in sorted(files)[-count:]:
        defs = json.loads(files[minor])["$defs"]
        for schema in defs.values():
            # openapi2jsonschema pins apiVersion and kind of each kind with an enum.
            for field in ("apiVersion", "kind"):
                schema.get("properties", {}).get(field, {}).pop("enum", None)
        found[minor] = (f"v1.{minor}.0", defs)
    return found


def digest(data: Any) -> tuple[str, bytes]:
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:16], raw


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--kubernetes", type=Path, help="a clone of kubernetes/kubernetes")
    source.add_argument("--kubernetes-validate", type=Path, help="a kubernetes-validate wheel")
    parser.add_argument("--count", type=int, default=5, help="how many minors (newest first)")
    args = parser.parse_args(argv)
    if args.kubernetes:
        read = from_kubernetes(args.kubernetes, args.count)
        converted = False
        origin = "github.com/kubernetes/kubernetes, api/openapi-spec/v3 at each release tag"
    else:
        read = from_kubernetes_validate(args.kubernetes_validate, args.count)
        converted = True
        origin = (
            "github.com/kubernetes/kubernetes, api/openapi-spec/swagger.json at each vX.Y.0 "
            f"tag, as {args.kubernetes_validate.name} ships it converted to JSON Schema"
        )
    store: dict[str, Schema] = {}
    files: dict[str, bytes] = {}
    releases: dict[str, object] = {}
    for minor, (release, raw) in sorted(read.items()):
        kinds = kinds_of(raw)
        roots = [name for by_kind in kinds.values() for name in by_kind.values()]
        defs = {name: normalize(raw[name], converted) for name in raw}
        table: dict[str, str] = {}
        for name in sorted(closure(defs, roots)):
            sid, _ = digest(defs[name])
            store[sid] = defs[name]
            table[name] = sid
        tid, data = digest(table)
        files[tid] = data
        releases[f"1.{minor}"] = {
            "release": release,
            "types": tid,
            "kinds": {api: dict(sorted(k.items())) for api, k in sorted(kinds.items())},
        }
    sid, data = digest(store)
    files[sid] = data
    index = {"source": origin, "definitions": sid, "kubernetes": releases}
    folder = OUT / "schemas"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.json.gz"):
        if old.name.removesuffix(".json.gz") not in files:
            old.unlink()
    for fid, raw_bytes in files.items():
        # mtime=0: the same content always gives the same bytes.
        (folder / f"{fid}.json.gz").write_bytes(gzip.compress(raw_bytes, 9, mtime=0))
    (OUT / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    size = sum(len(gzip.compress(b, 9, mtime=0)) for b in files.values())
    print(
        f"{len(releases)} minors ({', '.join(releases)}), {len(store)} distinct definitions, "
        f"{size // 1024} KiB compressed"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
