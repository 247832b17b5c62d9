"""Chart version matching as Helm v4 and Flux do it, with Masterminds/semver v3 semantics.

Helm and Flux both pin github.com/Masterminds/semver/v3 (v3.4.0 or later). Its rules are
not npm's and not the SemVer spec's: partial versions become ranges, prereleases are only
admitted by an AND group that names one, and a hyphen range needs spaces. This module
ports `NewVersion`, `NewConstraint`, `Constraints.Check`, Flux's strict `ParseVersion`,
and the "exact string first" lookups of Helm's index and Flux's source-controller, so the
reviewer predicts the chart version the cluster would actually get.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Constraint", "Version", "matches", "parse_strict", "select"]

# Go parses every number with strconv.ParseUint(s, 10, 64): a larger version part is an
# error, and a larger numeric prerelease identifier is ranked as an alphanumeric one.
_MAX_UINT64 = (1 << 64) - 1

# The current Masterminds source refuses longer or more fragmented constraints outright.
_MAX_CONSTRAINT_BYTES = 512
_MAX_CONSTRAINT_GROUPS = 32

_DIGITS = frozenset("0123456789")
_IDENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789")
# The constraint grammar's segment class is `[0-9|x|X|\*]`: the `|` separators inside a
# Go character class are literal, so a lone `|` is a legal segment character that only
# fails later, when the version is built.
_SEGMENT_CHARS = frozenset("0123456789xX*|")
# Go's `\s` is ASCII-only and excludes `\v`; Python's would accept more.
_WS_CHARS = frozenset(" \t\n\f\r")
_WS = r"[ \t\n\f\r]"

# NewVersion with CoerceNewVersion (the default since v3.4.0): leading zeros in the
# numeric parts are accepted, missing minor/patch are zero.
_LOOSE_VERSION = re.compile(
    r"v?([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)

_CV = (
    r"v?([0-9|xX*]+)(\.[0-9|xX*]+)?(\.[0-9|xX*]+)?"
    r"(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
    r"(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
)
# Group 1 is the lower bound, group 11 the upper one (each _CV holds nine groups).
_RANGE = re.compile(rf"{_WS}*({_CV}){_WS}+-{_WS}+({_CV}){_WS}*")

# Tried in this order, as the alternation `=||!=|>|<|>=|=>|<=|=<|~|~>|\^` is: the first
# operator after which a version can be read wins.
_OPERATORS = ("=", "", "!=", ">", "<", ">=", "=>", "<=", "=<", "~", "~>", "^")


def _parse_uint64(digits: str) -> int:
    value = int(digits)
    if value > _MAX_UINT64:
        raise ValueError(f"error parsing version segment: {digits!r} is out of range")
    return value


def _validate_prerelease(pre: str) -> None:
    for part in pre.split("."):
        if part == "" or not set(part) <= _IDENT_CHARS:
            raise ValueError(f"invalid prerelease string {pre!r}")
        if set(part) <= _DIGITS and len(part) > 1 and part[0] == "0":
            raise ValueError(f"prerelease {pre!r} has a numeric identifier starting with 0")


def _validate_build(build: str) -> None:
    for part in build.split("."):
        if part == "" or not set(part) <= _IDENT_CHARS:
            raise ValueError(f"invalid build metadata {build!r}")


def _numeric_identifier(part: str) -> int | None:
    if part and set(part) <= _DIGITS:
        value = int(part)
        if value <= _MAX_UINT64:
            return value
    return None


def _compare_prerelease_part(s: str, o: str) -> int:
    if s == o:
        return 0
    # An identifier missing on one side means that side has fewer identifiers, and a
    # shorter set sorts first whatever the other side's identifier is.
    if s == "":
        return -1
    if o == "":
        return 1
    si = _numeric_identifier(s)
    oi = _numeric_identifier(o)
    if si is None and oi is None:
        return 1 if s > o else -1
    if si is None:
        return 1
    if oi is None:
        return -1
    return 1 if si > oi else -1


def _compare_prerelease(s: str, o: str) -> int:
    sparts = s.split(".")
    oparts = o.split(".")
    for i in range(max(len(sparts), len(oparts))):
        d = _compare_prerelease_part(
            sparts[i] if i < len(sparts) else "", oparts[i] if i < len(oparts) else ""
        )
        if d != 0:
            return d
    return 0


def _compare(a: Version, b: Version) -> int:
    for x, y in ((a.major, b.major), (a.minor, b.minor), (a.patch, b.patch)):
        if x != y:
            return -1 if x < y else 1
    if a.prerelease == b.prerelease:
        return 0
    if a.prerelease == "":
        return 1
    if b.prerelease == "":
        return -1
    return _compare_prerelease(a.prerelease, b.prerelease)


@functools.total_ordering
@dataclass(frozen=True, eq=False)
class Version:
    """A parsed version; equality and ordering are SemVer precedence (build ignored)."""

    major: int
    minor: int
    patch: int
    prerelease: str = ""
    build: str = ""
    original: str = ""

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse like Masterminds `NewVersion`: `v` prefix and `1` / `1.2` allowed."""
        m = _LOOSE_VERSION.fullmatch(text)
        if m is None:
            raise ValueError(f"invalid semantic version {text!r}")
        major, minor, patch, pre, build = m.groups()
        if pre is not None:
            _validate_prerelease(pre)
        if build is not None:
            _validate_build(build)
        return cls(
            major=_parse_uint64(major),
            minor=_parse_uint64(minor) if minor is not None else 0,
            patch=_parse_uint64(patch) if patch is not None else 0,
            prerelease=pre or "",
            build=build or "",
            original=text,
        )

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += f"-{self.prerelease}"
        if self.build:
            text += f"+{self.build}"
        return text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return _compare(self, other) == 0

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return _compare(self, other) < 0

    def __hash__(self) -> int:
        # Precedence equality is exact equality of these four fields.
        return hash((self.major, self.minor, self.patch, self.prerelease))


def _strict_semver(text: str) -> bool:
    """Masterminds `StrictNewVersion`: exactly MAJOR.MINOR.PATCH, no leading zeros."""
    parts = text.split(".", 2)
    if len(parts) != 3:
        return False
    tail = parts[2]
    try:
        if "+" in tail:
            tail, build = tail.split("+", 1)
            _validate_build(build)
        if "-" in tail:
            tail, pre = tail.split("-", 1)
            _validate_prerelease(pre)
        for number in (parts[0], parts[1], tail):
            if not number or not set(number) <= _DIGITS:
                return False
            if len(number) > 1 and number[0] == "0":
                return False
            _parse_uint64(number)
    except ValueError:
        return False
    return True


def parse_strict(text: str) -> Version | None:
    """Flux's `version.ParseVersion`: strict SemVer, one optional `v`; None if invalid."""
    if not _strict_semver(text.removeprefix("v")):
        return None
    try:
        return Version.parse(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class _Atom:
    op: str
    text: str
    major: str
    minor: str
    patch: str
    pre: str


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i] in _WS_CHARS:
        i += 1
    return i


def _scan_segment(s: str, i: int) -> int:
    while i < len(s) and s[i] in _SEGMENT_CHARS:
        i += 1
    return i


def _scan_identifiers(s: str, start: int) -> int:
    if start >= len(s) or s[start] not in _IDENT_CHARS:
        return start
    i = start
    while i < len(s) and s[i] in _IDENT_CHARS:
        i += 1
    while i < len(s) and s[i] == ".":
        k = i + 1
        while k < len(s) and s[k] in _IDENT_CHARS:
            k += 1
        if k == i + 1:
            # A dangling dot ends the identifiers; whatever follows must then be a
            # separator, so `1.2.3-beta.` is rejected by the caller.
            return i
        i = k
    return i


def _scan_version(s: str, start: int) -> tuple[int, str, str, str, str] | None:
    """Read one constraint version: end offset, major, `.minor`, `.patch`, `-pre`."""
    i = start
    if i < len(s) and s[i] == "v":
        i += 1
    if i >= len(s) or s[i] not in _SEGMENT_CHARS:
        return None
    j = _scan_segment(s, i)
    major = s[i:j]
    i = j
    dotted = ["", ""]
    for k in range(2):
        if i < len(s) and s[i] == ".":
            if i + 1 >= len(s) or s[i + 1] not in _SEGMENT_CHARS:
                return None
            j = _scan_segment(s, i + 1)
            dotted[k] = s[i:j]
            i = j
    pre = ""
    if i < len(s) and s[i] == "-":
        j = _scan_identifiers(s, i + 1)
        if j == i + 1:
            return None
        pre = s[i:j]
        i = j
    if i < len(s) and s[i] == "+":
        j = _scan_identifiers(s, i + 1)
        if j == i + 1:
            return None
        i = j
    return i, major, dotted[0], dotted[1], pre


def _match_atom(s: str, start: int) -> tuple[int, _Atom] | None:
    i = _skip_ws(s, start)
    for op in _OPERATORS:
        if not s.startswith(op, i):
            continue
        j = _skip_ws(s, i + len(op))
        scanned = _scan_version(s, j)
        if scanned is not None:
            end, major, minor, patch, pre = scanned
            return end, _Atom(op, s[j:end], major, minor, patch, pre)
    return None


def _split_group(group: str) -> list[_Atom] | None:
    """Split one OR group into comparators; None when the group is malformed."""
    first = _match_atom(group, 0)
    if first is None:
        return None
    rest, atom = first
    atoms = [atom]
    while rest < len(group):
        q = _skip_ws(group, rest)
        if q == len(group):
            break
        if group[q] == ",":
            found = _match_atom(group, q + 1)
        elif q == rest:
            # Comparators need whitespace or a comma between them: `>1<2` is an error,
            # and so is `>=1.0 1.2 - 1.4.5` once the range rewrite has eaten the space.
            return None
        else:
            found = _match_atom(group, q)
        if found is None:
            return None
        rest, atom = found
        atoms.append(atom)
    return atoms


def _is_wildcard(segment: str) -> bool:
    return segment in ("x", "X", "*")


def _rewrite_ranges(text: str) -> str:
    # Masterminds replaces the first occurrence of each matched text rather than the
    # match's own span; the range regex also swallows the whitespace around the range.
    out = text
    for m in _RANGE.finditer(text):
        out = out.replace(m.group(0), f">= {m.group(1)}, <= {m.group(11)} ", 1)
    return out


@dataclass(frozen=True)
class _Comparator:
    op: str
    text: str
    con: Version
    dirty: bool
    minor_dirty: bool
    patch_dirty: bool

    @classmethod
    def from_atom(cls, atom: _Atom) -> _Comparator:
        dirty = minor_dirty = patch_dirty = False
        ver = atom.text
        # A wildcard or missing part turns the comparator into a range. Everything after
        # the first wildcard is ignored, so `x.5.7` means `*` and `1.x.3` means `1.x`.
        if _is_wildcard(atom.major):
            ver, dirty = f"0.0.0{atom.pre}", True
        elif atom.minor == "" or _is_wildcard(atom.minor[1:]):
            ver, dirty, minor_dirty = f"{atom.major}.0.0{atom.pre}", True, True
        elif atom.patch == "" or _is_wildcard(atom.patch[1:]):
            ver, dirty, patch_dirty = f"{atom.major}{atom.minor}.0{atom.pre}", True, True
        try:
            con = Version.parse(ver)
        except ValueError as exc:
            raise ValueError(f"improper constraint {atom.op + atom.text!r} ({exc})") from exc
        return cls(atom.op, atom.text, con, dirty, minor_dirty, patch_dirty)

    def check(self, v: Version, include_prerelease: bool) -> bool:
        # Prerelease admission is decided per AND group (v3.4.0+) and handed in here.
        if v.prerelease and not include_prerelease:
            return False
        op = self.op
        if op in ("", "="):
            return self._tilde(v) if self.dirty else v == self.con
        if op == "!=":
            return self._not_equal(v)
        if op == ">":
            return self._greater_than(v)
        if op == "<":
            return v < self.con
        if op in (">=", "=>"):
            return v >= self.con
        if op in ("<=", "=<"):
            return self._less_than_or_equal(v)
        if op in ("~", "~>"):
            return self._tilde(v)
        return self._caret(v)

    def _not_equal(self, v: Version) -> bool:
        con = self.con
        if self.dirty:
            if con.major != v.major:
                return True
            if con.minor != v.minor and not self.minor_dirty:
                return True
            if self.minor_dirty:
                return False
            if con.patch != v.patch and not self.patch_dirty:
                return True
            if self.patch_dirty:
                # Only a differing prerelease escapes `!=1.2.x` once inside 1.2.
                if v.prerelease or con.prerelease:
                    return _compare_prerelease(v.prerelease, con.prerelease) != 0
                return False
        # `!=*` lands here: it excludes exactly 0.0.0.
        return v != con

    def _greater_than(self, v: Version) -> bool:
        con = self.con
        if not self.dirty:
            return v > con
        if v.major != con.major:
            return v.major > con.major
        if self.minor_dirty:
            # `>11` means above the whole 11.x line, so 11.9.0 does not qualify.
            return False
        if self.patch_dirty:
            return v.minor > con.minor
        return v > con

    def _less_than_or_equal(self, v: Version) -> bool:
        con = self.con
        if not self.dirty:
            return v <= con
        # `<=2.x` takes in all of 2.x and `<=2.1` all of 2.1.x; prerelease and patch of
        # the bound are never compared. `<=*` thus only admits 0.0.z.
        if v.major > con.major:
            return False
        return not (v.major == con.major and v.minor > con.minor and not self.minor_dirty)

    def _tilde(self, v: Version) -> bool:
        con = self.con
        if v < con:
            return False
        if (con.major, con.minor, con.patch) == (0, 0, 0) and not (
            self.minor_dirty or self.patch_dirty
        ):
            return True
        if v.major != con.major:
            return False
        return v.minor == con.minor or self.minor_dirty

    def _caret(self, v: Version) -> bool:
        con = self.con
        if v < con:
            return False
        if con.major > 0 or self.minor_dirty:
            return v.major == con.major
        # Unlike `~*`, `^*` has no all-zero escape: it falls through to the 0.0.z rule
        # and admits only 0.0.0, whatever Masterminds' own doc comment claims.
        if v.major > 0:
            return False
        if con.minor > 0 or self.patch_dirty:
            return v.minor == con.minor
        if v.minor > 0:
            return False
        return v.patch == con.patch


@dataclass(frozen=True)
class Constraint:
    """A parsed `NewConstraint` expression: OR groups of AND-ed comparators."""

    original: str
    _groups: tuple[tuple[_Comparator, ...], ...] = field(repr=False)
    _group_has_prerelease: tuple[bool, ...] = field(repr=False)

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """Parse like Masterminds `NewConstraint`; raises ValueError when malformed.

        The empty string is rejected here, as by `NewConstraint`: Helm and Flux replace an
        empty chart version with `*` before parsing, which `matches` and `select` do too.
        """
        if len(text.encode()) > _MAX_CONSTRAINT_BYTES:
            raise ValueError(
                f"invalid version constraint: longer than {_MAX_CONSTRAINT_BYTES} bytes"
            )
        ors = _rewrite_ranges(text).split("||")
        if len(ors) > _MAX_CONSTRAINT_GROUPS:
            raise ValueError(
                f"invalid version constraint {text!r}: more than "
                f"{_MAX_CONSTRAINT_GROUPS} `||` groups"
            )
        groups: list[tuple[_Comparator, ...]] = []
        has_prerelease: list[bool] = []
        for group in ors:
            atoms = _split_group(group)
            if atoms is None:
                raise ValueError(
                    f"invalid version constraint {text!r}: improper constraint {group!r}"
                )
            try:
                comparators = tuple(_Comparator.from_atom(atom) for atom in atoms)
            except ValueError as exc:
                raise ValueError(f"invalid version constraint {text!r}: {exc}") from exc
            groups.append(comparators)
            has_prerelease.append(any(c.con.prerelease for c in comparators))
        return cls(text, tuple(groups), tuple(has_prerelease))

    def check(self, version: Version, include_prerelease: bool = False) -> bool:
        """`Constraints.Check`; `include_prerelease` is its `IncludePrerelease` field."""
        for group, has_prerelease in zip(self._groups, self._group_has_prerelease, strict=True):
            admit = include_prerelease or has_prerelease
            if all(c.check(version, admit) for c in group):
                return True
        return False

    def __str__(self) -> str:
        return " || ".join(" ".join(c.op + c.text for c in g) for g in self._groups)


def _effective_constraint(constraint: str) -> str:
    # Helm's index lookup and Flux's source-controller both ask for the latest stable
    # version when no version is given.
    return constraint if constraint else "*"


def matches(constraint: str, version: str) -> bool:
    """Whether a chart `version` satisfies a HelmRelease or dependency `version` field.

    An identical string wins before any parsing, as in Helm's and Flux's index lookups;
    otherwise the version is parsed loosely, like Helm does. Invalid input never matches.
    """
    if constraint and constraint == version:
        return True
    try:
        parsed = Constraint.parse(_effective_constraint(constraint))
        candidate = Version.parse(version)
    except ValueError:
        return False
    return parsed.check(candidate)


def select(constraint: str, versions: Iterable[str]) -> str | None:
    """The chart version Flux's source-controller picks from an index, or None.

    An identical string wins; otherwise the highest candidate that parses strictly and
    satisfies the constraint. Flux breaks ties between versions differing only in build
    metadata by the index's `created` time, which is not available here: the first wins.
    """
    candidates = list(versions)
    if constraint and constraint in candidates:
        return constraint
    try:
        parsed = Constraint.parse(_effective_constraint(constraint))
    except ValueError:
        return None
    best: tuple[Version, str] | None = None
    for text in candidates:
        v = parse_strict(text)
        if v is None or not parsed.check(v):
            continue
        if best is None or v > best[0]:
            best = (v, text)
    return best[1] if best is not None else None
