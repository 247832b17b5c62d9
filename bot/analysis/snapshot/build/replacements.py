"""kustomize's `replacements`: copy a field of one object into fields of others."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.analysis.snapshot.build.kustfile import KustFile
from bot.analysis.snapshot.build.problems import Unknown

if TYPE_CHECKING:
    from bot.analysis.snapshot.build.kustomize import Accumulated, Kustomizer


def run(k: Kustomizer, kf: KustFile, acc: Accumulated) -> None:
    # Not emulated yet: what a replacement writes is not known, so neither is the build.
    del k
    acc.unknown.append(Unknown(kf.path, "uses `replacements`", (kf.path,)))
