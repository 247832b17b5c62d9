"""Line numbers as git and GitHub count them.

Only `\\n` ends a line in a diff, a review comment or an annotation. Python's
`str.splitlines` also breaks on `\\r`, `\\v`, `\\f`, `\\x1c`-`\\x1e`, NEL and the Unicode
line and paragraph separators, and libyaml (like go-yaml, which Kubernetes uses) counts
a lone `\\r`, NEL, U+2028 and U+2029 as line breaks: either would shift every later line
of a file that contains one, and a comment would land on the wrong line.
"""

from __future__ import annotations

import re

_YAML_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
# A break that libyaml counts and git does not: a CR not followed by LF, NEL, LS, PS.
_ODD_BREAK_BYTES = re.compile(rb"\r(?!\n)|\xc2\x85|\xe2\x80[\xa8\xa9]")
_ODD_BREAK = re.compile("\r(?!\n)|[\x85\u2028\u2029]")


def split_lines(text: str, keepends: bool = False) -> list[str]:
    """The lines of `text`, split on `\\n` only; without `keepends` a `\\r` before the
    `\\n` is dropped as `splitlines` would."""
    if not text:
        return []
    parts = text.split("\n")
    if keepends:
        lines = [p + "\n" for p in parts[:-1]]
        if parts[-1]:
            lines.append(parts[-1])
        return lines
    if parts[-1] == "":
        parts.pop()
    return [p[:-1] if p.endswith("\r") else p for p in parts]


def yaml_line_map(data: bytes | str) -> list[int] | None:
    """For each 0-based line as libyaml counts them, the 1-based line as git counts it;
    None when the two agree (no lone `\\r`, NEL, U+2028 or U+2029 in the text)."""
    if isinstance(data, bytes):
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            try:
                text = data.decode("utf-16")
            except UnicodeDecodeError:
                return None
        elif _ODD_BREAK_BYTES.search(data) is None:
            return None
        else:
            text = data.decode("utf-8", "replace")
    else:
        text = data
    if _ODD_BREAK.search(text) is None:
        return None
    mapping = [1]
    line = 1
    for match in _YAML_BREAK.finditer(text):
        if match.group() in ("\n", "\r\n"):
            line += 1
        mapping.append(line)
    return mapping


def mapped(mapping: list[int] | None, yaml_line: int) -> int:
    """The git line of a 0-based libyaml line."""
    if mapping is None:
        return yaml_line + 1
    return mapping[min(yaml_line, len(mapping) - 1)]
