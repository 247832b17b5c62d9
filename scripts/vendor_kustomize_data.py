"""Regenerate bot/analysis/snapshot/build/data/fieldspecs.json and mergekeys.json.

    python scripts/vendor_kustomize_data.py KUSTOMIZE_CLONE SWAGGER [--check]

KUSTOMIZE_CLONE is a clone (bare is fine) of github.com/kubernetes-sigs/kustomize. The
script reads, with `git`, at tag api/v0.18.0 (the API kustomize v5.5.0 builds with) the
field specs of kustomize's builtin transformers: the YAML in the Go string constants of
`api/internal/konfig/builtinpluginconsts/*.go` (constants joined with `+` are followed);
and at the kyaml tag that `api/go.mod` requires (kyaml/v0.18.1) the table of kinds kyaml
knows the scope of (`precomputedIsNamespaceScoped` in `kyaml/openapi/openapi.go`) and the
Kustomization schema kyaml always loads (`kyaml/openapi/kustomizationapi/swagger.json`).

SWAGGER is the Kubernetes v1.21.2 OpenAPI v2 description: the file, or a clone of
github.com/kubernetes/kubernetes, whose `api/openapi-spec/swagger.json` at tag v1.21.2 is
read. kyaml embeds that description (as `swagger.pb`) and merges strategic-merge patches
with it, whatever the cluster's version: the script refuses another version.

From the description it keeps what a strategic-merge patch needs: for every
apiVersion/kind (`x-kubernetes-group-version-kind`) its definition, and for each definition
from which a list merged by key is reachable, the fields that are such lists (their keys,
as kyaml's `PatchStrategyAndKeyList` reads them) or lead to one. Nothing is downloaded.
With `--check` nothing is written: the script says whether the vendored files are what it
would write (exit 1 when not).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

OUT = Path(__file__).resolve().parent.parent / "bot" / "analysis" / "snapshot" / "build" / "data"
API_TAG = "api/v0.18.0"
CONSTS = "api/internal/konfig/builtinpluginconsts"
KUBERNETES_TAG = "v1.21.2"
# The tables, in the order the vendored file keeps them.
TABLES = (
    "namePrefix",
    "nameSuffix",
    "namespace",
    "commonLabels",
    "templateLabels",
    "commonAnnotations",
    "images",
    "replicas",
    "varReference",
    "nameReference",
)
# Go source as tokens: blanks, comments, raw and quoted strings, names, anything else.
_GO_TOKENS = re.compile(r'\s+|//[^\n]*|/\*.*?\*/|`[^`]*`|"(?:\\.|[^"\\])*"|\w+|.', re.S)
_IDENT = re.compile(r"[A-Za-z_]\w*")
_SCOPE = re.compile(r'\{APIVersion:\s*"([^"]+)",\s*Kind:\s*"([^"]+)"\}:\s*(true|false)')
_KYAML = re.compile(r"^\s*sigs\.k8s\.io/kustomize/kyaml\s+(v\S+)", re.M)


def git(clone: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(clone), *args], check=True, capture_output=True, text=True
    ).stdout


def commit_of(clone: Path, tag: str) -> str:
    return git(clone, "rev-parse", f"{tag}^{{commit}}").strip()


# --- field specs ---------------------------------------------------------------------------


def go_constants(sources: dict[str, str]) -> dict[str, tuple[list[str | tuple[str]], str]]:
    """Each string constant of the Go files: its parts (raw strings, and `(name,)` for
    another constant it adds) and the file it is in. The field specs are raw string
    literals joined with `+`; any other declaration is skipped."""
    found: dict[str, tuple[list[str | tuple[str]], str]] = {}
    for path, text in sources.items():
        tokens = [t for t in _GO_TOKENS.findall(text) if t.strip() and not t.startswith("/")]
        for i in range(len(tokens) - 2):
            if tokens[i + 1] != "=" or not _IDENT.fullmatch(tokens[i]):
                continue
            parts: list[str | tuple[str]] = []
            j = i + 2
            while j < len(tokens):
                token = tokens[j]
                if token.startswith("`"):
                    parts.append(token[1:-1])
                elif _IDENT.fullmatch(token):
                    parts.append((token,))
                else:
                    break
                if j + 1 < len(tokens) and tokens[j + 1] == "+":
                    j += 2
                    continue
                break
            if any(isinstance(p, str) for p in parts) or len(parts) > 1:
                found[tokens[i]] = (parts, path)
    return found


def resolve(
    name: str, consts: dict[str, tuple[list[str | tuple[str]], str]]
) -> tuple[str, list[str]]:
    """A constant's text and the files it comes from (its own first)."""
    parts, path = consts[name]
    text, files = "", [path]
    for part in parts:
        if isinstance(part, tuple):
            sub, sub_files = resolve(part[0], consts)
            text += sub
            files += [f for f in sub_files if f not in files]
        else:
            text += part
    return text, files


def spec(raw: dict[str, Any]) -> dict[str, Any]:
    """A field spec in the vendored form (kustomize's `FieldSpec`: an absent part of the
    gvk is empty, `create` false unless set)."""
    return {
        "group": str(raw.get("group") or ""),
        "version": str(raw.get("version") or ""),
        "kind": str(raw.get("kind") or ""),
        "path": str(raw["path"]),
        "create": raw.get("create") is True,
    }


def field_specs(clone: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The tables, and the files each comes from."""
    listing = git(clone, "ls-tree", "--name-only", f"{API_TAG}:{CONSTS}").split()
    sources = {
        f"{CONSTS}/{name}": git(clone, "show", f"{API_TAG}:{CONSTS}/{name}")
        for name in listing
        if name.endswith(".go") and not name.endswith("_test.go")
    }
    consts = go_constants(sources)
    tables: dict[str, Any] = {}
    files: dict[str, str] = {}
    for name in consts:
        text, paths = resolve(name, consts)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            continue
        if not isinstance(data, dict) or len(data) != 1:
            continue
        [(table, entries)] = data.items()
        if table not in TABLES:
            raise SystemExit(f"{paths[0]}: a table {table!r} the build does not know")
        if table == "nameReference":
            tables[table] = [
                {
                    "group": str(e.get("group") or ""),
                    "version": str(e.get("version") or ""),
                    "kind": str(e["kind"]),
                    "fieldSpecs": [spec(s) for s in e.get("fieldSpecs") or []],
                }
                for e in entries
            ]
        else:
            tables[table] = [spec(e) for e in entries]
        files[table] = " + ".join([paths[0], *(p.rsplit("/", 1)[-1] for p in paths[1:])])
    missing = [t for t in TABLES if t not in tables]
    if missing:
        raise SystemExit(f"{API_TAG}:{CONSTS} has no table {', '.join(missing)}")
    return {t: tables[t] for t in TABLES}, {t: files[t] for t in TABLES}


# --- merge keys ----------------------------------------------------------------------------


def ref_name(schema: dict[str, Any] | None) -> str | None:
    ref = (schema or {}).get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def merge_list(schema: dict[str, Any]) -> dict[str, Any] | None:
    """A list field merged by key (or by value), as kyaml reads its extensions: the keys
    are `x-kubernetes-list-map-keys` when there are some (even where the patch merge key
    names fewer), else the patch merge key, else none (a list of scalars merged by value).
    The extensions are taken wherever they are: Kubernetes 1.21 also puts them on a
    string (LabelSelectorRequirement's `key`), which a merge never reads as a list."""
    strategy = schema.get("x-kubernetes-patch-strategy")
    if not isinstance(strategy, str):
        return None
    if "merge" not in strategy.split(","):
        return None
    merge_key = schema.get("x-kubernetes-patch-merge-key")
    map_keys = schema.get("x-kubernetes-list-map-keys")
    out: dict[str, Any] = {
        "merge": list(map_keys) if map_keys else ([merge_key] if merge_key else [])
    }
    if strategy != "merge":
        out["strategy"] = strategy
    if map_keys and merge_key:
        out["mergeKey"] = merge_key
    return out


def merge_definitions(definitions: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The definitions from which a merge list is reachable, each with only the fields
    that are merge lists or lead to one; names and fields in order."""
    edges: dict[str, dict[str, tuple[dict[str, Any] | None, str | None, str]]] = {}
    for name, definition in definitions.items():
        fields: dict[str, tuple[dict[str, Any] | None, str | None, str]] = {}
        for field, schema in (definition.get("properties") or {}).items():
            merge = merge_list(schema)
            if merge is not None:
                fields[field] = (merge, ref_name(schema.get("items")), "items")
            elif (ref := ref_name(schema)) is not None:
                fields[field] = (None, ref, "ref")
            elif (ref := ref_name(schema.get("additionalProperties"))) is not None:
                fields[field] = (None, ref, "mapValues")
            elif (ref := ref_name(schema.get("items"))) is not None:
                # A list a patch replaces whole: its elements' schema is never walked, but
                # a merge list is reachable through it (a List kind's `items`); the field
                # is not listed.
                fields[field] = (None, ref, "")
        edges[name] = fields
    reached = {n for n, fields in edges.items() if any(m for m, _, _ in fields.values())}
    grew = True
    while grew:
        grew = False
        for name, fields in edges.items():
            if name not in reached and any(r in reached for _, r, _ in fields.values()):
                reached.add(name)
                grew = True
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(reached):
        kept: dict[str, Any] = {}
        for field in sorted(edges[name]):
            merge, ref, how = edges[name][field]
            entry = dict(merge) if merge is not None else {}
            if ref in reached and how:
                entry[how] = ref
            if entry:
                kept[field] = entry
        out[name] = kept
    return out


def roots(definitions: dict[str, Any]) -> dict[str, str]:
    """apiVersion/kind -> definition, as kyaml indexes every group-version-kind."""
    out: dict[str, str] = {}
    for name in sorted(definitions):
        for gvk in definitions[name].get("x-kubernetes-group-version-kind") or []:
            api = f"{gvk['group']}/{gvk['version']}" if gvk.get("group") else gvk["version"]
            out[f"{api}/{gvk['kind']}"] = name
    return dict(sorted(out.items()))


def read_swagger(source: Path) -> dict[str, Any]:
    if source.is_dir():
        text = git(source, "show", f"{KUBERNETES_TAG}:api/openapi-spec/swagger.json")
    else:
        text = source.read_text()
    data: dict[str, Any] = json.loads(text)
    version = (data.get("info") or {}).get("version")
    if version != KUBERNETES_TAG:
        raise SystemExit(
            f"{source}: Kubernetes {version}, not {KUBERNETES_TAG} (what kyaml embeds)"
        )
    return data


# --- the files -----------------------------------------------------------------------------

FIELDSPECS_META = {
    "source": "sigs.k8s.io/kustomize/api v0.18.0 (tag api/v0.18.0, commit {api}), "
    "api/internal/konfig/builtinpluginconsts/*.go; used by kustomize v5.5.0 / kubectl v1.32",
    "license": "Apache-2.0 (Copyright The Kubernetes Authors). Data transcribed from the Go "
    "string constants by scripts/vendor_kustomize_data.py; see NOTICE.",
    "path_syntax": "'/'-separated field names; '\\/' escapes a literal '/' inside a name (e.g. "
    "annotation keys). A sequence met on the way is traversed automatically (every element). "
    "A trailing '[]' on a segment (e.g. containers[]) only marks the field as a list: it is "
    "looked up, never created. No [name=x] selectors in fieldspec paths.",
    "create": "create=true: missing intermediate maps and the final field are created (only by "
    "transformers that pass a CreateKind: namespace, prefix/suffix (never, path metadata/name "
    "exists), labels, annotations, replicas; NOT images). create=false: the spec is skipped "
    "when any segment is missing.",
    "gvk_match": "empty group/version/kind = wildcard; non-empty must equal exactly (group = "
    "part of apiVersion before '/', '' for core).",
    "runtime_order": "Source order is kept here. At runtime each list is merged with any "
    "`configurations:` files and sorted with sort.Sort by Gvk.IsLessThan (kind-order table, "
    "then group_version_kind string); duplicates (same path and gvk-selection) are dropped, a "
    "duplicate with a different create flag is an error 'conflicting fieldspecs'.",
}
MERGEKEYS_META = {
    "source": "Kubernetes v1.21.2 OpenAPI v2 (api/openapi-spec/swagger.json at tag v1.21.2, "
    "which kyaml v0.18.1 (tag kyaml/v0.18.1, commit {kyaml}) embeds as "
    "kyaml/openapi/kubernetesapi/v1_21_2/swagger.pb: the only built-in schema and the default) "
    "+ kyaml/openapi/openapi.go precomputedIsNamespaceScoped. Used by kustomize v5.5.0 (api "
    "v0.18.0). Plus kyaml/openapi/kustomizationapi/swagger.json (always loaded; only "
    "Kustomization has merge lists).",
    "license": "Apache-2.0 (Kubernetes OpenAPI spec and kyaml, The Kubernetes Authors). "
    "Derived data.",
    "format": {
        "roots": "apiVersion + '/' + kind (core group: 'v1/Pod') -> definition name. Only these "
        "exact apiVersion/kind pairs get a schema; any other (CRDs, newer API versions such as "
        "autoscaling/v2 HPA, batch/v1beta1 is present, policy/v1 PDB present...) has none => "
        "every list in it is replaced by the patch.",
        "definitions": "only definitions from which a merge list is reachable; only fields that "
        "are merge lists or lead to one are listed. A field not listed is either a scalar/map "
        "(merged recursively without needing schema) or a list without merge strategy (patch "
        "replaces it).",
        "field.merge": "present => list is associative (x-kubernetes-patch-strategy contains "
        "'merge'). Value = effective key list as kyaml PatchStrategyAndKeyList returns it: "
        "x-kubernetes-list-map-keys when present (even though patch-merge-key is narrower), else "
        "[x-kubernetes-patch-merge-key], else [] (= list of primitives merged by value).",
        "field.strategy": "raw x-kubernetes-patch-strategy when not plain 'merge'",
        "field.mergeKey": "raw x-kubernetes-patch-merge-key, shown when list-map-keys override it",
        "field.items": "definition of the list elements (only if it contains further merge lists)",
        "field.ref": "definition of a nested object field",
        "field.mapValues": "definition of the values of a map-typed field (additionalProperties)",
        "clusterScoped": "apiVersion/kind that kustomize treats as cluster-scoped "
        "(IsCertainlyClusterScoped true): namespace transformer does not set metadata.namespace, "
        "ResId effective namespace is '_non_namespaceable_'. Everything else (incl. unknown "
        "kinds/versions) is namespaced.",
        "namespaced": "apiVersion/kind known to be namespaced (informational; unknown kinds "
        "behave the same).",
    },
}


def build(clone: Path, swagger_source: Path) -> dict[str, str]:
    """The two files' text."""
    api_commit = commit_of(clone, API_TAG)
    kyaml = _KYAML.search(git(clone, "show", f"{API_TAG}:api/go.mod"))
    if kyaml is None:
        raise SystemExit(f"{API_TAG}:api/go.mod requires no sigs.k8s.io/kustomize/kyaml")
    kyaml_tag = f"kyaml/{kyaml[1]}"
    kyaml_commit = commit_of(clone, kyaml_tag)
    tables, files = field_specs(clone)
    meta: dict[str, Any] = dict(FIELDSPECS_META)
    meta["source"] = meta["source"].format(api=api_commit)
    meta = {"source": meta["source"], "license": meta["license"], "files": files, **meta}
    fieldspecs = {"_meta": meta, **tables}

    kubernetes = read_swagger(swagger_source)["definitions"]
    kustomization = json.loads(
        git(clone, "show", f"{kyaml_tag}:kyaml/openapi/kustomizationapi/swagger.json")
    )["definitions"]
    scope = _SCOPE.findall(git(clone, "show", f"{kyaml_tag}:kyaml/openapi/openapi.go"))
    if not scope:
        raise SystemExit(f"{kyaml_tag}:kyaml/openapi/openapi.go has no precomputed scopes")
    merge_meta = json.loads(json.dumps(MERGEKEYS_META))
    merge_meta["source"] = merge_meta["source"].format(kyaml=kyaml_commit)
    # kyaml adds the Kustomization schema after the Kubernetes one; their definition
    # names do not meet.
    mergekeys = {
        "_meta": merge_meta,
        "roots": {**roots(kubernetes), **roots(kustomization)},
        "definitions": {
            **merge_definitions(kubernetes),
            **merge_definitions(kustomization),
        },
        "clusterScoped": sorted(f"{a}/{k}" for a, k, namespaced in scope if namespaced == "false"),
        "namespaced": sorted(f"{a}/{k}" for a, k, namespaced in scope if namespaced == "true"),
    }
    return {
        "fieldspecs.json": json.dumps(fieldspecs, indent=1),
        "mergekeys.json": json.dumps(mergekeys, indent=1),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kustomize", type=Path, help="a clone of kubernetes-sigs/kustomize")
    parser.add_argument(
        "swagger", type=Path, help="Kubernetes v1.21.2 swagger.json, or a kubernetes clone"
    )
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args(argv)
    texts = build(args.kustomize, args.swagger)
    stale = [name for name, text in texts.items() if (OUT / name).read_text() != text]
    fs, mk = json.loads(texts["fieldspecs.json"]), json.loads(texts["mergekeys.json"])
    specs = sum(len(fs[t]) for t in TABLES if t != "nameReference")
    references = sum(len(r["fieldSpecs"]) for r in fs["nameReference"])
    summary = (
        f"{specs} field specs and {references} name references in {len(TABLES)} tables; "
        f"{len(mk['roots'])} kinds, {len(mk['definitions'])} definitions with merge lists, "
        f"{len(mk['clusterScoped'])} cluster-scoped kinds"
    )
    if args.check:
        print(summary + (f"; differs: {', '.join(stale)}" if stale else "; up to date"))
        return 1 if stale else 0
    for name, text in texts.items():
        (OUT / name).write_text(text)
    print(summary + (f"; rewrote {', '.join(stale)}" if stale else "; unchanged"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
