"""Masterminds/semver v3 (v3.4.0+) behaviour as Helm and Flux apply it to chart versions.

Most cases come from the semantics of Masterminds' own constraints_test.go and
version_test.go tables; the rest pin the Helm / Flux lookups built on top of them.
"""

from __future__ import annotations

import itertools

import pytest

from bot.analysis.semver import Constraint, Version, matches, parse_strict, select


def check(constraint: str, version: str, include_prerelease: bool = False) -> bool:
    return Constraint.parse(constraint).check(Version.parse(version), include_prerelease)


# --- Version parsing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fields", "canonical"),
    [
        ("1.2.3", (1, 2, 3, "", ""), "1.2.3"),
        ("v1.2.3", (1, 2, 3, "", ""), "1.2.3"),
        ("1.2", (1, 2, 0, "", ""), "1.2.0"),
        ("1", (1, 0, 0, "", ""), "1.0.0"),
        ("v1", (1, 0, 0, "", ""), "1.0.0"),
        ("1.2.3-beta.1", (1, 2, 3, "beta.1", ""), "1.2.3-beta.1"),
        ("1.2.3+build.5", (1, 2, 3, "", "build.5"), "1.2.3+build.5"),
        ("1.2.3-rc.1+build-7", (1, 2, 3, "rc.1", "build-7"), "1.2.3-rc.1+build-7"),
        ("1.2-1.4.5", (1, 2, 0, "1.4.5", ""), "1.2.0-1.4.5"),
        ("1-beta", (1, 0, 0, "beta", ""), "1.0.0-beta"),
        ("1.2.3--", (1, 2, 3, "-", ""), "1.2.3--"),
        # CoerceNewVersion (default since v3.4.0) accepts leading zeros in the numbers.
        ("01.02.03", (1, 2, 3, "", ""), "1.2.3"),
        ("2024.01.15", (2024, 1, 15, "", ""), "2024.1.15"),
        ("v2.3.5-20161202202307-sha.e8fc5e5", (2, 3, 5, "20161202202307-sha.e8fc5e5", ""), None),
        ("18446744073709551615.0.0", ((1 << 64) - 1, 0, 0, "", ""), None),
    ],
)
def test_version_parse_loose(
    text: str, fields: tuple[int, int, int, str, str], canonical: str | None
) -> None:
    v = Version.parse(text)
    assert (v.major, v.minor, v.patch, v.prerelease, v.build) == fields
    assert v.original == text
    if canonical is not None:
        assert str(v) == canonical


@pytest.mark.parametrize(
    "text",
    [
        "",
        "v",
        "V1.2.3",
        "vv1.2.3",
        " 1.2.3",
        "1.2.3 ",
        "1.2.3\n",
        "1.2.3.4",
        "1.2.",
        ".1.2",
        "1..2",
        "a.b.c",
        "1.2.3-",
        "1.2.3+",
        "1.2.3-beta..1",
        "1.2.3-beta.",
        "1.2.3+build..1",
        "1.2.3-01",
        "1.2.3-beta.007",
        "1.2.3-be_ta",
        "1.2.3+bu ild",
        "1.2.x",
        "*",
        "18446744073709551616.0.0",
        "1.18446744073709551616",
        "١.٢.٣",
    ],
)
def test_version_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        Version.parse(text)


def test_version_is_frozen() -> None:
    v = Version.parse("1.2.3")
    with pytest.raises(AttributeError):
        v.major = 2  # type: ignore[misc]


# --- Version ordering ----------------------------------------------------------------------

SPEC_ORDER = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1-0",
    "1.0.1",
    "1.2.0",
    "1.10.0",
    "2.0.0",
    "10.0.0",
]


@pytest.mark.parametrize(("lower", "higher"), list(itertools.combinations(SPEC_ORDER, 2)))
def test_version_precedence_follows_semver(lower: str, higher: str) -> None:
    lo, hi = Version.parse(lower), Version.parse(higher)
    assert lo < hi
    assert hi > lo
    assert lo != hi
    assert not hi <= lo


def test_sorting_uses_precedence_not_text() -> None:
    shuffled = ["1.10.0", "1.0.0-rc.1", "1.0.0", "1.0.0-beta.11", "1.0.0-beta.2", "1.2.0"]
    ordered = [str(v) for v in sorted(Version.parse(s) for s in shuffled)]
    assert ordered == ["1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.2.0", "1.10.0"]


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.0.0-2", "1.0.0-11"),  # numeric identifiers compare as numbers
        ("1.0.0-1", "1.0.0-a"),  # numeric sorts before alphanumeric
        ("1.0.0-999", "1.0.0-0a"),  # a digit-leading alphanumeric is still alphanumeric
        ("1.0.0-Z", "1.0.0-a"),  # alphanumerics compare in ASCII order
        ("1.0.0-BETA", "1.0.0-alpha"),
        ("1.0.0-a.b", "1.0.0-a-b"),  # identifiers split on '.', so "a" is compared with "a-b"
        ("1.0.0-alpha", "1.0.0-alpha.0"),  # shorter set first when the prefix is equal
        ("1.0.0-rc.1", "1.0.0-rc.1.1"),
        ("1.0.0-x.7.z.92", "1.0.0-x.7.z.93"),
        # Past uint64 a "number" fails Go's ParseUint and is treated as alphanumeric.
        ("1.0.0-18446744073709551615", "1.0.0-18446744073709551616"),
        ("1.0.0-99999999999999999999", "1.0.0-alpha"),
        ("0.0.0-0", "0.0.0"),
        ("1.2.3", "1.2.4-alpha"),
    ],
)
def test_prerelease_ordering(lower: str, higher: str) -> None:
    assert Version.parse(lower) < Version.parse(higher)
    assert Version.parse(higher) > Version.parse(lower)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1.2.3", "v1.2.3"),
        ("1.2.3+build.1", "1.2.3+build.2"),
        ("1.2.3+build", "1.2.3"),
        ("1.2", "1.2.0"),
        ("1", "1.0.0"),
        ("01.2.3", "1.2.3"),
        ("1.2.3-rc.1+a", "v1.2.3-rc.1+b"),
    ],
)
def test_version_equality_ignores_build_and_spelling(a: str, b: str) -> None:
    va, vb = Version.parse(a), Version.parse(b)
    assert va == vb
    assert not va < vb
    assert not vb < va
    assert hash(va) == hash(vb)
    assert len({va, vb}) == 1


@pytest.mark.parametrize(("a", "b"), [("1.2.3-rc.1", "1.2.3-rc.01a"), ("1.2.3-a", "1.2.3")])
def test_version_inequality(a: str, b: str) -> None:
    assert Version.parse(a) != Version.parse(b)


def test_version_compared_with_other_types() -> None:
    assert Version.parse("1.2.3") != "1.2.3"
    with pytest.raises(TypeError):
        _ = Version.parse("1.2.3") < "1.2.4"


# --- Flux's strict ParseVersion ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("1.2.3", "1.2.3"),
        ("v1.2.3", "1.2.3"),
        ("0.0.0", "0.0.0"),
        ("10.20.30", "10.20.30"),
        ("1.2.3-beta.1", "1.2.3-beta.1"),
        ("1.2.3-0a.1", "1.2.3-0a.1"),
        ("1.2.3+build.01", "1.2.3+build.01"),
        ("v1.2.3-rc.1+sha.e8fc5e5", "1.2.3-rc.1+sha.e8fc5e5"),
        ("1.2.3+meta-data", "1.2.3+meta-data"),
    ],
)
def test_parse_strict_accepts(text: str, canonical: str) -> None:
    v = parse_strict(text)
    assert v is not None
    assert str(v) == canonical
    assert v.original == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "v",
        "1",
        "1.2",
        "v1.2",
        "1.2.3.4",
        "01.2.3",
        "1.02.3",
        "1.2.03",
        "V1.2.3",
        "vv1.2.3",
        " 1.2.3",
        "1.2.3-",
        "1.2.3+",
        "1.2.3-01",
        "1.2.3-beta..1",
        "1.2.3+a+b",
        "1.2.x",
        "a.b.c",
        "18446744073709551616.0.0",
        "latest",
    ],
)
def test_parse_strict_rejects(text: str) -> None:
    assert parse_strict(text) is None


# --- Constraint grammar --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("constraint", "canonical"),
    [
        (">= 1.1", ">=1.1"),
        (">40.50.60, < 50.70", ">40.50.60 <50.70"),
        ("2.0", "2.0"),
        ("v2.3.5-20161202202307-sha.e8fc5e5", "v2.3.5-20161202202307-sha.e8fc5e5"),
        (">= 1.2.3 < 2.0 || => 3.0 < 4", ">=1.2.3 <2.0 || =>3.0 <4"),
        (">= 1.2.3, < 2.0 || => 3.0, < 4", ">=1.2.3 <2.0 || =>3.0 <4"),
        ("3 - 4 || => 3.0, < 4", ">=3 <=4 || =>3.0 <4"),
        ("12.3.34 ~1.2.3", "12.3.34 ~1.2.3"),
        ("1.0.0 - 2.0.0, <=2.0.0", ">=1.0.0 <=2.0.0 <=2.0.0"),
        ("2 - 3 4.0.0 - 5.1", ">=2 <=3 >=4.0.0 <=5.1"),
        ("  ~>  1.2  ", "~>1.2"),
        (">=1.0,<2.0", ">=1.0 <2.0"),
        (">=1.0 ,<2.0", ">=1.0 <2.0"),
        ("\t>=1.0\n<2.0\r", ">=1.0 <2.0"),
        ("*", "*"),
        ("x", "x"),
        ("X", "X"),
        ("~*", "~*"),
        ("*-0", "*-0"),
        ("1.2.3+build", "1.2.3+build"),
        ("=<1.2", "=<1.2"),
        ("=>1.2", "=>1.2"),
        ("!=1.2.3", "!=1.2.3"),
        ("^v1.2", "^v1.2"),
        ("1.2-1.4.5", "1.2-1.4.5"),
        ("01.2", "01.2"),
    ],
)
def test_constraint_parses(constraint: str, canonical: str) -> None:
    c = Constraint.parse(constraint)
    assert c.original == constraint
    assert str(c) == canonical


@pytest.mark.parametrize(
    "constraint",
    [
        # NewConstraint rejects the empty string; Helm and Flux substitute "*" before it.
        "",
        "   ",
        "foo",
        ">= bar",
        "BAR >= 1.2.3",
        "latest",
        "V1.2.3",
        # Four numeric parts (Masterminds issue 185).
        "12.3.4.1234",
        "12.23.4.1234",
        "12.3.34~ 1.2.3",
        # Comparators must be separated by whitespace or a comma.
        ">1<2",
        ">=1.0<2.0",
        "1.2.3,",
        ",1.2.3",
        "1.2.3,,1.2.4",
        # Empty OR groups.
        "1.2.3 ||",
        "|| 1.2.3",
        "||",
        "1.2.3 |||| 1.2.4",
        # A single pipe is a "segment character" of the grammar that then fails to parse.
        "1.2.3 | 1.2.4",
        "1|2",
        # Half a hyphen range.
        "1.2 -1.4.5",
        "1.2- 1.4.5",
        "- 1.4.5",
        # The range rewrite swallows the space before it, gluing it to the comparator.
        ">=1.0 1.2 - 1.4.5",
        # The built version must still be valid.
        "1.2.3-01",
        "1.2.3x",
        "1x",
        ">=1.2.",
        "1.2.3-beta.",
        "1.2.3+",
        "> =1.2",
        ">==1.2",
        "~~1.2",
        "^ ^1.2",
        "1.2.3 !",
        "18446744073709551616",
    ],
)
def test_invalid_constraints_raise(constraint: str) -> None:
    with pytest.raises(ValueError, match="invalid version constraint"):
        Constraint.parse(constraint)


def test_invalid_constraint_message_names_the_input() -> None:
    with pytest.raises(ValueError) as excinfo:
        Constraint.parse(">= 1.2, foo")
    assert "'>= 1.2, foo'" in str(excinfo.value)
    assert "improper constraint" in str(excinfo.value)


def test_constraint_length_and_group_limits() -> None:
    at_limit = " || ".join(["1.2.3"] * 32)
    assert Constraint.parse(at_limit).check(Version.parse("1.2.3"))
    with pytest.raises(ValueError, match="groups"):
        Constraint.parse(" || ".join(["1.2.3"] * 33))
    assert Constraint.parse(">=1.0.0" + " " * 505).check(Version.parse("1.0.0"))
    with pytest.raises(ValueError, match="512"):
        Constraint.parse(">=1.0.0" + " " * 506)


# --- Constraint semantics ------------------------------------------------------------------

EQUALITY_AND_WILDCARDS = [
    # A full version with `=` or no operator is an equality (build metadata ignored).
    ("=2.0.0", "1.2.3", False),
    ("=2.0.0", "2.0.0", True),
    ("2.0.0", "2.0.1", False),
    ("1.2.3", "1.2.3", True),
    ("1.2.3", "1.2.4", False),
    ("1.2.3", "v1.2.3", True),
    ("v1.2.3", "1.2.3", True),
    ("1.2.3+build.1", "1.2.3+build.2", True),
    ("1.2.3", "1.2.3-rc.1", False),
    ("1.2.3-rc.1", "1.2.3-rc.1", True),
    ("1.2.3-rc.1", "1.2.3-rc.2", False),
    ("=0", "1", False),
    # A partial or wildcard version with `=` or no operator is a tilde range.
    ("=2.0", "1.2.3", False),
    ("=2.0", "2.0.0", True),
    ("=2.0", "2.0.1", True),
    ("= 2.0", "2.0.0", True),
    ("4.1", "4.1.0", True),
    ("1.2", "1.2.9", True),
    ("1.2", "1.3.0", False),
    ("1.2", "1.1.9", False),
    ("1", "1.0.0", True),
    ("1", "1.9.9", True),
    ("1", "2.0.0", False),
    ("1", "0.9.9", False),
    ("2", "1", False),
    ("2", "3.4.5", False),
    ("2", "2.1.1", True),
    ("1.2.x", "1.2.0", True),
    ("1.2.x", "1.2.99", True),
    ("1.2.x", "1.3.0", False),
    ("1.2.X", "1.2.5", True),
    ("1.2.*", "1.2.5", True),
    ("2.1.*", "2.2.1", False),
    ("2.*", "2.1.1", True),
    ("2.*", "3.4.5", False),
    ("1.x", "1.4", True),
    ("1.x.x", "1.4.2", True),
    ("1.x", "2.0.0", False),
    ("0.x.x", "1.2.3", False),
    ("0.0.x", "1.2.3", False),
    ("0.0.x", "0.0.7", True),
    ("0.0.0", "1.2.3", False),
    # `*`, `x` and `X` mean >=0.0.0 (release versions only).
    ("*", "0.0.0", True),
    ("*", "1", True),
    ("*", "4.5.6", True),
    ("x", "99.0.0", True),
    ("X", "0.1.0", True),
    ("*", "1.2.3-alpha.1", False),
    ("*-0", "1.2.3-alpha.1", True),
    # Only the first wildcard counts; the parts after it are ignored.
    ("x.5.7", "3.0.0", True),
    ("1.x.3", "1.9.0", True),
    ("1.x.3", "2.0.0", False),
]

NOT_EQUAL = [
    ("!=4.1.0", "4.1.0", False),
    ("!=4.1.0", "4.1.1", True),
    ("!=4.1.0", "v4.1.0+build", False),
    ("!=4.1", "4.1.0", False),
    ("!=4.1", "4.1.1", False),
    ("!=4.1", "5.1.0", True),
    ("!=4.1", "5.1.0-alpha.1", False),
    ("!=4.1.0", "5.1.0-alpha.1", False),
    ("!=4.1-alpha", "4.1.0", True),
    ("!=4.1-alpha", "4.1.0-alpha", False),
    ("!=4.1-alpha", "4.1.1-alpha", False),
    ("!=4.x", "5.1.0", True),
    ("!=4.x", "4.1.0", False),
    ("!=4.x", "3.9.9", True),
    ("!=1.2.x", "1.2.0", False),
    ("!=1.2.x", "1.2.7", False),
    ("!=1.2.x", "1.3.0", True),
    ("!=1.2.x", "1.1.9", True),
    ("!=4.1.x", "4.2.0", True),
    ("!=4.2.x", "4.2.3", False),
    (">=1.0, !=1.2.x, <2", "1.2.5", False),
    (">=1.0, !=1.2.x, <2", "1.3.0", True),
    # `!=*` reaches the plain equality test against 0.0.0.
    ("!=*", "0.0.0", False),
    ("!=*", "0.0.1", True),
    ("!=*", "1.0.0", True),
]

GREATER_THAN = [
    (">1.1", "4.1.0", True),
    (">1.1", "1.1.0", False),
    (">1.1", "1.1.9", False),
    (">1.1", "1.2.0", True),
    (">1.2", "1.3.0", True),
    (">1.2", "1.2.99", False),
    (">1.2", "2.0.0", True),
    (">11", "11.1.0", False),
    (">11", "11.99.99", False),
    (">11", "12.0.0", True),
    (">11", "10.0.0", False),
    (">11.1", "11.1.0", False),
    (">11.1", "11.1.1", False),
    (">11.1", "11.2.1", True),
    (">1.x", "1.9.0", False),
    (">1.x", "2.0.0", True),
    (">0", "0", False),
    (">0", "1", True),
    (">1.2.3", "1.2.4", True),
    (">1.2.3", "1.2.3", False),
    (">1.2.3", "v1.2.3+build", False),
    (">  1.2.3", "1.2.4", True),
    (">v1.2.3", "1.2.4", True),
    (">1.2.3-alpha.1", "1.2.3-alpha.2", True),
    (">1.2.3-alpha.1", "1.3.3-alpha.2", True),
    (">1.2.3-alpha.1", "1.2.3", True),
    (">1.2.3-alpha.1", "1.2.3-alpha.0", False),
    (">0", "0.0.1-alpha", False),
    (">0.0", "0.0.1-alpha", False),
    (">0-0", "0.0.1-alpha", False),
    (">0.0-0", "0.0.1-alpha", False),
    (">0", "0.0.0-alpha", False),
    (">0-0", "0.0.0-alpha", False),
    (">0.0.0-0", "0.0.0-alpha", True),
]

GREATER_THAN_OR_EQUAL = [
    (">=11", "11.1.2", True),
    (">=11.1", "11.1.2", True),
    (">=11.1", "11.0.2", False),
    (">=1.1", "4.1.0", True),
    (">=1.1", "1.1.0", True),
    (">=1.1", "0.0.9", False),
    (">=1.2", "1.2.0", True),
    (">=1.2", "1.1.99", False),
    (">= 1.2", "1.3.0", True),
    ("=>1.2", "1.2.0", True),
    ("=> 1.2", "1.1.0", False),
    (">=v1.2.3", "1.2.3", True),
    (">=1.1", "4.1.0-beta", False),
    (">=0", "0", True),
    (">=0", "0.0.1-alpha", False),
    (">=0.0", "0.0.1-alpha", False),
    (">=0-0", "0.0.1-alpha", True),
    (">=0.0-0", "0.0.1-alpha", True),
    (">=0", "0.0.0-alpha", False),
    (">=0-0", "0.0.0-alpha", True),
    (">=0.0.0-0", "0.0.0-alpha", True),
    (">=0.0.0-0", "1.2.3", True),
    (">=0.0.0-0", "3.4.5-beta.1", True),
]

LESS_THAN = [
    ("<11", "0.1.0", True),
    ("<11", "11.1.0", False),
    ("<11", "10.99.99", True),
    ("<1.1", "0.1.0", True),
    ("<1.1", "1.1.0", False),
    ("<1.1", "1.1.1", False),
    ("<1.2", "1.1.99", True),
    ("<1.2", "1.2.0", False),
    ("<1.x", "1.1.1", False),
    ("<1.x", "0.1.1", True),
    ("<1.x", "2.0.0", False),
    ("<2.x", "1.1.1", True),
    ("<1.1.x", "1.2.1", False),
    ("<1.1.x", "1.1.500", False),
    ("<1.1.x", "1.0.500", True),
    ("<1.2.x", "1.1.1", True),
    ("<1.2.3", "1.2.2", True),
    ("<1.2.3", "1.2.3", False),
    ("< 1.4.1", "1.4.0", True),
    ("<1.2.3", "1.2.3-rc.1", False),
    ("<1.2.3-rc.2", "1.2.3-rc.1", True),
    ("<0", "0.0.0-alpha", False),
    ("<0-z", "0.0.0-alpha", True),
]

LESS_THAN_OR_EQUAL = [
    ("<=11", "1.2.3", True),
    ("<=11", "12.2.3", False),
    ("<=11", "11.2.3", True),
    ("<=1.1", "1.2.3", False),
    ("<=1.1", "0.1.0", True),
    ("<=1.1", "1.1.0", True),
    ("<=1.1", "1.1.1", True),
    ("<=2.1", "2.1.99", True),
    ("<=2.1", "2.2.0", False),
    ("<=2.x", "2.99.99", True),
    ("<=2.x", "3.0.0", False),
    ("<=2.x", "3.1.0", False),
    ("<=1.x", "1.1.0", True),
    ("<=1.1.x", "1.2.500", False),
    ("<=1.1.x", "1.1.500", True),
    ("<=4.5", "3.4.0", True),
    ("<=4.5", "3.7.0", True),
    ("<=4.5", "4.6.3", False),
    ("=<1.2", "1.2.7", True),
    ("=< 1.2", "1.3.0", False),
    ("<=1.2.3", "1.2.3", True),
    ("<=1.2.3", "1.2.4", False),
    ("<=1.1", "0.1.0-alpha", False),
    ("<=1.1-a", "0.1.0-alpha", True),
    # `<=*` compares major and minor against 0.0: only 0.0.z passes.
    ("<=*", "0.0.9", True),
    ("<=*", "0.1.0", False),
    ("<=*", "1.0.0", False),
]

TILDE = [
    ("~1.2.3", "1.2.3", True),
    ("~1.2.3", "1.2.4", True),
    ("~1.2.3", "1.2.99", True),
    ("~1.2.3", "1.2.2", False),
    ("~1.2.3", "1.3.0", False),
    ("~1.2.3", "1.3.4", False),
    ("~1.2.3", "2.0.0", False),
    ("~>1.2.3", "1.2.5", True),
    ("~>1.2.3", "1.3.0", False),
    ("~ 1.2.3", "1.2.5", True),
    ("~> 1.2.3", "1.2.5", True),
    ("~v1.2.3", "1.2.5", True),
    ("~1.2", "1.2.0", True),
    ("~1.2", "1.2.4", True),
    ("~1.2", "1.3.0", False),
    ("~1.2", "1.1.9", False),
    ("~>1.2", "1.2.9", True),
    ("~1.2.x", "1.2.9", True),
    ("~1.2.x", "1.3.0", False),
    ("~1", "1.0.0", True),
    ("~1", "1.2.4", True),
    ("~1", "1.4", True),
    ("~1", "2.0.0", False),
    ("~1", "0.9.0", False),
    ("~1.x", "1.3.5", True),
    ("~1.x", "2.1.1", False),
    ("~>1", "1.9.9", True),
    ("~>1.x", "2.0.0", False),
    ("~0.2.3", "0.2.5", True),
    ("~0.2.3", "0.3.5", False),
    ("~1.1", "1.2.3", False),
    ("~1.3", "2.4.5", False),
    ("~*", "2.1.1", True),
    ("~0.0.0", "1.2.3", True),
    ("~1.1", "1.1.1-alpha", False),
    ("~1.1-alpha", "1.1.1-beta", True),
    ("~1.1.1-beta", "1.1.1-alpha", False),
    ("~1.1.1-beta", "1.1.1", True),
    ("~1.2.3-beta.2", "1.2.3-beta.4", True),
    ("~1.2.3-beta.2", "1.2.4-beta.2", True),
    ("~1.2.3-beta.2", "1.3.4-beta.2", False),
    ("~1.3.6-alpha", "1.3.5-beta", False),
    ("~1.3.5-alpha", "1.3.5-beta", True),
    ("~1.3.5-beta", "1.3.5-alpha", False),
]

CARET = [
    ("^1.2.3", "1.2.3", True),
    ("^1.2.3", "1.8.9", True),
    ("^1.2.3", "1.99.0", True),
    ("^1.2.3", "2.0.0", False),
    ("^1.2.3", "2.8.9", False),
    ("^1.2.3", "1.2.1", False),
    ("^1.1.0", "2.1.0", False),
    ("^1.12.7", "1.6.6", False),
    ("^1.2", "1.8.9", True),
    ("^1.2", "1.1.0", False),
    ("^1.2", "2.8.9", False),
    ("^1", "1.8.9", True),
    ("^1", "2.8.9", False),
    ("^1.x", "1.0.0", True),
    ("^1.x", "1.99.99", True),
    ("^1.x", "2.0.0", False),
    ("^1.x", "0.9.9", False),
    ("^2.x", "1.1.1", False),
    ("^1.2.x", "1.9.0", True),
    ("^v1.2.3", "1.5.0", True),
    ("^ 1.2.3", "1.5.0", True),
    ("^0.2.3", "0.2.3", True),
    ("^0.2.3", "0.2.5", True),
    ("^0.2.3", "0.2.2", False),
    ("^0.2.3", "0.3.0", False),
    ("^0.2.3", "0.5.6", False),
    ("^0.2.3", "1.0.0", False),
    ("^0.2", "0.2.5", True),
    ("^0.2", "0.3.0", False),
    ("^0.2", "0.1.1", False),
    ("^0.0.3", "0.0.3", True),
    ("^0.0.3", "0.0.4", False),
    ("^0.0.3", "0.0.2", False),
    ("^0.0.3", "0.1.1", False),
    ("^0.0.1", "0.0.1", True),
    ("^0.0.1", "0.3.1", False),
    ("^0.0", "0.0.0", True),
    ("^0.0", "0.0.3", True),
    ("^0.0", "0.1.0", False),
    ("^0.0", "0.1.4", False),
    ("^0.0", "1.0.4", False),
    ("^0", "0.0.0", True),
    ("^0", "0.2.3", True),
    ("^0", "0.99.99", True),
    ("^0", "1.0.0", False),
    ("^0", "1.1.4", False),
    ("^0.0.0", "1.2.3", False),
    ("^0.0.0", "0.0.0", True),
    # `^*` has no "anything goes" case (unlike `~*`): it behaves as `^0.0.0`.
    ("^*", "0.0.0", True),
    ("^*", "0.0.1", False),
    ("^*", "1.2.3", False),
    ("^1.2.0", "1.2.1-alpha.1", False),
    ("^1.2.0-alpha.0", "1.2.1-alpha.1", True),
    ("^1.2.0-alpha.0", "1.2.1-alpha.0", True),
    ("^1.2.0-alpha.2", "1.2.0-alpha.1", False),
    ("^1.x", "1.1.1-beta1", False),
    ("^1.1.2-alpha", "1.2.1-beta1", True),
    ("^1.2.x-alpha", "1.1.1-beta1", False),
    ("^1.1", "1.1.1-alpha", False),
    ("^1.1.1-alpha", "1.1.1-beta", True),
    ("^1.1.1-beta", "1.1.1-alpha", False),
    ("^0.2.3-beta.2", "0.2.3-beta.4", True),
    ("^0.2.3-beta.2", "0.2.4-beta.2", True),
    ("^0.2.3-beta.2", "0.3.4-beta.2", False),
    ("^0.2.3-beta.2", "0.2.3-beta.2", True),
]

HYPHEN_RANGES = [
    ("1.2 - 1.4.5", "1.2.0", True),
    ("1.2 - 1.4.5", "1.3.0", True),
    ("1.2 - 1.4.5", "1.4.5", True),
    ("1.2 - 1.4.5", "1.4.6", False),
    ("1.2 - 1.4.5", "1.1.9", False),
    ("1.2.3 - 2.3", "1.2.3", True),
    ("1.2.3 - 2.3", "2.3.9", True),
    ("1.2.3 - 2.3", "2.4.0", False),
    ("1.2.3 - 2.3", "1.2.2", False),
    ("1.1 - 2", "1.1.1", True),
    ("1.1 - 2", "2.9.9", True),
    ("1.1 - 2", "3.0.0", False),
    ("1.5.0 - 4.5", "3.7.0", True),
    ("v1.0.0 - v2.0.0", "2.0.0", True),
    ("1.0.0   -   2.0.0", "1.5.0", True),
    ("1.0.0\t-\t2.0.0", "1.5.0", True),
    ("1.0.0 - 2.0.0 <=2.0.0", "1.5.0", True),
    ("1.0.0 - 2.0.0, <=2.0.0", "1.5.0", True),
    ("1.0.0 - 2.0.0, !=1.5.0", "1.5.0", False),
    ("2 - 3 || 5 - 6", "5.5.0", True),
    ("2 - 3 || 5 - 6", "4.0.0", False),
    (">=1.0, 1.2 - 1.4.5", "1.3.0", True),
    ("1.2 - 1.4.5", "1.3.0-beta", False),
    # Without spaces around the hyphen it is not a range at all: `1.2-1.4.5` is the
    # partial version 1.2 with prerelease 1.4.5, i.e. a tilde range starting at
    # 1.2.0-1.4.5 that, naming a prerelease, also admits prereleases.
    ("1.2-1.4.5", "1.3.0", False),
    ("1.2-1.4.5", "1.4.5", False),
    ("1.2-1.4.5", "1.2.0", True),
    ("1.2-1.4.5", "1.2.9", True),
    ("1.2-1.4.5", "1.2.0-1.4.5", True),
    ("1.2-1.4.5", "1.2.0-1.4.4", False),
    ("1.2-1.4.5", "1.2.5-rc.1", True),
    ("1.1-3", "4.3.2", False),
    ("1.1-3", "1.1.5", True),
    # A full version glued to a hyphen is an exact prerelease.
    ("1.2.3-1.4.5", "1.2.3-1.4.5", True),
    ("1.2.3-1.4.5", "1.3.0", False),
]

AND_OR = [
    (">1.1, <2", "1.1.1", False),
    (">1.1, <2", "1.2.1", True),
    (">1.1, <3", "4.3.2", False),
    (">=1.1, <2, !=1.2.3", "1.2.3", False),
    (">=1.1, <2, !=1.2.3", "1.2.4", True),
    (">1.1 <2", "1.1.1", False),
    (">1.1 <2", "1.2.1", True),
    (">1.1    <3", "4.3.2", False),
    (">=1.1    <2    !=1.2.3", "1.2.3", False),
    (">=1.1, <2, !=1.2.3 || > 3", "4.1.2", True),
    (">=1.1, <2, !=1.2.3 || > 3", "3.1.2", False),
    (">=1.1, <2, !=1.2.3 || >= 3", "3.0.0", True),
    (">=1.1, <2, !=1.2.3 || > 3", "3.0.0", False),
    (">=1.1, <2, !=1.2.3 || > 3", "1.2.3", False),
    (">=1.1 <2 !=1.2.3 || > 3", "4.1.2", True),
    (">=1.1 <2 !=1.2.3 || > 3", "1.5.0", True),
    ("> 1.1, <     2", "1.1.1", False),
    (">   1.1, <2", "1.2.1", True),
    (">= 1.1 <2 != 1.2.3 || >= 3", "3.0.0", True),
    (">=1.0,<2.0", "1.5.0", True),
    (">=1.0 ,<2.0", "2.0.0", False),
    ("1.2.3 || 1.2.5", "1.2.5", True),
    ("1.2.3 || 1.2.5", "1.2.4", False),
    ("^1.0 || ^3.0", "3.4.0", True),
    ("^1.0 || ^3.0", "2.4.0", False),
    ("1 2", "1.5.0", False),
    ("12.3.34 ~1.2.3", "12.3.34", False),
]

PRERELEASE_GROUPS = [
    # A prerelease version only passes an AND group that names a prerelease somewhere
    # (v3.4.0: one comparator is enough, and it unlocks the whole group).
    (">=1.0.0-0 <2.0.0", "1.5.0-beta", True),
    (">=1.0.0-0, <2.0.0", "2.0.0-beta", True),
    (">=1.0.0-0 <2.0.0", "2.0.0", False),
    (">= 1.0.0-0  <= 2.0.0", "1.0.1-beta", True),
    (">1.0.0-beta.1 < 2", "1.5.0-rc.1", True),
    (">= 1.0.0  <= 2.0.0-beta", "1.0.1-beta", True),
    (">= 1.0.0  <= 2.0.0-beta", "1.0.1", True),
    (">= 1.0.0  <= 2.0.0-beta", "3.0.0", False),
    (">= 1.0.0  <= 2.0.0-beta || > 3", "1.0.1-beta", True),
    (">= 1.0.0  <= 2.0.0-beta != 1.0.1 || > 3", "1.0.1-beta", True),
    (">= 1.0.0  <= 2.0.0-beta != 1.0.1-beta || > 3", "1.0.1-beta", False),
    # ...and it does not carry over to the other OR groups.
    (">= 1.0.0  <= 2.0.0-beta || > 3", "3.0.1-beta", False),
    (">=1.0.0-0 <2.0.0 || >3", "3.5.0-beta", False),
    (">3 || >=1.0.0-0 <2.0.0", "1.5.0-beta", True),
    # No prerelease anywhere in the group: prereleases never match.
    (">=1.0.0 <2.0.0", "1.5.0-beta", False),
    (">=1.1", "4.1.0-beta", False),
    ("~1", "1.3.5-beta", False),
    ("~1.x", "1.3.5-beta", False),
    ("= 2.0", "2.0.1-beta", False),
    # Helm's chart best practices: `~1.2.3` skips 1.2.3-1, `~1.2.3-0` takes it.
    ("~1.2.3", "1.2.3-1", False),
    ("~1.2.3-0", "1.2.3-1", True),
    ("~1.2.3-0", "1.2.3", True),
    ("~1.2.3-0", "1.2.9-alpha", True),
    ("~1.2.3-0", "1.3.0-alpha", False),
    # Helm's `--devel` range.
    (">0.0.0-0", "0.0.1-alpha", True),
    (">0.0.0-0", "1.0.0", True),
    (">0.0.0-0", "5.0.0-rc.1", True),
    (">0.0.0-0", "0.0.0-0", False),
]

ALL_CASES = (
    EQUALITY_AND_WILDCARDS
    + NOT_EQUAL
    + GREATER_THAN
    + GREATER_THAN_OR_EQUAL
    + LESS_THAN
    + LESS_THAN_OR_EQUAL
    + TILDE
    + CARET
    + HYPHEN_RANGES
    + AND_OR
    + PRERELEASE_GROUPS
)


@pytest.mark.parametrize(("constraint", "version", "expected"), ALL_CASES)
def test_constraint_check(constraint: str, version: str, expected: bool) -> None:
    assert check(constraint, version) is expected


@pytest.mark.parametrize(
    ("constraint", "version", "expected"),
    [
        # Prereleases that only IncludePrerelease lets through.
        (">=1.1", "4.1.0-beta", True),
        (">1.1", "4.1.0-beta", True),
        ("<=1.1", "0.1.0-alpha", True),
        ("<1.1", "0.1.0-alpha", True),
        ("^1.x", "1.1.1-beta1", True),
        ("^1.1", "1.1.1-alpha", True),
        ("~1.1", "1.1.1-alpha", True),
        ("~1", "1.3.5-beta", True),
        ("*", "1.2.3-alpha", True),
        ("= 2.0", "2.0.1-beta", True),
        (">=1.0.0 <2.0.0 || >3", "4.5.0-beta", True),
        (">=1.0.0 <2.0.0 || >3", "3.5.0-beta", False),
        # Ranges still apply in prerelease order.
        ("> 1.2.3", "1.2.3-beta.1", False),
        (">= 1.2.3", "1.2.3-beta.1", False),
        ("< 1.2.3", "1.2.4-beta.1", False),
        ("<= 1.2.3", "1.2.4-beta.1", False),
        ("~1.2.3", "1.2.3-1", False),
        ("^1.x", "2.0.0-beta", False),
        # `!=1.2.x` compares a candidate's prerelease with the bound's (none): it differs.
        ("!=1.2.x", "1.2.5-beta", True),
        ("!=1.2.x", "1.2.5", False),
        ("1.2.3", "1.2.3", True),
        ("<=2.x", "3.0.0", False),
    ],
)
def test_constraint_check_include_prerelease(constraint: str, version: str, expected: bool) -> None:
    assert check(constraint, version, include_prerelease=True) is expected


def test_include_prerelease_defaults_to_false() -> None:
    c = Constraint.parse(">=1.0.0")
    beta = Version.parse("1.5.0-beta")
    assert c.check(beta) is False
    assert c.check(beta, include_prerelease=True) is True


# --- Helm / Flux lookups -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("constraint", "version", "expected"),
    [
        # An identical string wins before anything is parsed.
        ("1.2.3.4", "1.2.3.4", True),
        ("latest", "latest", True),
        ("1.2.3.4", "1.2.3.5", False),
        ("latest", "1.0.0", False),
        # Otherwise the constraint decides.
        ("1.2.3", "1.2.3", True),
        ("1.2.3", "v1.2.3", True),
        ("v1.2.3", "1.2.3", True),
        ("1.2.3", "1.2.3+build.7", True),
        ("~1.2.3", "1.2.9", True),
        ("~1.2.3", "1.3.0", False),
        ("~1.2.3", "1.2.3-1", False),
        ("~1.2.3-0", "1.2.3-1", True),
        (">=1.0.0-0 <2.0.0", "1.5.0-beta", True),
        ("1.2 - 1.4.5", "1.3.0", True),
        ("1.2-1.4.5", "1.3.0", False),
        # Helm parses chart versions loosely.
        ("^1.2", "1.3", True),
        # No version means the latest stable one, as in Helm and Flux.
        ("", "1.2.3", True),
        ("", "1.2.3-rc.1", False),
        ("*", "1.2.3-rc.1", False),
        ("", "", False),
        # Invalid input never matches.
        (">= bar", "1.2.3", False),
        ("   ", "1.2.3", False),
        (">=1.0 1.2 - 1.4.5", "1.3.0", False),
        ("^1.0", "not-a-version", False),
        ("^1.0", "", False),
        ("^1.0", "1.2.3.4", False),
    ],
)
def test_matches(constraint: str, version: str, expected: bool) -> None:
    assert matches(constraint, version) is expected


INDEX = ["2.0.0", "1.10.0", "1.9.9", "1.2.3", "1.0.0", "0.5.0", "2.1.0-rc.1", "1.11.0-beta.2"]


@pytest.mark.parametrize(
    ("constraint", "versions", "expected"),
    [
        # The highest satisfying version wins, by precedence not by text.
        ("^1.0.0", INDEX, "1.10.0"),
        ("~1.9", INDEX, "1.9.9"),
        (">=1.0.0 <1.5.0", INDEX, "1.2.3"),
        ("1.x || 0.x", INDEX, "1.10.0"),
        ("*", INDEX, "2.0.0"),
        ("", INDEX, "2.0.0"),
        ("x", INDEX, "2.0.0"),
        # Prereleases need the constraint to ask for them.
        (">=0.0.0-0", INDEX, "2.1.0-rc.1"),
        (">0.0.0-0", INDEX, "2.1.0-rc.1"),
        ("^1.0.0-0", INDEX, "1.11.0-beta.2"),
        ("~1.2.3-0", ["1.2.3", "1.2.4-rc.1", "1.2.4-beta.3"], "1.2.4-rc.1"),
        # An identical string is taken even when the constraint would pick another one.
        ("1.9.9", INDEX, "1.9.9"),
        ("2.1.0-rc.1", INDEX, "2.1.0-rc.1"),
        ("v1.2.3", ["1.2.3", "v1.2.3"], "v1.2.3"),
        ("1.2.3", ["v1.2.3", "1.2.3"], "1.2.3"),
        ("1.2", ["1.2", "1.2.9"], "1.2"),
        ("1.2", ["1.2.0", "1.2.9"], "1.2.9"),
        ("1.2.3.4", ["1.2.3.4", "1.2.3"], "1.2.3.4"),
        # Without an identical string, equal versions keep the first candidate.
        ("1.2.3", ["v1.2.3", "1.2.3+build.1"], "v1.2.3"),
        # Only strictly valid versions are candidates.
        (">=1.0.0", ["1.2", "1.1.0"], "1.1.0"),
        (">=1.0.0", ["01.5.0", "1.1.0"], "1.1.0"),
        (">=1.0.0", ["v2.0.0", "1.1.0"], "v2.0.0"),
        ("^1", ["1.5", "1", "1.0"], None),
        # Nothing satisfies, nothing to choose from, or the constraint is invalid.
        ("^3.0.0", INDEX, None),
        ("~1.2.3", ["1.2.3-1", "1.3.0"], None),
        ("^1.0.0", [], None),
        (">= bar", INDEX, None),
        (">=1.0 1.2 - 1.4.5", INDEX, None),
    ],
)
def test_select(constraint: str, versions: list[str], expected: str | None) -> None:
    assert select(constraint, versions) == expected


def test_select_accepts_any_iterable() -> None:
    assert select("^1.0.0", (v for v in INDEX)) == "1.10.0"
    assert select("1.9.9", iter(INDEX)) == "1.9.9"
