"""Regenerate bot/analysis/fluxschemas/ from local git mirrors of the Flux repositories.

    python scripts/vendor_flux_schemas.py FLUX2_MIRROR CONTROLLER_MIRROR...

FLUX2_MIRROR is a clone (bare is fine) of github.com/fluxcd/flux2; each CONTROLLER_MIRROR
one of fluxcd/helm-controller, kustomize-controller, source-controller,
notification-controller, image-reflector-controller, image-automation-controller, named by
its directory (`fluxcd+helm-controller/repo` or `helm-controller.git` both work). Nothing
is downloaded: the script reads tags with `git`.

For every Flux minor release from v2.0 it takes the newest patch release, reads the
controller versions that its `manifests/bases/<controller>/kustomization.yaml` pins, and
from each controller's tag the CRDs in `config/crd/bases/`. Each served version's
`openAPIV3Schema` (without `description` texts, `status` and `x-kubernetes-validations`
kept) is stored once, gzip'd and named by its digest; `index.json` maps
(Flux minor, apiVersion, kind) to a schema id.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parent.parent / "bot" / "analysis" / "fluxschemas"
CONTROLLERS = (
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
    "image-reflector-controller",
    "image-automation-controller",
)
_PIN = re.compile(r"releases/download/(v\d+\.\d+\.\d+)/")
_TAG = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")


def git(mirror: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(mirror), *args], check=True, capture_output=True, text=True
    ).stdout


def controller_name(mirror: Path) -> str:
    for part in reversed(mirror.resolve().parts):
        name = part.removesuffix(".git").split("+")[-1]
        if name in CONTROLLERS:
            return name
    raise SystemExit(f"{mirror}: not a mirror of one of {', '.join(CONTROLLERS)}")


def strip(node: object) -> object:
    """The schema without prose: descriptions are most of a CRD's bytes and no check
    reads them."""
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def releases(flux2: Path) -> dict[tuple[int, int], list[tuple[int, int, int]]]:
    by_minor: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for tag in git(flux2, "tag").split():
        m = _TAG.match(tag)
        if m:
            v = (int(m[1]), int(m[2]), int(m[3]))
            if v >= (2, 0, 0):
                by_minor.setdefault(v[:2], []).append(v)
    return {k: sorted(v) for k, v in sorted(by_minor.items())}


def pins(flux2: Path, tag: str) -> dict[str, str]:
    found = {}
    for controller in CONTROLLERS:
        try:
            text = git(flux2, "show", f"{tag}:manifests/bases/{controller}/kustomization.yaml")
        except subprocess.CalledProcessError:
            continue
        m = _PIN.search(text)
        if m:
            found[controller] = m[1]
    return found


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    flux2 = Path(argv[0])
    mirrors = {controller_name(Path(p)): Path(p) for p in argv[1:]}
    missing = set(CONTROLLERS) - set(mirrors)
    if missing:
        raise SystemExit(f"no mirror given for {', '.join(sorted(missing))}")
    schemas: dict[str, bytes] = {}
    index: dict[str, object] = {"source": "CRDs of the fluxcd controllers, config/crd/bases"}
    flux: dict[str, object] = {}
    crd_cache: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
    for (major, minor), patches in releases(flux2).items():
        tag = "v{}.{}.{}".format(*patches[-1])
        controllers = pins(flux2, tag)
        kinds: dict[str, dict[str, str]] = {}
        used: dict[str, str] = {}
        for controller, version in sorted(controllers.items()):
            tag_used = crd_tag(mirrors[controller], version)
            used[controller] = tag_used
            key = (controller, tag_used)
            if key not in crd_cache:
                crd_cache[key] = read_crds(mirrors[controller], tag_used, schemas)
            for api, by_kind in crd_cache[key].items():
                kinds.setdefault(api, {}).update(by_kind)
        flux[f"{major}.{minor}"] = {
            "release": tag,
            "patches": ["v{}.{}.{}".format(*p) for p in patches],
            "controllers": controllers,
            "crds_from": {c: t for c, t in used.items() if t != controllers[c]},
            "kinds": {api: dict(sorted(k.items())) for api, k in sorted(kinds.items())},
        }
    index["flux"] = flux
    schema_dir = OUT / "schemas"
    schema_dir.mkdir(parents=True, exist_ok=True)
    for old in schema_dir.glob("*.json.gz"):
        if old.name.removesuffix(".json.gz") not in schemas:
            old.unlink()
    for sid, data in schemas.items():
        # mtime=0: the same schema always gives the same bytes.
        (schema_dir / f"{sid}.json.gz").write_bytes(gzip.compress(data, 9, mtime=0))
    (OUT / "index.json").write_text(json.dumps(index, indent=1, sort_keys=False) + "\n")
    print(f"{len(flux)} Flux releases, {len(schemas)} distinct schemas")
    return 0


def crd_tag(mirror: Path, version: str) -> str:
    """`version`, or when the mirror lacks that tag the newest earlier patch release of
    the same minor: Flux controllers change their API only in minor releases."""
    tags = set(git(mirror, "tag").split())
    if version in tags:
        return version
    want = tuple(int(x) for x in version[1:].split("."))
    candidates = sorted(
        (v, t)
        for t in tags
        if (m := _TAG.match(t))
        and (v := (int(m[1]), int(m[2]), int(m[3])))[:2] == want[:2]
        and v <= want
    )
    if not candidates:
        raise SystemExit(f"{mirror}: no tag {version} nor an earlier one of its minor")
    print(f"{controller_name(mirror)} {version}: using {candidates[-1][1]}", file=sys.stderr)
    return candidates[-1][1]


def read_crds(mirror: Path, version: str, schemas: dict[str, bytes]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    listing = git(mirror, "ls-tree", "--name-only", f"{version}:config/crd/bases").split()
    for name in listing:
        if not name.endswith(".yaml"):
            continue
        crd = yaml.safe_load(git(mirror, "show", f"{version}:config/crd/bases/{name}"))
        group = crd["spec"]["group"]
        kind = crd["spec"]["names"]["kind"]
        for ver in crd["spec"]["versions"]:
            if not ver.get("served", True):
                continue
            schema = ver.get("schema", {}).get("openAPIV3Schema")
            if not schema:
                continue
            body = strip(schema)
            if ver.get("deprecated"):
                assert isinstance(body, dict)
                body["x-flux-review-deprecated"] = True
            data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
            sid = hashlib.sha256(data).hexdigest()[:16]
            schemas[sid] = data
            found.setdefault(f"{group}/{ver['name']}", {})[kind] = sid
    return found


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
