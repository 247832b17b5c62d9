"""Regenerate docs/rules.md and the README's rule table from the rules' docstrings:
`python scripts/gen_rules_doc.py`."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.report.rules_doc import render, sync_readme  # noqa: E402

if __name__ == "__main__":
    target = ROOT / "docs" / "rules.md"
    target.write_text(render(), encoding="utf-8")
    readme = ROOT / "README.md"
    readme.write_text(sync_readme(readme.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {target} and the rules table of {readme}")
