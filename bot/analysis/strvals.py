"""Helm's `--set` syntax (`helm.sh/helm/v4/pkg/strvals/parser.go`), as helm-controller uses it.

A HelmRelease `valuesFrom` entry with a `targetPath` puts one value at a path written in
this syntax (`a.b[0].c`, `\\.` escapes a dot): fluxcd/pkg `chartutil.ReplacePathValue`
builds `path=value` and hands it to `strvals.ParseInto` (typed: `true`, `null`, integers,
`{a,b}` lists) or, for a quoted value or `literal: true`, `strvals.ParseIntoString`. No
Python library parses this grammar, and its corner cases decide what a chart receives, so
this is a line-by-line port: the same errors, the same partial results, and the same
in-place updates of lists and maps that already exist (Go slices and maps are shared,
and helm-controller relies on it, see `helmvalues.chart_values_from_references`).

Go's `(value, error)` returns are kept: the parser's control flow depends on which values
are set before an error (or the end of the input) is returned.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["StrvalsError", "parse_into", "parse_into_string"]

# parser.go: MaxIndex and MaxNestedNameLevel.
MAX_INDEX = 65536
MAX_NESTED_NAME_LEVEL = 30

_INT64 = (-(1 << 63), (1 << 63) - 1)
_ATOI = re.compile(r"[+-]?[0-9]+")


class StrvalsError(ValueError):
    """A `--set` expression Helm refuses, with Helm's message."""


class _Eof(Exception):
    """io.EOF: the end of the expression, not an error for the caller."""


_EOF = _Eof()


class _Panic(Exception):
    """A failed Go type assertion: `parser.key` recovers it into an error."""


class _NotList(Exception):
    """ErrNotList: a value that does not start with `{`."""


_NOT_LIST = _NotList()

Err = Exception | None


class _Scanner:
    """bytes.Buffer read rune by rune, with one rune of unread."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def read(self) -> str | None:
        if self.pos >= len(self.text):
            return None
        c = self.text[self.pos]
        self.pos += 1
        return c

    def unread(self) -> None:
        self.pos -= 1


def _runes_until(sc: _Scanner, stop: frozenset[str]) -> tuple[str, str, Err]:
    out: list[str] = []
    while True:
        r = sc.read()
        if r is None:
            return "".join(out), "", _EOF
        if r in stop:
            return "".join(out), r, None
        if r == "\\":
            nxt = sc.read()
            if nxt is None:
                return "".join(out), "", _EOF
            out.append(nxt)
            continue
        out.append(r)


def _parse_int64(text: str) -> int | None:
    # strconv.ParseInt(val, 10, 64): an optional sign and decimal digits, nothing else.
    if not _ATOI.fullmatch(text):
        return None
    value = int(text)
    return value if _INT64[0] <= value <= _INT64[1] else None


def _typed_val(text: str, as_string: bool) -> Any:
    if as_string:
        return text
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    if lowered == "null":
        return None
    if lowered == "0":
        return 0
    # Only a value that does not start with 0 may be an integer: `0755` stays a string.
    if text and text[0] != "0":
        number = _parse_int64(text)
        if number is not None:
            return number
    return text


def _go_type(value: Any) -> str:
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    return "string"


def _conversion_panic(value: Any, wanted: str) -> _Panic:
    if value is None:
        return _Panic(f"interface conversion: interface {{}} is nil, not {wanted}")
    return _Panic(f"interface conversion: interface {{}} is {_go_type(value)}, not {wanted}")


def _set(data: dict[str, Any], key: str, value: Any) -> None:
    if key == "":
        return
    data[key] = value


def _set_index(lst: list[Any], index: int, value: Any) -> tuple[list[Any], Err]:
    if index < 0:
        return lst, StrvalsError(f"negative {index} index not allowed")
    if index > MAX_INDEX:
        return lst, StrvalsError(
            f"index of {index} is greater than maximum supported index of {MAX_INDEX}"
        )
    if len(lst) <= index:
        # A new backing array; a long enough list is updated in place (shared with whoever
        # else holds it), as Go's slice is.
        lst = lst + [None] * (index + 1 - len(lst))
    lst[index] = value
    return lst, None


class _Parser:
    def __init__(self, text: str, data: dict[str, Any], as_string: bool) -> None:
        self.sc = _Scanner(text)
        self.data = data
        self.as_string = as_string

    def parse(self) -> None:
        while True:
            err = self.key(self.data, 0)
            if err is None:
                continue
            if err is _EOF:
                return
            assert isinstance(err, StrvalsError)
            raise err

    def key(self, data: dict[str, Any], level: int) -> Err:
        # The innermost key() on the stack recovers the panic, as its deferred recover does.
        try:
            return self._key(data, level)
        except _Panic as exc:
            return StrvalsError(f"unable to parse key: {exc}")

    def _key(self, data: dict[str, Any], level: int) -> Err:
        k, last, err = _runes_until(self.sc, frozenset("=[,."))
        if err is not None:
            if not k:
                return err
            return StrvalsError(f"key {_quote(k)} has no value")
        if last == "[":
            index, err = self.key_index()
            if err is not None:
                return _wrap_index_error(err)
            lst: list[Any] = []
            if k in data:
                existing = data[k]
                if not isinstance(existing, list):
                    raise _conversion_panic(existing, "[]interface {}")
                lst = existing
            lst, err = self.list_item(lst, index, level)
            _set(data, k, lst)
            return err
        if last == "=":
            values, err = self.val_list()
            if err is None:
                _set(data, k, values)
                return None
            if err is _EOF:
                _set(data, k, "")
                return err
            if err is _NOT_LIST:
                runes, err = self.val()
                if err is not None and err is not _EOF:
                    return err
                _set(data, k, _typed_val(runes, self.as_string))
                return None
            return err
        if last == ",":
            _set(data, k, "")
            return StrvalsError(f"key {_quote(k)} has no value (cannot end with ,)")
        # last == "."
        level += 1
        if level > MAX_NESTED_NAME_LEVEL:
            return StrvalsError(
                "value name nested level is greater than maximum supported nested level "
                f"of {MAX_NESTED_NAME_LEVEL}"
            )
        inner: dict[str, Any] = {}
        if k in data:
            existing = data[k]
            if not isinstance(existing, dict):
                raise _conversion_panic(existing, "map[string]interface {}")
            inner = existing
        err = self.key(inner, level)
        if err is None and not inner:
            return StrvalsError(f"key map {_quote(k)} has no value")
        if inner:
            _set(data, k, inner)
        return err

    def key_index(self) -> tuple[int, Err]:
        v, _, err = _runes_until(self.sc, frozenset("]"))
        if err is not None:
            return 0, err
        # strconv.Atoi
        if not _ATOI.fullmatch(v):
            return 0, StrvalsError(f'strconv.Atoi: parsing "{v}": invalid syntax')
        number = int(v)
        if not _INT64[0] <= number <= _INT64[1]:
            return 0, StrvalsError(f'strconv.Atoi: parsing "{v}": value out of range')
        return number, None

    def list_item(self, lst: list[Any], i: int, level: int) -> tuple[list[Any], Err]:
        if i < 0:
            return lst, StrvalsError(f"negative {i} index not allowed")
        k, last, err = _runes_until(self.sc, frozenset("[.="))
        if k:
            # Go's %q of a rune slice: each rune quoted, in brackets.
            runes = " ".join("'" + c + "'" for c in k)
            return lst, StrvalsError(f"unexpected data at end of array index: [{runes}]")
        if err is not None:
            return lst, err
        if last == "=":
            values, err = self.val_list()
            if err is None:
                return _set_index(lst, i, values)
            if err is _EOF:
                return _set_index(lst, i, "")
            if err is _NOT_LIST:
                runes, err = self.val()
                if err is not None and err is not _EOF:
                    return lst, err
                return _set_index(lst, i, _typed_val(runes, self.as_string))
            return lst, err
        if last == "[":
            next_i, err = self.key_index()
            if err is not None:
                return lst, _wrap_index_error(err)
            current: list[Any] = []
            if len(lst) > i and lst[i] is not None:
                if not isinstance(lst[i], list):
                    raise _conversion_panic(lst[i], "[]interface {}")
                current = lst[i]
            inner_list, err = self.list_item(current, next_i, level)
            if err is not None:
                return lst, err
            return _set_index(lst, i, inner_list)
        # last == "."
        inner: dict[str, Any] = {}
        if len(lst) > i:
            if isinstance(lst[i], dict):
                inner = lst[i]
            else:
                lst[i] = inner
        err = self.key(inner, level)
        if err is not None:
            return lst, err
        return _set_index(lst, i, inner)

    def val(self) -> tuple[str, Err]:
        v, _, err = _runes_until(self.sc, frozenset(","))
        return v, err

    def val_list(self) -> tuple[list[Any], Err]:
        r = self.sc.read()
        if r is None:
            return [], _EOF
        if r != "{":
            self.sc.unread()
            return [], _NOT_LIST
        out: list[Any] = []
        while True:
            runes, last, err = _runes_until(self.sc, frozenset(",}"))
            if err is not None:
                return out, StrvalsError("list must terminate with '}'")
            if last == "}":
                nxt = self.sc.read()
                if nxt is not None and nxt != ",":
                    self.sc.unread()
                out.append(_typed_val(runes, self.as_string))
                return out, None
            out.append(_typed_val(runes, self.as_string))


def _quote(text: str) -> str:
    # Go's %q for the keys Helm quotes in its messages.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _wrap_index_error(err: Exception) -> Exception:
    # fmt.Errorf("error parsing index: %w", err): errors.Is still sees io.EOF through the
    # wrapping, so an expression that ends inside `[...]` just ends.
    if err is _EOF:
        return err
    return StrvalsError(f"error parsing index: {err}")


def parse_into(expression: str, dest: dict[str, Any]) -> None:
    """`strvals.ParseInto`: typed values; raises StrvalsError with Helm's message."""
    _Parser(expression, dest, as_string=False).parse()


def parse_into_string(expression: str, dest: dict[str, Any]) -> None:
    """`strvals.ParseIntoString`: every value a string."""
    _Parser(expression, dest, as_string=True).parse()
