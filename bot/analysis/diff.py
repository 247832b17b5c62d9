"""What a change does to each cluster, object by object: per cluster and Flux
Kustomization, every object added, removed, changed or moved, with its built content at
base and head (after kustomize and Flux's own steps, substitution included).

It reads the same pairing of base and head builds as the change summary (`impact`), so
both always agree on what changed. Values a reader must never see are replaced before
anything leaves this module: every value of a Secret's `data` and `stringData`, every
value post-build substitution took from a Secret, and any other value that holds one of
those (a replacement or a chart can copy a Secret's value anywhere). The replacement is a
marker with a hash salted once per run, so a reviewer still sees whether a value changed
without the hash being comparable across runs. A SOPS-encrypted value is shown as written:
its cipher text is what the repository publishes.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml import nodes as ynodes

from bot.analysis.change import Change
from bot.analysis.impact import ClusterPairing, ObjectKey, Pairing, _about, pairings
from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.snapshot.build.clusters import Applied, FluxKustomization

CONTEXT_LINES = 3
# A Secret's value is looked for inside every other value only when it is long enough
# not to be a common word: a Secret's `username: postgres` or `enabled: "true"` must not
# hide every namespace, image or flag that says the same. Values a Secret gives through
# substitution are marked where they land whatever their length.
MIN_SCRUB_LENGTH = 8
MIN_WORD_SCRUB_LENGTH = 16


class Redactor:
    """Replaces secret values by `<secret sha256:XXXXXXXX>`; one per run."""

    def __init__(self, salt: bytes | None = None) -> None:
        self.salt = salt if salt is not None else os.urandom(16)
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def marker(self, value: object) -> str:
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        digest = hashlib.sha256(self.salt + text.encode("utf-8", "surrogatepass")).hexdigest()
        return f"<secret sha256:{digest[:8]}>"

    def learn(self, value: str) -> None:
        """A value to look for in every other value and text."""
        for text in (value, value.strip()):
            word = re.fullmatch(r"[A-Za-z_.-]*", text) is not None
            if len(text) >= (MIN_WORD_SCRUB_LENGTH if word else MIN_SCRUB_LENGTH):
                self._secrets.add(text)
        self._pattern = None

    def learn_secret(self, node: ynodes.MappingNode) -> None:
        """Every value of a Secret (as written, and a `data` value decoded)."""
        for field_name in ("data", "stringData"):
            values = yn.get(node, field_name)
            if not isinstance(values, ynodes.MappingNode):
                continue
            for _, v in values.value:
                if not isinstance(v, ynodes.ScalarNode):
                    continue
                self.learn(v.value)
                if field_name == "data":
                    try:
                        decoded = base64.b64decode(v.value.replace("\n", ""), validate=True)
                        self.learn(decoded.decode())
                    except (ValueError, binascii.Error, UnicodeDecodeError):
                        pass

    def holds_secret(self, text: str) -> bool:
        pattern = self._compiled()
        return pattern is not None and pattern.search(text) is not None

    def scrub(self, text: str, fixed: str | None = None) -> str:
        """`text` with every known secret value inside it replaced by its marker (by
        `fixed` when given: a text whose identity must not change from run to run)."""
        pattern = self._compiled()
        if pattern is None:
            return text
        if fixed is not None:
            return pattern.sub(fixed, text)
        return pattern.sub(lambda m: self.marker(m.group(0)), text)

    def _compiled(self) -> re.Pattern[str] | None:
        if not self._secrets:
            return None
        if self._pattern is None:
            # Longest first: a secret that contains another is replaced whole.
            ordered = sorted(self._secrets, key=lambda s: (-len(s), s))
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))
        return self._pattern


def _plain(value: Any) -> Any:
    """A built value as plain JSON types (a str subclass the build uses to say a type
    is uncertain becomes str)."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _secret_mark(node: ynodes.Node) -> bool:
    mark = node.start_mark
    return isinstance(mark, yn.Origin) and mark.secret


def _value(node: ynodes.Node, redactor: Redactor, depth: int = 0) -> Any:
    if depth > 300:
        raise RecursionError("nesting too deep")
    if isinstance(node, ynodes.ScalarNode):
        value = _plain(yn.to_value(node))
        if _secret_mark(node):
            return redactor.marker(value)
        if isinstance(value, str) and redactor.holds_secret(value):
            return redactor.marker(value)
        return value
    if isinstance(node, ynodes.SequenceNode):
        return [_value(v, redactor, depth + 1) for v in node.value]
    if isinstance(node, ynodes.MappingNode):
        if any(
            isinstance(k, ynodes.ScalarNode) and k.tag.endswith(":merge") for k, _ in node.value
        ):
            # Merge keys are rare in built objects: read the whole mapping as the
            # server does and look for secrets in its strings.
            return _scrub_value(_plain(yn.to_value(node)), redactor)
        out: dict[str, Any] = {}
        for k, v in node.value:
            if isinstance(k, ynodes.ScalarNode):
                out[str(k.value)] = _value(v, redactor, depth + 1)
        return out
    return None


def _scrub_value(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor.marker(value) if redactor.holds_secret(value) else value
    if isinstance(value, dict):
        return {k: _scrub_value(v, redactor) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_value(v, redactor) for v in value]
    return value


def _sops(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("ENC[")


def redacted(applied: Applied, redactor: Redactor) -> dict[str, Any]:
    """The object as the cluster receives it, with its secret values replaced."""
    value = _value(applied.node, redactor)
    if not isinstance(value, dict):
        return {}
    if applied.id.kind == "Secret" and applied.id.group == "":
        # A SOPS-encrypted Secret is decrypted by kustomize-controller on the cluster;
        # the repository holds only cipher text, which is shown as written.
        encrypted = "sops" in value
        for field_name in ("data", "stringData"):
            raw = _plain(yn.to_value(yn.get(applied.node, field_name)))
            if raw is None or encrypted:
                continue
            if isinstance(raw, dict):
                value[field_name] = {
                    k: v if _sops(v) else redactor.marker(v) for k, v in raw.items()
                }
            else:
                value[field_name] = redactor.marker(raw)
    return value


# --- the model ------------------------------------------------------------------------


@dataclass
class ObjectDiff:
    api_version: str
    kind: str
    namespace: str | None
    name: str
    change: str  # "added" | "removed" | "changed" | "moved"
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    path: str
    line: int
    side: str  # "head" | "base"
    # "NAMESPACE/NAME" of the Flux Kustomization that applied it at the base.
    moved_from: str | None = None
    # Where it was defined at the base, when that is another file (or line).
    moved_from_path: str | None = None
    moved_from_line: int | None = None
    # Where changed values were written, when not in the object's own file (a patch, a
    # component, a substitution): "spec.replicas (apps/replicas.yaml:6)".
    origins: list[str] = field(default_factory=list)

    @property
    def sort_key(self) -> tuple[str, str, str, str]:
        return (self.api_version, self.kind, self.namespace or "", self.name)

    @property
    def title(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "change": self.change,
            "before": self.before,
            "after": self.after,
            "path": self.path,
            "line": self.line,
            "side": self.side,
            "moved_from": self.moved_from,
            "moved_from_path": self.moved_from_path,
        }


@dataclass
class KustomizationDiff:
    kustomization: str  # "NAMESPACE/NAME"
    label: str  # "Flux Kustomization flux-system/apps"
    unknown: list[str] = field(default_factory=list)
    objects: list[ObjectDiff] = field(default_factory=list)
    # Why the head's build fails: then no object changes, the cluster keeps what it has.
    fails: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "kustomization": self.kustomization,
            "label": self.label,
            "unknown": self.unknown,
            "fails": self.fails,
            "objects": [o.to_json() for o in self.objects],
        }


@dataclass
class ClusterDiff:
    cluster: str
    kustomizations: list[KustomizationDiff] = field(default_factory=list)
    # Kustomizations that may apply a changed file that flux-review cannot follow.
    unfollowed: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(len(k.objects) for k in self.kustomizations)

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "kustomizations": [k.to_json() for k in self.kustomizations],
            "unfollowed": self.unfollowed,
        }


def diff_json(clusters: Iterable[ClusterDiff]) -> list[dict[str, Any]]:
    return [c.to_json() for c in clusters]


def _ks_name(ks: FluxKustomization | None, label: str) -> str:
    if ks is None:
        return label
    return f"{ks.namespace}/{ks.name}" if ks.namespace else ks.name


def _learn_secrets(change: Change, redactor: Redactor) -> None:
    for snap in (change.base, change.head):
        for cluster in snap.build.clusters:
            for obj in cluster.objects():
                secret = obj.id.kind == "Secret" and obj.id.group == ""
                if secret and yn.get(obj.node, "sops") is None:
                    redactor.learn_secret(obj.node)


def _object(
    applied: Applied, change: str, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> ObjectDiff:
    i = applied.id
    return ObjectDiff(
        i.api_version,
        i.kind,
        i.namespace,
        i.name,
        change,
        before,
        after,
        applied.path,
        applied.line,
        "base" if change == "removed" else "head",
    )


ORIGINS_SHOWN = 5


def _changed_paths(
    a: Any, b: Any, at: tuple[str | int, ...] = ()
) -> Iterator[tuple[str | int, ...]]:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(a.keys() | b.keys()):
            if a.get(k, _MISSING) != b.get(k, _MISSING) and k in b:
                yield from _changed_paths(a.get(k), b[k], (*at, k))
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                yield from _changed_paths(x, y, (*at, i))
    elif a != b:
        yield at


def _node_at(node: ynodes.Node, path: tuple[str | int, ...]) -> ynodes.Node | None:
    for step in path:
        if isinstance(step, int) and isinstance(node, ynodes.SequenceNode):
            if step >= len(node.value):
                return None
            node = node.value[step]
        elif isinstance(step, str) and isinstance(node, ynodes.MappingNode):
            found = yn.get(node, step)
            if found is None:
                return None
            node = found
        else:
            return None
    return node


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        else:
            key = step if re.fullmatch(r"[A-Za-z0-9_-]+", step) else json.dumps(step)
            out += f".{key}" if out else key
    return out


def _origins(applied: Applied, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Where the values a change sets were written, for those not written in the
    object's own file: a reviewer of a patch or a substitution sees which line did it."""
    out: list[str] = []
    for path in _changed_paths(before, after):
        node = _node_at(applied.node, path)
        if node is None:
            continue
        file, line, via = yn.origin_of(node, applied.path)
        if file == applied.path and via is None:
            continue
        text = f"{_dotted(path) or '(the object)'} ({file}:{line})" + (f": {via}" if via else "")
        if text not in out:
            out.append(text)
        if len(out) >= ORIGINS_SHOWN:
            break
    return out


def change_diff(
    change: Change,
    redactor: Redactor | None = None,
    paired: list[ClusterPairing] | None = None,
) -> list[ClusterDiff]:
    """Per cluster (of either side), the objects the change adds, removes, changes or
    moves, each Kustomization's objects sorted by apiVersion, kind, namespace, name."""
    redactor = redactor or Redactor()
    _learn_secrets(change, redactor)
    out = []
    for cp in paired if paired is not None else pairings(change):
        out.append(_cluster(cp, redactor))
    return [c for c in out if c.kustomizations or c.unfollowed]


def _cluster(cp: ClusterPairing, redactor: Redactor) -> ClusterDiff:
    cluster = ClusterDiff(cp.cluster, unfollowed=list(cp.unfollowed))
    removed: dict[ObjectKey, tuple[Pairing, Applied]] = {}
    for p in cp.pairs:
        for key in p.removed():
            removed.setdefault(key, (p, p.old[key]))
    per: dict[str, list[ObjectDiff]] = {p.label: [] for p in cp.pairs}
    moved_away: set[tuple[str, ObjectKey]] = set()
    for p in cp.pairs:
        objs = per[p.label]
        for key in p.added():
            new = p.new[key]
            after = redacted(new, redactor)
            origin = removed.get(key)
            if origin is not None and origin[0] is not p:
                # The same object, now applied by another Kustomization of the
                # cluster: on the cluster it is one object that changes owner, so it is
                # one entry, not a removal and an addition.
                old_p, old = origin
                moved_away.add((old_p.label, key))
                o = _object(new, "moved", redacted(old, redactor), after)
                o.moved_from = _ks_name(old_p.old_ks, old_p.label)
                o.moved_from_path, o.moved_from_line = old.path, old.line
                objs.append(o)
                continue
            objs.append(_object(new, "added", None, after))
        changed = set(p.changed())
        for key in sorted(p.new.keys() & p.old.keys(), key=str):
            a, b = p.old[key], p.new[key]
            if key not in changed and a.path == b.path:
                continue
            before, after = redacted(a, redactor), redacted(b, redactor)
            if a.path != b.path:
                # The same object from another file: a file renamed or split.
                o = _object(b, "moved", before, after)
                o.moved_from_path, o.moved_from_line = a.path, a.line
                objs.append(o)
            else:
                o = _object(b, "changed", before, after)
                o.origins = _origins(b, before, after)
                objs.append(o)
    for p in cp.pairs:
        for key in p.removed():
            if (p.label, key) in moved_away:
                continue
            old = p.old[key]
            per[p.label].append(_object(old, "removed", redacted(old, redactor), None))
    for p in cp.pairs:
        objs = sorted(per[p.label], key=lambda o: o.sort_key)
        if objs:
            reasons = [str(r) for r in p.unknown or []]
            # A HelmRelease not rendered is said where the change touched its inputs (a
            # remote chart's release that nothing touched is not news).
            reasons += [
                why for why in {**p.was, **p.now}.values() if why in cp.news and why not in reasons
            ]
        else:
            # Without a change to its objects, a build not fully known is said only
            # where the change is the reason.
            reasons = [str(r) for r in p.unknown or [] if _about(r, cp.touched)]
        fails = list(p.fails_new)
        reasons = [why for why in reasons if why not in p.fails]
        ks = p.new_ks or p.old_ks
        if objs or fails or (reasons and p.old_ks is not None):
            cluster.kustomizations.append(
                KustomizationDiff(_ks_name(ks, p.label), p.label, reasons, objs, fails)
            )
    return cluster


# --- as text ----------------------------------------------------------------------------

_TOP = ("apiVersion", "kind", "metadata")


def _ordered(value: Any, top: bool = False) -> Any:
    """Keys in a stable order: apiVersion, kind, metadata first (as people write
    objects), every other key sorted."""
    if isinstance(value, dict):
        keys = sorted(value)
        if top:
            keys = [k for k in _TOP if k in value] + [k for k in keys if k not in _TOP]
        return {k: _ordered(value[k]) for k in keys}
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


# libyaml's emitter when PyYAML has it: a large diff dumps thousands of objects.
_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[misc]
    pass


def _str(dumper: Any, data: str) -> Any:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def yaml_lines(value: dict[str, Any] | None) -> list[str]:
    if value is None:
        return []
    text = yaml.dump(
        _ordered(value, top=True),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=10_000,
    )
    return text.splitlines()


def unified(obj: ObjectDiff, context: int = CONTEXT_LINES) -> list[str]:
    """The object's change as unified diff lines (without file headers)."""
    before, after = yaml_lines(obj.before), yaml_lines(obj.after)
    if obj.change == "added":
        return [f"@@ -0,0 +1,{len(after)} @@"] + [f"+{line}" for line in after]
    if obj.change == "removed":
        return [f"@@ -1,{len(before)} +0,0 @@"] + [f"-{line}" for line in before]
    return list(difflib.unified_diff(before, after, n=context, lineterm=""))[2:]


_MISSING = object()


def _leaves(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for k in sorted(value):
            key = k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)
            yield from _leaves(value[k], f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from _leaves(v, f"{prefix}[{i}]")
    else:
        yield prefix, value


def field_changes(obj: ObjectDiff) -> list[str]:
    """The change as field lines: `- spec.replicas: 1`, `+ spec.replicas: 2`."""
    before = dict(_leaves(obj.before or {}, ""))
    after = dict(_leaves(obj.after or {}, ""))
    out = []
    for path in sorted(before.keys() | after.keys()):
        a, b = before.get(path, _MISSING), after.get(path, _MISSING)
        if a == b and type(a) is type(b):
            continue
        if a is not _MISSING:
            out.append(f"- {path}: {json.dumps(a, ensure_ascii=False)}")
        if b is not _MISSING:
            out.append(f"+ {path}: {json.dumps(b, ensure_ascii=False)}")
    return out


@dataclass
class Entry:
    """One item of a Kustomization's diff as shown: an object, or a group of objects of
    one kind that the change alters in exactly the same way."""

    objects: list[ObjectDiff]
    lines: list[str]

    @property
    def count(self) -> int:
        return len(self.objects)


def _plural(kind: str, n: int) -> str:
    if n == 1:
        return kind
    if kind.endswith(("s", "x", "ch", "sh")):
        return kind + "es"
    if kind.endswith("y") and kind[-2:-1] not in ("a", "e", "i", "o", "u"):
        return kind[:-1] + "ies"
    return kind + "s"


def _where(o: ObjectDiff) -> str:
    return ("base: " if o.side == "base" else "") + f"{o.path}:{o.line}"


def _header(o: ObjectDiff, renamed: dict[tuple[str, str, str, str], ObjectDiff]) -> list[str]:
    head = f"# {o.change}: {o.api_version} {o.title} ({_where(o)})"
    if o.change == "added":
        # A namespace (or name prefix) changed: on the cluster the old object is deleted
        # and a new one created, which the diff shows as such, side by side.
        old = renamed.get((o.api_version, o.kind, o.name, o.path))
        if old is not None and old.namespace != o.namespace:
            head += f", replaces {old.title} (namespace changed)"
    if o.change != "moved":
        return [head] + [f"#   {origin}" for origin in o.origins]
    parts = []
    if o.moved_from is not None:
        parts.append(f"from {o.moved_from}")
    if o.moved_from_path is not None and o.moved_from_path != o.path:
        parts.append(f"was {o.moved_from_path}:{o.moved_from_line}")
    lines = [head + (f", {', '.join(parts)}" if parts else "")]
    if o.before == o.after:
        lines.append("#   content unchanged")
    return lines


GROUP_NAMES_SHOWN = 10


def entries(objects: list[ObjectDiff], group_from: int = 2) -> list[Entry]:
    """The objects of one Kustomization as shown: changed objects whose every field
    change is the same (same kind, same fields, same values) are shown once, with the
    diff of the first of them."""
    groups: dict[tuple[Any, ...], list[ObjectDiff]] = {}
    order: list[tuple[Any, ...] | ObjectDiff] = []
    renamed = {(o.api_version, o.kind, o.name, o.path): o for o in objects if o.change == "removed"}
    for o in objects:
        if o.change != "changed":
            order.append(o)
            continue
        sig = (o.api_version, o.kind, tuple(field_changes(o)))
        if sig not in groups:
            groups[sig] = []
            order.append(sig)
        groups[sig].append(o)
    out = []
    for item in order:
        if isinstance(item, ObjectDiff):
            out.append(Entry([item], _header(item, renamed) + unified(item)))
            continue
        members = groups[item]
        first = members[0]
        if len(members) < group_from:
            out.append(Entry([first], _header(first, renamed) + unified(first)))
            continue
        names = ", ".join(
            (f"{m.namespace}/{m.name}" if m.namespace else m.name)
            for m in members[:GROUP_NAMES_SHOWN]
        )
        if len(members) > GROUP_NAMES_SHOWN:
            names += f" and {len(members) - GROUP_NAMES_SHOWN} more"
        fields = field_changes(first)
        lines = [
            f"# the same change in {len(members)} {_plural(first.kind, len(members))}: {names}"
        ]
        lines += [f"#   {f}" for f in fields[:6]]
        if len(fields) > 6:
            lines.append(f"#   … {len(fields) - 6} more field lines")
        lines.append(f"#   shown on {first.title} ({_where(first)})")
        lines += [f"#   {origin}" for origin in first.origins]
        out.append(Entry(members, lines + unified(first)))
    return out


def counts(objects: Iterable[ObjectDiff]) -> str:
    tally: dict[str, int] = {}
    for o in objects:
        tally[o.change] = tally.get(o.change, 0) + 1
    parts = [f"{tally[c]} {c}" for c in ("changed", "added", "removed", "moved") if c in tally]
    return ", ".join(parts) if parts else "no object changes"
