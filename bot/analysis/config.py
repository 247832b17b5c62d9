"""The repository config, `.github/flux-review.yml`.

Parsed with ruamel.yaml's round-trip loader because errors must name the line; the file
is tiny. Anything unknown or mistyped is an error: a typo in `off` must never silently
leave a rule on or, worse, switch one off.
"""

from __future__ import annotations

import difflib
import io
import posixpath
import re
from collections.abc import Iterable
from typing import Any

from bot.analysis.findings import Severity
from bot.analysis.options import (
    CONFIG_PATH,
    FAIL_ON_CHOICES,
    ClusterConfig,
    Config,
    ConfigError,
    ExternalObject,
    parse_fail_on,
)
from bot.analysis.rules import RULES

__all__ = ["CONFIG_PATH", "Config", "ConfigError", "parse_config"]
_SEVERITIES = {"error", "warning", "notice"}
_KEYS = (
    "rules",
    "ignore",
    "raw_paths",
    "fail_on",
    "review_drafts",
    "external_objects",
    "flux_version",
    "clusters",
    "kubernetes_version",
)
# `2.4.0`, `v2.4`, `2.4.x`: the Flux release the clusters run, to its minor at least.
_FLUX_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(?:\d+|x|\*))?$")
# `1.31`, `v1.31.4`: the Kubernetes minor a cluster runs.
_KUBE_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(?:\d+|x|\*))?$")
_VAR_NAME = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_NAME_CHARS = re.compile(r"[^\s/]+")


def _line(node: Any, key: Any = None) -> int:
    lc = getattr(node, "lc", None)
    if lc is None:
        return 1
    try:
        if key is not None:
            return int(lc.key(key)[0]) + 1 if isinstance(key, str) else int(lc.item(key)[0]) + 1
        return int(lc.line) + 1
    except (KeyError, IndexError, TypeError):
        return int(lc.line) + 1


def parse_config(
    text: str | bytes, source: str = CONFIG_PATH, known_rules: set[str] | None = None
) -> Config:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{source}: not UTF-8 text ({exc.reason})") from None
    yaml = YAML(typ="rt")
    try:
        data = yaml.load(io.StringIO(text))
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}:{where}: invalid YAML: {problem}") from None
    if data is None:
        return Config()
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: line {_line(data)}: the config must be a mapping")
    if known_rules is None:
        known_rules = set(RULES)

    rules: dict[str, Severity | None] = {}
    ignore: tuple[str, ...] = ()
    raw_paths: tuple[str, ...] = ()
    fail_on: Severity | None = Severity.ERROR
    review_drafts = True
    flux_version: tuple[int, int] | None = None
    external: tuple[ExternalObject, ...] = ()
    clusters: tuple[ClusterConfig, ...] = ()
    kube_versions: tuple[tuple[str, tuple[int, int]], ...] = ()
    for key, value in data.items():
        line = _line(data, key)
        if key not in _KEYS:
            raise ConfigError(
                f"{source}: line {line}: unknown key {key!r}{_did_you_mean(key, _KEYS)} "
                f"(known: {', '.join(_KEYS)})"
            )
        if key == "rules":
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{source}: line {line}: 'rules' must be a mapping of rule id "
                    "to error, warning, notice or off"
                )
            for rule, sev in value.items():
                rline = _line(value, rule)
                if rule not in known_rules:
                    raise ConfigError(
                        f"{source}: line {rline}: unknown rule {rule!r} in 'rules'"
                        f"{_did_you_mean(rule, known_rules)}"
                    )
                # YAML 1.1 readers turn a bare `off` into False; accept it as meant.
                if sev is False or sev == "off":
                    rules[rule] = None
                elif isinstance(sev, str) and sev in _SEVERITIES:
                    rules[rule] = Severity(sev)
                else:
                    raise ConfigError(
                        f"{source}: line {rline}: rules.{rule} must be one of "
                        f"error, warning, notice, off (got {sev!r})"
                    )
        elif key in ("ignore", "raw_paths"):
            if isinstance(value, str):
                value = [value]
            if isinstance(value, list):
                for index, item in enumerate(value):
                    if not (isinstance(item, str) and item):
                        raise ConfigError(
                            f"{source}: line {_line(value, index)}: {key!r} must be a list "
                            f"of strings (item {index + 1} is {item!r})"
                        )
            else:
                raise ConfigError(f"{source}: line {line}: {key!r} must be a list of strings")
            if key == "ignore":
                ignore = tuple(value)
            else:
                raw_paths = tuple(_clean_dir(v) for v in value)
        elif key == "fail_on":
            if not (isinstance(value, str) and value in FAIL_ON_CHOICES):
                raise ConfigError(
                    f"{source}: line {line}: 'fail_on' must be "
                    f"{', '.join(FAIL_ON_CHOICES[:-1])} or {FAIL_ON_CHOICES[-1]} (got {value!r})"
                )
            fail_on = parse_fail_on(value)
        elif key == "review_drafts":
            if not isinstance(value, bool):
                raise ConfigError(
                    f"{source}: line {line}: 'review_drafts' must be true or false (got {value!r})"
                )
            review_drafts = value
        elif key == "flux_version":
            flux_version = _parse_flux_version(value, f"{source}: line {line}")
        elif key == "external_objects":
            external = _external_objects(value, source, line)
        elif key == "clusters":
            clusters = _clusters(value, source, line)
        elif key == "kubernetes_version":
            kube_versions = _kubernetes_versions(value, source, line)
    return Config(
        rules=rules,
        ignore=ignore,
        raw_paths=raw_paths,
        fail_on=fail_on,
        review_drafts=review_drafts,
        external_objects=external,
        flux_version=flux_version,
        clusters=clusters,
        kubernetes_versions=kube_versions,
    )


def _did_you_mean(given: object, known: Iterable[str]) -> str:
    """`; did you mean 'x'?` for a near miss (a typo, `_` for `-`, a dropped word)."""
    if not isinstance(given, str):
        return ""
    by_form = {k.replace("_", "-").lower(): k for k in known}
    form = given.replace("_", "-").lower().strip()
    if form in by_form:
        return f"; did you mean {by_form[form]!r}?"
    scored = sorted(
        ((difflib.SequenceMatcher(None, form, k).ratio(), k) for k in by_form), reverse=True
    )
    # The best match, and the next one only when it is about as close.
    close = [k for ratio, k in scored[:2] if ratio >= 0.6 and ratio >= scored[0][0] - 0.05]
    if not close:
        # `image-reference` for `invalid-image-reference`: a part of a longer id.
        close = sorted(k for k in by_form if len(form) >= 5 and form in k)[:2]
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(by_form[c]) for c in close) + "?"


def _parse_flux_version(value: Any, where: str) -> tuple[int, int]:
    match = _FLUX_VERSION.match(value.strip()) if isinstance(value, str) else None
    if match is None or int(match[1]) != 2:
        raise ConfigError(
            f'{where}: \'flux_version\' must be a Flux 2 release such as "2.4.0" or "v2.4" '
            f"(quoted, so YAML keeps it a string; got {value!r})"
        )
    return int(match[1]), int(match[2])


def _parse_kube_version(value: Any, where: str) -> tuple[int, int]:
    match = _KUBE_VERSION.match(value.strip()) if isinstance(value, str) else None
    if match is None or int(match[1]) != 1:
        raise ConfigError(
            f'{where} must be a Kubernetes release such as "1.31" or "v1.31.4" (quoted, '
            f"so YAML keeps it a string: an unquoted 1.30 reads as 1.3; got {value!r})"
        )
    return int(match[1]), int(match[2])


def _kubernetes_versions(
    value: Any, source: str, line: int
) -> tuple[tuple[str, tuple[int, int]], ...]:
    if isinstance(value, dict):
        out = []
        for name, version in value.items():
            where = f"{source}: line {_line(value, name)}: kubernetes_version of {name!r}"
            if not (isinstance(name, str) and name):
                raise ConfigError(f"{where}: a cluster name must be a string")
            out.append((name, _parse_kube_version(version, where)))
        return tuple(out)
    return (("*", _parse_kube_version(value, f"{source}: line {line}: 'kubernetes_version'")),)


def _clusters(value: Any, source: str, line: int) -> tuple[ClusterConfig, ...]:
    usage = "a directory, or {name, paths: [directories], substitute: {VAR: value}}"
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"{source}: line {line}: 'clusters' must be a list, each item {usage}")
    out: list[ClusterConfig] = []
    names: set[str] = set()
    for index, item in enumerate(value):
        iline = _line(value, index)
        where = f"{source}: line {iline}: clusters item {index + 1}"
        if isinstance(item, str) and item.strip():
            path = _clean_dir(item)
            entry = ClusterConfig(path or ".", (path,), line=iline)
        elif isinstance(item, dict):
            known = ("name", "paths", "substitute", "kubernetes_version")
            for key in item:
                if key not in known:
                    raise ConfigError(
                        f"{where}: unknown key {key!r}{_did_you_mean(key, known)} "
                        f"(known: {', '.join(known)})"
                    )
            paths = item.get("paths")
            if isinstance(paths, str):
                paths = [paths]
            if not (
                isinstance(paths, list)
                and paths
                and all(isinstance(p, str) and p.strip() for p in paths)
            ):
                raise ConfigError(f"{where}: 'paths' must be a list of directories")
            clean = tuple(_clean_dir(p) for p in paths)
            name = item.get("name", clean[0] or ".")
            if not (isinstance(name, str) and name.strip()):
                raise ConfigError(f"{where}: 'name' must be a string (got {name!r})")
            substitute = item.get("substitute") or {}
            if not isinstance(substitute, dict):
                raise ConfigError(f"{where}: 'substitute' must be a mapping of VAR to value")
            pairs = []
            for var, val in substitute.items():
                if not (isinstance(var, str) and _VAR_NAME.match(var)):
                    raise ConfigError(
                        f"{where}: substitute key {var!r} is not a variable name "
                        "Flux substitutes (letters, digits and `_`, not starting with a digit)"
                    )
                if isinstance(val, (dict, list)) or val is None:
                    raise ConfigError(f"{where}: substitute.{var} must be a string (got {val!r})")
                # Flux's postBuild.substitute is a map of strings: a YAML true or 3 is
                # what the user wrote, as text.
                text = ("true" if val else "false") if isinstance(val, bool) else str(val)
                pairs.append((var, text))
            version = item.get("kubernetes_version")
            entry = ClusterConfig(
                name.strip(),
                clean,
                tuple(pairs),
                _parse_kube_version(version, f"{where}: kubernetes_version")
                if version is not None
                else None,
                iline,
            )
        else:
            raise ConfigError(f"{where} must be {usage} (got {item!r})")
        if entry.name in names:
            raise ConfigError(f"{where}: a second cluster named {entry.name!r}")
        names.add(entry.name)
        out.append(entry)
    return tuple(out)


def _external_objects(value: Any, source: str, line: int) -> tuple[ExternalObject, ...]:
    usage = "`Kind/namespace/name`, `Kind/*/name` or, for a cluster-scoped kind, `Kind/name`"
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"{source}: line {line}: 'external_objects' must be a list of {usage}")
    entries = []
    for index, item in enumerate(value):
        where = f"{source}: line {_line(value, index)}: external_objects item {index + 1}"
        if not isinstance(item, str):
            raise ConfigError(f"{where} must be a string ({usage}), not {item!r}")
        parts = item.strip().split("/")
        if len(parts) not in (2, 3) or not all(_NAME_CHARS.fullmatch(p) for p in parts):
            raise ConfigError(f"{where} is {item!r}; write {usage}")
        if not _KIND.fullmatch(parts[0]):
            raise ConfigError(
                f"{where}: {parts[0]!r} is not a Kubernetes kind (like HelmRepository)"
            )
        kind, name = parts[0], parts[-1]
        namespace = parts[1] if len(parts) == 3 and parts[1] != "*" else None
        entries.append(ExternalObject(kind, namespace, name))
    return tuple(entries)


def _clean_dir(path: str) -> str:
    norm = posixpath.normpath(path.strip().strip("/") or ".")
    return "" if norm == "." else norm
