"""`.helmignore` and `.sourceignore`: the two ignore-file dialects that decide what a
controller ever sees."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

import pathspec

from bot.analysis.lines import split_lines

# fluxcd/pkg sourceignore: what source-controller leaves out of every artifact.
VCS_IGNORES = (".git/", ".gitignore", ".gitmodules", ".gitattributes")
DEFAULT_IGNORES = (
    "*.jpg",
    "*.jpeg",
    "*.gif",
    "*.png",
    "*.wmv",
    "*.flv",
    "*.tar.gz",
    "*.zip",
    ".github/",
    ".circleci/",
    ".travis.yml",
    ".gitlab-ci.yml",
    "appveyor.yml",
    ".drone.yml",
    "cloudbuild.yaml",
    "codeship-services.yml",
    "codeship-steps.yml",
    "**/.goreleaser.yml",
    "**/.sops.yaml",
    "**/.flux.yaml",
)


def _go_glob(pattern: str) -> re.Pattern[str]:
    """Go's filepath.Match as a regex: `*` and `?` never cross `/`, `[^...]` negates."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                raise ValueError(f"bad pattern {pattern!r}")
            body = pattern[i + 1 : end]
            if body.startswith("^"):
                body = "^" + body[1:].replace("\\", "\\\\")
            else:
                body = body.replace("\\", "\\\\")
            out.append(f"[{body}]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True)
class _HelmRule:
    regex: re.Pattern[str]
    negate: bool
    must_dir: bool
    basename: bool


class HelmIgnore:
    """Helm's `pkg/ignore` rules (not gitignore: see the quirks in `ignored`)."""

    def __init__(self, text: str = "") -> None:
        self.rules: list[_HelmRule] = []
        self.errors: list[str] = []
        # Helm always adds this rule: dotfiles in templates/ are never rendered.
        for line in ["templates/.?*", *split_lines(text)]:
            self._add(line)

    def _add(self, line: str) -> None:
        rule = line.strip()
        if not rule or rule.startswith("#"):
            return
        if "**" in rule:
            # Helm refuses the whole chart: "double-star (**) syntax is not supported".
            self.errors.append(rule)
            return
        negate = rule.startswith("!")
        if negate:
            rule = rule[1:]
        must_dir = rule.endswith("/")
        rule = rule.rstrip("/")
        anchored = rule.startswith("/")
        rule = rule.lstrip("/")
        if not rule:
            return
        try:
            regex = _go_glob(rule)
        except ValueError:
            self.errors.append(line)
            return
        self.rules.append(_HelmRule(regex, negate, must_dir, not anchored and "/" not in rule))

    def _match(self, path: str, is_dir: bool) -> bool:
        for r in self.rules:
            target = posixpath.basename(path) if r.basename else path
            hit = bool(r.regex.match(target))
            if r.negate:
                # Helm's quirk: a negated rule that does not match *ignores* the path.
                if r.must_dir and not is_dir:
                    return True
                if not hit:
                    return True
                continue
            if r.must_dir and not is_dir:
                continue
            if hit:
                return True
        return False

    def ignored(self, rel_path: str) -> bool:
        """Whether Helm leaves out `rel_path` (relative to the chart root)."""
        parts = rel_path.split("/")
        for i in range(1, len(parts)):
            if self._match("/".join(parts[:i]), True):
                return True
        return self._match(rel_path, False)


class SourceIgnore:
    """What source-controller leaves out of a Git artifact.

    `.sourceignore` files are gitignore files scoped to their directory. Flux's docs say
    they add to the defaults; fluxcd/pkg's SourceIgnoreFilter in fact drops every default
    but the VCS ones as soon as any pattern exists. We follow the code.
    """

    def __init__(self, files: dict[str, str], extra: list[str] | None = None) -> None:
        self.specs: list[tuple[str, pathspec.GitIgnoreSpec]] = []
        custom = bool(files) or bool(extra)
        base = list(VCS_IGNORES) if custom else list(VCS_IGNORES + DEFAULT_IGNORES)
        self.specs.append(("", pathspec.GitIgnoreSpec.from_lines(base)))
        for directory in sorted(files, key=lambda d: (d.count("/"), d)):
            self.specs.append(
                (directory, pathspec.GitIgnoreSpec.from_lines(split_lines(files[directory])))
            )
        if extra:
            self.specs.append(("", pathspec.GitIgnoreSpec.from_lines(extra)))
        # Without negations, "ignored" is "any pattern matches": one regex instead of a
        # loop over patterns, for every file of the repository.
        self._fast: re.Pattern[str] | None = None
        if len(self.specs) == 1:
            patterns = self.specs[0][1].patterns
            regexes = [getattr(p, "regex", None) for p in patterns if p.include is not None]
            if all(p.include for p in patterns if p.include is not None) and all(
                isinstance(r, re.Pattern) for r in regexes
            ):
                joined = "|".join(f"(?:{r.pattern})" for r in regexes if isinstance(r, re.Pattern))
                try:
                    self._fast = re.compile(re.sub(r"\(\?P<\w+>", "(?:", joined))
                except re.error:
                    self._fast = None

    def ignored(self, path: str) -> bool:
        if self._fast is not None:
            return self._fast.search(path) is not None
        decision = False
        for directory, spec in self.specs:
            if directory:
                if not path.startswith(directory + "/"):
                    continue
                rel = path[len(directory) + 1 :]
            else:
                rel = path
            result = spec.check_file(rel)
            if result.include is not None:
                decision = bool(result.include)
        return decision
