"""Regenerate docs/rules.md from the rules' docstrings: `python scripts/gen_rules_doc.py`."""

from pathlib import Path

from bot.report.rules_doc import render

if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / "docs" / "rules.md"
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")
