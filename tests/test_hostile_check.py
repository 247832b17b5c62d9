"""Hostile and broken repository content thrown at `flux-review check`.

Whatever a pull request contains, `check` ends with exit 0 or 1 and findings: never a
traceback, never exit 2 for content, within 10 seconds and 500 MB, and with a precise
`yaml-syntax-error` when a controller must read the file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.analysis_helpers import gotk_sync
from tests.fakegithub.gitrepo import GitRepo

ROOT = Path(__file__).resolve().parent.parent

FLUX = gotk_sync("./apps")
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"


def _bomb() -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    previous = "a"
    for name in "bcdefghi":
        text += f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]\n"
        previous = name
    return text


def _big_manifest() -> bytes:
    lines = [f"  key{i}: value-{i:012d}\n".encode() for i in range(700_000)]
    return CONFIGMAP.encode() + b"data:\n" + b"".join(lines)


# name -> (content, expected yaml-syntax-error line or None when the file is valid)
CASES: dict[str, tuple[str | bytes, int | None]] = {
    "alias-bomb": (_bomb(), 4),
    "deep-flow": ("a: " + "[" * 10_000 + "]" * 10_000 + "\n", 1),
    "deep-block": ("".join(" " * i + "a:\n" for i in range(10_000)), 1000),
    "twenty-mb": (_big_manifest(), None),
    "million-lines": ("# comment\n" * 1_000_000 + CONFIGMAP, None),
    "duplicate-keys": (CONFIGMAP + "  name: y\n", 5),
    "merge-keys": (CONFIGMAP + "  labels: &x {a: b}\n  annotations:\n    <<: *x\n", None),
    "anchors": (CONFIGMAP + "data:\n  a: &v one\n  b: *v\n", None),
    "non-string-keys": (CONFIGMAP + "data:\n  1: a\n  ? [x]\n  : b\n", 7),
    "tabs": ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: x\n", 4),
    "crlf": (CONFIGMAP.replace("\n", "\r\n"), None),
    "bom": (b"\xef\xbb\xbf" + CONFIGMAP.encode(), None),
    "utf-16": (CONFIGMAP.encode("utf-16"), None),
    "invalid-utf-8": (CONFIGMAP.encode() + b"data:\n  a: \xff\xfe\n", 6),
    "nul-bytes": (b"apiVersion: v1\x00\n", 1),
    "binary": (bytes(range(256)) * 64, 2),  # byte 0x80 comes after the first "\n"
    "empty": ("", None),
    "dashes-only": ("---\n---\n...\n---\n", None),
    "json-style": ('{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}}\n', None),
}


# Runs the check as its own child and reports that child's peak memory and CPU time only
# (the test process's other children, like git, must not count).
_MEASURE = (
    "import resource, subprocess, sys\n"
    "proc = subprocess.run(sys.argv[1:])\n"
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(f'RUSAGE {usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}', file=sys.stderr)\n"
    "sys.exit(proc.returncode)\n"
)


def run_check(repo: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float, int]:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _MEASURE,
            sys.executable,
            "-m",
            "bot",
            "check",
            "--repo",
            str(repo),
            "--format",
            "json",
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    stderr, _, measured = proc.stderr.rstrip("\n").rpartition("\n")
    if not measured.startswith("RUSAGE"):
        stderr, measured = "", proc.stderr.strip()
    _, peak_kb, cpu = measured.split()
    proc.stderr = stderr
    return proc, float(cpu), int(peak_kb)


def assert_clean_run(
    proc: subprocess.CompletedProcess[str], cpu_seconds: float, peak_kb: int
) -> list[dict[str, object]]:
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    # CPU time, not wall-clock: the machines running the tests are shared.
    assert cpu_seconds < 10, f"took {cpu_seconds:.1f}s of CPU"
    assert peak_kb < 500 * 1024, f"used {peak_kb // 1024} MB"
    return json.loads(proc.stdout)["findings"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_yaml(tmp_path: Path, name: str) -> None:
    content, error_line = CASES[name]
    repo = GitRepo(tmp_path / "r")
    repo.commit("hostile", {"clusters/flux.yaml": FLUX, f"apps/{name}.yaml": content})
    found = assert_clean_run(*run_check(repo.path))
    errors = [(f["rule"], f["line"]) for f in found if f["path"] == f"apps/{name}.yaml"]
    if error_line is None:
        assert errors == []
    else:
        assert errors == [("yaml-syntax-error", error_line)]


def test_the_same_files_unconsumed_are_not_reported(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "r")
    repo.commit(
        "junk nobody reads",
        {
            f"notes/{name}.yaml": content
            for name, (content, _) in CASES.items()
            if name != "twenty-mb"
        },
    )
    assert assert_clean_run(*run_check(repo.path)) == []


def test_kustomization_cycles_and_escapes(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "r")
    repo.commit(
        "cycle",
        {
            "clusters/flux.yaml": FLUX,
            "apps/kustomization.yaml": "resources:\n  - ../base\n  - /etc/passwd\n"
            "  - ../../../../etc\n"
            "  - https://github.com/org/repo//deploy?ref=v1\n"
            "  - github.com/org/repo/deploy?ref=main\n",
            "base/kustomization.yaml": "resources:\n  - ../apps\n",
        },
    )
    found = assert_clean_run(*run_check(repo.path))
    got = [(f["path"], f["line"], f["rule"]) for f in found]
    assert got == [
        ("apps/kustomization.yaml", 3, "kustomize-missing-resource"),
        ("apps/kustomization.yaml", 4, "kustomize-missing-resource"),
        # kustomize refuses the cycle apps -> base -> apps
        ("base/kustomization.yaml", 2, "kustomize-invalid-kustomization"),
    ]
    assert all("outside the repository" in str(f["message"]) for f in found[:2])
    assert "cycle" in str(found[2]["message"])


def test_symlinks_submodules_and_odd_file_names(tmp_path: Path) -> None:
    sub = GitRepo(tmp_path / "sub")
    sub.commit("x", {"deploy.yaml": "a: [\n"})
    repo = GitRepo(tmp_path / "r")
    repo.write(
        {
            "clusters/flux.yaml": FLUX,
            "apps/with space.yaml": CONFIGMAP,
            "apps/ünïcødé-☸.yaml": CONFIGMAP.replace("name: x", "name: u"),
            "apps/new\nline.yaml": CONFIGMAP.replace("name: x", "name: n"),
            "apps/broken name.yaml": "a: [\n",
            "apps/kustomization-less/x.yaml": CONFIGMAP.replace("name: x", "name: k"),
        }
    )
    repo.symlink("apps/link.yaml", "/etc/passwd")
    repo.symlink("apps/loop", "loop")
    repo.git(
        "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub.path), "apps/vendored"
    )
    repo.commit("odd")
    found = assert_clean_run(*run_check(repo.path))
    assert [(f["path"], f["rule"]) for f in found] == [
        ("apps/broken name.yaml", "yaml-syntax-error")
    ]


def test_remote_resources_are_never_fetched(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "r")
    repo.commit(
        "remote",
        {
            "clusters/flux.yaml": FLUX,
            "apps/kustomization.yaml": (
                "resources:\n  - https://10.255.255.1/never.yaml\n  - git@example.invalid:x/y\n"
            ),
        },
    )
    start = time.monotonic()
    proc, cpu, peak = run_check(repo.path)
    assert assert_clean_run(proc, cpu, peak) == []
    # An attempt to reach the unroutable address would hang far longer than this.
    assert time.monotonic() - start < 30
