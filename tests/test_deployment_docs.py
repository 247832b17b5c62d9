"""docs/deployment.md's config list names every key the config accepts, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from bot.analysis import config

ROOT = Path(__file__).resolve().parent.parent


def documented_keys() -> list[str]:
    text = (ROOT / "docs" / "deployment.md").read_text()
    start = text.index("## The repository config")
    table = text[start : text.index("<!-- end of config keys -->", start)]
    return re.findall(r"^\| `(\w+)` \|", table, re.M)


def test_the_config_list_names_every_key() -> None:
    documented = documented_keys()
    assert len(documented) == len(set(documented))
    # A key the parser accepts without a row, or a row for a key it refuses, is a doc bug.
    assert set(documented) == set(config._KEYS)
