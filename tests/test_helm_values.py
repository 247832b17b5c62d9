"""A HelmRelease's values, composed as helm-controller composes them.

The expectations are Flux's and Helm's documented behaviour (fluxcd/pkg chartutil's
`ChartValuesFromReferences` and `ReplacePathValue`, source-controller's `valuesFiles`,
go-yaml v2 through sigs.k8s.io/yaml); where the Helm SDK is installed, the YAML reader and
the `--set` parser are also compared with Helm's own on generated input.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.analysis.helmvalues import (
    ABSENT,
    Found,
    MergedValues,
    Unknown,
    ValuesError,
    ValuesFiles,
    ValuesProblem,
    ValuesReference,
    ValuesUnknown,
    chart_values_from_references,
    load_values,
    merge_values_files,
    values_source_of,
)
from bot.analysis.strvals import StrvalsError, parse_into, parse_into_string
from tests.helm_support import requires_helm


def _lookup(sources: dict[tuple[str, str], Any]):
    def lookup(kind: str, namespace: str, name: str) -> Any:
        assert namespace == "apps"
        return sources.get((kind, name), ABSENT)

    return lookup


def _merge(values: dict[str, Any] | None, refs: list[dict[str, Any]], sources) -> Any:
    return chart_values_from_references(
        "apps", values, [ValuesReference.from_spec(r) for r in refs], _lookup(sources)
    )


def _cm(**data: str) -> Found:
    return Found({k: v.encode() for k, v in data.items()}, "apps/values.yaml")


# -- YAML as helm-controller reads it -------------------------------------------------


def test_values_yaml_is_read_as_yaml_1_1_the_way_go_yaml_v2_reads_it() -> None:
    values = load_values(
        "a: yes\nb: y\nc: on\nd: off\nmode: 0755\nhex: 0x1F\nbig: 1_000\n"
        "odd: 08\nday: 2001-12-14\nhalf: .5\nnothing: ~\nempty:\nplus: +5\n"
    )
    assert values == {
        "a": True,
        "b": True,  # PyYAML alone reads `y` as a string
        "c": True,
        "d": False,
        "mode": 493,  # octal
        "hex": 31,
        "big": 1000,
        "odd": 8.0,  # not octal: go-yaml falls back to a float
        "day": "2001-12-14",  # timestamps stay strings
        "half": 0.5,
        "nothing": None,
        "empty": None,
        "plus": 5,
    }


def test_keys_become_strings_and_stay_distinct() -> None:
    assert load_values("1: a\ntrue: b\n1.5: c\n1000000.0: d\nn: e\n") == {
        "1": "a",
        "true": "b",
        "1.5": "c",
        "1e+06": "d",
        "false": "e",  # `n` is a boolean key in YAML 1.1
    }


def test_only_the_first_document_of_a_values_file_counts() -> None:
    assert load_values("a: 1\n---\nb: 2\n") == {"a": 1}
    assert load_values("") == {}
    assert load_values("# nothing\n") == {}


def test_values_that_are_not_a_map_are_refused_with_helms_message() -> None:
    with pytest.raises(ValuesProblem, match="cannot unmarshal array into Go value of type"):
        load_values("- a\n- b\n")
    with pytest.raises(ValuesProblem, match=r"json: unsupported value: NaN"):
        load_values("a: .nan\n")


def test_an_alias_is_a_copy_not_a_shared_object() -> None:
    values = load_values("base: &b {tag: v1}\ncopy: *b\nmerged:\n  <<: *b\n  extra: 1\n")
    values["copy"]["tag"] = "changed"
    assert values["base"] == {"tag": "v1"}
    assert values["merged"] == {"tag": "v1", "extra": 1}


def test_a_billion_laughs_is_refused_before_it_expands() -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 10):
        refs = ",".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    start = time.perf_counter()
    with pytest.raises(ValuesProblem, match="excessive aliasing") as caught:
        load_values("\n".join(lines) + "\n")
    assert caught.value.definite
    assert time.perf_counter() - start < 5


def test_an_anchor_that_contains_itself_is_refused() -> None:
    with pytest.raises(ValuesProblem, match="contains itself"):
        load_values("a: &a [*a]\n")


def test_values_nested_beyond_what_is_read_here_are_not_rendered_not_an_error() -> None:
    for depth in (300, 5000):
        with pytest.raises(ValuesProblem) as caught:
            load_values("a: " + "[" * depth + "]" * depth + "\n")
        assert not caught.value.definite


# -- valuesFrom then values -----------------------------------------------------------


def test_value_sources_merge_in_order_and_values_win() -> None:
    result = _merge(
        {"other": "values"},
        [{"kind": "ConfigMap", "name": "values"}, {"kind": "Secret", "name": "values"}],
        {
            ("ConfigMap", "values"): _cm(
                **{"values.yaml": "flat: value\nnested:\n  configuration: value\n"}
            ),
            ("Secret", "values"): _cm(**{"values.yaml": "flat:\n  nested: value\nnested: value\n"}),
        },
    )
    assert isinstance(result, MergedValues)
    assert result.values == {"flat": {"nested": "value"}, "nested": "value", "other": "values"}
    assert result.origins == ("apps/values.yaml", "apps/values.yaml")


def test_a_target_path_sets_one_value_in_helms_set_syntax() -> None:
    result = _merge(
        None,
        [
            {
                "kind": "Secret",
                "name": "values",
                "valuesKey": "single",
                "targetPath": "merge.at.specific.path",
            }
        ],
        {("Secret", "values"): _cm(single="value")},
    )
    assert isinstance(result, MergedValues)
    assert result.values == {"merge": {"at": {"specific": {"path": "value"}}}}


def test_a_target_path_into_a_list_of_values_wins_over_values_itself() -> None:
    # helm-controller sets the path inside the lists `values` shares with the result, so
    # the later merge of `values` carries the change: the target path wins over all.
    result = _merge(
        {"nested": {"configuration": ["list", "item", "option"]}},
        [
            {
                "kind": "Secret",
                "name": "values",
                "valuesKey": "key",
                "targetPath": "nested.configuration[0]",
            },
            {"kind": "ConfigMap", "name": "values"},
        ],
        {
            ("Secret", "values"): _cm(key="value"),
            ("ConfigMap", "values"): _cm(
                **{"values.yaml": "flat: value\nnested:\n  configuration: [one, two, three]\n"}
            ),
        },
    )
    assert isinstance(result, MergedValues)
    assert result.values == {
        "flat": "value",
        "nested": {"configuration": ["value", "item", "option"]},
    }


def test_a_top_level_target_path_does_not_win_over_values() -> None:
    result = _merge(
        {"replicas": 2},
        [{"kind": "ConfigMap", "name": "v", "valuesKey": "n", "targetPath": "replicas"}],
        {("ConfigMap", "v"): _cm(n="5")},
    )
    assert isinstance(result, MergedValues)
    assert result.values == {"replicas": 2}


def test_target_path_values_are_typed_unless_quoted_or_literal() -> None:
    sources = {("Secret", "s"): _cm(n="5", q='"5"', brokers="k1.net:9092,k2.net:9092")}
    typed = _merge(
        None, [{"kind": "Secret", "name": "s", "valuesKey": "n", "targetPath": "a"}], sources
    )
    quoted = _merge(
        None, [{"kind": "Secret", "name": "s", "valuesKey": "q", "targetPath": "a"}], sources
    )
    assert isinstance(typed, MergedValues) and typed.values == {"a": 5}
    assert isinstance(quoted, MergedValues) and quoted.values == {"a": "5"}
    ref = {"kind": "Secret", "name": "s", "valuesKey": "brokers", "targetPath": "kafka.brokers"}
    mangled = _merge(None, [ref], sources)
    assert isinstance(mangled, ValuesError)
    # strvals reads `k1.net:9092,k2.net:9092` as keys: Flux's documented pitfall.
    assert mangled.message.endswith('key "net:9092" has no value')
    literal = _merge(None, [{**ref, "literal": True}], sources)
    assert isinstance(literal, MergedValues)
    assert literal.values == {"kafka": {"brokers": "k1.net:9092,k2.net:9092"}}


def test_a_literal_target_path_keeps_a_whole_file_with_an_escaped_dot_in_the_path() -> None:
    conf = 'kafka {\n  bootstrap = "b-1:9098,b-2:9098"\n}\n'
    result = _merge(
        None,
        [
            {
                "kind": "Secret",
                "name": "s",
                "valuesKey": "application.conf",
                "targetPath": "externalConfig.application\\.conf.content",
                "literal": True,
            }
        ],
        {("Secret", "s"): _cm(**{"application.conf": conf})},
    )
    assert isinstance(result, MergedValues)
    assert result.values == {"externalConfig": {"application.conf": {"content": conf}}}


def test_missing_sources_fail_the_helmrelease_unless_optional() -> None:
    ref = {"kind": "ConfigMap", "name": "gone"}
    missing = _merge(None, [ref], {})
    assert isinstance(missing, ValuesError) and missing.definite
    assert missing.message == (
        "could not resolve ConfigMap chart values reference 'apps/gone' with key "
        "'values.yaml': configmaps \"gone\" not found"
    )
    assert missing.reference == 0
    skipped = _merge({"a": 1}, [{**ref, "optional": True}], {})
    assert isinstance(skipped, MergedValues) and skipped.values == {"a": 1}
    no_key = _merge(
        None,
        [{"kind": "ConfigMap", "name": "v", "valuesKey": "other"}],
        {("ConfigMap", "v"): _cm()},
    )
    assert isinstance(no_key, ValuesError)
    assert no_key.message.endswith("with key 'other': key not found")
    optional_key = _merge(
        None,
        [{"kind": "ConfigMap", "name": "v", "valuesKey": "other", "optional": True}],
        {("ConfigMap", "v"): _cm()},
    )
    assert isinstance(optional_key, MergedValues)


def test_an_unsupported_kind_or_unreadable_values_fail() -> None:
    wrong = _merge(None, [{"kind": "Deployment", "name": "x"}], {})
    assert isinstance(wrong, ValuesError)
    assert wrong.message.endswith("unsupported values reference kind")
    bad = _merge(
        None,
        [{"kind": "ConfigMap", "name": "v"}],
        {("ConfigMap", "v"): _cm(**{"values.yaml": "\ninvalid"})},
    )
    assert isinstance(bad, ValuesError) and bad.definite
    assert "cannot unmarshal string" in bad.message


def test_a_source_whose_content_is_not_known_makes_the_values_unknown() -> None:
    result = _merge(
        {"a": 1},
        [{"kind": "Secret", "name": "db", "optional": True}],
        {("Secret", "db"): Unknown("written by external-secrets")},
    )
    assert result == ValuesUnknown(("Secret apps/db: written by external-secrets",))


def test_the_spec_values_given_are_not_changed() -> None:
    values = {"nested": {"configuration": ["list"]}}
    _merge(
        values,
        [
            {
                "kind": "Secret",
                "name": "s",
                "valuesKey": "k",
                "targetPath": "nested.configuration[0]",
            }
        ],
        {("Secret", "s"): _cm(k="x")},
    )
    assert values == {"nested": {"configuration": ["list"]}}


def test_secret_and_configmap_data_as_the_api_server_holds_them() -> None:
    secret = {
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "apps"},
        "data": {"values.yaml": base64.b64encode(b"a: 1\n").decode(), "k": "eA=="},
        "stringData": {"k": "plain"},
    }
    assert values_source_of(secret, "apps/s.yaml") == Found(
        {"values.yaml": b"a: 1\n", "k": b"plain"}, "apps/s.yaml"
    )
    configmap = {"kind": "ConfigMap", "data": {"n": 5, "t": True}, "binaryData": {"b": "eA=="}}
    assert values_source_of(configmap) == Found({"n": b"5", "t": b"true"})
    sops = {"kind": "Secret", "metadata": {"name": "s"}, "data": {}, "sops": {"version": "3"}}
    assert isinstance(values_source_of(sops), Unknown)


# -- valuesFiles ----------------------------------------------------------------------


def test_values_files_are_relative_to_the_artifact_root_and_merge_in_order() -> None:
    files = {
        "apps/base.yaml": b"image: {tag: v1}\nreplicas: 1\n",
        "apps/prod.yaml": b"image: {tag: v2}\n",
    }
    result = merge_values_files(files.get, ["apps/base.yaml", "./apps/../apps/prod.yaml"])
    assert result == ValuesFiles(
        {"image": {"tag": "v2"}, "replicas": 1}, ("apps/base.yaml", "apps/prod.yaml")
    )
    escaped = merge_values_files(files.get, ["../../apps/base.yaml"])
    assert isinstance(escaped, ValuesFiles) and escaped.files == ("apps/base.yaml",)


def test_a_missing_values_file_fails_the_chart_unless_ignored() -> None:
    nothing: dict[str, bytes] = {}
    result = merge_values_files(nothing.get, ["values-prod.yaml"])
    assert result == ValuesError(
        "no values file found at path '/values-prod.yaml' (reference 'values-prod.yaml')"
    )
    ignored = merge_values_files(nothing.get, ["values-prod.yaml"], ignore_missing=True)
    assert ignored == ValuesFiles({}, ())


# -- Helm's --set syntax ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("a=1", {"a": 1}),
        ("a.b=c", {"a": {"b": "c"}}),
        ("a[1].b=2,a[0]=z", {"a": ["z", {"b": 2}]}),
        ("a={1,2,x}", {"a": [1, 2, "x"]}),
        ("a\\.b=1", {"a.b": 1}),
        ("x=0755", {"x": "0755"}),
        ("x=-5,y=+7,z=true,n=NULL", {"x": -5, "y": 7, "z": True, "n": None}),
        ("a=9223372036854775808", {"a": "9223372036854775808"}),
        ("a[0][1]=q", {"a": [[None, "q"]]}),
        ("a[0", {}),
        ("a=", {"a": ""}),
        (".a=1", {}),
    ],
)
def test_set_expressions_parse_as_helm_parses_them(expression: str, expected: Any) -> None:
    values: dict[str, Any] = {}
    parse_into(expression, values)
    assert values == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("a", 'key "a" has no value'),
        ("a[-1]=1", "negative -1 index not allowed"),
        ("a[x]=1", 'error parsing index: strconv.Atoi: parsing "x": invalid syntax'),
        ("a[0]b=1", "unexpected data at end of array index: ['b']"),
        (
            "a=1,a.b=2",
            "unable to parse key: interface conversion: interface {} is int64, "
            "not map[string]interface {}",
        ),
        ("name={a,b", "list must terminate with '}'"),
        ("a..b=1", 'key map "a" has no value'),
        ("a[70000]=1", "index of 70000 is greater than maximum supported index of 65536"),
        (".".join(["k"] * 32) + "=1", "nested level is greater than maximum supported"),
    ],
)
def test_bad_set_expressions_fail_with_helms_message(expression: str, message: str) -> None:
    with pytest.raises(StrvalsError) as caught:
        parse_into(expression, {})
    assert message in str(caught.value)


def test_string_set_expressions_keep_every_value_a_string() -> None:
    values: dict[str, Any] = {}
    parse_into_string("a=1,b=true,c={x,2}", values)
    assert values == {"a": "1", "b": "true", "c": ["x", "2"]}


# -- against Helm itself, where the SDK is installed -------------------------------------

_SET_ALPHABET = st.sampled_from(list("ab01.=,[]{}\\-x9 "))
_YAML_SCALARS = st.sampled_from(
    [
        "yes",
        "No",
        "y",
        "n",
        "on",
        "OFF",
        "true",
        "~",
        "null",
        "",
        "0755",
        "08",
        "0x1f",
        "0o17",
        "0b11",
        "1_000",
        "+5",
        "-0",
        ".5",
        "1.",
        "1e3",
        "-1.5e-3",
        "1e400",
        "9223372036854775808",
        "18446744073709551616",
        "2001-12-14",
        "12:30",
        "0.1",
        "abc",
        "'quoted'",
        '"1"',
        "!!str 5",
        "!!float 3",
        "[1, two]",
        "{a: 1}",
    ]
)


def _numbers_as_floats(value: Any) -> Any:
    # Helm's answer crosses JSON as float64: 5 and 5.0 are the same value to a chart.
    return json.loads(json.dumps(value), parse_int=float)


@requires_helm
@given(st.text(_SET_ALPHABET, min_size=1, max_size=14))
def test_the_set_parser_agrees_with_helms(expression: str) -> None:
    import helm_python

    try:
        expected: Any = ("ok", helm_python.parse_set_string(expression))
    except helm_python.HelmError as exc:
        expected = ("error", str(exc))
    try:
        values: dict[str, Any] = {}
        parse_into(expression, values)
        got: Any = ("ok", values)
    except StrvalsError as exc:
        got = ("error", str(exc))
    assert got == expected


@requires_helm
@given(st.lists(st.tuples(_YAML_SCALARS, _YAML_SCALARS), min_size=1, max_size=4))
def test_the_values_reader_agrees_with_helms(pairs: list[tuple[str, str]]) -> None:
    import helm_python

    text = "".join(
        f"k{i}{key if key.isalnum() else ''}: {value}\n" for i, (key, value) in enumerate(pairs)
    )
    try:
        expected: Any = ("ok", _numbers_as_floats(helm_python.values_from_yaml(text)))
    except helm_python.HelmError:
        expected = ("error",)
    try:
        got: Any = ("ok", _numbers_as_floats(load_values(text)))
    except ValuesProblem:
        got = ("error",)
    assert got == expected
